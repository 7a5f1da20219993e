/**
 * Reservations against a buffer: a pausable source (or one that can stall its input) waits here
 * until the buffer has room, then holds slots it can offer into without being refused.
 *
 * Room is measured in bytes, but a source reserves before it knows how large its messages are. So a
 * reservation is granted while the buffer is below its limit, and at most `capacity` slots (the
 * route's window) are held at once: a buffer overshoots `max_bytes` by at most one window of events.
 */
import type { Received, Reservation } from "../../core/source.js";

export interface RoomHost {
  /** Slots that may be held at once (the route's window). */
  readonly capacity: number;
  /** False once the buffer stopped taking messages. */
  readonly accepting: boolean;
  /** True while the buffer can take more. */
  hasRoom(): boolean;
  /** Takes a message offered under a reservation; it cannot be refused for lack of room. */
  admitReserved(msg: Received): void;
}

interface Waiter {
  readonly min: number;
  readonly max: number;
  grant(slots: number): void;
}

export class Room {
  private outstanding = 0;
  private readonly waiters: Waiter[] = [];

  constructor(private readonly host: RoomHost) {}

  /** Slots held by reservations right now. */
  get held(): number {
    return this.outstanding;
  }

  /** See `Inbox.reserve`. Waiters are served in arrival order. */
  reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    const cap = this.host.capacity;
    if (min < 1 || max < min) return Promise.reject(new RangeError(`bad reservation: min ${min}, max ${max}`));
    if (min > cap) return Promise.reject(new RangeError(`${min} events can never fit a window of ${cap}`));
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.waiters.length === 0 && this.canGrant(min)) return Promise.resolve(this.grant(max));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
        this.wake();
      };
      const waiter: Waiter = {
        min,
        max,
        grant: (slots) => {
          signal.removeEventListener("abort", onAbort);
          resolve(new BufferReservation(this, this.host, slots));
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Serves waiters while there is room; call whenever room may have been freed. */
  wake(): void {
    while (this.waiters.length > 0 && this.canGrant(this.waiters[0]!.min)) {
      const w = this.waiters.shift()!;
      w.grant(this.take(w.max));
    }
  }

  /** Returns `n` held slots (offered into, or released unused). */
  giveBack(n: number): void {
    this.outstanding -= n;
    this.wake();
  }

  private canGrant(min: number): boolean {
    return this.host.hasRoom() && this.outstanding + min <= this.host.capacity;
  }

  private grant(max: number): Reservation {
    return new BufferReservation(this, this.host, this.take(max));
  }

  private take(max: number): number {
    const n = Math.min(max, this.host.capacity - this.outstanding);
    this.outstanding += n;
    return n;
  }
}

class BufferReservation implements Reservation {
  constructor(
    private readonly room: Room,
    private readonly host: RoomHost,
    private held: number,
  ) {}

  get slots(): number {
    return this.held;
  }

  offer(msg: Received): boolean {
    const n = msg.events.length;
    if (n > this.held) throw new RangeError(`a message of ${n} events does not fit a reservation of ${this.held} slots`);
    if (!this.host.accepting) return false;
    this.held -= n;
    // Taken first, so the next waiter is judged against the bytes this message adds.
    this.host.admitReserved(msg);
    this.room.giveBack(n);
    return true;
  }

  release(): void {
    if (this.held === 0) return;
    const n = this.held;
    this.held = 0;
    this.room.giveBack(n);
  }
}
