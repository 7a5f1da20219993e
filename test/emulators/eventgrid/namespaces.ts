/**
 * Event Grid namespace topics and their pull subscriptions (REST api-version 2024-06-01):
 * receive with a lock (long poll up to `maxWaitTime`, early return when events exist), acknowledge,
 * release with a delay of 0, 10, 60, 600 or 3600 s (time-scaled), reject (dead-letter, never
 * redelivered), renewLock, lock expiry (the event comes back with the next delivery count), and the
 * subscription's max delivery count (then dead-lettered). Every receive hands out new opaque lock
 * tokens; an unknown or expired token fails per token with `TokenLost`. Events are kept verbatim, so
 * CloudEvents extensions and `data_base64` come back exactly as published.
 */
import { randomBytes } from "node:crypto";
import type { JsonObject } from "./schemas.js";

export const RELEASE_DELAYS_S = [0, 10, 60, 600, 3600] as const;

export interface SubscriptionOptions {
  /** `receiveLockDurationInSeconds` in ms (service: 60–300 s, default 60 s). */
  readonly lockDurationMs?: number;
  /** `maxDeliveryCount` (service: 1–10, default 10). */
  readonly maxDeliveryCount?: number;
}

interface Item {
  readonly seq: number;
  readonly event: JsonObject;
  deliveryCount: number;
  availableAt: number;
}

interface Lock {
  readonly item: Item;
  expiresAt: number;
}

export interface ReceivedDetail {
  readonly brokerProperties: { readonly lockToken: string; readonly deliveryCount: number };
  readonly event: JsonObject;
}

export interface TokenFailure {
  readonly lockToken: string;
  readonly error: { readonly code: string; readonly message: string };
}

export type SettleVerb = "acknowledge" | "release" | "reject" | "renewLock";

interface Waiter {
  readonly max: number;
  readonly resolve: (d: ReceivedDetail[]) => void;
  readonly timer: NodeJS.Timeout;
}

export class NamespaceSubscription {
  readonly lockDurationMs: number;
  readonly maxDeliveryCount: number;
  readonly deadLettered: { readonly event: JsonObject; readonly reason: string; readonly deliveryCount: number }[] = [];
  /** Ids of acknowledged events, in acknowledgement order. */
  readonly acknowledged: string[] = [];
  /** Every settle call: verb, tokens, delay. */
  readonly settleCalls: { readonly verb: SettleVerb; readonly tokens: number; readonly delaySeconds?: number }[] = [];
  /** Every lock handed out: event id and delivery count, in order. */
  readonly deliveries: { readonly id: string; readonly deliveryCount: number }[] = [];
  private items: Item[] = [];
  /** Set when an event comes back behind newer ones (release, lock expiry). */
  private unsorted = false;
  private readonly locks = new Map<string, Lock>();
  private waiters: Waiter[] = [];
  private failNext: { verb: SettleVerb; left: number; code: string }[] = [];

  constructor(
    readonly name: string,
    opts: SubscriptionOptions,
    private readonly timeScale: number,
  ) {
    this.lockDurationMs = opts.lockDurationMs ?? 60_000;
    this.maxDeliveryCount = opts.maxDeliveryCount ?? 10;
  }

  add(seq: number, event: JsonObject): void {
    this.items.push({ seq, event, deliveryCount: 0, availableAt: Date.now() });
    this.tick();
  }

  /** Events neither acknowledged, rejected nor dead-lettered (available, delayed or locked). */
  get outstanding(): number {
    return this.items.length + this.locks.size;
  }

  get lockedCount(): number {
    return this.locks.size;
  }

  /** The next `count` tokens of `verb` calls fail with `code` (partial per-token failures). */
  failTokens(verb: SettleVerb, count: number, code = "InternalServerError"): void {
    this.failNext.push({ verb, left: count, code });
  }

  /** Expires locks, wakes pollers. Called by the emulator's clock. */
  tick(now = Date.now()): void {
    for (const [token, lock] of this.locks) {
      if (lock.expiresAt <= now) {
        this.locks.delete(token);
        lock.item.availableAt = now;
        this.items.push(lock.item);
        this.unsorted = true;
      }
    }
    while (this.waiters.length > 0 && this.hasAvailable(now)) {
      const w = this.waiters.shift()!;
      clearTimeout(w.timer);
      w.resolve(this.take(w.max, now));
    }
  }

  private hasAvailable(now: number): boolean {
    return this.items.some((i) => i.availableAt <= now);
  }

  /** Long poll: resolves at once when events are available, else when some arrive or `waitMs` passes. */
  receive(max: number, waitMs: number, signal: AbortSignal): Promise<ReceivedDetail[]> {
    this.tick();
    const now = Date.now();
    if (this.hasAvailable(now)) return Promise.resolve(this.take(max, now));
    return new Promise((resolve) => {
      const waiter: Waiter = {
        max,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((w) => w !== waiter);
          resolve([]);
        }, waitMs),
      };
      this.waiters.push(waiter);
      // A client that gave up gets nothing locked on its behalf.
      signal.addEventListener("abort", () => {
        if (!this.waiters.includes(waiter)) return;
        clearTimeout(waiter.timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
        resolve([]);
      }, { once: true });
    });
  }

  /** Available events in publish order, one pass (the bench drains tens of thousands). */
  private take(max: number, now: number): ReceivedDetail[] {
    if (this.unsorted) {
      this.items.sort((a, b) => a.seq - b.seq);
      this.unsorted = false;
    }
    const out: ReceivedDetail[] = [];
    const rest: Item[] = [];
    for (const item of this.items) {
      if (out.length >= max || item.availableAt > now) {
        rest.push(item);
        continue;
      }
      if (item.deliveryCount >= this.maxDeliveryCount) {
        this.deadLettered.push({ event: item.event, reason: "MaxDeliveryCountExceeded", deliveryCount: item.deliveryCount });
        continue;
      }
      item.deliveryCount++;
      const token = randomBytes(18).toString("base64url");
      this.locks.set(token, { item, expiresAt: now + this.lockDurationMs });
      this.deliveries.push({ id: String(item.event["id"]), deliveryCount: item.deliveryCount });
      out.push({ brokerProperties: { lockToken: token, deliveryCount: item.deliveryCount }, event: item.event });
    }
    this.items = rest;
    return out;
  }

  /** Applies a settle verb per token. `delaySeconds` only for release. */
  settle(verb: SettleVerb, tokens: readonly string[], delaySeconds = 0): { succeededLockTokens: string[]; failedLockTokens: TokenFailure[] } {
    this.tick();
    this.settleCalls.push({ verb, tokens: tokens.length, ...(verb === "release" ? { delaySeconds } : {}) });
    const now = Date.now();
    const succeeded: string[] = [];
    const failed: TokenFailure[] = [];
    for (const token of tokens) {
      const injected = this.failNext.find((f) => f.verb === verb && f.left > 0);
      if (injected) {
        injected.left--;
        failed.push({ lockToken: token, error: { code: injected.code, message: `injected failure of ${verb}` } });
        continue;
      }
      const lock = this.locks.get(token);
      if (!lock || lock.expiresAt <= now) {
        failed.push({ lockToken: token, error: { code: "TokenLost", message: "the lock token is unknown or its lock expired" } });
        continue;
      }
      switch (verb) {
        case "acknowledge":
          this.locks.delete(token);
          this.acknowledged.push(String(lock.item.event["id"]));
          break;
        case "reject":
          this.locks.delete(token);
          this.deadLettered.push({ event: lock.item.event, reason: "Rejected", deliveryCount: lock.item.deliveryCount });
          break;
        case "release":
          this.locks.delete(token);
          lock.item.availableAt = now + delaySeconds * 1000 * this.timeScale;
          this.items.push(lock.item);
          this.unsorted = true;
          break;
        case "renewLock":
          lock.expiresAt = now + this.lockDurationMs;
          break;
      }
      succeeded.push(token);
    }
    this.failNext = this.failNext.filter((f) => f.left > 0);
    if (verb === "release") this.tick();
    return { succeededLockTokens: succeeded, failedLockTokens: failed };
  }

  close(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve([]);
    }
    this.waiters = [];
  }
}

export class NamespaceTopic {
  readonly subscriptions = new Map<string, NamespaceSubscription>();
  /** Every accepted event, verbatim, in publish order. */
  readonly published: JsonObject[] = [];
  private seq = 0;

  constructor(
    readonly name: string,
    private readonly timeScale: number,
  ) {}

  subscription(name: string, opts: SubscriptionOptions = {}): NamespaceSubscription {
    let s = this.subscriptions.get(name);
    if (!s) {
      s = new NamespaceSubscription(name, opts, this.timeScale);
      this.subscriptions.set(name, s);
    }
    return s;
  }

  publish(events: readonly JsonObject[]): void {
    for (const e of events) {
      const seq = ++this.seq;
      this.published.push(e);
      for (const s of this.subscriptions.values()) s.add(seq, e);
    }
  }
}
