/**
 * A scripted `Inbox` for source tests: records every offer, settles with outcomes the test chooses,
 * and measures how many events were in flight at once (to prove a source never exceeds the window).
 */
import type { CloudEvent } from "../../src/cloudevents/event.js";
import { SinkError } from "../../src/core/errors.js";
import type { Outcome } from "../../src/core/outcome.js";
import type { Inbox, Received, Reservation } from "../../src/core/source.js";
import { Window } from "../../src/engine/window.js";
import { sleep, waitFor } from "./wait.js";

/** Decides the outcome of one offered message; `"hold"` leaves it unsettled (it keeps its slots). */
export type Script = (
  msg: Received,
  info: { readonly key: string; readonly seen: number; readonly index: number },
) => Outcome | "hold" | Promise<Outcome | "hold">;

export const DELIVERED_OUTCOME: Outcome = { status: "delivered" };
export function erroredOutcome(message = "scripted transient failure", retryAfterMs?: number): Outcome {
  return { status: "errored", error: new SinkError(message, true), release: "retries_spent", ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}
export function rejectedOutcome(message = "scripted permanent failure"): Outcome {
  return { status: "rejected", error: new SinkError(message, false) };
}

export interface FakeInboxOptions {
  capacity?: number;
  script?: Script;
  /** Delay before the script runs (simulates sink latency). */
  settleDelayMs?: number;
  /** Identity of an offer, for `seen` counts (default: source + " " + id of its first event). */
  key?: (ev: CloudEvent) => string;
  /** What `Inbox.blocking` says (a route buffer with `when_full: block`). */
  blocking?: boolean;
}

export interface Settlement {
  readonly key: string;
  readonly outcome: Outcome;
}

/**
 * The slots are counted by the engine's own `Window`, so reservations behave exactly as in a route;
 * what this adds is the record of offers and settlements.
 */
export class FakeInbox implements Inbox {
  readonly capacity: number;
  readonly blocking: boolean;
  accepting = true;
  /** The most events ever in flight at once. */
  maxInUse = 0;
  /** Offers refused (window full or not accepting). */
  refused = 0;
  /** Every accepted offer, in order. */
  readonly offers: Received[] = [];
  /** Keys of the accepted offers, in order. */
  readonly keys: string[] = [];
  /** Offers the script held back, in order. */
  readonly held: Received[] = [];
  readonly settlements: Settlement[] = [];
  /** Messages whose `settle` was called more than once (must stay 0). */
  doubleSettles = 0;

  private readonly script: Script;
  private readonly settleDelayMs: number;
  private readonly keyOf: (ev: CloudEvent) => string;
  private readonly seenCount = new Map<string, number>();
  private readonly window: Window;
  /** Reservations handed out, and the most ever held at once (slots). */
  reservations = 0;

  constructor(opts: FakeInboxOptions = {}) {
    this.capacity = opts.capacity ?? 64;
    this.blocking = opts.blocking ?? false;
    this.script = opts.script ?? (() => DELIVERED_OUTCOME);
    this.settleDelayMs = opts.settleDelayMs ?? 0;
    this.keyOf = opts.key ?? ((ev) => `${String(ev.attributes["source"])} ${String(ev.attributes["id"])}`);
    this.window = new Window(this.capacity);
  }

  get free(): number {
    return this.window.free;
  }

  /** Events currently offered and not settled. */
  get inUse(): number {
    return this.window.inFlight;
  }

  /** How many times an offer with this key was accepted. */
  seen(key: string): number {
    return this.seenCount.get(key) ?? 0;
  }

  offer(msg: Received): boolean {
    if (!this.accepting || !this.window.tryAcquire(msg.events.length)) {
      this.refused++;
      return false;
    }
    this.admit(msg);
    return true;
  }

  async reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    let held = await this.window.reserve(min, max, signal);
    this.reservations++;
    return {
      get slots() {
        return held;
      },
      offer: (msg) => {
        const n = msg.events.length;
        if (n > held) throw new RangeError(`a message of ${n} events does not fit a reservation of ${held} slots`);
        if (!this.accepting) {
          this.refused++;
          return false;
        }
        held -= n;
        this.window.useHeld(n);
        this.admit(msg);
        return true;
      },
      release: () => {
        const n = held;
        held = 0;
        if (n > 0) this.window.unhold(n);
      },
    };
  }

  private admit(msg: Received): void {
    this.maxInUse = Math.max(this.maxInUse, this.inUse);
    const key = this.keyOf(msg.events[0]!);
    const seen = this.seen(key) + 1;
    this.seenCount.set(key, seen);
    const index = this.offers.length;
    this.offers.push(msg);
    this.keys.push(key);
    void this.run(msg, { key, seen, index });
  }

  private async run(msg: Received, info: { key: string; seen: number; index: number }): Promise<void> {
    if (this.settleDelayMs > 0) await sleep(this.settleDelayMs);
    else await Promise.resolve();
    const outcome = await this.script(msg, info);
    if (outcome === "hold") {
      this.held.push(msg);
      return;
    }
    this.settle(msg, outcome, info.key);
  }

  /** Settles one message now (also usable on held messages). */
  settle(msg: Received, outcome: Outcome, key = this.keyOf(msg.events[0]!)): void {
    const tagged = msg as Received & { __settled?: boolean };
    if (tagged.__settled) {
      this.doubleSettles++;
      return;
    }
    tagged.__settled = true;
    msg.settle(outcome);
    this.settlements.push({ key, outcome });
    this.window.release(msg.events.length);
  }

  /** Settles every held message with `outcome`. */
  releaseHeld(outcome: Outcome = DELIVERED_OUTCOME): void {
    const held = this.held.splice(0);
    for (const m of held) this.settle(m, outcome);
  }

  /** Waits until at least `count` offers were accepted. */
  async waitForOffers(count: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.offers.length >= count, timeoutMs, () => `expected ${count} offers, got ${this.offers.length}`);
  }

  /** Waits until at least `count` messages were settled. */
  async waitForSettled(count: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(() => this.settlements.length >= count, timeoutMs, () => `expected ${count} settlements, got ${this.settlements.length}`);
  }
}
