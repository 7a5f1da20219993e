/**
 * End to end through the built daemon with the real Pub/Sub client on both sides of the emulator:
 *   NATS → gcp_pubsub sink (binary)     → topic-bin → gcp_pubsub source → MQTT 5 binary
 *   NATS → gcp_pubsub sink (structured) → topic-str → gcp_pubsub source → MQTT 5 structured
 *   Google's example events / plain messages  → topic-plain → gcp_pubsub source → MQTT 5 structured
 * Every attribute and data byte is compared at the end, and in the middle on the Pub/Sub wire; the
 * plain message must become a messagePublished event whose data validates against Google's schema.
 * A W3C trace entering over NATS headers (tracing off) rides the googclient_ attributes to the MQTT
 * side's user properties and arrives in the extension.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { connectAsync, type IPublishPacket, type MqttClient } from "mqtt";
import type { PubSub } from "@google-cloud/pubsub";
import { STRUCTURED_CONTENT_TYPE } from "../../connectors/gcp-pubsub/mapping.js";
import { decodeMqttMessage, type UserProperties } from "../../connectors/mqtt/mapping.js";
import { encodeNatsMessage } from "../../connectors/nats/mapping.js";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import type { PubSubEmulator } from "../emulators/pubsub/server.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { PROJECT, decodeStored, freshTopic, realClient, startPubSub, type Names } from "../support/pubsub.js";
import { messagePublishedDataProblem, pubsubVector } from "../support/pubsub-vectors.js";
import { waitFor } from "../support/wait.js";

const INSTANCE = "e2e-gcp";
let em: PubSubEmulator;
let nats: BrokerHandle;
let mosq: BrokerHandle;
let nc: NatsConnection;
let reader: MqttClient;
let daemon: Daemon;
let admin: string;
let client: PubSub;
let bin: Names;
let str: Names;
let plain: Names;
const out: Record<"bin" | "str" | "plain", CloudEvent[]> = { bin: [], str: [], plain: [] };
/** The transport trace context of each MQTT message (its user properties), by event id. */
const mqttTraces = new Map<string, TraceContext | undefined>();

function yaml(): string {
  const ps = (extra: string) => `{ type: gcp_pubsub, project: ${PROJECT}, endpoint: "${em.endpoint}", ${extra} }`;
  return `
engine:
  instance_id: ${INSTANCE}
  admin: { listen: "${admin}" }
  shutdown_timeout: 5s
  log: { level: warn }
sources:
  nats_bin: { type: nats, servers: ["${nats.url}"], subject: "gcp.bin.>" }
  nats_str: { type: nats, servers: ["${nats.url}"], subject: "gcp.str.>" }
  ps_bin: ${ps(`subscription: ${bin.subscriptionId}`)}
  ps_str: ${ps(`subscription: ${str.subscriptionId}`)}
  ps_plain: ${ps(`subscription: ${plain.subscriptionId}`)}
sinks:
  to_bin: ${ps(`topic: ${bin.topicId}, mode: binary`)}
  to_str: ${ps(`topic: ${str.topicId}, mode: structured`)}
  mqtt_bin: { type: mqtt, url: "${mosq.url}", topic: "gcp/bin/{type}" }
  mqtt_str: { type: mqtt, url: "${mosq.url}", topic: "gcp/str/{type}", mode: structured }
  mqtt_plain: { type: mqtt, url: "${mosq.url}", topic: "gcp/plain/{type}", mode: structured }
routes:
  - { name: nats-to-pubsub-binary, from: nats_bin, to: [to_bin] }
  - { name: nats-to-pubsub-structured, from: nats_str, to: [to_str] }
  # The same daemon wrote these events: without this the loop check would drop them.
  - { name: pubsub-binary-to-mqtt, from: ps_bin, to: [mqtt_bin], loop_prevention: false }
  - { name: pubsub-structured-to-mqtt, from: ps_str, to: [mqtt_str], loop_prevention: false }
  - { name: pubsub-plain-to-mqtt, from: ps_plain, to: [mqtt_plain] }
`;
}

function decodeMqtt(topic: string, payload: Buffer, packet: IPublishPacket): CloudEvent {
  const d = decodeMqttMessage(
    { topic, payload, protocolVersion: 5, contentType: packet.properties?.contentType, userProperties: packet.properties?.userProperties as UserProperties | undefined },
    { source: "mqtt://x:1", now: () => new Date(), newId: () => "n" },
  );
  assert.equal(d.invalid, undefined, d.invalid?.message);
  mqttTraces.set(String(d.event.attributes["id"]), d.trace);
  return d.event;
}

/** The event without the loop markers the first route added (DESIGN §4). */
function withoutMarkers(ev: CloudEvent): CloudEvent {
  const { cebridgevia: _v, cebridgehops: _h, ...attributes } = ev.attributes;
  return ev.data === undefined ? { attributes } : { attributes, data: ev.data };
}

function publishNats(subject: string, e: CloudEvent): void {
  const m = encodeNatsMessage(e, "binary");
  const h = natsHeaders();
  for (const [k, v] of m.headers) h.append(k, v);
  nc.publish(subject, m.payload, { headers: h });
}

before(async () => {
  em = await startPubSub();
  bin = freshTopic(em, "bin");
  str = freshTopic(em, "str");
  plain = freshTopic(em, "plain");
  nats = await startNats();
  mosq = await startMosquitto();
  admin = `127.0.0.1:${await freePort()}`;
  nc = await connect({ servers: nats.url });
  reader = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "e2e-gcp-reader" });
  reader.on("message", (topic, payload, packet) => out[topic.split("/")[1] as "bin" | "str" | "plain"].push(decodeMqtt(topic, payload, packet)));
  await reader.subscribeAsync("gcp/#", { qos: 1 });
  client = realClient(em);
  daemon = startDaemon(yaml());
  await daemon.waitReady(admin, 30_000);
});

after(async () => {
  if (daemon) {
    const code = await daemon.stop("SIGTERM");
    if (code !== 0) process.stderr.write(daemon.stderr());
  }
  await client?.close();
  await reader?.endAsync();
  await nc?.close();
  await nats?.close();
  await mosq?.close();
  await em?.close();
});

describe("e2e nats → pubsub → pubsub → mqtt", { timeout: 120_000 }, () => {
  for (const mode of ["bin", "str"] as const) {
    it(`e2e - NATS → Pub/Sub (${mode === "bin" ? "binary" : "structured"}) → Pub/Sub source → MQTT keeps every attribute and data byte`, async () => {
      const evs = [...richEvents(`e2e-${mode}`), ...sampleEvents(30, `e2e-${mode}`)];
      for (const e of evs) publishNats(`gcp.${mode}.x`, e);
      await nc.flush();
      await waitFor(() => out[mode].length >= evs.length, 30_000, () => `${out[mode].length}/${evs.length} on MQTT\n${daemon.stderr()}`);

      // On the Pub/Sub wire: the mode asked for, the loop markers of the first hop.
      const names = mode === "bin" ? bin : str;
      const wire = byId(em.published(names.topic).map((m) => decodeStored(m)));
      for (const m of em.published(names.topic)) {
        if (mode === "str") assert.deepEqual(m.attributes, { "content-type": STRUCTURED_CONTENT_TYPE });
        else {
          assert.equal(m.attributes["ce-cebridgevia"], INSTANCE);
          assert.ok(!Object.keys(m.attributes).some((k) => k !== "content-type" && !k.startsWith("ce-")));
        }
      }
      const got = byId(out[mode]);
      for (const e of evs) {
        const id = String(e.attributes["id"]);
        // The input came over NATS binary mode, which carries no JSON types: compare as strings.
        assertSameEvent(withoutMarkers(wire.get(id)!), e, { stringly: true, what: `${id} on Pub/Sub` });
        const ev = got.get(id);
        assert.ok(ev, `${id} arrived on MQTT`);
        assert.equal(ev.attributes["cebridgevia"], INSTANCE);
        assert.equal(String(ev.attributes["cebridgehops"]), "1");
        assertSameEvent(withoutMarkers(ev), e, { stringly: true, what: `${id} on MQTT` });
      }
      // Everything was acknowledged: nothing leased or waiting on the subscription.
      await waitFor(() => em.subscription(names.subscription).leases.size === 0 && em.subscription(names.subscription).backlog === 0, 10_000, "subscription drained");
      assert.equal(em.subscription(names.subscription).stats.nacks, 0);
    });
  }

  it("e2e - tracing off: a trace entering over NATS headers rides the googclient_ attributes (binary and structured) to MQTT, and into the extension; so does a publisher's own googclient_traceparent", async () => {
    const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    for (const mode of ["bin", "str"] as const) {
      const e: CloudEvent = { attributes: { specversion: "1.0", id: `traced-${mode}`, source: "/client", type: "demo.traced", datacontenttype: "text/plain" }, data: { kind: "text", text: "t" } };
      const m = encodeNatsMessage(e, "structured");
      const h = natsHeaders();
      for (const [k, v] of m.headers) h.append(k, v);
      h.append("traceparent", tp);
      h.append("tracestate", "vendor=1");
      nc.publish(`gcp.${mode}.x`, m.payload, { headers: h });
    }
    await nc.flush();
    await waitFor(() => out.bin.some((e) => e.attributes["id"] === "traced-bin") && out.str.some((e) => e.attributes["id"] === "traced-str"), 20_000, () => daemon.stderr());
    for (const mode of ["bin", "str"] as const) {
      const wire = em.published((mode === "bin" ? bin : str).topic).find((m) => decodeStored(m).attributes["id"] === `traced-${mode}`)!;
      assert.equal(wire.attributes["googclient_traceparent"], tp, `${mode}: the forwarded hop on the Pub/Sub wire`);
      assert.equal(wire.attributes["googclient_tracestate"], "vendor=1");
      const ev = out[mode].find((e) => e.attributes["id"] === `traced-${mode}`)!;
      assert.equal(ev.attributes["traceparent"], tp, `${mode}: the extension added at the NATS hop`);
      assert.equal(ev.attributes["tracestate"], "vendor=1");
      // MQTT binary mode: the user property is the extension itself; structured keeps the hop apart.
      assert.deepEqual(mqttTraces.get(`traced-${mode}`), { traceparent: tp, tracestate: "vendor=1" }, `${mode}: the MQTT user properties`);
    }
    const other = "00-11111111111111111111111111111111-2222222222222222-01";
    const id = await client.topic(plain.topicId).publishMessage({ data: Buffer.from("traced plain"), attributes: { googclient_traceparent: other } });
    await waitFor(() => out.plain.some((e) => e.attributes["id"] === id), 20_000, () => daemon.stderr());
    assert.equal(out.plain.find((e) => e.attributes["id"] === id)!.attributes["traceparent"], other);
    assert.deepEqual(mqttTraces.get(id), { traceparent: other });
  });

  it("e2e - Google's structured example event arrives exactly as written", async () => {
    const vector = pubsubVector("structured_pubsub_MessagePublishedData.json");
    await client.topic(plain.topicId).publishMessage({ data: Buffer.from(JSON.stringify(vector)), attributes: { "content-type": "application/cloudevents+json; charset=UTF-8" } });
    await waitFor(() => out.plain.some((e) => e.attributes["id"] === vector["id"]), 20_000, () => daemon.stderr());
    const ev = out.plain.find((e) => e.attributes["id"] === vector["id"])!;
    const { data, ...attributes } = vector;
    assert.deepEqual({ ...withoutMarkers(ev).attributes }, attributes);
    assert.deepEqual((ev.data as { value: unknown }).value, data);
  });

  it("e2e - Google's binary example (ce- attributes, MessagePublishedData as data) decodes to its attributes and data", async () => {
    const vector = pubsubVector("binary_pubsub_MessagePublishedData-complex.json");
    const attributes = {
      "ce-specversion": "1.0",
      "ce-id": "binary-example-1",
      "ce-source": `//pubsub.googleapis.com/projects/test-project/topics/my-topic`,
      "ce-type": "google.cloud.pubsub.topic.v1.messagePublished",
      "ce-time": "2021-02-05T04:06:14.109Z",
      "ce-datacontenttype": "application/json",
    };
    await client.topic(plain.topicId).publishMessage({ data: Buffer.from(JSON.stringify(vector)), attributes });
    await waitFor(() => out.plain.some((e) => e.attributes["id"] === "binary-example-1"), 20_000, () => daemon.stderr());
    const ev = withoutMarkers(out.plain.find((e) => e.attributes["id"] === "binary-example-1")!);
    assert.deepEqual({ ...ev.attributes }, Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k.slice(3), v])));
    assert.deepEqual((ev.data as { value: unknown }).value, vector);
    assert.equal(messagePublishedDataProblem(vector), undefined);
  });

  it("e2e - a plain message becomes messagePublished whose data validates against Google's schema", async () => {
    const data = Buffer.from("test message 3");
    const id = await client.topic(plain.topicId, { messageOrdering: true }).publishMessage({ data, attributes: { attr1: "attr1-value" }, orderingKey: "ordering-key" });
    await waitFor(() => out.plain.some((e) => e.attributes["id"] === id), 20_000, () => daemon.stderr());
    const ev = withoutMarkers(out.plain.find((e) => e.attributes["id"] === id)!);
    assert.equal(ev.attributes["type"], "google.cloud.pubsub.topic.v1.messagePublished");
    assert.equal(ev.attributes["source"], `//pubsub.googleapis.com/${plain.topic}`);
    assert.equal(ev.attributes["partitionkey"], "ordering-key");
    const value = (ev.data as { value: Record<string, unknown> }).value;
    assert.equal(messagePublishedDataProblem(value), undefined, JSON.stringify(value));
    const expected = structuredClone(pubsubVector("binary_pubsub_MessagePublishedData-complex.json")) as { subscription: string; message: Record<string, unknown> };
    expected.subscription = plain.subscription;
    expected.message["messageId"] = id;
    expected.message["publishTime"] = ev.attributes["time"];
    assert.deepEqual(value, expected);
  });
});
