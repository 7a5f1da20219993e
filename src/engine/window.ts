/**
 * A route's window: a counting semaphore over in-flight events, with reservations.
 *
 * Slots are either in use (an offered event that has not settled) or held (reserved by a pausable
 * source that waited for room and has not offered yet). A source that waited must own the room it
 * waited for: waking waiters without reserving let two waiters race for one freed slot, and the
 * loser's offer was refused (issue #8). So `reserve` hands out slots, first come first served, and
 * `tryAcquire` never jumps the queue.
 */
export class Window {
  private used = 0;
  private held = 0;
  private readonly waiters: Waiter[] = [];

  constructor(readonly capacity: number) {}

  /** Slots neither in use nor held. */
  get free(): number {
    return this.capacity - this.used - this.held;
  }

  /** Events offered and not yet settled. */
  get inFlight(): number {
    return this.used;
  }

  /** Slots reserved and not yet offered into. */
  get reserved(): number {
    return this.held;
  }

  /** Takes `n` slots if they are free right now and nobody is queued ahead. */
  tryAcquire(n: number): boolean {
    if (this.waiters.length > 0 || n > this.free) return false;
    this.used += n;
    return true;
  }

  /** Turns `n` held slots into slots in use (an offer made under a reservation). */
  useHeld(n: number): void {
    this.held -= n;
    this.used += n;
  }

  /** Frees `n` slots in use (a message settled). */
  release(n: number): void {
    this.used -= n;
    this.serve();
  }

  /** Gives back `n` held slots that were never offered into. */
  unhold(n: number): void {
    this.held -= n;
    this.serve();
  }

  /**
   * Waits until at least `min` slots are free, then holds `min(free, max)` of them for the caller and
   * resolves with that number. Waiters are served in arrival order. Rejects at once when `min`
   * exceeds the capacity (it could never be satisfied), and with the signal's reason when it aborts.
   */
  reserve(min: number, max: number, signal: AbortSignal): Promise<number> {
    if (min < 1 || max < min) return Promise.reject(new RangeError(`bad reservation: min ${min}, max ${max}`));
    if (min > this.capacity) return Promise.reject(new RangeError(`${min} events can never fit a window of ${this.capacity}`));
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.waiters.length === 0 && this.free >= min) return Promise.resolve(this.hold(max));
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
        // A waiter that leaves may have been blocking smaller requests behind it.
        this.serve();
      };
      const waiter: Waiter = {
        min,
        max,
        grant: (n) => {
          signal.removeEventListener("abort", onAbort);
          resolve(n);
        },
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  private hold(max: number): number {
    const n = Math.min(this.free, max);
    this.held += n;
    return n;
  }

  private serve(): void {
    while (this.waiters.length > 0 && this.free >= this.waiters[0]!.min) {
      const w = this.waiters.shift()!;
      w.grant(this.hold(w.max));
    }
  }
}

interface Waiter {
  readonly min: number;
  readonly max: number;
  grant(n: number): void;
}
