/**
 * Fault: the SINK's broker crashes (SIGKILL) mid-stream and comes back on the same port.
 *
 * 1. JetStream source → MQTT sink (QoS 1), mosquitto killed and restarted.
 *    How "delivered" is measured: the test mosquitto runs with `persistence false`, so a crash loses
 *    whatever the broker held for subscribers, including messages it already PUBACKed to cebridge.
 *    A subscriber's count would blame cebridge for the broker's own (configured) amnesia, and any
 *    message published between the restart and the subscriber's re-subscription has no recipient.
 *    So the sink's connection goes through a TCP tap (`startMqttTap`) that parses the MQTT frames it
 *    forwards and records the event ids whose PUBLISH the broker answered with a successful PUBACK:
 *    exactly the confirmations cebridge's sink is allowed to rely on, observed on the wire and
 *    independently of cebridge. No loss means: every id in the source stream was confirmed by the
 *    broker AND the durable consumer is fully acked. A bridge that acked a JetStream message without a
 *    PUBACK would leave an id unconfirmed forever: the test fails. A plain subscriber (clean: false,
 *    re-subscribing after the restart) is also counted, for information only.
 * 2. MQTT source (persistent session, QoS 1) → JetStream sink, nats-server killed and restarted (the
 *    JetStream store survives): every id must be in the sink stream.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connectAsync, type MqttClient } from "mqtt";
import type { NatsConnection } from "@nats-io/nats-core";
import { startMosquitto, startNats } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import {
  Tally,
  createStream,
  ids,
  idOf,
  natsClient,
  preload,
  report,
  sample,
  startMqttTap,
  streamMessages,
  streamTally,
  structuredEvent,
  waitConsumerDrained,
} from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe("faults - sink broker restart", { timeout: 120_000 }, () => {
  test("sink broker restart - JetStream → MQTT QoS 1: mosquitto killed mid-stream, every event confirmed by the broker", async (t) => {
    const N = 1500;
    const nats = await startNats();
    const mosq = await startMosquitto();
    cleanups.push(() => nats.close(), () => mosq.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const tap = await startMqttTap(mosq.port);
    cleanups.push(() => tap.close());

    const sent = ids("j2m", N);
    await createStream(nc, "SBR_IN", ["sbr.in.>"]);
    await preload(nc, "sbr.in.x", sent);

    // Informational subscriber: persistent session, re-subscribes when the restarted broker has none.
    const seen = new Tally();
    const observer = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "sbr-observer", clean: false, reconnectPeriod: 200, properties: { sessionExpiryInterval: 600 } });
    cleanups.push(() => observer.endAsync(true));
    observer.on("message", (_topic, payload) => {
      const id = idOf({}, payload);
      if (id) seen.add(id);
    });
    observer.on("connect", (ack) => {
      if (!ack.sessionPresent) observer.subscribe("sbr/out/#", { qos: 1 });
    });
    await observer.subscribeAsync("sbr/out/#", { qos: 1 });

    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: sbr-1, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SBR_IN, consumer: bridge, create: true, ack_wait: 5s }
sinks:
  mqtt_out: { type: mqtt, url: "${tap.url}", topic: "sbr/out/x", qos: 1, mode: structured }
routes:
  - { name: j2m, from: js_in, to: [mqtt_out], max_in_flight: 100, retry: { initial: 50ms, max: 500ms, max_elapsed: 20s } }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    await waitFor(() => tap.confirmed.distinct >= N * 0.3, 30_000, () => `30% confirmed: ${tap.confirmed.distinct}\n${daemon.stderr()}`, 5);
    const atCrash = tap.confirmed.distinct;
    await mosq.stop();
    await sleep(1500);
    await mosq.restart();

    await waitFor(() => tap.confirmed.hasAll(sent), 45_000, () => `confirmed ${tap.confirmed.distinct}/${N}, missing ${sample(tap.confirmed.missing(sent))}\n${daemon.stderr().slice(-3000)}`, 50);
    await waitConsumerDrained(nc, "SBR_IN", "bridge", 20_000);
    await sleep(500);

    const lost = tap.confirmed.missing(sent);
    report(t, {
      scenario: "sink broker restart: JetStream → MQTT (mosquitto SIGKILL)",
      sent: N,
      delivered: tap.confirmed.distinct,
      duplicates: tap.confirmed.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `crash after ${atCrash} confirmed; publishes on the wire ${tap.published.deliveries}; subscriber (info) saw ${seen.distinct} distinct, ${N - seen.distinct} lost by the non-persistent broker or unsubscribed window`,
    });
    assert.deepEqual(lost, [], "every event PUBACKed by the broker");
    assert.deepEqual(tap.confirmed.unexpected(sent), [], "nothing invented");
    assert.ok(tap.connections >= 2, "the sink reconnected through the tap");
    assert.equal(daemon.proc.exitCode, null, "daemon still running");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("sink broker restart - MQTT (persistent session) → JetStream: nats-server killed mid-stream, every event in the stream", async (t) => {
    const N = 800;
    const nats = await startNats();
    const mosq = await startMosquitto();
    cleanups.push(() => nats.close(), () => mosq.close());
    const nc: NatsConnection = await natsClient(nats.url);
    cleanups.push(() => nc.close());

    const admin = `127.0.0.1:${await freePort()}`;
    const daemon: Daemon = startDaemon(`
engine: { instance_id: sbr-2, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "sbr/in/#", qos: 1, client_id: sbr-source, connections: 1 }
sinks:
  js_out: { type: nats_jetstream, servers: ["${nats.url}"], subject: "sbr.out.x", stream: SBR_OUT, create: true, subjects: ["sbr.out.>"] }
routes:
  - { name: m2j, from: mqtt_in, to: [js_out], retry: { initial: 50ms, max: 500ms, max_elapsed: 20s } }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    const sent = ids("m2j", N);
    const pub: MqttClient = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "sbr-pub" });
    cleanups.push(() => pub.endAsync(true));
    // Every publish is PUBACKed by mosquitto and queued in cebridge's persistent session.
    await Promise.all(sent.map((id) => pub.publishAsync("sbr/in/x", structuredEvent(id), { qos: 1 })));

    await waitFor(async () => (await streamMessages(nc, "SBR_OUT")) >= N * 0.3, 30_000, () => `30% in the stream\n${daemon.stderr()}`, 10);
    const atCrash = await streamMessages(nc, "SBR_OUT");
    await nats.stop();
    await sleep(1500);
    await nats.restart();

    let stored = 0;
    await waitFor(async () => (stored = await streamMessages(nc, "SBR_OUT")) >= N, 45_000, () => `stream has ${stored}/${N}\n${daemon.stderr().slice(-3000)}`, 200);
    await sleep(1000); // anything still in flight lands (and would show as a duplicate)
    const inStream = await streamTally(nc, "SBR_OUT");
    const lost = inStream.missing(sent);
    report(t, {
      scenario: "sink broker restart: MQTT → JetStream (nats-server SIGKILL)",
      sent: N,
      delivered: inStream.distinct,
      duplicates: inStream.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `crash with ${atCrash} stored; the stream deduplicates by Nats-Msg-Id`,
    });
    assert.deepEqual(lost, [], "every event stored in the sink stream");
    assert.deepEqual(inStream.unexpected(sent), []);
    assert.equal(daemon.proc.exitCode, null, "daemon still running");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
