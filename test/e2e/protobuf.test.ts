/**
 * The Protobuf event format end to end through the built daemon, over private nats-server and
 * mosquitto: Protobuf events POSTed to the HTTP source (single and batch) are written in Protobuf by
 * the HTTP (structured and batch), NATS and MQTT 5 sinks, and read back by the NATS and MQTT
 * sources. Every output is decoded by protoc, which must print exactly what it prints for the
 * input, and by our decoder, which must give back every attribute and data byte.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectAsync, type IPublishPacket, type MqttClient } from "mqtt";
import { decodeProtobuf, decodeProtobufBatch, encodeProtobuf, encodeProtobufBatch, parseStructuredAs, type CloudEvent } from "../../src/cloudevents/index.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, richEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { protocDecode } from "../support/protoc.js";
import { waitFor } from "../support/wait.js";

let nats: BrokerHandle;
let mosq: BrokerHandle;
let nc: NatsConnection;
let mqttTap: MqttClient;
let daemon: Daemon;
let admin: string;
let httpIn: string;
let receiver: Server;
let rxBase: string;
/** Requests the receiver got, by path. */
const got = new Map<string, { ct: string; body: Buffer }[]>();
const natsOut: { ct: string | undefined; body: Buffer }[] = [];
const mqttOut: { ct: string | undefined; body: Buffer }[] = [];

function events(tag: string): CloudEvent[] {
  const rich = richEvents(tag);
  return [...rich, { attributes: { ...rich[0]!.attributes, id: `${tag}-ns`, time: "2024-05-06T05:08:09.123456789Z" }, data: rich[0]!.data }];
}

before(async () => {
  [nats, mosq] = await Promise.all([startNats({ jetstream: false }), startMosquitto()]);
  nc = await connect({ servers: nats.url });
  const sub = nc.subscribe("pb.n.out");
  void (async () => {
    for await (const m of sub) natsOut.push({ ct: m.headers?.get("Content-Type"), body: Buffer.from(m.data) });
  })();
  mqttTap = await connectAsync(mosq.url, { protocolVersion: 5, clientId: `pbtap-${process.pid}` });
  mqttTap.on("message", (_t, payload, packet: IPublishPacket) => mqttOut.push({ ct: packet.properties?.contentType, body: payload }));
  await mqttTap.subscribeAsync("pb/m/out", { qos: 1 });
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const list = got.get(req.url ?? "") ?? [];
      list.push({ ct: String(req.headers["content-type"]), body: Buffer.concat(chunks) });
      got.set(req.url ?? "", list);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", () => r()));
  rxBase = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  admin = `127.0.0.1:${await freePort()}`;
  httpIn = `127.0.0.1:${await freePort()}`;
  daemon = startDaemon(`
engine: { instance_id: e2e-pb, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  web: { type: http, listen: "${httpIn}", path: /events }
  nats_in: { type: nats, servers: ["${nats.url}"], subject: "pb.n.out" }
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "pb/m/out" }
sinks:
  h_out: { type: http, url: "${rxBase}/single", mode: structured, format: protobuf }
  h_batch: { type: http, url: "${rxBase}/batch", mode: batch, format: protobuf, batch: { max_events: 100, linger: 200ms } }
  n_out: { type: nats, servers: ["${nats.url}"], subject: "pb.n.out", format: protobuf }
  m_out: { type: mqtt, url: "${mosq.url}", topic: "pb/m/out", mode: structured, format: protobuf }
  n_back: { type: http, url: "${rxBase}/from-nats", mode: structured }
  m_back: { type: http, url: "${rxBase}/from-mqtt", mode: structured }
routes:
  - { name: in, from: web, to: [h_out, h_batch, n_out, m_out], loop_prevention: false }
  - { name: nback, from: nats_in, to: [n_back], loop_prevention: false }
  - { name: mback, from: mqtt_in, to: [m_back], loop_prevention: false }
`);
  await daemon.waitReady(admin, 60_000);
});

after(async () => {
  await daemon?.stop();
  await nc?.close();
  await mqttTap?.endAsync();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
  await nats?.close();
  await mosq?.close();
});

describe("e2e - protobuf", { timeout: 120_000 }, () => {
  it("e2e protobuf - single events: HTTP, NATS and MQTT outputs are what protoc reads from the input, and decode exactly", async () => {
    const evs = events("pb1");
    for (const e of evs) {
      const res = await fetch(`http://${httpIn}/events`, { method: "POST", headers: { "content-type": "application/cloudevents+protobuf" }, body: encodeProtobuf(e) });
      assert.equal(res.status, 204, await res.text());
    }
    const expected = new Map(evs.map((e) => [String(e.attributes["id"]), { event: e, text: protocDecode("CloudEvent", encodeProtobuf(e)) }]));
    await waitFor(() => (got.get("/single")?.length ?? 0) >= evs.length && natsOut.length >= evs.length && mqttOut.length >= evs.length, 20_000, () => `http ${got.get("/single")?.length ?? 0}, nats ${natsOut.length}, mqtt ${mqttOut.length}\n${daemon.stderr().slice(-2000)}`);
    const outputs: [string, { ct: string | undefined; body: Buffer }[]][] = [["http", got.get("/single")!], ["nats", natsOut], ["mqtt", mqttOut]];
    for (const [where, list] of outputs) {
      assert.equal(list.length, evs.length, where);
      for (const x of list) {
        assert.equal(x.ct, "application/cloudevents+protobuf", where);
        const ev = decodeProtobuf(x.body);
        const want = expected.get(String(ev.attributes["id"]));
        assert.ok(want, `${where}: ${ev.attributes["id"]}`);
        assert.equal(protocDecode("CloudEvent", x.body), want.text, `${where} ${ev.attributes["id"]}: protoc reads the same message`);
        assertSameEvent(ev, want.event, { what: `${where} ${ev.attributes["id"]}` });
      }
    }
    const ns = protocDecode("CloudEvent", natsOut.find((x) => decodeProtobuf(x.body).attributes["id"] === "pb1-ns")!.body);
    assert.match(ns, /ce_timestamp \{\n\s+seconds: 1714972089\n\s+nanos: 123456789\n/);
  });

  it("e2e protobuf - the NATS and MQTT sources read the Protobuf the sinks wrote", async () => {
    const evs = events("pb1");
    for (const path of ["/from-nats", "/from-mqtt"]) {
      await waitFor(() => (got.get(path)?.length ?? 0) >= evs.length, 20_000, () => `${path}: ${got.get(path)?.length ?? 0}\n${daemon.stderr().slice(-2000)}`);
      const back = new Map(got.get(path)!.map((x) => {
        const e = parseStructuredAs(x.ct, x.body);
        return [String(e.attributes["id"]), e] as const;
      }));
      for (const e of evs) assertSameEvent(back.get(String(e.attributes["id"]))!, e, { what: `${path} ${e.attributes["id"]}` });
    }
  });

  it("e2e protobuf - a Protobuf batch in, a Protobuf batch out: protoc reads the CloudEventBatch", async () => {
    const evs = events("pb2");
    const res = await fetch(`http://${httpIn}/events`, { method: "POST", headers: { "content-type": "application/cloudevents-batch+protobuf" }, body: encodeProtobufBatch(evs) });
    assert.equal(res.status, 204, await res.text());
    const ids = new Set(evs.map((e) => String(e.attributes["id"])));
    const batched = () => (got.get("/batch") ?? []).flatMap((x) => decodeProtobufBatch(x.body)).filter((e) => ids.has(String(e.attributes["id"])));
    await waitFor(() => batched().length >= evs.length, 20_000, () => `batched ${batched().length}`);
    for (const x of got.get("/batch")!) {
      assert.equal(x.ct, "application/cloudevents-batch+protobuf");
      const text = protocDecode("CloudEventBatch", x.body);
      assert.equal(text.match(/^events \{$/gm)?.length, decodeProtobufBatch(x.body).length, "protoc sees every event of the batch");
    }
    const byId = new Map(batched().map((e) => [String(e.attributes["id"]), e]));
    for (const e of evs) assertSameEvent(byId.get(String(e.attributes["id"]))!, e, { what: `batch ${e.attributes["id"]}` });
  });
});
