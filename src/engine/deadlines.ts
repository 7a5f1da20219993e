/**
 * Deadlines for sink writes without a timer or a signal per write.
 *
 * Every write of a route gets the same timeout, so writes that start within one short slot can share
 * one AbortController that fires when the slot's deadline passes; slots expire in the order they
 * started, so one FIFO queue and one timer serve the whole route. A deadline is thus up to one slot
 * (1% of the timeout, at most 5 ms) late. A hard stop aborts every slot at once. Per-write
 * `AbortSignal.timeout` + `AbortSignal.any`, and even a plain AbortController per write, cost more
 * than the rest of the route's hot path together (measured with --cpu-prof).
 */
import { setMaxListeners } from "node:events";

export interface Slot {
  readonly controller: AbortController;
  readonly deadline: number;
  /** True once the deadline (not a hard stop) aborted the slot's writes. */
  timedOut: boolean;
}

export class Deadlines {
  private readonly queue: Slot[] = [];
  private current: Slot | undefined;
  private currentEnds = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopReason: unknown;
  private stopped = false;
  private readonly slotMs: number;

  constructor(private readonly timeoutMs: number) {
    // Short slots keep few writes per shared signal: Node's EventTarget scans every listener on each
    // add and remove, so thousands of writes on one signal cost several µs each (measured).
    this.slotMs = Math.min(5, Math.max(1, Math.floor(timeoutMs / 100)));
  }

  /** The slot for a write starting now; pass `slot.controller.signal` to the write. */
  start(): Slot {
    const now = Date.now();
    if (this.current && now < this.currentEnds) return this.current;
    const controller = new AbortController();
    // Many concurrent writes listen on one signal; that is by design, not a leak.
    setMaxListeners(0, controller.signal);
    const slot: Slot = { controller, deadline: now + this.timeoutMs, timedOut: false };
    if (this.stopped) {
      controller.abort(this.stopReason);
      return slot;
    }
    this.current = slot;
    this.currentEnds = now + this.slotMs;
    this.queue.push(slot);
    if (!this.timer) this.arm(slot.deadline);
    return slot;
  }

  /** Aborts every live write, and every later one, with `reason`. */
  abortAll(reason: unknown): void {
    this.stopped = true;
    this.stopReason = reason;
    for (const slot of this.queue) slot.controller.abort(reason);
    this.queue.length = 0;
    this.current = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(at: number): void {
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - Date.now()));
    this.timer.unref();
  }

  private expire(): void {
    this.timer = undefined;
    const now = Date.now();
    while (this.queue.length > 0 && this.queue[0]!.deadline <= now) {
      const slot = this.queue.shift()!;
      if (slot === this.current) this.current = undefined;
      slot.timedOut = true;
      slot.controller.abort(new Error("deadline exceeded"));
    }
    if (this.queue.length > 0) this.arm(this.queue[0]!.deadline);
  }
}
