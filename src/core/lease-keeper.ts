/**
 * Keeps the leases of unsettled messages alive while the route works on them: SQS visibility
 * timeouts, Event Grid namespace locks, JetStream ack waits. Without it a slow sink makes the broker
 * hand the message to someone else while we still deliver it, and the event arrives twice.
 *
 * Each held message's lease is extended, in groups, once less than `marginMs` of it remains, and
 * extension stops when the message settles (`done`) or has been held for `maxHoldMs`.
 */
import { asBridgeError, BridgeError } from "./errors.js";
import type { EntryResult } from "./batch-writer.js";

export interface LeaseOptions<H> {
  /** How long a grant or an extension lasts on the remote, in ms. */
  readonly leaseMs: number;
  /** Extend once less than this remains. Default: half the lease. */
  readonly marginMs?: number;
  /** Stop extending once a message has been held this long (SQS: 12 h). Default: no limit. */
  readonly maxHoldMs?: number;
  /** Handles per `extend` call. Default 10. */
  readonly maxBatch?: number;
  /**
   * Extends each lease by `leaseMs` from now, in one remote call. Resolves with one result per
   * handle (`undefined` = extended), or nothing when all were extended. Throwing fails them all.
   */
  extend(handles: readonly H[]): Promise<readonly EntryResult[] | void> | readonly EntryResult[] | void;
  /**
   * A lease could not be kept (a permanent extend failure, a transient one that lasted until the
   * lease ran out, or `maxHoldMs` passed): the broker will redeliver the message. For logging.
   */
  onLost?(handle: H, error: BridgeError): void;
  /** Clock, for tests. */
  readonly now?: () => number;
}

interface Lease<H> {
  readonly handle: H;
  readonly heldSince: number;
  expiresAt: number;
  extending: boolean;
  done: boolean;
}

export class LeaseKeeper<H> {
  private readonly leases = new Set<Lease<H>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly marginMs: number;
  private readonly maxBatch: number;
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly opts: LeaseOptions<H>) {
    this.marginMs = opts.marginMs ?? opts.leaseMs / 2;
    this.maxBatch = opts.maxBatch ?? 10;
    this.now = opts.now ?? Date.now;
  }

  /** Messages held now. */
  get size(): number {
    return this.leases.size;
  }

  /**
   * Starts keeping the lease of a message granted at `grantedAt` (default now). Returns `done`, to
   * call when the message settles; after it, the lease is never extended again.
   */
  hold(handle: H, grantedAt: number = this.now()): () => void {
    const lease: Lease<H> = { handle, heldSince: grantedAt, expiresAt: grantedAt + this.opts.leaseMs, extending: false, done: false };
    if (this.closed) return () => {};
    this.leases.add(lease);
    if (!this.timer) {
      // Ticks often enough to extend within the margin, rarely enough to cost nothing.
      const period = Math.max(10, Math.min(1_000, Math.floor(this.marginMs / 4)));
      this.timer = setInterval(() => this.tick(), period);
      this.timer.unref();
    }
    return () => {
      lease.done = true;
      this.leases.delete(lease);
      if (this.leases.size === 0) this.stopTimer();
    };
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops every timer and forgets every lease. Idempotent. */
  close(): void {
    this.closed = true;
    this.stopTimer();
    for (const l of this.leases) l.done = true;
    this.leases.clear();
  }

  private tick(): void {
    const now = this.now();
    const due: Lease<H>[] = [];
    for (const l of this.leases) {
      if (l.extending || l.expiresAt - now > this.marginMs) continue;
      if (this.opts.maxHoldMs !== undefined && now - l.heldSince + this.opts.leaseMs > this.opts.maxHoldMs) {
        this.lose(l, new BridgeError("CEB_LEASE_LOST", `held for ${now - l.heldSince} ms, the most the remote allows is ${this.opts.maxHoldMs} ms`, true));
        continue;
      }
      if (l.expiresAt <= now) {
        this.lose(l, new BridgeError("CEB_LEASE_LOST", "the lease ran out before it could be extended", true));
        continue;
      }
      due.push(l);
    }
    for (let i = 0; i < due.length; i += this.maxBatch) void this.extend(due.slice(i, i + this.maxBatch), now);
  }

  private async extend(group: Lease<H>[], startedAt: number): Promise<void> {
    for (const l of group) l.extending = true;
    let results: readonly EntryResult[] | void;
    try {
      results = await this.opts.extend(group.map((l) => l.handle));
    } catch (err) {
      const error = asBridgeError(err);
      results = group.map(() => error);
    }
    group.forEach((l, i) => {
      l.extending = false;
      // Settled while the call was in flight: whatever the remote said no longer matters.
      if (l.done) return;
      const error = results ? results[i] : undefined;
      if (error === undefined) l.expiresAt = startedAt + this.opts.leaseMs;
      else if (!error.retryable) this.lose(l, error);
      // A transient failure is tried again on the next tick, while the lease lasts.
    });
  }

  private lose(l: Lease<H>, error: BridgeError): void {
    l.done = true;
    this.leases.delete(l);
    if (this.leases.size === 0) this.stopTimer();
    this.opts.onLost?.(l.handle, error);
  }
}
