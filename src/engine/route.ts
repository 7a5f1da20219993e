/**
 * A route: receive → (loop check) → filter → transform → fan-out to every sink → settle.
 *
 * The route is its source's `Inbox`. Each received message takes one window slot per event; the
 * message is settled exactly once, after every sink answered for every event, with the worst
 * outcome (see `core/outcome.ts`). Permanent failures go to the dead-letter sink, one dead letter per
 * failing sink (each names its sink, so a redrive can target just that one); if a dead-letter write
 * fails, the message is released rather than acked, so nothing is silently dropped.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import { hopParent, withTraceExtension, type TraceContext } from "../cloudevents/trace-context.js";
import { BridgeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { DELIVERED, worse, type Outcome } from "../core/outcome.js";
import type { Sink } from "../core/sink.js";
import type { Inbox, Received, Reservation } from "../core/source.js";
import { deadLetterEvent } from "./dead-letter.js";
import type { Deduper } from "./dedupe.js";
import { Deadlines } from "./deadlines.js";
import { attemptError, retryAfter, writeWithRetry, type WriteOptions, type WriteResult } from "./deliver.js";
import { loopVerdict, withLoopMarkers } from "./loop.js";
import type { KeyedSequencer } from "./ordering.js";
import { judge } from "./results.js";
import type { RouteStats } from "./route-stats.js";
import type { DeliverySpan, DeliveryTracer } from "./tracer.js";
import type { Transform } from "./transform.js";
import { Window } from "./window.js";

/** Everything a route needs, resolved by the engine from the frozen config. */
export interface RouteSetup {
  readonly name: string;
  readonly sourceId: string;
  readonly sinks: readonly { readonly id: string; readonly sink: Sink }[];
  readonly deadLetter?: { readonly id: string; readonly sink: Sink };
  readonly filter?: (event: CloudEvent) => boolean;
  readonly transform?: Transform;
  readonly window: number;
  readonly retry: WriteOptions["retry"];
  readonly timeoutMs: number;
  readonly maxDeliveries?: number;
  readonly loopPrevention: boolean;
  readonly maxHops: number;
  readonly instanceId: string;
  /** Drops redeliveries of an event already delivered (route `dedupe`). */
  readonly dedupe?: Deduper;
  /** Keeps events of one `partitionkey` in order (route `ordering: partitionkey`). */
  readonly ordering?: KeyedSequencer;
  /** Records a span per delivery (`engine.tracing.enabled`); absent: no spans. */
  readonly tracer?: DeliveryTracer;
}

/**
 * Trace state of one event's delivery, present only when the message arrived with a transport
 * trace context or spans are recorded; untraced deliveries carry `undefined` and skip all of it.
 */
interface Hop {
  /** The transport context the message arrived with. */
  readonly transport: TraceContext | undefined;
  span?: DeliverySpan;
  filtered?: boolean;
}

export class Route implements Inbox {
  private readonly window: Window;
  private readonly hardStop = new AbortController();
  private readonly deadlines: Deadlines;
  private pending = 0;
  private drained: (() => void) | undefined;
  private open = true;
  /** Write options per sink (same order as `setup.sinks`), built once. */
  private readonly sinkWrites: readonly WriteOptions[];
  private readonly deadLetterWrite: WriteOptions;
  /** One sink and none of tracing, dedupe or ordering: single events take `deliverFast`. */
  private readonly fast: boolean;

  constructor(
    private readonly setup: RouteSetup,
    private readonly stats: RouteStats,
    /** Bound to the route's name by the engine, so no line here repeats it. */
    private readonly log: Logger,
  ) {
    this.window = new Window(setup.window);
    this.deadlines = new Deadlines(setup.timeoutMs);
    const base = { retry: setup.retry, deadlines: this.deadlines, timeoutMs: setup.timeoutMs, signal: this.hardStop.signal };
    this.sinkWrites = setup.sinks.map((_, i) => ({ ...base, onRetry: () => stats.retried(i) }));
    this.deadLetterWrite = base;
    this.fast = setup.sinks.length === 1 && !setup.tracer && !setup.dedupe && !setup.ordering;
  }

  get capacity(): number {
    return this.window.capacity;
  }

  get free(): number {
    return this.window.free;
  }

  get accepting(): boolean {
    return this.open;
  }

  offer(msg: Received): boolean {
    const n = msg.events.length;
    if (!this.open || !this.window.tryAcquire(n)) return false;
    this.admit(msg, n);
    return true;
  }

  async reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    const granted = await this.window.reserve(min, max, signal);
    return new RouteReservation(this, this.window, granted);
  }

  /** Starts routing a message whose `n` slots are already taken. */
  admit(msg: Received, n: number): void {
    this.pending++;
    this.stats.inFlight(this.window.inFlight);
    this.stats.received(n);
    const started = performance.now();
    if (this.fast && n === 1 && msg.invalid === undefined && msg.trace === undefined) this.deliverFast(msg, started);
    else void this.process(msg, n, started);
  }

  /** Stops taking new messages (shutdown phase 1). */
  stopAccepting(): void {
    this.open = false;
  }

  /** Resolves once every offered message has settled. */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const previous = this.drained;
      this.drained = () => {
        previous?.();
        resolve();
      };
    });
  }

  /** Cancels in-flight writes and retries; their messages settle `errored` and are redelivered. */
  abort(): void {
    const reason = new BridgeError("CEB_SHUTTING_DOWN", "the daemon is stopping", true);
    this.hardStop.abort(reason);
    this.deadlines.abortAll(reason);
  }

  private async process(msg: Received, n: number, started: number): Promise<void> {
    let outcome: Outcome;
    try {
      outcome = msg.invalid
        ? await this.deadLetterAll(msg.events, msg.invalid, msg.deliveryCount ?? 1)
        : await this.deliverAll(msg);
    } catch (err) {
      // A bug, not an event problem: release the message so it is not lost.
      this.log.error({ err }, "unexpected error while routing");
      outcome = internalError(err);
    }
    this.finish(msg, n, started, outcome);
  }

  /** Frees the message's slots, records its outcome and settles it with its source. */
  private finish(msg: Received, n: number, started: number, outcome: Outcome): void {
    this.window.release(n);
    this.stats.inFlight(this.window.inFlight);
    this.stats.settled(outcome, (performance.now() - started) / 1000);
    try {
      msg.settle(outcome);
    } catch (err) {
      this.log.error({ err }, "source settle threw");
    }
    if (--this.pending === 0 && this.drained) {
      const done = this.drained;
      this.drained = undefined;
      done();
    }
  }

  /**
   * The common case without a chain of promises (measured: the chain was a tenth of the MQTT → NATS
   * daemon's CPU): one event, one sink, no tracing, dedupe or ordering. The same steps as
   * `deliverOne` → `deliverEvent` → `writeWithRetry`, with the first write made here; anything but a
   * first-try success goes on with the general path's own functions. Never settles the message
   * before `offer` returned.
   */
  private deliverFast(msg: Received, started: number): void {
    const s = this.setup;
    const event = msg.events[0]!;
    const done = (outcome: Outcome) => this.finish(msg, 1, started, outcome);
    try {
      const out = this.loopCut(event) ? undefined : this.outgoing(event);
      if (out === undefined) return queueMicrotask(() => done(DELIVERED));
      if (out instanceof TransformFailed) return this.settleLater(msg, started, this.deadLetter(event, out.error, undefined, 1));
      const sink = s.sinks[0]!.sink;
      const opts = this.sinkWrites[0]!;
      const wrote = Date.now();
      const slot = this.deadlines.start();
      let written: Promise<void>;
      try {
        written = sink.write(out, slot.controller.signal);
      } catch (err) {
        written = Promise.reject(err);
      }
      written.then(
        () => {
          this.stats.delivered(0);
          done(DELIVERED);
        },
        (err: unknown) => {
          const rest = retryAfter(sink, out, opts, undefined, attemptError(err, slot, opts), wrote);
          this.settleLater(msg, started, rest.then((r) => this.judgeResults(event, [r], msg.deliveryCount)));
        },
      );
    } catch (err) {
      this.settleLater(msg, started, Promise.reject(err));
    }
  }

  /** Settles a fast-path message once `outcome` resolves; a rejection is a bug, handled as in `process`. */
  private settleLater(msg: Received, started: number, outcome: Promise<Outcome>): void {
    outcome.then(
      (o) => this.finish(msg, 1, started, o),
      (err: unknown) => {
        this.log.error({ err }, "unexpected error while routing");
        this.finish(msg, 1, started, internalError(err));
      },
    );
  }

  private async deliverAll(msg: Received): Promise<Outcome> {
    // The one tracing test on the hot path: a message without a transport trace context on a
    // route without a tracer takes the untraced path below.
    if (msg.trace !== undefined || this.setup.tracer !== undefined) return this.deliverAllTraced(msg);
    if (msg.events.length === 1) return this.deliverOne(msg.events[0]!, msg.deliveryCount);
    const outcomes = await Promise.all(msg.events.map((e) => this.deliverOne(e, msg.deliveryCount)));
    return outcomes.reduce(worse, DELIVERED);
  }

  /**
   * Each event gets the distributed-tracing extension from the transport context when it has none
   * (so filters, sinks and dead letters see it), and its own `Hop`.
   */
  private async deliverAllTraced(msg: Received): Promise<Outcome> {
    const transport = msg.trace;
    const one = (e: CloudEvent) => this.deliverOne(withTraceExtension(e, transport), msg.deliveryCount, { transport });
    if (msg.events.length === 1) return one(msg.events[0]!);
    const outcomes = await Promise.all(msg.events.map(one));
    return outcomes.reduce(worse, DELIVERED);
  }

  /** Loop check, then deduplication and ordering around the actual delivery. */
  private async deliverOne(event: CloudEvent, deliveryCount: number | undefined, hop?: Hop): Promise<Outcome> {
    const s = this.setup;
    if (this.loopCut(event)) return DELIVERED;
    const deliver = hop === undefined ? () => this.deliverEvent(event, deliveryCount) : () => this.deliverSpanned(event, deliveryCount, hop);
    const ordered = s.ordering ? () => s.ordering!.run(event, deliver) : deliver;
    if (!s.dedupe) return ordered();
    const { outcome, duplicate } = await s.dedupe.run(event, ordered);
    if (duplicate) this.stats.dropped("dedupe");
    return outcome;
  }

  /** `deliverEvent` inside the delivery's span, when spans are recorded. */
  private async deliverSpanned(event: CloudEvent, deliveryCount: number | undefined, hop: Hop): Promise<Outcome> {
    const s = this.setup;
    if (s.tracer === undefined) return this.deliverEvent(event, deliveryCount, hop);
    const span = (hop.span = s.tracer.begin(s.name, s.sourceId, event, hopParent(hop.transport, event)));
    let outcome: Outcome | undefined;
    try {
      outcome = await this.deliverEvent(event, deliveryCount, hop);
      return outcome;
    } finally {
      span.end(hop.filtered ? "filtered" : (outcome ?? { status: "errored", error: new BridgeError("CEB_INTERNAL", "delivery threw", true), release: "retries_spent" }));
    }
  }

  /** One sink's write: inside a send span when spans are recorded, else forwarding the transport context. */
  private write(i: number, out: CloudEvent, hop: Hop | undefined): Promise<WriteResult> {
    const { id, sink } = this.setup.sinks[i]!;
    const opts = this.sinkWrites[i]!;
    if (hop === undefined) return writeWithRetry(sink, out, opts);
    if (hop.span === undefined) return writeWithRetry(sink, out, opts, hop.transport);
    return hop.span.send(id, (ctx) => writeWithRetry(sink, out, opts, ctx));
  }

  /** True (counted and logged) when loop prevention drops `event`. */
  private loopCut(event: CloudEvent): boolean {
    const s = this.setup;
    if (!s.loopPrevention) return false;
    const verdict = loopVerdict(event, s.instanceId, s.maxHops);
    if (!verdict) return false;
    this.stats.dropped("loop");
    this.log.debug({ id: event.attributes["id"], verdict }, "loop cut");
    return true;
  }

  /**
   * What the sinks get for `event`: filtered (`undefined`, counted), the transform's failure, or the
   * transformed event with the loop markers.
   */
  private outgoing(event: CloudEvent): CloudEvent | TransformFailed | undefined {
    const s = this.setup;
    if (s.filter && !s.filter(event)) {
      this.stats.filtered();
      return undefined;
    }
    let out = event;
    if (s.transform) {
      try {
        out = s.transform(event);
      } catch (err) {
        return new TransformFailed(err as BridgeError);
      }
    }
    return s.loopPrevention ? withLoopMarkers(out, s.instanceId) : out;
  }

  /** Filter, transform, fan out to every sink, and fold the results. */
  private async deliverEvent(event: CloudEvent, deliveryCount: number | undefined, hop?: Hop): Promise<Outcome> {
    const s = this.setup;
    const out = this.outgoing(event);
    if (out === undefined) {
      if (hop !== undefined) hop.filtered = true;
      return DELIVERED;
    }
    if (out instanceof TransformFailed) return this.deadLetter(event, out.error, undefined, 1);

    const results = s.sinks.length === 1 ? [await this.write(0, out, hop)] : await Promise.all(s.sinks.map((_, i) => this.write(i, out, hop)));
    return this.judgeResults(event, results, deliveryCount);
  }

  /** Folds the sinks' results (in `setup.sinks` order) into the event's outcome, dead-lettering what failed for good. */
  private async judgeResults(event: CloudEvent, results: readonly WriteResult[], deliveryCount: number | undefined): Promise<Outcome> {
    const s = this.setup;
    let outcome: Outcome = DELIVERED;
    const shutdown = this.hardStop.signal.aborted ? (this.hardStop.signal.reason as BridgeError) : undefined;
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.ok) {
        this.stats.delivered(i);
        continue;
      }
      const sinkId = s.sinks[i]!.id;
      const verdict = judge(r, { sinkId, shutdown, deliveryCount, maxDeliveries: s.maxDeliveries });
      if (verdict.kind === "dead_letter") {
        this.stats.failed(sinkId, r.error.code);
        outcome = worse(outcome, await this.deadLetter(event, verdict.error, sinkId, verdict.attempts));
        continue;
      }
      if (verdict.counted) {
        this.stats.failed(sinkId, r.error.code);
        this.log.warn({ sink: sinkId, id: event.attributes["id"], code: r.error.code, reason: r.error.message, attempts: r.attempts }, "releasing event for redelivery");
      }
      outcome = worse(outcome, verdict.outcome);
    }
    return outcome;
  }

  private async deadLetterAll(events: readonly CloudEvent[], error: BridgeError, attempts: number): Promise<Outcome> {
    let outcome: Outcome = DELIVERED;
    for (const e of events) outcome = worse(outcome, await this.deadLetter(e, error, undefined, attempts));
    return outcome;
  }

  /** Writes `event` to the dead-letter sink. Acked when that succeeds, released when it fails. */
  private async deadLetter(event: CloudEvent, error: BridgeError, sinkId: string | undefined, attempts: number): Promise<Outcome> {
    const s = this.setup;
    const fields = { sink: sinkId, id: event.attributes["id"], source: event.attributes["source"], code: error.code, reason: error.message };
    if (!s.deadLetter) {
      this.log.warn(fields, "event failed permanently and the route has no dead_letter sink");
      return { status: "rejected", error };
    }
    const dl = deadLetterEvent(event, error, { route: s.name, ...(sinkId !== undefined ? { sink: sinkId } : {}), attempts });
    const r = await writeWithRetry(s.deadLetter.sink, dl, this.deadLetterWrite);
    if (r.ok) {
      this.stats.deadLettered(error.code);
      this.log.warn(fields, "event dead-lettered");
      return { status: "dead_lettered", error };
    }
    this.log.error({ ...fields, deadLetterError: r.error.message }, "dead-letter write failed; releasing the message");
    const failure = new BridgeError("CEB_DEAD_LETTER", `dead-letter sink "${s.deadLetter.id}": ${r.error.message}`, true, { cause: r.error });
    return { status: "errored", error: failure, release: this.hardStop.signal.aborted ? "shutdown" : "retries_spent" };
  }
}

/** A transform threw: the event goes to the dead-letter sink with this error. */
class TransformFailed {
  constructor(readonly error: BridgeError) {}
}

function internalError(err: unknown): Outcome {
  return { status: "errored", error: new BridgeError("CEB_INTERNAL", String(err), true, { cause: err }), release: "retries_spent" };
}

/** Slots held for one source caller; offers made through it cannot be refused for lack of room. */
class RouteReservation implements Reservation {
  constructor(
    private readonly route: Route,
    private readonly window: Window,
    private held: number,
  ) {}

  get slots(): number {
    return this.held;
  }

  offer(msg: Received): boolean {
    const n = msg.events.length;
    if (n > this.held) throw new RangeError(`a message of ${n} events does not fit a reservation of ${this.held} slots`);
    if (!this.route.accepting) return false;
    this.held -= n;
    this.window.useHeld(n);
    this.route.admit(msg, n);
    return true;
  }

  release(): void {
    if (this.held === 0) return;
    const n = this.held;
    this.held = 0;
    this.window.unhold(n);
  }
}
