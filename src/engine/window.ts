/**
 * A route's window: a counting semaphore over in-flight events. A full window stops pulling
 * (pausable sources wait in `whenFree`) or makes the source refuse (`tryAcquire` false → HTTP 429).
 */
export class Window {
  private used = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(readonly capacity: number) {}

  get free(): number {
    return this.capacity - this.used;
  }

  get inFlight(): number {
    return this.used;
  }

  /** Takes `n` slots if they are free right now and nobody is queued ahead. */
  tryAcquire(n: number): boolean {
    if (this.waiters.length > 0 || this.used + n > this.capacity) return false;
    this.used += n;
    return true;
  }

  release(n: number): void {
    this.used -= n;
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.n <= this.capacity) {
      // Wake only; the woken caller acquires through `offer`, which keeps accounting in one place.
      this.waiters.shift()!.resolve();
    }
  }

  /**
   * Resolves once `n` slots are free. Waiters are served first come, first served. Rejects at once
   * when `n` exceeds the capacity (it could never be satisfied), and when `signal` aborts.
   */
  whenFree(n: number, signal: AbortSignal): Promise<void> {
    if (n > this.capacity) return Promise.reject(new RangeError(`${n} events can never fit a window of ${this.capacity}`));
    if (this.waiters.length === 0 && this.used + n <= this.capacity) return Promise.resolve();
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter = {
        n,
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }
}
