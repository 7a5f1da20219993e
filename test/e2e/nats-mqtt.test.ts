/**
 * End to end over real brokers: the built daemon runs three routes
 *   NATS (core)  → MQTT 5 (binary)
 *   MQTT 5       → JetStream (structured, deduplicating)
 *   JetStream    → MQTT 5 (structured)
 * against private nats-server and mosquitto processes, and every attribute and data byte is compared.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { connectAsync, type IPublishPacket, type MqttClient } from "mqtt";
import { decodeMqttMessage, encodeMqttMessage, type UserProperties } from "../../connectors/mqtt/mapping.js";
import { decodeNatsMessage, encodeNatsMessage } from "../../connectors/nats/mapping.js";
import { headerEntries } from "../../connectors/nats/inbound.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const INSTANCE = "e2e-bridge";
let nats: BrokerHandle;
let mosq: BrokerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
let mqttPub: MqttClient;
let daemon: Daemon;
let admin: string;
const mqttOut: CloudEvent[] = [];
const mqttFinal: CloudEvent[] = [];
let mqttReader: MqttClient;

function yaml(): string {
  return `
engine:
  instance_id: ${INSTANCE}
  admin: { listen: "${admin}" }
  shutdown_timeout: 5s
  log: { level: warn }
sources:
  nats_in:
    type: nats
    servers: ["${nats.url}"]
    subject: "e2e.in.>"
  mqtt_in:
    type: mqtt
    url: "${mosq.url}"
    topic: "e2e/in/#"
  js_in:
    type: nats_jetstream
    servers: ["${nats.url}"]
    stream: E2E_IN
    consumer: bridge
    create: true
    subjects: ["e2e.js.in.>"]
    ack_wait: 5s
sinks:
  mqtt_out:
    type: mqtt
    url: "${mosq.url}"
    topic: "e2e/out/{type}"
  js_out:
    type: nats_jetstream
    servers: ["${nats.url}"]
    subject: "e2e.js.out.{type}"
    stream: E2E_OUT
    create: true
    subjects: ["e2e.js.out.>"]
  mqtt_final:
    type: mqtt
    url: "${mosq.url}"
    topic: "e2e/final/{subject:-none}"
    mode: structured
routes:
  - name: nats-to-mqtt
    from: nats_in
    to: [mqtt_out]
  - name: mqtt-to-jetstream
    from: mqtt_in
    to: [js_out]
  - name: jetstream-to-mqtt
    from: js_in
    to: [mqtt_final]
`;
}

function decodeMqtt(topic: string, payload: Buffer, packet: IPublishPacket): CloudEvent {
  const d = decodeMqttMessage(
    { topic, payload, protocolVersion: 5, contentType: packet.properties?.contentType, userProperties: packet.properties?.userProperties as UserProperties | undefined },
    { source: "mqtt://x:1", now: () => new Date(), newId: () => "n" },
  );
  assert.equal(d.invalid, undefined, d.invalid?.message);
  return d.event;
}

/** The event without the loop markers the daemon adds on every sink write (DESIGN §4). */
function withoutMarkers(ev: CloudEvent): CloudEvent {
  const { cebridgevia: _v, cebridgehops: _h, ...attributes } = ev.attributes;
  return ev.data === undefined ? { attributes } : { attributes, data: ev.data };
}

function assertMarkers(ev: CloudEvent): void {
  assert.equal(ev.attributes["cebridgevia"], INSTANCE);
  assert.equal(String(ev.attributes["cebridgehops"]), "1");
}

before(async () => {
  nats = await startNats({ jetstream: true });
  mosq = await startMosquitto();
  admin = `127.0.0.1:${await freePort()}`;
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  mqttPub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "e2e-pub" });
  mqttReader = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "e2e-reader" });
  mqttReader.on("message", (topic, payload, packet) => {
    const ev = decodeMqtt(topic, payload, packet);
    if (topic.startsWith("e2e/out/")) mqttOut.push(ev);
    else if (topic.startsWith("e2e/final/")) mqttFinal.push(ev);
  });
  await mqttReader.subscribeAsync(["e2e/out/#", "e2e/final/#"], { qos: 1 });
  daemon = startDaemon(yaml());
  await daemon.waitReady(admin, 30_000);
});

after(async () => {
  if (daemon) {
    const code = await daemon.stop("SIGTERM");
    if (code !== 0) process.stderr.write(daemon.stderr());
  }
  await mqttPub?.endAsync();
  await mqttReader?.endAsync();
  await nc?.close();
  await nats?.close();
  await mosq?.close();
});

describe("e2e nats ⇄ mqtt ⇄ jetstream", { timeout: 120_000 }, () => {
  it("e2e - NATS (binary ce- headers) → daemon → MQTT 5 binary keeps every attribute and data byte", async () => {
    const evs = [...richEvents("n2m"), ...sampleEvents(20, "n2m")];
    for (const e of evs) {
      const out = encodeNatsMessage(e, "binary");
      const h = natsHeaders();
      for (const [k, v] of out.headers) h.append(k, v);
      nc.publish(`e2e.in.${String(e.attributes["type"])}`, out.payload, { headers: h });
    }
    await nc.flush();
    await waitFor(() => mqttOut.length >= evs.length, 30_000, () => `${mqttOut.length}/${evs.length} on MQTT\n${daemon.stderr()}`);
    const got = byId(mqttOut);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]));
      assert.ok(ev, `event ${String(e.attributes["id"])} arrived`);
      assertMarkers(ev);
      assertSameEvent(withoutMarkers(ev), e, { stringly: true });
    }
  });

  it("e2e - MQTT 5 (structured) → daemon → JetStream stores each event once with its JSON types", async () => {
    const evs = [...richEvents("m2j"), ...sampleEvents(20, "m2j")];
    for (const e of evs) {
      const out = encodeMqttMessage(e, "structured", 5);
      await mqttPub.publishAsync("e2e/in/x", out.payload, { qos: 1, properties: out.properties ?? {} });
    }
    await waitFor(async () => {
      try {
        return (await jsm.streams.info("E2E_OUT")).state.messages >= evs.length;
      } catch {
        return false;
      }
    }, 30_000, () => `stream E2E_OUT incomplete\n${daemon.stderr()}`);
    const stored: CloudEvent[] = [];
    const oc = await js.consumers.get("E2E_OUT");
    const info = await jsm.streams.info("E2E_OUT");
    assert.equal(info.state.messages, evs.length, "no duplicates in the stream");
    for (let i = 0; i < evs.length; i++) {
      const m = await oc.next({ expires: 5000 });
      assert.ok(m, "message from the stream");
      const d = decodeNatsMessage(
        { subject: m.subject, headers: headerEntries(m.headers), payload: m.data, jetstream: { stream: "E2E_OUT", seq: m.seq } },
        { plainSource: "x", plainType: "x", server: "x:1", now: () => new Date(), newId: () => "n" },
      );
      assert.equal(d.invalid, undefined);
      assert.ok(m.headers?.get("Nats-Msg-Id"), "published with a Nats-Msg-Id");
      stored.push(d.event);
    }
    const got = byId(stored);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]))!;
      assert.ok(ev, `event ${String(e.attributes["id"])} stored`);
      assertMarkers(ev);
      assert.equal(typeof ev.attributes["cebridgehops"], "number", "structured keeps the Integer type");
      assertSameEvent(withoutMarkers(ev), e);
    }
  });

  it("e2e - JetStream (binary) → daemon → MQTT 5 structured, then nothing is redelivered", async () => {
    const evs = [...richEvents("j2m"), ...sampleEvents(20, "j2m")];
    for (const e of evs) {
      const out = encodeNatsMessage(e, "binary");
      const h = natsHeaders();
      for (const [k, v] of out.headers) h.append(k, v);
      await js.publish("e2e.js.in.x", out.payload, { headers: h });
    }
    await waitFor(() => mqttFinal.length >= evs.length, 30_000, () => `${mqttFinal.length}/${evs.length} on MQTT\n${daemon.stderr()}`);
    const got = byId(mqttFinal);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]))!;
      assert.ok(ev, `event ${String(e.attributes["id"])} arrived`);
      assertMarkers(ev);
      assertSameEvent(withoutMarkers(ev), e, { stringly: true });
    }
    // Every message was acked: the durable has nothing pending or unacknowledged.
    await waitFor(async () => {
      const ci = await jsm.consumers.info("E2E_IN", "bridge");
      return ci.num_ack_pending === 0 && ci.num_pending === 0;
    }, 10_000, "consumer drained and acked");
    const ci = await jsm.consumers.info("E2E_IN", "bridge");
    assert.equal(ci.config.max_ack_pending, 256, "max_ack_pending = the route's window");
  });

  it("e2e - JetStream → MQTT carries on after nats-server crashes and restarts with the same store", async () => {
    const before = mqttFinal.length;
    await nats.stop();
    await nats.restart();
    const evs = sampleEvents(10, "crash");
    for (const e of evs) {
      const out = encodeNatsMessage(e, "binary");
      const h = natsHeaders();
      for (const [k, v] of out.headers) h.append(k, v);
      // The test's own client reconnects too; retry until the server is back.
      await waitFor(async () => {
        try {
          await js.publish("e2e.js.in.x", out.payload, { headers: h, msgID: String(e.attributes["id"]) });
          return true;
        } catch {
          return false;
        }
      }, 20_000, "publish after restart", 200);
    }
    // Redeliveries after the crash may bring duplicates, so wait for every id, not for a count.
    const arrived = () => byId(mqttFinal.slice(before));
    await waitFor(() => evs.every((e) => arrived().has(String(e.attributes["id"]))), 30_000, () => `${arrived().size}/${evs.length}\n${daemon.stderr()}`);
    const got = arrived();
    for (const e of evs) assertSameEvent(withoutMarkers(got.get(String(e.attributes["id"]))!), e, { stringly: true });
  });

  it("e2e - SIGTERM stops the daemon cleanly (exit code 0)", async () => {
    const code = await daemon.stop("SIGTERM");
    assert.equal(code, 0, daemon.stderr());
  });
});
