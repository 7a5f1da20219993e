/**
 * Route deduplication on `source` + `id`, bounded in time and in memory.
 *
 * A key is recorded only once its event was delivered (or dead-lettered), so a failed first attempt
 * never hides the redelivery. A duplicate that arrives while the first is still in flight waits for
 * that outcome: dropped if it succeeded, processed if it failed. Past `maxKeys` the oldest key is
 * evicted; keys also expire after `windowMs`.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import type { Outcome } from "../core/outcome.js";

export class Deduper {
  /** key → time recorded. Map order is insertion order, so the oldest key is always first. */
  private readonly seen = new Map<string, number>();
  private readonly inFlight = new Map<string, Promise<Outcome>>();

  constructor(
    private readonly windowMs: number,
    private readonly maxKeys: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.seen.size;
  }

  /**
   * Runs `deliver` unless `event` is a duplicate. Returns the outcome and whether it was dropped.
   */
  async run(event: CloudEvent, deliver: () => Promise<Outcome>): Promise<{ outcome: Outcome; duplicate: boolean }> {
    const key = `${String(event.attributes["source"])}\u0000${String(event.attributes["id"])}`;
    this.expire();
    if (this.seen.has(key)) return { outcome: { status: "delivered" }, duplicate: true };
    const pending = this.inFlight.get(key);
    if (pending) {
      const first = await pending;
      if (first.status === "delivered" || first.status === "dead_lettered") return { outcome: { status: "delivered" }, duplicate: true };
    }
    const attempt = deliver();
    this.inFlight.set(key, attempt);
    try {
      const outcome = await attempt;
      if (outcome.status === "delivered" || outcome.status === "dead_lettered") this.record(key);
      return { outcome, duplicate: false };
    } finally {
      if (this.inFlight.get(key) === attempt) this.inFlight.delete(key);
    }
  }

  private record(key: string): void {
    this.seen.delete(key);
    this.seen.set(key, this.now());
    while (this.seen.size > this.maxKeys) this.seen.delete(this.seen.keys().next().value!);
  }

  private expire(): void {
    const cutoff = this.now() - this.windowMs;
    for (const [key, at] of this.seen) {
      if (at > cutoff) break;
      this.seen.delete(key);
    }
  }
}
