/**
 * A trace started by an HTTP client, through the built daemon over private brokers:
 *   HTTP → (route r1) → NATS → (r2) → MQTT 5 → (r3) → HTTP far side
 * With tracing off, the far side gets the client's trace id both in the extension (added at the
 * first hop, since the client sent only the W3C header) and in its W3C `traceparent` header. With
 * OpenTelemetry on (OTLP/protobuf to a loopback collector), every hop has a process span and a
 * send span in that trace, each hop's span hangs under the previous hop's send span (MQTT binary
 * mode excepted, as documented: there the next hop's parent is the starting trace), and the far
 * side's W3C header names the last send span.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { parseTraceparent } from "../../src/cloudevents/trace-context.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon } from "../support/daemon.js";
import { startOtlpCollector, type CollectedSpan, type OtlpCollector } from "../support/otlp-collector.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN = "b7ad6b7169203331";
const CLIENT_TP = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
const CLIENT_TS = "vendor=opaque1";

interface FarRequest {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

let nats: BrokerHandle;
let mosq: BrokerHandle;
let far: Server;
let farPort: number;
const farRequests: FarRequest[] = [];
let collector: OtlpCollector;

before(async () => {
  [nats, mosq, collector] = await Promise.all([startNats({ jetstream: false }), startMosquitto(), startOtlpCollector()]);
  far = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8").on("data", (c: string) => (body += c));
    req.on("end", () => {
      farRequests.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => far.listen(0, "127.0.0.1", () => r()));
  farPort = (far.address() as { port: number }).port;
});

after(async () => {
  far?.closeAllConnections();
  await new Promise((r) => far?.close(r));
  await Promise.all([nats?.stop(), mosq?.stop(), collector?.close()]);
});

async function config(tag: string, mqttMode: "binary" | "structured", tracing: boolean) {
  const [httpPort, adminPort] = [await freePort(), await freePort()];
  const yaml = `
engine:
  instance_id: trace-${tag}
  admin: { listen: "127.0.0.1:${adminPort}" }
  shutdown_timeout: 5s
  log: { level: warn }
  tracing: { enabled: ${tracing} }
sources:
  http_in: { type: http, listen: "127.0.0.1:${httpPort}", path: /events }
  nats_in: { type: nats, servers: ["${nats.url}"], subject: "trace.${tag}" }
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "trace/${tag}" }
sinks:
  nats_out: { type: nats, servers: ["${nats.url}"], subject: "trace.${tag}" }
  mqtt_out: { type: mqtt, url: "${mosq.url}", topic: "trace/${tag}", mode: ${mqttMode} }
  http_out: { type: http, url: "http://127.0.0.1:${farPort}/far/${tag}" }
# One daemon plays three bridges in a row, so the later hops must not cut the event as a loop.
routes:
  - { name: r1, from: http_in, to: [nats_out] }
  - { name: r2, from: nats_in, to: [mqtt_out], loop_prevention: false }
  - { name: r3, from: mqtt_in, to: [http_out], loop_prevention: false }
`;
  return { yaml, url: `http://127.0.0.1:${httpPort}/events`, admin: `127.0.0.1:${adminPort}` };
}

/** Runs one daemon, sends one traced event from an "HTTP client", returns what the far side got. */
async function roundTrip(tag: string, mqttMode: "binary" | "structured", tracing: boolean, protocol?: string): Promise<FarRequest> {
  const c = await config(tag, mqttMode, tracing);
  const env = tracing
    ? {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_SERVICE_NAME: `bridge-${tag}`,
        ...(protocol ? { OTEL_EXPORTER_OTLP_PROTOCOL: protocol } : {}),
      }
    : {};
  const daemon = startDaemon(c.yaml, { env });
  try {
    await daemon.waitReady(c.admin);
    const res = await fetch(c.url, {
      method: "POST",
      headers: {
        "ce-specversion": "1.0",
        "ce-id": `evt-${tag}`,
        "ce-source": "/client",
        "ce-type": "demo.traced",
        "content-type": "application/json",
        traceparent: CLIENT_TP,
        tracestate: CLIENT_TS,
      },
      body: '{"hello":"trace"}',
    });
    assert.equal(res.status, 204, await res.text());
    const path = `/far/${tag}`;
    await waitFor(() => farRequests.some((r) => r.headers["ce-id"] === `evt-${tag}`), 10_000, `far side request ${path}`);
  } finally {
    assert.equal(await daemon.stop("SIGTERM"), 0, daemon.stderr());
  }
  return farRequests.find((r) => r.headers["ce-id"] === `evt-${tag}`)!;
}

describe("tracing across HTTP → NATS → MQTT → HTTP", () => {
  it("tracing off: the client's trace arrives in the extension and in the W3C header", async () => {
    const got = await roundTrip("off", "binary", false);
    assert.equal(got.headers["ce-traceparent"], CLIENT_TP, "the extension, added at the first hop, passes unchanged");
    assert.equal(got.headers["ce-tracestate"], CLIENT_TS);
    assert.equal(got.headers["traceparent"], CLIENT_TP, "no span of its own: the client's context is forwarded");
    assert.equal(got.body, '{"hello":"trace"}');
    assert.equal(got.headers["ce-cebridgehops"], "1");
  });

  // Each OTLP encoding once: the default (protobuf) and http/json.
  for (const [mode, protocol] of [["structured", undefined], ["binary", "http/json"]] as const) {
    it(`OpenTelemetry on (OTLP ${protocol ?? "http/protobuf, the default"}), MQTT ${mode}: a process and a send span per hop, one trace, chained`, async () => {
      const tag = `otel-${mode}`;
      const requestsBefore = collector.contentTypes.length;
      const got = await roundTrip(tag, mode, true, protocol);
      const mine = (s: CollectedSpan) => s.service === `bridge-${tag}`;
      await collector.waitFor((spans) => spans.filter(mine).length >= 6);
      const spans = collector.spans.filter(mine);
      const one = (name: string) => {
        const found = spans.filter((s) => s.name === name);
        assert.equal(found.length, 1, `${name}: ${spans.map((s) => s.name).join(", ")}`);
        return found[0]!;
      };
      const [p1, s1, p2, s2, p3, s3] = ["r1 process", "nats_out send", "r2 process", "mqtt_out send", "r3 process", "http_out send"].map(one) as [
        CollectedSpan, CollectedSpan, CollectedSpan, CollectedSpan, CollectedSpan, CollectedSpan,
      ];
      for (const s of [p1, s1, p2, s2, p3, s3]) assert.equal(s.traceId, CLIENT_TRACE, s.name);
      for (const p of [p1, p2, p3]) {
        assert.equal(p.kind, 5, "CONSUMER");
        assert.equal(p.attributes["cloudevents.event_id"], `evt-${tag}`);
        assert.equal(p.attributes["cebridge.outcome"], "delivered");
      }
      for (const s of [s1, s2, s3]) assert.equal(s.kind, 4, "PRODUCER");
      assert.equal(p1.parentSpanId, CLIENT_SPAN, "the first hop hangs under the client's span");
      assert.equal(s1.parentSpanId, p1.spanId);
      assert.equal(p2.parentSpanId, s1.spanId, "NATS headers carried the bridge's send span");
      assert.equal(s2.parentSpanId, p2.spanId);
      // MQTT binary: the traceparent user property is the extension, so the hop falls back to the starting trace.
      assert.equal(p3.parentSpanId, mode === "structured" ? s2.spanId : CLIENT_SPAN);
      assert.equal(s3.parentSpanId, p3.spanId);
      const farTp = parseTraceparent(got.headers["traceparent"] as string)!;
      assert.equal(farTp.traceId, CLIENT_TRACE);
      assert.equal(farTp.spanId, s3.spanId, "the far side's W3C header is the bridge's last send span");
      assert.equal(got.headers["tracestate"], CLIENT_TS, "tracestate rides along the hops");
      assert.equal(got.headers["ce-traceparent"], CLIENT_TP, "the extension still names the starting trace");
      const types = collector.contentTypes.slice(requestsBefore);
      const want = protocol === "http/json" ? "application/json" : "application/x-protobuf";
      assert.ok(types.length > 0 && types.every((ct) => ct.startsWith(want)), types.join());
    });
  }
});
