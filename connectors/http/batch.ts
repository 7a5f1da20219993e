/**
 * Collects concurrent writes into batches of at most `max_events` events and `max_bytes` bytes,
 * waiting at most `linger` for a batch to fill. One request per batch; every write in it settles
 * with that request's result (an HTTP batch succeeds or fails as a whole).
 */
import type { CloudEvent } from "../../src/cloudevents/event.js";
import { serializeStructured } from "../../src/cloudevents/json-format.js";

interface Pending {
  readonly event: CloudEvent;
  readonly size: number;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

export class BatchCollector {
  private current: Pending[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly limits: { readonly max_events: number; readonly max_bytes: number; readonly linger: number },
    private readonly send: (events: CloudEvent[]) => Promise<void>,
  ) {}

  add(event: CloudEvent, signal: AbortSignal): Promise<void> {
    // Sizing by the structured form is what the batch body will contain, plus a comma.
    const size = Buffer.byteLength(serializeStructured(event)) + 1;
    if (this.current.length > 0 && this.bytes + size > this.limits.max_bytes) this.flush();
    return new Promise((resolve, reject) => {
      // The signal is shared with other writes: remove the listener once this write settles.
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      const done = () => signal.removeEventListener("abort", onAbort);
      const entry: Pending = {
        event,
        size,
        resolve: () => {
          done();
          resolve();
        },
        reject: (err) => {
          done();
          reject(err);
        },
      };
      this.current.push(entry);
      this.bytes += size;
      if (this.current.length >= this.limits.max_events || this.bytes >= this.limits.max_bytes) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.limits.linger);
    });
  }

  /** Sends what is collected and waits for every batch in flight. */
  async flushAll(): Promise<void> {
    this.flush();
    await Promise.allSettled([...this.inFlight]);
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.current;
    if (batch.length === 0) return;
    this.current = [];
    this.bytes = 0;
    const p = this.send(batch.map((b) => b.event)).then(
      () => batch.forEach((b) => b.resolve()),
      (err) => batch.forEach((b) => b.reject(err)),
    );
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }
}
