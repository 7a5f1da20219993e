/**
 * The inbox a source is started with. It forwards to the pipeline's current route and can move to
 * another one while the source keeps running, so a hot reload that changes a route (not its source)
 * neither closes the source's connection nor drops what it holds.
 *
 * - `offer` goes to the current target: one extra call on the hot path, nothing else.
 * - `reserve` passes the source's signal straight through when the target has room. When it has to
 *   wait, the wait is also cut short by a move, and the caller waits again on the new target, so a
 *   puller never stays parked on a route that was retired.
 * - An offer into a reservation taken on a retired route (which refuses it: it stopped accepting)
 *   is tried once on the current target before the source has to release the message natively.
 *
 * While a route restarts without its source, the switch points at `HOLD`: no room, so pausable
 * sources wait and the HTTP source answers 429 with Retry-After until the new route is in place.
 */
import type { Inbox, Received, Reservation } from "../core/source.js";

export class InboxSwitch implements Inbox {
  private target: Inbox;
  private moved = new AbortController();

  constructor(target: Inbox) {
    this.target = target;
  }

  /** The inbox messages go to now. */
  get current(): Inbox {
    return this.target;
  }

  get capacity(): number {
    return this.target.capacity;
  }

  get free(): number {
    return this.target.free;
  }

  get accepting(): boolean {
    return this.target.accepting;
  }

  get blocking(): boolean | undefined {
    return this.target.blocking;
  }

  offer(msg: Received): boolean {
    return this.target.offer(msg);
  }

  async reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    for (;;) {
      const target = this.target;
      if (target.free >= min) return this.wrap(target, await target.reserve(min, max, signal));
      const moved = this.moved.signal;
      const both = new AbortController();
      const onAbort = () => both.abort(signal.aborted ? signal.reason : moved.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      moved.addEventListener("abort", onAbort, { once: true });
      if (signal.aborted || moved.aborted) onAbort();
      try {
        return this.wrap(target, await target.reserve(min, max, both.signal));
      } catch (err) {
        if (signal.aborted || !moved.aborted) throw err;
        // Moved while waiting: wait again, on the new target.
      } finally {
        signal.removeEventListener("abort", onAbort);
        moved.removeEventListener("abort", onAbort);
      }
    }
  }

  /** Sends every later offer to `next` and wakes reservations waiting on the old target. */
  moveTo(next: Inbox): void {
    if (next === this.target) return;
    this.target = next;
    const old = this.moved;
    this.moved = new AbortController();
    old.abort(new Error("the route was replaced"));
  }

  private wrap(target: Inbox, inner: Reservation): Reservation {
    return new SwitchReservation(this, target, inner);
  }
}

class SwitchReservation implements Reservation {
  constructor(
    private readonly sw: InboxSwitch,
    private readonly target: Inbox,
    private readonly inner: Reservation,
  ) {}

  get slots(): number {
    return this.inner.slots;
  }

  offer(msg: Received): boolean {
    if (this.inner.offer(msg)) return true;
    const now = this.sw.current;
    return now !== this.target && now.offer(msg);
  }

  release(): void {
    this.inner.release();
  }
}

/** An inbox with no room that waits until its waiter's signal aborts: a route being restarted. */
export function holdInbox(capacity: number): Inbox {
  return {
    capacity,
    free: 0,
    accepting: true,
    offer: () => false,
    reserve: (_min, _max, signal) =>
      new Promise<Reservation>((_, reject) => {
        if (signal.aborted) reject(signal.reason);
        else signal.addEventListener("abort", () => reject(signal.reason), { once: true });
      }),
  };
}
