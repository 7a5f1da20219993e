/**
 * When the events of a disk buffer that failed come back: after their backoff (`releaseDelay`:
 * 1 s doubling to 30 s, or the sink's Retry-After), oldest first. With per-key ordering, an event
 * that failed holds its `partitionkey`: later events of that key wait behind it, and come back with
 * it, in log order, so none overtakes it.
 */
import type { ErroredOutcome } from "../../../core/outcome.js";
import { releaseDelay } from "../../../core/release-delay.js";

export interface Redeliverable {
  /** The `partitionkey` on an ordering route, else undefined. */
  readonly key: string | undefined;
  /** Times it was handed to the window. */
  deliveries: number;
  dueAt: number;
}

export class Redelivery<I extends Redeliverable> {
  /** Items whose backoff is over, oldest first: they go to the window before anything new. */
  readonly due: I[] = [];
  /** Items waiting for their backoff that hold no key. */
  private readonly waiting: I[] = [];
  /** Per key: the items held behind one that awaits redelivery, in log order, and when they come back. */
  private readonly held = new Map<string, { dueAt: number; items: I[] }>();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private stopped = false;

  constructor(
    /** Log order. */
    private readonly compare: (a: I, b: I) => number,
    /** Items became due. */
    private readonly onDue: () => void,
  ) {}

  /** Items waiting (for their backoff, or behind their key). */
  get size(): number {
    let n = this.waiting.length + this.due.length;
    for (const h of this.held.values()) n += h.items.length;
    return n;
  }

  /** Parks `item` behind an earlier event of its key that awaits redelivery; false when its key is free. */
  holdIfKeyHeld(item: I): boolean {
    const hold = item.key !== undefined ? this.held.get(item.key) : undefined;
    if (!hold) return false;
    insertInOrder(hold.items, item, this.compare);
    return true;
  }

  /** An item's delivery failed: it comes back after its backoff (or with the earlier event of its key). */
  failed(item: I, outcome: ErroredOutcome): void {
    const hold = item.key !== undefined ? this.held.get(item.key) : undefined;
    if (hold) {
      // Released only because an earlier event of its key failed: not a delivery of its own.
      item.deliveries--;
      insertInOrder(hold.items, item, this.compare);
      return;
    }
    item.dueAt = Date.now() + releaseDelay(outcome, item.deliveries);
    if (item.key !== undefined) this.held.set(item.key, { dueAt: item.dueAt, items: [item] });
    else this.waiting.push(item);
    this.schedule(item.dueAt);
  }

  /** Takes the next due item. */
  shift(): I | undefined {
    return this.due.shift();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(at: number): void {
    if (this.stopped || at >= this.timerAt) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.release(), Math.max(0, at - Date.now()));
  }

  /** Moves every item whose backoff is over to `due`, in log order, and re-arms the timer. */
  private release(): void {
    this.timerAt = Infinity;
    this.timer = undefined;
    const now = Date.now();
    const ready: I[] = [];
    let next = Infinity;
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      const item = this.waiting[i]!;
      if (item.dueAt <= now) {
        ready.push(item);
        this.waiting.splice(i, 1);
      } else next = Math.min(next, item.dueAt);
    }
    for (const [key, hold] of this.held) {
      if (hold.dueAt <= now) {
        ready.push(...hold.items);
        this.held.delete(key);
      } else next = Math.min(next, hold.dueAt);
    }
    for (const item of ready.sort(this.compare)) insertInOrder(this.due, item, this.compare);
    if (Number.isFinite(next)) this.schedule(next);
    if (ready.length > 0) this.onDue();
  }
}

function insertInOrder<I>(list: I[], item: I, compare: (a: I, b: I) => number): void {
  let i = list.length;
  while (i > 0 && compare(list[i - 1]!, item) > 0) i--;
  list.splice(i, 0, item);
}
