/**
 * End to end through the built daemon with the real Azure clients against the Event Grid emulator:
 *   MQTT 5 → azure_eventgrid sink (CloudEvents topic, and an Event Grid schema topic) → the
 *   emulator's push delivery (OPTIONS handshake, validation event) → azure_eventgrid webhook source
 *   (with a secret) → NATS;
 *   JetStream → azure_eventgrid_namespace sink → namespace topic → azure_eventgrid_namespace source →
 *   HTTP sink;
 * with every attribute, extension and data byte compared (the Event Grid schema: the documented
 * mapping). The return routes set `loop_prevention: false`: one daemon plays both bridges.
 * Tracing off: an MQTT 5 trace becomes the extension, which Event Grid carries to NATS; a webhook
 * request's W3C `traceparent` header reaches the NATS header and the extension.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { connectAsync, type MqttClient } from "mqtt";
import { encodeMqttMessage } from "../../connectors/mqtt/mapping.js";
import { encodeNatsMessage } from "../../connectors/nats/mapping.js";
import { parseStructured, toJsonObject, type CloudEvent } from "../../src/cloudevents/index.js";
import { startEventGridEmulator, type BasicTopic, type EventGridEmulator } from "../emulators/eventgrid/index.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { TEST_KEY } from "../support/eventgrid.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const INSTANCE = "e2e-grid";
const SECRET = "grid-webhook-secret-31ef";
let nats: BrokerHandle;
let mosq: BrokerHandle;
let emu: EventGridEmulator;
let ceTopic: BasicTopic;
let egTopic: BasicTopic;
let nc: NatsConnection;
let mqttPub: MqttClient;
let daemon: Daemon;
let admin: string;
let hookUrl: string;
let httpOut: Server;
let httpUrl: string;
const natsOut: CloudEvent[] = [];
/** The W3C `traceparent` header of each JetStream message, by event id. */
const natsTraceparent = new Map<string, string | undefined>();
const httpIn: CloudEvent[] = [];

function withoutMarkers(ev: CloudEvent): CloudEvent {
  const { cebridgevia: _v, cebridgehops: _h, ...attributes } = ev.attributes;
  return ev.data === undefined ? { attributes } : { attributes, data: ev.data };
}

function yaml(hookPort: number): string {
  return `
engine:
  instance_id: ${INSTANCE}
  admin: { listen: "${admin}" }
  shutdown_timeout: 5s
  log: { level: warn }
sources:
  mqtt_ce: { type: mqtt, url: "${mosq.url}", topic: "grid/ce/#", qos: 1, client_id: e2e-grid-ce }
  mqtt_eg: { type: mqtt, url: "${mosq.url}", topic: "grid/eg/#", qos: 1, client_id: e2e-grid-eg }
  hook:
    type: azure_eventgrid
    listen: "127.0.0.1:${hookPort}"
    path: /eventgrid
    secret: "\${GRID_SECRET}"
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: GRID_IN, consumer: bridge, create: true, subjects: ["grid.in.>"], ack_wait: 5s }
  ns_in:
    type: azure_eventgrid_namespace
    endpoint: "${emu.url}"
    topic: orders
    subscription: bridge
    key: "\${GRID_KEY}"
    max_wait: 1s
    lock_duration: 10s
sinks:
  grid_ce: { type: azure_eventgrid, endpoint: "${ceTopic.endpoint}", key: "\${GRID_KEY}" }
  grid_eg: { type: azure_eventgrid, endpoint: "${egTopic.endpoint}", key: "\${GRID_KEY}", schema: eventgrid }
  bus: { type: nats_jetstream, servers: ["${nats.url}"], subject: "grid.out.{type}", stream: GRID_OUT, create: true, subjects: ["grid.out.>"] }
  ns_out: { type: azure_eventgrid_namespace, endpoint: "${emu.url}", topic: orders, key: "\${GRID_KEY}" }
  web: { type: http, url: "${httpUrl}", mode: structured }
routes:
  - { name: mqtt-to-grid-ce, from: mqtt_ce, to: [grid_ce] }
  - { name: mqtt-to-grid-eg, from: mqtt_eg, to: [grid_eg] }
  - { name: grid-to-nats, from: hook, to: [bus], loop_prevention: false }
  - { name: js-to-namespace, from: js_in, to: [ns_out] }
  - { name: namespace-to-http, from: ns_in, to: [web], loop_prevention: false }
`;
}

before(async () => {
  nats = await startNats({ jetstream: true });
  mosq = await startMosquitto();
  emu = await startEventGridEmulator({ timeScale: 0.001 });
  emu.namespaceAuth({ keys: [TEST_KEY] });
  emu.namespaceTopic("orders").subscription("bridge", { lockDurationMs: 10_000 });
  ceTopic = emu.topic("orders-ce", { schema: "cloudevents", keys: [TEST_KEY] });
  egTopic = emu.topic("orders-eg", { schema: "eventgrid", keys: [TEST_KEY] });
  admin = `127.0.0.1:${await freePort()}`;
  httpOut = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      httpIn.push(parseStructured(Buffer.concat(chunks)));
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => httpOut.listen(0, "127.0.0.1", () => r()));
  httpUrl = `http://127.0.0.1:${(httpOut.address() as { port: number }).port}/in`;
  nc = await connect({ servers: nats.url });
  mqttPub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "e2e-grid-pub" });
  const hookPort = await freePort();
  hookUrl = `http://127.0.0.1:${hookPort}/eventgrid?code=${SECRET}`;
  daemon = startDaemon(yaml(hookPort), { env: { GRID_KEY: TEST_KEY, GRID_SECRET: SECRET } });
  await daemon.waitReady(admin, 30_000);
  // Subscriptions are made once the webhook answers: their handshakes run against the daemon.
  await ceTopic.subscribe({ url: hookUrl, deliverySchema: "cloudevents", name: "to-bridge-ce" });
  await egTopic.subscribe({ url: hookUrl, deliverySchema: "eventgrid", name: "to-bridge-eg" });
  // The NATS side reads GRID_OUT (made by the bus sink when the daemon opened it) with an ordered consumer.
  await jetstreamManager(nc).then((jsm) => jsm.streams.info("GRID_OUT"));
  const sub = await jetstream(nc).consumers.get("GRID_OUT");
  void (async () => {
    const messages = await sub.consume();
    for await (const m of messages) {
      const ev = parseStructured(m.data);
      natsTraceparent.set(String(ev.attributes["id"]), m.headers?.get("traceparent") || undefined);
      natsOut.push(ev);
    }
  })();
});

after(async () => {
  if (daemon) {
    const code = await daemon.stop("SIGTERM");
    if (code !== 0) process.stderr.write(daemon.stderr());
  }
  await mqttPub?.endAsync();
  await nc?.close();
  await emu?.close();
  await nats?.close();
  await mosq?.close();
  httpOut?.close();
});

describe("e2e azure event grid", { timeout: 120_000 }, () => {
  it("e2e - MQTT → Event Grid topic (CloudEvents schema) → push → webhook source → NATS keeps every attribute, extension and data byte", async () => {
    const evs = [...richEvents("g2n"), ...sampleEvents(20, "g2n")];
    for (const e of evs) {
      const out = encodeMqttMessage(e, "structured", 5);
      await mqttPub.publishAsync("grid/ce/x", out.payload, { qos: 1, properties: out.properties ?? {} });
    }
    await waitFor(() => evs.every((e) => natsOut.some((n) => n.attributes["id"] === e.attributes["id"])), 30_000, () => `${natsOut.length}/${evs.length} on NATS\n${daemon.stderr().slice(-3000)}`);
    const got = byId(natsOut);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]))!;
      assert.equal(ev.attributes["cebridgevia"], INSTANCE, "the loop marker of the first route came through Event Grid");
      assertSameEvent(withoutMarkers(ev), e);
    }
    assert.equal(got.get("g2n-ext")!.attributes["time"], "2024-05-06T07:08:09.123456789+02:00");
  });

  it("e2e - MQTT → Event Grid topic (Event Grid schema) → push (validation event) → webhook source → NATS: the documented mapping, exactly", async () => {
    const evs: CloudEvent[] = Array.from({ length: 10 }, (_, i) => ({
      attributes: { specversion: "1.0", id: `eg2n-${i}`, source: "urn:shop", type: "com.example.order.eg", subject: `orders/${i}`, time: `2024-05-06T07:08:0${i}.1234567Z`, datacontenttype: "application/json", dataversion: `1.${i}`, tenant: "lost" },
      data: { kind: "bytes", bytes: Buffer.from(JSON.stringify({ i, note: "naïve ✓" })) },
    }));
    for (const e of evs) {
      const out = encodeMqttMessage(e, "structured", 5);
      await mqttPub.publishAsync("grid/eg/x", out.payload, { qos: 1, properties: out.properties ?? {} });
    }
    await waitFor(() => evs.every((e) => natsOut.some((n) => n.attributes["id"] === e.attributes["id"])), 30_000, () => `${natsOut.length} on NATS\n${daemon.stderr().slice(-3000)}`);
    const got = byId(natsOut);
    for (const [i, e] of evs.entries()) {
      const ev = got.get(String(e.attributes["id"]))!;
      assert.deepEqual(ev.attributes, {
        specversion: "1.0",
        id: `eg2n-${i}`,
        source: egTopic.resourceId,
        type: "com.example.order.eg",
        subject: `orders/${i}`,
        time: `2024-05-06T07:08:0${i}.1234567Z`,
        datacontenttype: "application/json",
        dataversion: `1.${i}`,
        metadataversion: "1",
      });
      assert.deepEqual(toJsonObject(ev)["data"], { i, note: "naïve ✓" });
    }
  });

  it("e2e - through the daemon: OPTIONS grants eventgrid.azure.net and refuses another origin; a delivery without the secret gets 401 and nothing is written", async () => {
    const base = hookUrl.split("?")[0]!;
    const ok = await fetch(hookUrl, { method: "OPTIONS", headers: { "webhook-request-origin": "eventgrid.azure.net" } });
    assert.equal(ok.status, 200);
    assert.equal(ok.headers.get("webhook-allowed-origin"), "eventgrid.azure.net");
    const other = await fetch(hookUrl, { method: "OPTIONS", headers: { "webhook-request-origin": "attacker.example" } });
    assert.equal(other.status, 403);
    assert.equal(other.headers.get("webhook-allowed-origin"), null);
    const validation = JSON.stringify([{ id: "v1", topic: "/subscriptions/x", subject: "", eventType: "Microsoft.EventGrid.SubscriptionValidationEvent", eventTime: "2024-01-01T00:00:00Z", data: { validationCode: "c0de" }, dataVersion: "1", metadataVersion: "1" }]);
    const refused = await fetch(base, { method: "POST", headers: { "content-type": "application/json", "aeg-event-type": "SubscriptionValidation" }, body: validation });
    assert.equal(refused.status, 401, "a validation event from a sender without the secret is refused");
    const answered = await fetch(hookUrl, { method: "POST", headers: { "content-type": "application/json", "aeg-event-type": "SubscriptionValidation" }, body: validation });
    assert.deepEqual(await answered.json(), { validationResponse: "c0de" });
    const sneaky = { id: "no-secret-1", topic: "/t", subject: "s", eventType: "com.example.sneaky", eventTime: "2024-01-01T00:00:00Z", data: {} };
    const r = await fetch(base, { method: "POST", headers: { "content-type": "application/json", "aeg-event-type": "Notification" }, body: JSON.stringify([sneaky]) });
    assert.equal(r.status, 401);
    await new Promise((res) => setTimeout(res, 500));
    assert.ok(!natsOut.some((e) => e.attributes["id"] === "no-secret-1"), "nothing was written");
  });

  it("e2e - tracing off: an MQTT 5 trace becomes the extension, which Event Grid carries to NATS; a webhook request's W3C traceparent header reaches the NATS header and the extension", async () => {
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const viaGrid: CloudEvent = { attributes: { specversion: "1.0", id: "traced-grid", source: "/client", type: "demo.traced", datacontenttype: "application/json" }, data: { kind: "json", value: { a: 1 } } };
    const m = encodeMqttMessage(viaGrid, "structured", 5);
    await mqttPub.publishAsync("grid/ce/traced", m.payload, { qos: 1, properties: { ...m.properties, userProperties: { traceparent: tp, tracestate: "vendor=1" } } });
    const direct = JSON.stringify([{ specversion: "1.0", id: "traced-hook", source: "/sender", type: "demo.traced" }]);
    const other = "00-11111111111111111111111111111111-2222222222222222-01";
    const r = await fetch(hookUrl, { method: "POST", headers: { "content-type": "application/cloudevents-batch+json; charset=utf-8", traceparent: other, tracestate: "s=2" }, body: direct });
    assert.equal(r.status, 204, await r.text());
    await waitFor(() => natsOut.some((e) => e.attributes["id"] === "traced-grid") && natsOut.some((e) => e.attributes["id"] === "traced-hook"), 30_000, () => daemon.stderr());
    const grid = natsOut.find((e) => e.attributes["id"] === "traced-grid")!;
    assert.equal(grid.attributes["traceparent"], tp, "the extension, added at the MQTT hop, is Event Grid's trace field");
    assert.equal(grid.attributes["tracestate"], "vendor=1");
    assert.equal(natsTraceparent.get("traced-grid"), undefined, "the (emulated) push request carries no W3C header, so there is no hop to forward and none is invented");
    const hook = natsOut.find((e) => e.attributes["id"] === "traced-hook")!;
    assert.equal(hook.attributes["traceparent"], other, "added from the request header");
    assert.equal(hook.attributes["tracestate"], "s=2");
    assert.equal(natsTraceparent.get("traced-hook"), other, "the request's context, forwarded on NATS");
  });

  it("e2e - JetStream → namespace topic → namespace source → HTTP keeps every attribute, extension and data byte, and settles everything", async () => {
    const evs = [...richEvents("j2h"), ...sampleEvents(30, "j2h")];
    for (const e of evs) {
      const out = encodeNatsMessage(e, "structured");
      const h = natsHeaders();
      for (const [k, v] of out.headers) h.append(k, v);
      await jetstream(nc).publish("grid.in.x", out.payload, { headers: h });
    }
    await waitFor(() => evs.every((e) => httpIn.some((n) => n.attributes["id"] === e.attributes["id"])), 30_000, () => `${httpIn.length}/${evs.length} over HTTP\n${daemon.stderr().slice(-3000)}`);
    const got = byId(httpIn);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]))!;
      assert.equal(ev.attributes["cebridgevia"], INSTANCE);
      assertSameEvent(withoutMarkers(ev), e);
    }
    const sub = emu.namespaceTopics.get("orders")!.subscriptions.get("bridge")!;
    await waitFor(() => sub.acknowledged.length >= evs.length, 10_000);
    assert.equal(sub.outstanding, 0);
    assert.equal(httpIn.length, evs.length, "each event once");
  });
});
