/**
 * Delivers one subscription's events to its sink: a window of `max_in_flight` deliveries, each with
 * a deadline per attempt and retries with backoff for transient failures (the engine's
 * `writeWithRetry`), then a dead letter for what failed for good.
 *
 * It is the queue's target (an `Inbox` with the shutdown steps), so the queue in front of it may be
 * the small memory queue or one of the buffer layer's buffers. Each message is settled once:
 * - `delivered` when the sink confirmed, the event was dead-lettered or given up (a subscriber has
 *   no source to hand it back to: redelivering forever would only hold a slot);
 * - `errored` (`shutdown`) when the daemon stops or the subscription is replaced mid-delivery, so a
 *   disk queue keeps the event for the next run.
 * While the sink is not ready (connecting, handshake pending, suspended) nothing is taken: events
 * wait in the queue.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import { BridgeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { DELIVERED, type Outcome } from "../core/outcome.js";
import type { Sink } from "../core/sink.js";
import type { Received, Reservation } from "../core/source.js";
import type { RetryPolicy } from "../engine/backoff.js";
import { deadLetterEvent } from "../engine/dead-letter.js";
import { Deadlines } from "../engine/deadlines.js";
import { writeWithRetry, type WriteOptions } from "../engine/deliver.js";
import { Window } from "../engine/window.js";
import type { QueueTarget } from "./queue.js";

/** What the deliverer reports, once per event. */
export interface DeliveryReports {
  delivered(): void;
  /** Failed for good (or retries ran out); `deadLettered` says whether a dead letter was written. */
  failed(error: BridgeError, deadLettered: boolean): void;
  retried(): void;
  /** Aborted because the subscription was deleted. */
  unsubscribed(): void;
  /** The target answered 410 Gone: it wants no more events. */
  gone(): void;
}

export interface DelivererSetup {
  readonly subscriptionId: string;
  /** The route that feeds the stream, for the dead letter's `cebridgeroute`. */
  readonly route: string;
  readonly window: number;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number;
  /** The stream's dead-letter sink now (a reload may replace it). */
  readonly deadLetter: () => { readonly id: string; readonly sink: Sink } | undefined;
}

export class Deliverer implements QueueTarget {
  private readonly window: Window;
  private readonly hardStop = new AbortController();
  private readonly deadlines: Deadlines;
  private readonly opts: WriteOptions;
  private sink: Sink | undefined;
  private open_ = true;
  private pending = 0;
  private drained: (() => void)[] = [];
  /** Set while the sink is not ready: reservations wait on it. */
  private gate: { promise: Promise<void>; open: () => void } | undefined = newGate();
  private deleted = false;

  constructor(
    private readonly setup: DelivererSetup,
    private readonly reports: DeliveryReports,
    private readonly log: Logger,
  ) {
    this.window = new Window(setup.window);
    this.deadlines = new Deadlines(setup.timeoutMs);
    this.opts = { retry: setup.retry, deadlines: this.deadlines, timeoutMs: setup.timeoutMs, signal: this.hardStop.signal, onRetry: () => reports.retried() };
  }

  get capacity(): number {
    return this.window.capacity;
  }

  get free(): number {
    return this.gate ? 0 : this.window.free;
  }

  get accepting(): boolean {
    return this.open_;
  }

  /** Deliveries in flight. */
  get inFlight(): number {
    return this.window.inFlight;
  }

  /** Starts (or resumes) delivering to `sink`. */
  resume(sink: Sink): void {
    this.sink = sink;
    const g = this.gate;
    this.gate = undefined;
    g?.open();
  }

  /** Stops taking events (they wait in the queue) until `resume`. In-flight deliveries finish. */
  pause(): void {
    this.gate ??= newGate();
  }

  offer(msg: Received): boolean {
    if (!this.open_ || this.gate || !this.window.tryAcquire(msg.events.length)) return false;
    this.admit(msg);
    return true;
  }

  async reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    while (this.gate) await raceAbort(this.gate.promise, signal);
    const n = await this.window.reserve(min, max, signal);
    const window = this.window;
    let held = n;
    return {
      get slots() {
        return held;
      },
      offer: (msg: Received) => {
        const k = msg.events.length;
        if (k > held) throw new RangeError(`a message of ${k} events does not fit a reservation of ${held} slots`);
        if (!this.open_) return false;
        held -= k;
        window.useHeld(k);
        this.admit(msg);
        return true;
      },
      release: () => {
        if (held === 0) return;
        window.unhold(held);
        held = 0;
      },
    };
  }

  stopAccepting(): void {
    this.open_ = false;
  }

  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  /** Cancels in-flight deliveries: they settle `errored` (shutdown), or count as unsubscribed after `deleted()`. */
  abort(): void {
    this.open_ = false;
    const reason = new BridgeError("CEB_SHUTTING_DOWN", this.deleted ? "the subscription was deleted" : "the subscription's deliveries were stopped", true);
    this.hardStop.abort(reason);
    this.deadlines.abortAll(reason);
    const g = this.gate;
    this.gate = undefined;
    g?.open();
  }

  /** Marks the coming `abort` as a delete: aborted deliveries count as unsubscribed. */
  markDeleted(): void {
    this.deleted = true;
  }

  private admit(msg: Received): void {
    this.pending++;
    void this.process(msg);
  }

  private async process(msg: Received): Promise<void> {
    let outcome: Outcome = DELIVERED;
    try {
      for (const event of msg.events) {
        const o = await this.deliverOne(event);
        if (o.status === "errored") outcome = o;
      }
    } catch (err) {
      this.log.error({ err, subscription: this.setup.subscriptionId }, "unexpected error while delivering (a bug)");
    }
    this.window.release(msg.events.length);
    try {
      msg.settle(outcome);
    } catch (err) {
      this.log.error({ err }, "queue settle threw");
    }
    if (--this.pending === 0) {
      const waiters = this.drained;
      this.drained = [];
      for (const w of waiters) w();
    }
  }

  private async deliverOne(event: CloudEvent): Promise<Outcome> {
    const sink = this.sink;
    if (!sink || this.hardStop.signal.aborted) return this.cutOff();
    const r = await writeWithRetry(sink, event, this.opts);
    if (r.ok) {
      this.reports.delivered();
      return DELIVERED;
    }
    if (this.hardStop.signal.aborted) return this.cutOff();
    if (r.error.code === "CEB_SINK_GONE") this.reports.gone();
    const error = r.final
      ? r.error
      : new BridgeError("CEB_RETRIES_EXHAUSTED", `gave up after ${r.attempts} attempts: ${r.error.message}`, false, { cause: r.error });
    const dl = this.setup.deadLetter();
    if (!dl) {
      this.reports.failed(error, false);
      this.log.warn({ subscription: this.setup.subscriptionId, id: event.attributes["id"], code: error.code }, "delivery failed for good and the stream has no dead_letter sink");
      return DELIVERED;
    }
    const letter = deadLetterEvent(event, error, { route: this.setup.route, sink: `subscription:${this.setup.subscriptionId}`, attempts: r.attempts });
    const w = await writeWithRetry(dl.sink, letter, this.opts);
    this.reports.failed(error, w.ok);
    if (!w.ok) {
      if (this.hardStop.signal.aborted) return this.cutOff();
      this.log.error({ subscription: this.setup.subscriptionId, id: event.attributes["id"], deadLetterError: w.error.message }, "dead-letter write failed; the event is lost");
    }
    return DELIVERED;
  }

  /** A delivery the daemon stopped (kept by a disk queue) or a delete aborted (counted). */
  private cutOff(): Outcome {
    if (this.deleted) {
      this.reports.unsubscribed();
      return DELIVERED;
    }
    return { status: "errored", error: new BridgeError("CEB_SHUTTING_DOWN", "stopped before delivery finished", true), release: "shutdown" };
  }
}

function newGate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

function raceAbort(p: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
