/**
 * Trace contexts through a route: the extension added once and never replaced, the transport
 * context forwarded when tracing is off, and with OpenTelemetry on (the real SDK, in-memory
 * exporter) a process span per event and a send span per sink whose context the sink writes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-node";
import { SpanKind } from "@opentelemetry/api";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { parseTraceparent, type TraceContext } from "../../../src/cloudevents/trace-context.js";
import { SinkError } from "../../../src/core/errors.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import type { Sink } from "../../../src/core/sink.js";
import type { Received } from "../../../src/core/source.js";
import { compileFilter } from "../../../src/filter/index.js";
import { Route, type RouteSetup } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { otelDeliveryTracer, startOpenTelemetry } from "../../../src/observability/otel.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT: TraceContext = { traceparent: `00-${TRACE}-00f067aa0ba902b7-01`, tracestate: "congo=t61rcWkgMzE" };
const UPSTREAM: TraceContext = { traceparent: `00-${TRACE}-aaaaaaaaaaaaaaaa-01` };

type Write = { event: CloudEvent; trace: TraceContext | undefined };

function recording(fail: (attempt: number) => "ok" | "transient" | "permanent" = () => "ok"): Sink & { writes: Write[] } {
  const writes: Write[] = [];
  let n = 0;
  return {
    guarantee: "confirmed",
    writes,
    async open() {},
    async close() {},
    async write(event, _signal, trace) {
      writes.push({ event, trace });
      const a = fail(++n);
      if (a === "transient") throw new SinkError("later", true);
      if (a === "permanent") throw new SinkError("never", false);
    },
  };
}

function ev(id: string, extra: Record<string, string> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "/s", type: "t.a", ...extra }, data: { kind: "json", value: { id } } };
}

function route(partial: Partial<RouteSetup> & Pick<RouteSetup, "sinks">): Route {
  const setup: RouteSetup = { name: "r", sourceId: "src", window: 10, retry: { initial: 1, max: 2, max_elapsed: 30_000 }, timeoutMs: 1000, loopPrevention: true, maxHops: 8, instanceId: "me", ...partial };
  const stats = new RouteStats(new Metrics(), { name: "r", sourceId: "src", sinkIds: setup.sinks.map((s) => s.id), capacity: setup.window });
  return new Route(setup, stats, silentLogger);
}

function offer(r: Route, msg: Omit<Received, "settle">): Promise<Outcome> {
  return new Promise((resolve) => assert.equal(r.offer({ ...msg, settle: resolve }), true));
}

function otel() {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  return { exporter, tracer: otelDeliveryTracer(provider.getTracer("test"), () => provider.shutdown()) };
}

describe("tracing off", () => {
  test("an untraced message reaches the sink as it was, with no hop context", async () => {
    const sink = recording();
    assert.equal((await offer(route({ sinks: [{ id: "k", sink }] }), { events: [ev("1")] })).status, "delivered");
    assert.equal(sink.writes[0]!.trace, undefined);
    assert.equal(sink.writes[0]!.event.attributes["traceparent"], undefined);
  });

  test("the transport context becomes the extension when missing and is forwarded unchanged", async () => {
    const a = recording();
    const b = recording();
    const r = route({ sinks: [{ id: "a", sink: a }, { id: "b", sink: b }] });
    await offer(r, { events: [ev("1")], trace: CLIENT });
    for (const s of [a, b]) {
      assert.deepEqual(s.writes[0]!.trace, CLIENT);
      assert.equal(s.writes[0]!.event.attributes["traceparent"], CLIENT.traceparent);
      assert.equal(s.writes[0]!.event.attributes["tracestate"], CLIENT.tracestate);
    }
  });

  test("an event's own extension passes unchanged; the hop context is still the transport's", async () => {
    const sink = recording();
    const own = `00-${"1".repeat(32)}-${"2".repeat(16)}-00`;
    await offer(route({ sinks: [{ id: "k", sink }] }), { events: [ev("1", { traceparent: own }), ev("2")], trace: UPSTREAM });
    const byId = new Map(sink.writes.map((w) => [w.event.attributes["id"], w]));
    assert.equal(byId.get("1")!.event.attributes["traceparent"], own);
    assert.equal(byId.get("1")!.event.attributes["tracestate"], undefined);
    assert.equal(byId.get("2")!.event.attributes["traceparent"], UPSTREAM.traceparent);
    for (const w of sink.writes) assert.deepEqual(w.trace, UPSTREAM);
  });

  test("a dead letter keeps the added extension", async () => {
    const dlq = recording();
    const r = route({ sinks: [{ id: "k", sink: recording(() => "permanent") }], deadLetter: { id: "dlq", sink: dlq } });
    assert.equal((await offer(r, { events: [ev("1")], trace: CLIENT })).status, "dead_lettered");
    assert.equal(dlq.writes[0]!.event.attributes["traceparent"], CLIENT.traceparent);
  });
});

describe("tracing on (OpenTelemetry SDK, in-memory exporter)", () => {
  test("a process span under the transport context, a send span per sink; sinks write the send span's context", async () => {
    const { exporter, tracer } = otel();
    const a = recording();
    const b = recording((n) => (n < 3 ? "transient" : "ok"));
    const r = route({ sinks: [{ id: "a", sink: a }, { id: "b", sink: b }], tracer });
    assert.equal((await offer(r, { events: [ev("e1")], trace: UPSTREAM })).status, "delivered");
    const spans = exporter.getFinishedSpans();
    const process = spans.find((s) => s.name === "r process")!;
    assert.ok(process, spans.map((s) => s.name).join(","));
    assert.equal(process.kind, SpanKind.CONSUMER);
    assert.equal(process.spanContext().traceId, TRACE);
    assert.equal(process.parentSpanContext?.spanId, "aaaaaaaaaaaaaaaa");
    assert.equal(process.attributes["cloudevents.event_id"], "e1");
    assert.equal(process.attributes["cebridge.outcome"], "delivered");
    for (const [id, sink, attempts] of [["a", a, 1], ["b", b, 3]] as const) {
      const send = spans.find((s) => s.name === `${id} send`)!;
      assert.equal(send.kind, SpanKind.PRODUCER);
      assert.equal(send.parentSpanContext?.spanId, process.spanContext().spanId);
      assert.equal(send.attributes["cebridge.attempts"], attempts);
      // Every attempt of this sink wrote the send span's own context: the bridge's hop.
      for (const w of sink.writes) {
        const p = parseTraceparent(w.trace!.traceparent)!;
        assert.equal(p.traceId, TRACE);
        assert.equal(p.spanId, send.spanContext().spanId);
        // The extension is the starting trace (from the transport, as the event had none), not the hop.
        assert.equal(w.event.attributes["traceparent"], UPSTREAM.traceparent);
      }
    }
  });

  test("without a transport context the extension is the parent and tracestate is carried", async () => {
    const { exporter, tracer } = otel();
    const sink = recording();
    await offer(route({ sinks: [{ id: "k", sink }], tracer }), { events: [ev("1", { traceparent: CLIENT.traceparent, tracestate: CLIENT.tracestate! })] });
    const process = exporter.getFinishedSpans().find((s) => s.name === "r process")!;
    assert.equal(process.parentSpanContext?.spanId, "00f067aa0ba902b7");
    assert.equal(sink.writes[0]!.trace!.tracestate, CLIENT.tracestate);
  });

  test("an untraced event starts a new trace; the extension is not invented", async () => {
    const { exporter, tracer } = otel();
    const sink = recording();
    await offer(route({ sinks: [{ id: "k", sink }], tracer }), { events: [ev("1")] });
    const process = exporter.getFinishedSpans().find((s) => s.name === "r process")!;
    assert.equal(process.parentSpanContext, undefined);
    assert.equal(parseTraceparent(sink.writes[0]!.trace!.traceparent)!.traceId, process.spanContext().traceId);
    assert.equal(sink.writes[0]!.event.attributes["traceparent"], undefined);
  });

  test("filtered and failed deliveries end their spans with the outcome", async () => {
    const { exporter, tracer } = otel();
    const r = route({ sinks: [{ id: "k", sink: recording(() => "permanent") }], tracer, filter: compileFilter({ exact: { type: "t.a" } }) });
    await offer(r, { events: [ev("1"), { attributes: { ...ev("2").attributes, type: "other" } }] });
    const outcomes = exporter.getFinishedSpans().filter((s) => s.name === "r process").map((s) => [s.attributes["cloudevents.event_id"], s.attributes["cebridge.outcome"]]);
    assert.deepEqual(outcomes.sort(), [["1", "rejected"], ["2", "filtered"]]);
    const send = exporter.getFinishedSpans().find((s) => s.name === "k send")!;
    assert.equal(send.attributes["error.type"], "CEB_SINK_PERMANENT");
    assert.equal(send.status.code, 2);
  });
});

describe("startOpenTelemetry and the OTEL_* variables", () => {
  test("OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none record nothing", async () => {
    assert.equal(await startOpenTelemetry({ log: silentLogger, instanceId: "i", version: "0", env: { OTEL_SDK_DISABLED: "TRUE" } }), undefined);
    assert.equal(await startOpenTelemetry({ log: silentLogger, instanceId: "i", version: "0", env: { OTEL_TRACES_EXPORTER: "none" } }), undefined);
  });

  test("an exporter or protocol that is not bundled is a config error naming it", async () => {
    await assert.rejects(startOpenTelemetry({ log: silentLogger, instanceId: "i", version: "0", env: { OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" } }), {
      code: "CEB_CONFIG",
      message: /OTLP protocol "grpc" is not supported/,
    });
    await assert.rejects(startOpenTelemetry({ log: silentLogger, instanceId: "i", version: "0", env: { OTEL_TRACES_EXPORTER: "zipkin" } }), {
      code: "CEB_CONFIG",
      message: /"zipkin" is not supported/,
    });
  });

  test("console and both OTLP protocols start and shut down", async () => {
    for (const env of [{ OTEL_TRACES_EXPORTER: "console" }, { OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" }, {}]) {
      const t = await startOpenTelemetry({ log: silentLogger, instanceId: "i", version: "0", env });
      assert.ok(t);
      await t.shutdown();
    }
  });
});
