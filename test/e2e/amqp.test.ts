/**
 * End to end through the built daemon, over a private RabbitMQ and nats-server:
 *   HTTP (structured JSON) → AMQP sinks (binary cloudEvents:, structured JSON, structured Protobuf)
 *     → three AMQP sources → NATS (structured JSON, and structured Protobuf for the Protobuf leg)
 *   and back: NATS → AMQP (binary cloudEvents_) → AMQP source → HTTP (structured Protobuf)
 * Every attribute (with its JSON type), extension and data byte must arrive exactly, including a
 * `time` with nanoseconds and an offset; the HTTP output is also read by protoc. With tracing off, a
 * W3C trace entering on HTTP (or NATS) crosses AMQP in the `traceparent` / `tracestate`
 * application properties to the far side's W3C header, and arrives in the extension.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { headerEntries } from "../../connectors/nats/inbound.js";
import { decodeNatsMessage, encodeNatsMessage } from "../../connectors/nats/mapping.js";
import { parseStructuredAs, toJsonObject, type CloudEvent, type TraceContext } from "../../src/cloudevents/index.js";
import { declareQueue, startNats, startRabbitMq, type BrokerHandle, type RabbitHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, richEvents } from "../support/events.js";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { freePort } from "../support/ports.js";
import { protocDecode } from "../support/protoc.js";
import { waitFor } from "../support/wait.js";

let rabbit: RabbitHandle;
let nats: BrokerHandle;
let nc: NatsConnection;
let daemon: Daemon;
let admin: string;
let httpIn: string;
let receiver: Server;
let receiverUrl: string;
const atNats = new Map<string, { ct: string | undefined; event: CloudEvent; trace: TraceContext | undefined }[]>();
const atHttp: { ct: string; body: Buffer; event: CloudEvent; traceparent: string | undefined; tracestate: string | undefined }[] = [];

/** richEvents plus one with a UTC nanosecond `time`, which Protobuf carries as a Timestamp. */
function events(tag: string): CloudEvent[] {
  const rich = richEvents(tag);
  return [...rich, { attributes: { ...rich[0]!.attributes, id: `${tag}-ns`, time: "2024-05-06T05:08:09.123456789Z" }, data: rich[0]!.data }];
}

/** The daemon's loop markers are off on every route here, so nothing is added to the events. */
function yaml(): string {
  const amqp = `url: "${rabbit.url}", username: guest, password: guest`;
  return `
engine: { instance_id: e2e-amqp, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  web: { type: http, listen: "${httpIn}", path: /events }
  from_bin: { type: amqp, ${amqp}, address: /amq/queue/e2e-bin }
  from_json: { type: amqp, ${amqp}, address: /amq/queue/e2e-json }
  from_pb: { type: amqp, ${amqp}, address: /amq/queue/e2e-pb }
  nats_back: { type: nats, servers: ["${nats.url}"], subject: "e2e.back.>" }
  from_back: { type: amqp, ${amqp}, address: /amq/queue/e2e-back }
sinks:
  to_bin: { type: amqp, ${amqp}, address: /amq/queue/e2e-bin }
  to_json: { type: amqp, ${amqp}, address: /amq/queue/e2e-json, mode: structured }
  to_pb: { type: amqp, ${amqp}, address: /amq/queue/e2e-pb, mode: structured, format: protobuf }
  nats_bin: { type: nats, servers: ["${nats.url}"], subject: "e2e.out.bin" }
  nats_json: { type: nats, servers: ["${nats.url}"], subject: "e2e.out.json" }
  nats_pb: { type: nats, servers: ["${nats.url}"], subject: "e2e.out.pb", format: protobuf }
  to_back: { type: amqp, ${amqp}, address: /amq/queue/e2e-back, prefix: "cloudEvents_" }
  web_out: { type: http, url: "${receiverUrl}", mode: structured, format: protobuf }
routes:
  - { name: in, from: web, to: [to_bin, to_json, to_pb], loop_prevention: false }
  - { name: bin, from: from_bin, to: [nats_bin], loop_prevention: false }
  - { name: json, from: from_json, to: [nats_json], loop_prevention: false }
  - { name: pb, from: from_pb, to: [nats_pb], loop_prevention: false }
  - { name: back, from: nats_back, to: [to_back], loop_prevention: false }
  - { name: out, from: from_back, to: [web_out], loop_prevention: false }
`;
}

before(async () => {
  [rabbit, nats] = await Promise.all([startRabbitMq(), startNats({ jetstream: false })]);
  for (const q of ["e2e-bin", "e2e-json", "e2e-pb", "e2e-back"]) await declareQueue(rabbit.url, q);
  nc = await connect({ servers: nats.url });
  const sub = nc.subscribe("e2e.out.>");
  void (async () => {
    for await (const m of sub) {
      const d = decodeNatsMessage(
        { subject: m.subject, headers: headerEntries(m.headers), payload: m.data },
        { plainSource: "x", plainType: "x", server: "x", now: () => new Date(), newId: () => "x" },
      );
      if (d.invalid) throw new Error(`NATS output is not a CloudEvent: ${d.invalid.message}`);
      const list = atNats.get(m.subject) ?? [];
      list.push({ ct: m.headers?.get("Content-Type"), event: d.event, trace: d.trace });
      atNats.set(m.subject, list);
    }
  })();
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const ct = String(req.headers["content-type"]);
      const header = (name: string) => (typeof req.headers[name] === "string" ? (req.headers[name] as string) : undefined);
      atHttp.push({ ct, body, event: parseStructuredAs(ct, body), traceparent: header("traceparent"), tracestate: header("tracestate") });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/in`;
  admin = `127.0.0.1:${await freePort()}`;
  httpIn = `127.0.0.1:${await freePort()}`;
  daemon = startDaemon(yaml());
  await daemon.waitReady(admin, 60_000);
});

after(async () => {
  await daemon?.stop();
  await nc?.close();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  await nats?.close();
  await rabbit?.close();
});

describe("e2e - amqp", { timeout: 120_000 }, () => {
  it("e2e amqp - HTTP → AMQP (binary, structured JSON, structured Protobuf) → AMQP source → NATS: every attribute and byte exact", async () => {
    const rich = events("fwd");
    for (const e of rich) {
      const res = await fetch(`http://${httpIn}/events`, {
        method: "POST",
        headers: { "content-type": "application/cloudevents+json" },
        body: JSON.stringify(toJsonObject(e)),
      });
      assert.equal(res.status, 204, await res.text());
    }
    for (const subject of ["e2e.out.bin", "e2e.out.json", "e2e.out.pb"]) {
      await waitFor(() => (atNats.get(subject)?.length ?? 0) >= rich.length, 20_000, () => `${subject}: ${atNats.get(subject)?.length ?? 0}\n${daemon.stderr().slice(-2000)}`);
      const got = new Map(atNats.get(subject)!.map((x) => [String(x.event.attributes["id"]), x]));
      for (const e of rich) {
        const x = got.get(String(e.attributes["id"]));
        assert.ok(x, `${subject}: ${e.attributes["id"]}`);
        assertSameEvent(x.event, e, { what: `${subject} ${e.attributes["id"]}` });
        assert.equal(x.ct, subject === "e2e.out.pb" ? "application/cloudevents+protobuf" : "application/cloudevents+json; charset=utf-8");
      }
    }
    const ns = atNats.get("e2e.out.bin")!.find((x) => x.event.attributes["id"] === "fwd-ext")!;
    assert.equal(ns.event.attributes["time"], "2024-05-06T07:08:09.123456789+02:00", "nanosecond time with its offset survived AMQP");
    assert.equal(ns.event.attributes["count"], 42, "an Integer stays an Integer through AMQP long");
  });

  it("e2e amqp - and back: NATS → AMQP (binary, cloudEvents_) → AMQP source → HTTP (Protobuf), read exactly by protoc", async () => {
    const rich = events("back");
    for (const e of rich) {
      const out = encodeNatsMessage(e, "structured");
      const h = natsHeaders();
      for (const [k, v] of out.headers) h.append(k, v);
      nc.publish("e2e.back.x", out.payload, { headers: h });
    }
    await waitFor(() => atHttp.length >= rich.length, 20_000, () => `at HTTP: ${atHttp.length}\n${daemon.stderr().slice(-2000)}`);
    const got = new Map(atHttp.map((x) => [String(x.event.attributes["id"]), x]));
    for (const e of rich) {
      const x = got.get(String(e.attributes["id"]));
      assert.ok(x, String(e.attributes["id"]));
      assert.equal(x.ct, "application/cloudevents+protobuf");
      assertSameEvent(x.event, e, { what: `back ${e.attributes["id"]}` });
      const text = protocDecode("CloudEvent", x.body);
      assert.match(text, new RegExp(`^id: "${String(e.attributes["id"])}"\\n`));
    }
    const ext = protocDecode("CloudEvent", got.get("back-ext")!.body);
    assert.match(ext, /key: "count"\n {2}value \{\n {4}ce_integer: 42\n/);
    assert.match(ext, /key: "flag"\n {2}value \{\n {4}ce_boolean: true\n/);
    assert.match(ext, /key: "time"\n {2}value \{\n {4}ce_string: "2024-05-06T07:08:09.123456789\+02:00"\n/, "a time Timestamp cannot spell exactly stays a string");
    const ns = protocDecode("CloudEvent", got.get("back-ns")!.body);
    assert.match(ns, /key: "time"\n {2}value \{\n {4}ce_timestamp \{\n {6}seconds: 1714972089\n {6}nanos: 123456789\n/, "nanoseconds in a google.protobuf.Timestamp");
  });

  it("e2e amqp - tracing off: a W3C trace crosses AMQP (binary, structured JSON and Protobuf, and back with cloudEvents_) in the application properties, to the far side's W3C header and the extension", async () => {
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const res = await fetch(`http://${httpIn}/events`, {
      method: "POST",
      headers: { "ce-specversion": "1.0", "ce-id": "traced-fwd", "ce-source": "/client", "ce-type": "demo.traced", "content-type": "text/plain", traceparent: tp, tracestate: "vendor=1" },
      body: "traced",
    });
    assert.equal(res.status, 204, await res.text());
    for (const subject of ["e2e.out.bin", "e2e.out.json", "e2e.out.pb"]) {
      await waitFor(() => atNats.get(subject)?.some((x) => x.event.attributes["id"] === "traced-fwd") === true, 20_000, () => `${subject}\n${daemon.stderr().slice(-2000)}`);
      const x = atNats.get(subject)!.find((y) => y.event.attributes["id"] === "traced-fwd")!;
      assert.equal(x.event.attributes["traceparent"], tp, `${subject}: the extension added at the HTTP hop`);
      assert.equal(x.event.attributes["tracestate"], "vendor=1");
      assert.deepEqual(x.trace, { traceparent: tp, tracestate: "vendor=1" }, `${subject}: the context AMQP carried, forwarded in the NATS headers`);
    }
    const other = "00-11111111111111111111111111111111-2222222222222222-01";
    const back: CloudEvent = { attributes: { specversion: "1.0", id: "traced-back", source: "/nats", type: "demo.traced" } };
    const out = encodeNatsMessage(back, "structured");
    const h = natsHeaders();
    for (const [k, v] of out.headers) h.append(k, v);
    h.append("traceparent", other);
    nc.publish("e2e.back.x", out.payload, { headers: h });
    await waitFor(() => atHttp.some((x) => x.event.attributes["id"] === "traced-back"), 20_000, () => daemon.stderr().slice(-2000));
    const x = atHttp.find((y) => y.event.attributes["id"] === "traced-back")!;
    assert.equal(x.event.attributes["traceparent"], other, "the extension, added at the NATS hop, through cloudEvents_traceparent");
    assert.equal(x.traceparent, other, "the W3C header at the far side: carried by the traceparent application property");
    assert.equal(x.tracestate, undefined);
  });
});
