/**
 * Runs queued callbacks together at the end of the current event-loop turn (`setImmediate`).
 *
 * Transport clients such as nats.js flush their outbound buffer on a microtask, and each event's
 * async chain reaches its publish or ack in a microtask of its own, so every message became its own
 * socket write (the top item of the JetStream route's CPU profile). Issuing the writes of one turn
 * from one synchronous loop lets them leave in a single write, at the cost of under a millisecond.
 */
export class TurnQueue {
  private queue: (() => void)[] = [];
  private scheduled = false;

  push(fn: () => void): void {
    this.queue.push(fn);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  /** Runs what is queued now. Call it before closing the connection the callbacks write to. */
  flush(): void {
    this.run();
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const queue = this.queue;
    this.queue = [];
    for (const fn of queue) fn();
  };
}
