/**
 * What a route needs from a span recorder, so the engine never imports OpenTelemetry: the
 * implementation (`observability/otel.ts`) is loaded only when `engine.tracing.enabled` is set, and
 * a route without a tracer records nothing and forwards transport contexts unchanged.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import type { TraceContext } from "../cloudevents/trace-context.js";
import type { Outcome } from "../core/outcome.js";
import type { WriteResult } from "./deliver.js";

/** Starts one span per event delivered on a route. */
export interface DeliveryTracer {
  /**
   * Begins the span of `event`'s delivery on `route` (received from `sourceId`), as a child of
   * `parent` (see `hopParent`) or as a new trace when there is none. Must not throw.
   */
  begin(route: string, sourceId: string, event: CloudEvent, parent: TraceContext | undefined): DeliverySpan;
  /** Exports what is buffered and stops. Idempotent. */
  shutdown(): Promise<void>;
}

/** The span of one event's delivery; ended exactly once. */
export interface DeliverySpan {
  /**
   * Runs one sink's write (all its attempts) inside a send span that is a child of this span;
   * `write` gets the send span's context, which the sink puts in the transport's native field.
   */
  send(sinkId: string, write: (hop: TraceContext) => Promise<WriteResult>): Promise<WriteResult>;
  /** Records the delivery's outcome (`filtered` when the route's filter dropped the event) and ends the span. */
  end(outcome: Outcome | "filtered"): void;
}
