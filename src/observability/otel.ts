/**
 * OpenTelemetry spans per delivery, when `engine.tracing.enabled` is set. The SDK and exporter are
 * imported here, lazily, only then; with tracing off nothing of OpenTelemetry is loaded.
 *
 * The SDK is configured by the standard variables: `OTEL_SDK_DISABLED`, `OTEL_SERVICE_NAME`,
 * `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, `OTEL_TRACES_EXPORTER`
 * (`otlp` default, `console`, `none`), `OTEL_EXPORTER_OTLP(_TRACES)_PROTOCOL` (`http/protobuf`
 * default, `http/json`; `grpc` is not bundled and refused with that reason) and
 * `OTEL_EXPORTER_OTLP(_TRACES)_ENDPOINT` / `_HEADERS` / `_TIMEOUT` / `_COMPRESSION`, read by the
 * exporter itself.
 *
 * Spans (OpenTelemetry messaging and CloudEvents conventions): one `CONSUMER` span
 * `<route> process` per event, child of the hop's parent context (`hopParent`), ending with the
 * outcome; under it one `PRODUCER` span `<sink> send` per sink write (all its attempts), whose
 * context is what the sink writes in the transport's trace field. The provider is not registered
 * globally: contexts are passed explicitly, so no async-context hook is installed.
 */
import {
  createTraceState,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Span,
  type SpanContext,
  type Tracer,
} from "@opentelemetry/api";
import type { CloudEvent } from "../cloudevents/event.js";
import { ownHop, parseTraceparent, type TraceContext } from "../cloudevents/trace-context.js";
import { BridgeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Outcome } from "../core/outcome.js";
import type { WriteResult } from "../engine/deliver.js";
import type { DeliverySpan, DeliveryTracer } from "../engine/tracer.js";

export interface OtelOptions {
  readonly log: Logger;
  readonly instanceId: string;
  readonly version: string;
  /** Defaults to `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/**
 * Starts the SDK and returns the tracer, or `undefined` when `OTEL_SDK_DISABLED=true` or
 * `OTEL_TRACES_EXPORTER=none`. Throws a `CEB_CONFIG` error for an exporter or protocol it cannot provide.
 */
export async function startOpenTelemetry(opts: OtelOptions): Promise<DeliveryTracer | undefined> {
  const env = opts.env ?? process.env;
  if ((env["OTEL_SDK_DISABLED"] ?? "").trim().toLowerCase() === "true") {
    opts.log.info({}, "tracing: OTEL_SDK_DISABLED is true; no spans are recorded");
    return undefined;
  }
  const exporterName = (env["OTEL_TRACES_EXPORTER"] ?? "otlp").split(",")[0]!.trim().toLowerCase() || "otlp";
  if (exporterName === "none") {
    opts.log.info({}, "tracing: OTEL_TRACES_EXPORTER is none; no spans are recorded");
    return undefined;
  }
  const sdk = await import("@opentelemetry/sdk-trace-node");
  const { detectResources, envDetector, resourceFromAttributes } = await import("@opentelemetry/resources");

  let exporter;
  let protocol: string | undefined;
  if (exporterName === "console") exporter = new sdk.ConsoleSpanExporter();
  else if (exporterName === "otlp") {
    protocol = (env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] ?? env["OTEL_EXPORTER_OTLP_PROTOCOL"] ?? "http/protobuf").trim();
    if (protocol === "http/protobuf") exporter = new (await import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter();
    else if (protocol === "http/json") exporter = new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter();
    else throw new BridgeError("CEB_CONFIG", `tracing: OTLP protocol "${protocol}" is not supported; use http/protobuf or http/json`, false);
  } else throw new BridgeError("CEB_CONFIG", `tracing: OTEL_TRACES_EXPORTER "${exporterName}" is not supported; use otlp, console or none`, false);

  // Our defaults first; OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME (the env detector) win.
  const resource = resourceFromAttributes({
    "service.name": "cebridge",
    "service.version": opts.version,
    "service.instance.id": opts.instanceId,
  }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new sdk.NodeTracerProvider({ resource, spanProcessors: [new sdk.BatchSpanProcessor(exporter)] });
  opts.log.info({ exporter: exporterName, ...(protocol ? { protocol } : {}) }, "tracing: OpenTelemetry spans on");
  return otelDeliveryTracer(provider.getTracer("cebridge", opts.version), () => provider.shutdown());
}

/** A `DeliveryTracer` recording through `tracer`; `stop` flushes and shuts its provider down. */
export function otelDeliveryTracer(tracer: Tracer, stop: () => Promise<void>): DeliveryTracer {
  return new OtelTracer(tracer, stop);
}

/** The span context a W3C trace context names, as a remote parent. */
function remoteParent(ctx: TraceContext | undefined) {
  const p = parseTraceparent(ctx?.traceparent);
  if (p === undefined) return ROOT_CONTEXT;
  const sc: SpanContext = {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.flags & 0xff,
    isRemote: true,
    ...(ctx!.tracestate !== undefined ? { traceState: createTraceState(ctx!.tracestate) } : {}),
  };
  return trace.setSpanContext(ROOT_CONTEXT, sc);
}


function str(v: unknown): string | undefined {
  return typeof v === "string" ? v : v === undefined ? undefined : String(v);
}

class OtelTracer implements DeliveryTracer {
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly tracer: Tracer,
    private readonly stop: () => Promise<void>,
  ) {}

  begin(route: string, sourceId: string, event: CloudEvent, parent: TraceContext | undefined): DeliverySpan {
    const a = event.attributes;
    const attributes: Record<string, string> = {
      "messaging.operation.type": "process",
      "messaging.destination.name": sourceId,
      "cebridge.route": route,
      "cebridge.source": sourceId,
    };
    const id = str(a["id"]);
    if (id !== undefined) {
      attributes["messaging.message.id"] = id;
      attributes["cloudevents.event_id"] = id;
    }
    for (const [attr, key] of [["source", "cloudevents.event_source"], ["type", "cloudevents.event_type"], ["subject", "cloudevents.event_subject"], ["specversion", "cloudevents.event_spec_version"]] as const) {
      const v = str(a[attr]);
      if (v !== undefined) attributes[key] = v;
    }
    const span = this.tracer.startSpan(`${route} process`, { kind: SpanKind.CONSUMER, attributes }, remoteParent(parent));
    return new OtelDeliverySpan(this.tracer, span, parent);
  }

  shutdown(): Promise<void> {
    this.stopped ??= this.stop();
    return this.stopped;
  }
}

class OtelDeliverySpan implements DeliverySpan {
  private ended = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly parent: TraceContext | undefined,
  ) {}

  async send(sinkId: string, write: (hop: TraceContext) => Promise<WriteResult>): Promise<WriteResult> {
    const child = this.tracer.startSpan(
      `${sinkId} send`,
      { kind: SpanKind.PRODUCER, attributes: { "messaging.operation.type": "send", "messaging.destination.name": sinkId, "cebridge.sink": sinkId } },
      trace.setSpan(ROOT_CONTEXT, this.span),
    );
    try {
      // The bridge's own hop: the send span's ids and sampling flag, the parent's tracestate.
      const r = await write(ownHop(this.parent, child.spanContext()));
      child.setAttribute("cebridge.attempts", r.attempts);
      if (!r.ok) {
        child.setAttribute("error.type", r.error.code);
        child.setStatus({ code: SpanStatusCode.ERROR, message: r.error.message.slice(0, 200) });
      }
      return r;
    } catch (err) {
      child.setStatus({ code: SpanStatusCode.ERROR, message: String(err).slice(0, 200) });
      throw err;
    } finally {
      child.end();
    }
  }

  end(outcome: Outcome | "filtered"): void {
    if (this.ended) return;
    this.ended = true;
    const status = outcome === "filtered" ? "filtered" : outcome.status;
    this.span.setAttribute("cebridge.outcome", status);
    if (outcome !== "filtered" && outcome.status !== "delivered") {
      const err = (outcome as { error?: { code: string; message: string } }).error;
      if (err) this.span.setAttribute("error.type", err.code);
      if (outcome.status !== "dead_lettered") this.span.setStatus({ code: SpanStatusCode.ERROR, ...(err ? { message: err.message.slice(0, 200) } : {}) });
    }
    this.span.end();
  }
}
