/**
 * A subscription's queue: bounded, in front of its deliverer's window, so that the stream's route
 * never waits for a subscriber. The stream offers each matching event without blocking; a full
 * queue refuses it (the caller counts the drop).
 *
 * The shape is the route buffer's (`RouteBuffer` of the buffer layer: an `Inbox` with open,
 * stopAccepting, drain, abort, close), so the buffer layer's memory and disk buffers can stand in
 * for this one. Until that layer is on main, this file holds a small memory queue of the same
 * contract; `durable` queues are refused (see the README's departures).
 */
import type { Inbox, Received, Reservation } from "../core/source.js";

/** The deliverer's side the queue feeds: its window, and its shutdown steps. */
export interface QueueTarget extends Inbox {
  stopAccepting(): void;
  drain(): Promise<void>;
  abort(): void;
}

export interface SubscriptionQueue {
  readonly type: "memory" | "disk";
  /** Prepares the queue (a disk queue finds what a previous run left). */
  open(): Promise<void>;
  /** Never blocks. False when the queue is full or closed: the event is not taken. */
  offer(msg: Received): boolean;
  stopAccepting(): void;
  /** Hands what must be delivered to the window and waits for it (a disk queue keeps its backlog). */
  drain(): Promise<void>;
  /** Gives up what is queued and aborts the window. */
  abort(): void;
  close(): Promise<void>;
  /** Events and bytes held, for `/status` and the metrics. */
  reading(): { readonly events: number; readonly bytes: number };
}

/** Bytes an event holds, roughly: attribute names and values, plus data. */
export function eventBytes(msg: Received): number {
  let n = 0;
  for (const e of msg.events) {
    for (const [k, v] of Object.entries(e.attributes)) n += k.length + (typeof v === "string" ? v.length : 8);
    const d = e.data as { bytes?: Uint8Array; text?: string } | undefined;
    if (d?.bytes) n += d.bytes.byteLength;
    else if (d?.text) n += d.text.length;
    else if (d !== undefined) n += 64;
  }
  return n + 64;
}

/** A memory queue of at most `maxBytes`, moved into the target's window in order as slots free. */
export class MemoryQueue implements SubscriptionQueue {
  readonly type = "memory";
  private readonly items: { msg: Received; bytes: number }[] = [];
  private head = 0;
  private bytes = 0;
  private accepting = true;
  private pumping = false;
  private stopped = false;
  private readonly stop$ = new AbortController();
  private emptied: (() => void)[] = [];

  constructor(
    private readonly target: QueueTarget,
    private readonly maxBytes: number,
  ) {}

  get length(): number {
    return this.items.length - this.head;
  }

  reading() {
    return { events: this.length, bytes: this.bytes };
  }

  async open(): Promise<void> {}

  offer(msg: Received): boolean {
    if (!this.accepting) return false;
    if (this.length === 0 && this.target.offer(msg)) return true;
    const bytes = eventBytes(msg);
    if (this.bytes + bytes > this.maxBytes) return false;
    this.items.push({ msg, bytes });
    this.bytes += bytes;
    this.kick();
    return true;
  }

  stopAccepting(): void {
    this.accepting = false;
  }

  async drain(): Promise<void> {
    if (this.length > 0) await new Promise<void>((resolve) => this.emptied.push(resolve));
    this.stop();
    this.target.stopAccepting();
    await this.target.drain();
  }

  abort(): void {
    this.accepting = false;
    this.stop();
    this.items.length = 0;
    this.head = 0;
    this.bytes = 0;
    this.notifyEmpty();
    this.target.stopAccepting();
    this.target.abort();
  }

  async close(): Promise<void> {
    this.accepting = false;
    this.stop();
  }

  private stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stop$.abort(new Error("queue stopped"));
  }

  private kick(): void {
    if (!this.pumping && !this.stopped) void this.pump();
  }

  /** Reserves window slots (waiting its turn) and offers queued messages into them, oldest first. */
  private async pump(): Promise<void> {
    this.pumping = true;
    try {
      while (!this.stopped && this.length > 0) {
        let r: Reservation;
        try {
          r = await this.target.reserve(1, Math.min(this.target.capacity, this.length), this.stop$.signal);
        } catch {
          return;
        }
        try {
          while (r.slots > 0 && this.length > 0) {
            const { msg, bytes } = this.items[this.head]!;
            if (!r.offer(msg)) return;
            this.items[this.head++] = undefined as never;
            this.bytes -= bytes;
          }
        } finally {
          r.release();
        }
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items.splice(0, this.head);
          this.head = 0;
        }
        if (this.length === 0) this.notifyEmpty();
      }
    } finally {
      this.pumping = false;
      if (this.length === 0) this.notifyEmpty();
    }
  }

  private notifyEmpty(): void {
    const w = this.emptied;
    this.emptied = [];
    for (const f of w) f();
  }
}
