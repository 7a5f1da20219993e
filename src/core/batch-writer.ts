/**
 * Groups concurrent sink writes into batched remote calls (EventBridge PutEvents, SQS
 * SendMessageBatch, an HTTP batch request, Event Grid publish) and settles each write with its own
 * entry's result, so a partial failure fails only the entries the remote refused. The engine retries a
 * failed write by writing it again, so only those entries are sent again.
 *
 * A batch is sent when it reaches `maxEntries` or `maxBytes`, or `lingerMs` after its first entry,
 * with at most `maxConcurrent` batches in flight; entries that arrive meanwhile wait and leave in
 * the next batch as soon as one returns.
 */
import { asBridgeError, BridgeError, NotConnectedError, SinkError } from "./errors.js";

export interface BatchLimits {
  /** Entries per remote call. */
  readonly maxEntries: number;
  /** Bytes per remote call, as `BatchTransport.size` counts them. */
  readonly maxBytes: number;
  /** How long the first entry of a batch waits for more. */
  readonly lingerMs: number;
  /** Remote calls in flight at once. Default 4. */
  readonly maxConcurrent?: number;
}

/** One entry's result: `undefined` when the remote accepted it, else the error for that entry. */
export type EntryResult = BridgeError | undefined;

export interface BatchTransport<T> {
  /** The entry's size as the remote counts it toward its request limit. May throw (the write fails). */
  size(entry: T): number;
  /**
   * Makes one remote call for `entries` and resolves with one result per entry, in the same order.
   * Throwing fails every entry with that error (through `asBridgeError`). `signal` aborts once every
   * entry of the batch has been given up by its writer (deadline or shutdown).
   */
  send(entries: readonly T[], signal: AbortSignal): Promise<readonly EntryResult[]>;
}

interface Pending<T> {
  readonly entry: T;
  readonly size: number;
  readonly signal: AbortSignal;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  readonly onAbort: () => void;
  settled: boolean;
  batch: Batch | undefined;
}

interface Batch {
  readonly controller: AbortController;
  readonly size: number;
  abandoned: number;
}

export class BatchWriter<T> {
  private queue: Pending<T>[] = [];
  private queuedBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private readonly running = new Set<Promise<void>>();
  private closed = false;
  private readonly maxConcurrent: number;

  constructor(
    private readonly limits: BatchLimits,
    private readonly transport: BatchTransport<T>,
  ) {
    this.maxConcurrent = limits.maxConcurrent ?? 4;
  }

  /**
   * Adds one entry. Resolves once the remote accepted it; rejects with its own entry's error, or
   * with `signal.reason` when the signal aborts first (an entry aborted before its batch leaves is
   * not sent). An entry larger than `maxBytes` on its own is refused at once, for good.
   */
  write(entry: T, signal: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new NotConnectedError("the sink is closed"));
    if (signal.aborted) return Promise.reject(signal.reason);
    let size: number;
    try {
      size = this.transport.size(entry);
    } catch (err) {
      return Promise.reject(err);
    }
    if (size > this.limits.maxBytes) {
      return Promise.reject(
        new SinkError(`the entry is ${size} bytes, over the limit of ${this.limits.maxBytes} bytes per request`, false, { code: "CEB_TOO_LARGE" }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const p: Pending<T> = {
        entry,
        size,
        signal,
        resolve,
        reject,
        settled: false,
        batch: undefined,
        onAbort: () => this.abandon(p),
      };
      // The signal is shared by many writes (the engine's deadline slots): the listener is removed
      // as soon as this write settles.
      signal.addEventListener("abort", p.onAbort, { once: true });
      this.queue.push(p);
      this.queuedBytes += size;
      if (this.full()) this.pump(false);
      else this.timer ??= setTimeout(() => this.linger(), this.limits.lingerMs);
    });
  }

  /** Sends everything collected and waits for every batch in flight. */
  async flush(): Promise<void> {
    while (this.queue.length > 0 || this.running.size > 0) {
      this.pump(true);
      if (this.running.size > 0) await Promise.race(this.running);
    }
  }

  /** Flushes, then refuses further writes. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
  }

  private full(): boolean {
    return this.queue.length >= this.limits.maxEntries || this.queuedBytes >= this.limits.maxBytes;
  }

  private linger(): void {
    this.timer = undefined;
    this.pump(true);
  }

  /** Sends batches while there is room in flight: full ones only, or whatever is queued (`force`). */
  private pump(force: boolean): void {
    while (this.inFlight < this.maxConcurrent && this.queue.length > 0 && (force || this.full())) this.send(this.take());
    if (this.queue.length === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** The longest prefix of the queue that fits one request. */
  private take(): Pending<T>[] {
    let n = 0;
    let bytes = 0;
    while (n < this.queue.length && n < this.limits.maxEntries && (n === 0 || bytes + this.queue[n]!.size <= this.limits.maxBytes)) {
      bytes += this.queue[n]!.size;
      n++;
    }
    const batch = this.queue.slice(0, n);
    this.queue = this.queue.slice(n);
    this.queuedBytes -= bytes;
    return batch;
  }

  private send(entries: Pending<T>[]): void {
    const batch: Batch = { controller: new AbortController(), size: entries.length, abandoned: 0 };
    for (const p of entries) p.batch = batch;
    this.inFlight++;
    const run = this.transport
      .send(
        entries.map((p) => p.entry),
        batch.controller.signal,
      )
      .then(
        (results) => entries.forEach((p, i) => this.finish(p, i < results.length ? results[i] : new BridgeError("CEB_INTERNAL", "the remote returned no result for this entry", true))),
        (err) => {
          const error = asBridgeError(err);
          for (const p of entries) this.finish(p, error);
        },
      )
      .finally(() => {
        this.inFlight--;
        this.running.delete(run);
        // Entries that queued while every slot was busy have waited a batch already: send them now.
        this.pump(true);
      });
    this.running.add(run);
  }

  private finish(p: Pending<T>, error: EntryResult): void {
    if (p.settled) return;
    p.settled = true;
    p.signal.removeEventListener("abort", p.onAbort);
    if (error === undefined) p.resolve();
    else p.reject(error);
  }

  /** The writer gave up on `p` (its signal aborted). */
  private abandon(p: Pending<T>): void {
    if (p.settled) return;
    p.settled = true;
    p.reject(p.signal.reason);
    const batch = p.batch;
    if (batch === undefined) {
      // Not sent yet: leave it out.
      const i = this.queue.indexOf(p);
      if (i >= 0) {
        this.queue.splice(i, 1);
        this.queuedBytes -= p.size;
      }
      return;
    }
    if (++batch.abandoned === batch.size) batch.controller.abort(p.signal.reason);
  }
}
