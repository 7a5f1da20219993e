/**
 * Moves a buffer's messages into the route's window as slots free, in order.
 *
 * The pump reserves window slots (so it waits its turn like any pausable source, and the room it
 * waited for is its own) and offers the buffer's messages into them oldest first. It runs only while
 * the buffer has something ready; `kick` starts it again.
 */
import type { Inbox, Received, Reservation } from "../../core/source.js";

export interface PumpFeed {
  /** The next message ready for the window, without taking it; undefined when none is. */
  peek(): Received | undefined;
  /** Takes the message `peek` returned (it may hand a fresh copy of it): it is about to be offered. */
  take(): Received;
  /** Events ready now (sizes the reservation). */
  readonly readyEvents: number;
  /** The window refused a taken message: the route stopped accepting. */
  refused(msg: Received): void;
}

export class Pump {
  private running = false;
  private stopped = false;
  private readonly stop$ = new AbortController();
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly window: Inbox,
    private readonly feed: PumpFeed,
  ) {}

  /** Something became ready (or room may be free): make sure the pump runs. */
  kick(): void {
    if (this.running || this.stopped) return;
    void this.run();
  }

  /** Stops for good; a pending wait for window room is abandoned. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stop$.abort(new Error("buffer pump stopped"));
  }

  /** Resolves once the pump is not running (nothing ready, or stopped). */
  idle(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (!this.stopped) {
        const head = this.feed.peek();
        if (!head) break;
        const n = head.events.length;
        let r: Reservation;
        try {
          const max = Math.max(n, Math.min(this.window.capacity, this.feed.readyEvents));
          r = await this.window.reserve(n, max, this.stop$.signal);
        } catch {
          break; // stopped
        }
        try {
          for (;;) {
            const m = this.feed.peek();
            if (!m || m.events.length > r.slots) break;
            const taken = this.feed.take();
            if (!r.offer(taken)) {
              this.feed.refused(taken);
              this.stop();
              break;
            }
          }
        } finally {
          r.release();
        }
      }
    } finally {
      this.running = false;
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }
}
