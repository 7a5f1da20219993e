/**
 * Groups a source's native settle calls (delete, acknowledge, release, reject) so the settles of one
 * event-loop turn leave together: one DeleteMessageBatch for ten SQS messages, one acknowledge
 * request for many Event Grid lock tokens, one socket write for many JetStream acks.
 *
 * Settles are grouped by verb and delay, cut into calls of at most `maxBatch`, and a settle whose call
 * failed transiently is tried again with backoff. A settle that still fails is logged and counted as
 * lost: the broker redelivers the message (at least once holds). `close` waits for all of it, so a
 * clean shutdown leaves nothing delivered but unacknowledged.
 */
import { asBridgeError, BridgeError } from "./errors.js";
import type { EntryResult } from "./batch-writer.js";
import type { Logger } from "./logger.js";

export interface SettleTransport<H, V extends string> {
  /**
   * Applies `verb` (with `delayMs`, for verbs that take one) to `handles` in one remote call, and
   * returns one result per handle (`undefined` = done), or nothing when all succeeded. May be
   * synchronous (JetStream acks are writes on the connection). Throwing fails them all.
   */
  apply(verb: V, handles: readonly H[], delayMs: number): Promise<readonly EntryResult[] | void> | readonly EntryResult[] | void;
}

export interface SettleOptions {
  /** Handles per remote call (SQS: 10). */
  readonly maxBatch: number;
  /** Tries per settle when it fails transiently. Default 4 (waits 100, 200, 400 ms in between). */
  readonly attempts?: number;
  /**
   * Send only one (verb, delay) group per event-loop turn. rhea merges the dispositions of one turn
   * into one frame carrying the first outcome, so an accept and a release in one turn would both
   * be accepted and the released message lost.
   */
  readonly oneVerbPerTurn?: boolean;
  readonly log: Logger;
}

interface Item<H> {
  readonly handle: H;
  attempt: number;
}

interface Group<H, V> {
  readonly verb: V;
  readonly delayMs: number;
  readonly items: Item<H>[];
}

export class SettleBatcher<H, V extends string = string> {
  /** Groups waiting for the end of this turn, by `verb|delay`, in arrival order. */
  private queued = new Map<string, Group<H, V>>();
  private scheduled = false;
  private count = 0;
  private idle: (() => void)[] = [];
  private readonly attempts: number;

  constructor(
    private readonly transport: SettleTransport<H, V>,
    private readonly opts: SettleOptions,
  ) {
    this.attempts = opts.attempts ?? 4;
  }

  /** Settles queued, in flight or waiting for a retry. */
  get pending(): number {
    return this.count;
  }

  /** Queues a settle for the end of this event-loop turn. Never throws. */
  settle(verb: V, handle: H, delayMs = 0): void {
    this.count++;
    this.enqueue(verb, delayMs, [{ handle, attempt: 1 }]);
  }

  /**
   * Sends what is queued now and resolves once nothing is pending, or when `deadline` aborts
   * (whatever is left then is logged; the broker will redeliver it).
   */
  async close(deadline?: AbortSignal): Promise<void> {
    if (this.scheduled) this.run();
    if (this.count === 0) return;
    await new Promise<void>((resolve) => {
      const onAbort = () => {
        this.opts.log.warn({ pending: this.count }, "shutdown deadline passed with settles still pending; those messages will be redelivered");
        resolve();
      };
      if (deadline?.aborted) return onAbort();
      deadline?.addEventListener("abort", onAbort, { once: true });
      this.idle.push(() => {
        deadline?.removeEventListener("abort", onAbort);
        resolve();
      });
    });
  }

  private enqueue(verb: V, delayMs: number, items: Item<H>[]): void {
    const key = `${verb}|${delayMs}`;
    const group = this.queued.get(key);
    if (group) group.items.push(...items);
    else this.queued.set(key, { verb, delayMs, items });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.run);
    }
  }

  private readonly run = (): void => {
    this.scheduled = false;
    // `close` may have run the queue already, before this turn's callback fired.
    if (this.queued.size === 0) return;
    let groups: Group<H, V>[];
    if (this.opts.oneVerbPerTurn) {
      const [key, first] = this.queued.entries().next().value as [string, Group<H, V>];
      this.queued.delete(key);
      groups = [first];
      if (this.queued.size > 0) {
        this.scheduled = true;
        setImmediate(this.run);
      }
    } else {
      groups = [...this.queued.values()];
      this.queued = new Map();
    }
    for (const g of groups) {
      for (let i = 0; i < g.items.length; i += this.opts.maxBatch) void this.call(g.verb, g.delayMs, g.items.slice(i, i + this.opts.maxBatch));
    }
  };

  private async call(verb: V, delayMs: number, items: Item<H>[]): Promise<void> {
    let results: readonly EntryResult[] | void;
    try {
      results = await this.transport.apply(
        verb,
        items.map((i) => i.handle),
        delayMs,
      );
    } catch (err) {
      const error = asBridgeError(err);
      results = items.map(() => error);
    }
    const retry: Item<H>[] = [];
    let lost = 0;
    let firstError: BridgeError | undefined;
    items.forEach((item, i) => {
      const error = results ? results[i] : undefined;
      if (error === undefined) return this.done(1);
      if (error.retryable && item.attempt < this.attempts) {
        item.attempt++;
        retry.push(item);
        return;
      }
      lost++;
      firstError ??= error;
      this.done(1);
    });
    if (lost > 0) {
      this.opts.log.warn({ verb, count: lost, code: firstError!.code, err: firstError!.message }, "settle failed; the broker will redeliver these messages");
    }
    if (retry.length > 0) {
      const wait = 100 * 2 ** (retry[0]!.attempt - 2);
      setTimeout(() => this.enqueue(verb, delayMs, retry), wait);
    }
  }

  private done(n: number): void {
    this.count -= n;
    if (this.count === 0 && this.idle.length > 0) {
      const waiters = this.idle;
      this.idle = [];
      for (const w of waiters) w();
    }
  }
}
