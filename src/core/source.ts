import type { CloudEvent } from "../cloudevents/event.js";
import type { TraceContext } from "../cloudevents/trace-context.js";
import type { BridgeError } from "./errors.js";
import type { Outcome } from "./outcome.js";

/**
 * One native message as a source hands it to its route.
 *
 * The source decodes the native message with its pure mapping function before offering it, so the
 * engine only ever sees CloudEvents. The engine calls `settle` exactly once, after every sink on the
 * route confirmed every event (or failed for good, or the retry budget ran out); the source then
 * applies its native verb (ack, nak, term, PUBACK, HTTP status).
 */
export interface Received {
  /** The decoded events: one for most messages, several for an HTTP batch. Never empty. */
  readonly events: readonly CloudEvent[];
  /**
   * Set when the native message could not become a CloudEvent. `events` then holds one
   * `dev.cebridge.invalid` event (see `cloudevents/invalid.ts`) carrying the raw bytes and native
   * metadata; the engine dead-letters it with this error and settles without delivering it.
   */
  readonly invalid?: BridgeError;
  /** How many times the source has delivered this message, 1 on first delivery, where it knows. */
  readonly deliveryCount?: number;
  /**
   * The trace context the native message carried in its transport's own trace field (W3C
   * `traceparent` header, MQTT 5 user property, X-Ray header, ...; see `cloudevents/trace-fields.ts`),
   * when present and valid. The engine adds the distributed-tracing extension from it to events
   * that lack one and parents the delivery on it. Leave unset when the transport has none.
   */
  readonly trace?: TraceContext;
  /** Applies the outcome natively. Called exactly once; must not throw (log failures instead). */
  settle(outcome: Outcome): void;
}

/**
 * What a source's pure mapping function returns for one native message: the event, and `invalid`
 * when the message could not become a CloudEvent (`event` is then the `dev.cebridge.invalid` event).
 * Spread it into a `Received`.
 */
export interface Decoded {
  readonly event: CloudEvent;
  readonly invalid?: BridgeError;
  /** The transport's trace context, for `Received.trace`. */
  readonly trace?: TraceContext;
}

/**
 * The route's side of a source: a bounded window of in-flight events.
 *
 * Pausable sources reserve room before they fetch (`reserve`) and offer what they fetched into the
 * reservation, so several pullers or connections never hold more messages than the window has slots.
 * Sources that cannot pause (core NATS, MQTT QoS 0) or can answer the sender (HTTP: 429) call `offer`
 * and handle a refusal themselves.
 */
export interface Inbox {
  /** The route's window size (`max_in_flight`), counted in events. */
  readonly capacity: number;
  /** Slots neither in use nor reserved right now. */
  readonly free: number;
  /** False once the route is shutting down: sources should refuse new work. */
  readonly accepting: boolean;
  /**
   * True when the route's buffer says `when_full: block`. A source that cannot redeliver but can
   * stall its input without losing it (stop reading its connection) then waits for room with
   * `reserve` instead of dropping what a full `offer` refuses. Absent means false.
   */
  readonly blocking?: boolean;
  /**
   * Hands a message to the route, taking one slot per event. Returns false, without taking the
   * message, when the window lacks room for all its events (or someone is waiting for room) or the
   * route stopped accepting. Never blocks.
   */
  offer(msg: Received): boolean;
  /**
   * Waits until at least `min` slots are free, then holds `min(free, max)` of them for the caller.
   * Waiters are served in arrival order and each gets the slots it waited for. Rejects with the
   * signal's reason when it aborts, and with a RangeError when `min` exceeds the capacity.
   * Always `release()` the reservation once done offering (in a `finally`).
   */
  reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation>;
}

/** Slots held for one source caller; see `Inbox.reserve`. */
export interface Reservation {
  /** Slots still held. */
  readonly slots: number;
  /**
   * Hands a message to the route using `msg.events.length` of the held slots. Returns false, without
   * taking the message, only when the route stopped accepting; the caller must then release the
   * message natively (nak, visibility 0, release) or leave it to the broker. Throws a RangeError when
   * the message has more events than the reservation holds.
   */
  offer(msg: Received): boolean;
  /** Gives back the slots not offered into. Idempotent. */
  release(): void;
}

/**
 * A source connector instance. Its constructor does no I/O.
 * Lifecycle: `start` once → (`stop` → `close`) once. `close` may be called without `stop`.
 */
export interface Source {
  /**
   * Connects and starts handing messages to `inbox`. Resolves once subscribed or bound; from then on
   * the source reconnects on its own and reports its state through `ConnectorContext.setUp`.
   * Rejects only on a configuration problem that retrying cannot fix (for example, address in use).
   */
  start(inbox: Inbox): Promise<void>;
  /** Stops taking new messages. Messages already offered still settle. Idempotent. */
  stop(): Promise<void>;
  /**
   * Releases every resource. Idempotent.
   *
   * The settle contract: `Received.settle` may start asynchronous native work (a delete, an
   * acknowledge call). The source tracks that work, and `close` waits for it until `deadline` aborts
   * (the engine passes what remains of `shutdown_timeout`), so a clean shutdown leaves no message
   * delivered but not acknowledged. Messages never settled are left for the broker to redeliver.
   */
  close(deadline?: AbortSignal): Promise<void>;
}
