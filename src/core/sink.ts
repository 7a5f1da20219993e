import type { CloudEvent } from "../cloudevents/event.js";
import type { TraceContext } from "../cloudevents/trace-context.js";

/**
 * `confirmed`: `write` resolves only after the remote durably accepted the event.
 * `best-effort`: the transport cannot confirm (core NATS, MQTT QoS 0); `lint` warns.
 */
export type SinkGuarantee = "confirmed" | "best-effort";

/**
 * A sink connector instance. Its constructor does no I/O.
 * Lifecycle: `open` once → any number of concurrent `write`s → `close` once.
 */
export interface Sink {
  readonly guarantee: SinkGuarantee;
  /** Connects. Resolves when writes can start; afterwards the sink reconnects on its own. */
  open(): Promise<void>;
  /**
   * Writes one event. Resolves only when the remote accepted it (see `guarantee`). Throws a
   * `SinkError` whose `retryable` flag splits transient from permanent failures, or a
   * `TemplateError` when a subject/topic template cannot be filled. Must stop promptly and reject
   * when `signal` aborts (the engine's per-write deadline and shutdown). Called concurrently, up to
   * the route's window; sinks that batch group concurrent writes and settle each one separately.
   *
   * `trace` is the context of the bridge's own hop for this write (DESIGN §7): write it into the
   * transport's native trace field with `cloudevents/trace-fields.ts`, beside the event's own
   * encoding (which carries the distributed-tracing extension unchanged). `undefined`: write none.
   */
  write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void>;
  /** Flushes what it can and releases every resource. Idempotent. */
  close(): Promise<void>;
}
