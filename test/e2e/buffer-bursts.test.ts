/**
 * Bursts from sources that cannot pause, through the built daemon with the default route settings
 * (no `buffer`, no `max_in_flight`: the default 64 MiB memory buffer in front of a window of 256):
 *   - 20,000 × 1 KiB on core NATS → nats_jetstream sink: every event reaches the stream (issue #13);
 *   - 20,000 MQTT QoS 0 → core NATS;
 *   - 20,000 core NATS → MQTT (QoS 1).
 * Each publisher sends the whole burst at once; nothing may be counted as overflow.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectAsync, type MqttClient } from "mqtt";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { createStream, idOf, ids, metric, natsClient, report, routeStatus, sample, streamMessages, streamTally, structuredEvent, Tally } from "../support/counting.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const N = 20_000;
/** Pads each structured event to about 1 KiB on the wire. */
const PAD = "x".repeat(880);

let nats: BrokerHandle;
let mosq: BrokerHandle;
let nc: NatsConnection;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  nats = await startNats();
  mosq = await startMosquitto();
  nc = await natsClient(nats.url);
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await nc?.close().catch(() => {});
  await nats?.close();
  await mosq?.close();
});

async function daemonWith(yaml: string): Promise<{ daemon: Daemon; admin: string }> {
  const admin = `127.0.0.1:${await freePort()}`;
  const daemon = startDaemon(`
engine: { instance_id: bursts, admin: { listen: "${admin}" }, shutdown_timeout: 10s, log: { level: warn } }
${yaml}`);
  cleanups.push(() => daemon.stop("SIGKILL"));
  await daemon.waitReady(admin, 30_000);
  return { daemon, admin };
}

interface BufferStatus {
  type: string;
  max_bytes: number;
  writes: number;
  reads: number;
  events: number;
  dropped: Record<string, number>;
}

async function bufferStatus(admin: string, route: string): Promise<BufferStatus> {
  return ((await routeStatus(admin, route)) as unknown as { buffer: BufferStatus }).buffer;
}

describe("e2e - bursts from sources that cannot pause (default memory buffer)", { timeout: 170_000 }, () => {
  test("burst - 20,000 × 1 KiB on core NATS → JetStream with the default configuration: every event reaches the stream", async (t) => {
    await createStream(nc, "BURST", ["burst.out"]);
    const { daemon, admin } = await daemonWith(`
sources:
  in: { type: nats, servers: ["${nats.url}"], subject: "burst.in" }
sinks:
  out: { type: nats_jetstream, servers: ["${nats.url}"], subject: burst.out, stream: BURST }
routes:
  - { name: burst, from: in, to: [out] }
`);
    const sent = ids("nb", N);
    const started = Date.now();
    for (const id of sent) nc.publish("burst.in", structuredEvent(id, { data: { id, pad: PAD } }));
    await nc.flush();
    let stored = 0;
    await waitFor(async () => (stored = await streamMessages(nc, "BURST")) >= N, 120_000, () => `stream holds ${stored}/${N}\n${daemon.stderr().slice(-2000)}`, 200);
    const drainSeconds = (Date.now() - started) / 1000;
    const tally = await streamTally(nc, "BURST");
    const buffer = await bufferStatus(admin, "burst");
    const overflow = await metric(admin, "cebridge_events_dropped_total", { route: "burst", reason: "overflow" });
    report(t, {
      scenario: "burst 20,000 × 1 KiB core NATS → JetStream, default config",
      sent: N,
      delivered: tally.distinct,
      duplicates: tally.duplicates,
      deadLettered: 0,
      lost: tally.missing(sent).length,
      note: `drained in ${drainSeconds.toFixed(1)} s (${Math.round(N / drainSeconds)} events/s); ${buffer.writes} waited in the memory buffer`,
    });
    assert.deepEqual(tally.missing(sent), [], `missing ${sample(tally.missing(sent))}`);
    assert.equal(overflow, 0);
    assert.equal(buffer.type, "memory");
    assert.equal(buffer.max_bytes, 64 * 1024 * 1024);
    assert.ok(buffer.writes > 256, `the burst outran the window and was buffered (${buffer.writes} buffered)`);
    assert.equal(buffer.reads, buffer.writes);
    assert.equal(buffer.events, 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("burst - 20,000 MQTT QoS 0 messages → core NATS with the default configuration: every one arrives", async (t) => {
    const seen = new Tally();
    const sub = nc.subscribe("mq.out", { callback: (_err, m) => seen.add(idOf({}, Buffer.from(m.data)) ?? "?") });
    cleanups.push(async () => sub.unsubscribe());
    await nc.flush();
    const { daemon, admin } = await daemonWith(`
sources:
  in: { type: mqtt, url: "${mosq.url}", topic: "mq/in", qos: 0 }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: mq.out, mode: structured }
routes:
  - { name: mq, from: in, to: [out] }
`);
    const pub: MqttClient = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "burst-pub" });
    cleanups.push(() => pub.endAsync(true));
    const sent = ids("mq", N);
    // In slices, so mqtt.js does not stack a drain listener per message.
    for (let i = 0; i < N; i += 500) await Promise.all(sent.slice(i, i + 500).map((id) => pub.publishAsync("mq/in", structuredEvent(id, { data: { id, pad: PAD } }), { qos: 0 })));
    await waitFor(() => seen.distinct >= N, 120_000, () => `received ${seen.distinct}/${N}\n${daemon.stderr().slice(-2000)}`, 100);
    const buffer = await bufferStatus(admin, "mq");
    report(t, {
      scenario: "burst 20,000 MQTT QoS 0 → core NATS, default config",
      sent: N,
      delivered: seen.distinct,
      duplicates: seen.duplicates,
      deadLettered: 0,
      lost: seen.missing(sent).length,
      note: `${buffer.writes} waited in the memory buffer`,
    });
    assert.deepEqual(seen.missing(sent), []);
    assert.equal(await metric(admin, "cebridge_events_dropped_total", { route: "mq", reason: "overflow" }), 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("burst - 20,000 core NATS messages → MQTT (QoS 1) with the default configuration: every one arrives", async (t) => {
    const rx: MqttClient = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "burst-rx" });
    cleanups.push(() => rx.endAsync(true));
    const seen = new Tally();
    rx.on("message", (_topic, payload) => seen.add(idOf({}, payload) ?? "?"));
    await rx.subscribeAsync("nm/out", { qos: 1 });
    const { daemon, admin } = await daemonWith(`
sources:
  in: { type: nats, servers: ["${nats.url}"], subject: "nm.in" }
sinks:
  out: { type: mqtt, url: "${mosq.url}", topic: nm/out, mode: structured }
routes:
  - { name: nm, from: in, to: [out] }
`);
    const sent = ids("nm", N);
    for (const id of sent) nc.publish("nm.in", structuredEvent(id, { data: { id, pad: PAD } }));
    await nc.flush();
    await waitFor(() => seen.distinct >= N, 150_000, () => `received ${seen.distinct}/${N}\n${daemon.stderr().slice(-2000)}`, 100);
    const buffer = await bufferStatus(admin, "nm");
    report(t, {
      scenario: "burst 20,000 core NATS → MQTT QoS 1, default config",
      sent: N,
      delivered: seen.distinct,
      duplicates: seen.duplicates,
      deadLettered: 0,
      lost: seen.missing(sent).length,
      note: `${buffer.writes} waited in the memory buffer`,
    });
    assert.deepEqual(seen.missing(sent), []);
    assert.equal(await metric(admin, "cebridge_events_dropped_total", { route: "nm", reason: "overflow" }), 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
