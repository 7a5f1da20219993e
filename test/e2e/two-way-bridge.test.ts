/**
 * A two-way bridge, NATS subject `bridge.out` ⇄ MQTT topic `bridge/in`: a real loop.
 *   route a: nats `bridge.out` → mqtt `bridge/in`
 *   route b: mqtt `bridge/in` → nats `bridge.out`
 * Events are published once on each side by the test; observers on both sides count copies per id
 * after a quiet period.
 *
 * - One daemon: each event arrives exactly once on the other side; its own side sees only the
 *   original (the copy coming back carries this instance in `cebridgevia` and is cut at once).
 * - Two daemons (a on one, b on the other, different instance_id): each event arrives exactly once on
 *   the other side; the other daemon, not in `cebridgevia` yet, carries it back to the origin side
 *   once (hops 2), where the first daemon recognises itself and cuts it. So the origin side sees one
 *   echo per event: a bounded cycle of exactly one return, never more.
 * - Two daemons with `max_hops: 1`: no echo at all (an event that already crossed a bridge is not
 *   bridged again).
 * - `loop_prevention: false`: one event cycles forever (one copy at a time: no amplification). The
 *   daemon is killed after at most 1 s, and the count grew past 1.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connectAsync, type IPublishPacket } from "mqtt";
import type { NatsConnection } from "@nats-io/nats-core";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { Tally, ids, idOf, metric, natsClient, report, structuredEvent } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Sides {
  nats: BrokerHandle;
  mosq: BrokerHandle;
  nc: NatsConnection;
  onNats: Tally;
  onMqtt: Tally;
  publishNats(id: string): void;
  publishMqtt(id: string): Promise<void>;
}

async function sides(): Promise<Sides> {
  const nats = await startNats({ jetstream: false });
  const mosq = await startMosquitto();
  cleanups.push(() => nats.close(), () => mosq.close());
  const nc = await natsClient(nats.url);
  const watcher = await natsClient(nats.url);
  cleanups.push(() => nc.close(), () => watcher.close());
  const onNats = new Tally();
  const onMqtt = new Tally();
  watcher.subscribe("bridge.out", {
    callback: (_err, m) => {
      const id = idOf({}, Buffer.from(m.data));
      if (id) onNats.add(id);
    },
  });
  await watcher.flush();
  const pub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: `tw-pub-${mosq.port}` });
  const sub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: `tw-sub-${mosq.port}` });
  cleanups.push(() => pub.endAsync(true), () => sub.endAsync(true));
  sub.on("message", (_topic, payload, packet: IPublishPacket) => {
    const up = packet.properties?.userProperties as Record<string, string | string[]> | undefined;
    const id = typeof up?.["id"] === "string" ? up["id"] : idOf({}, payload);
    if (id) onMqtt.add(id);
  });
  await sub.subscribeAsync("bridge/in", { qos: 1 });
  return {
    nats,
    mosq,
    nc,
    onNats,
    onMqtt,
    publishNats: (id) => nc.publish("bridge.out", structuredEvent(id)),
    publishMqtt: async (id) => {
      await pub.publishAsync("bridge/in", structuredEvent(id), { qos: 1 });
    },
  };
}

function components(s: Sides, inst: string): { sources: string; sinks: string } {
  return {
    sources: `
  nats_in: { type: nats, servers: ["${s.nats.url}"], subject: bridge.out }
  mqtt_in: { type: mqtt, url: "${s.mosq.url}", topic: bridge/in, client_id: ${inst}-src }`,
    sinks: `
  mqtt_out: { type: mqtt, url: "${s.mosq.url}", topic: bridge/in, client_id: ${inst}-sink }
  nats_out: { type: nats, servers: ["${s.nats.url}"], subject: bridge.out }`,
  };
}

async function daemon(yaml: string, admin: string): Promise<Daemon> {
  const d = startDaemon(yaml);
  cleanups.push(() => d.stop("SIGKILL"));
  await d.waitReady(admin, 30_000);
  return d;
}

/** Publishes K events on each side, waits until each reached the other side, then a quiet period. */
async function exchange(s: Sides, tag: string, k: number): Promise<{ fromNats: string[]; fromMqtt: string[] }> {
  const fromNats = ids(`${tag}-n`, k);
  const fromMqtt = ids(`${tag}-m`, k);
  for (const id of fromNats) s.publishNats(id);
  await s.nc.flush();
  for (const id of fromMqtt) await s.publishMqtt(id);
  await waitFor(() => s.onMqtt.hasAll(fromNats) && s.onNats.hasAll(fromMqtt), 30_000, () => `on MQTT ${s.onMqtt.distinct}, on NATS ${s.onNats.distinct}`, 20);
  await sleep(1500); // quiet period: any cycle would keep adding copies
  return { fromNats, fromMqtt };
}

function copies(t: Tally, list: readonly string[]): number[] {
  return [...new Set(list.map((id) => t.counts.get(id) ?? 0))].sort();
}

describe("e2e - two-way bridge NATS ⇄ MQTT", { timeout: 120_000 }, () => {
  test("two-way bridge - one daemon with both routes: exactly once on the other side, no echo, loop cut counted", async (t) => {
    const s = await sides();
    const admin = `127.0.0.1:${await freePort()}`;
    const c = components(s, "tw1");
    const d = await daemon(
      `
engine: { instance_id: tw-1, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources: ${c.sources}
sinks: ${c.sinks}
routes:
  - { name: a, from: nats_in, to: [mqtt_out] }
  - { name: b, from: mqtt_in, to: [nats_out] }
`,
      admin,
    );
    const K = 50;
    const { fromNats, fromMqtt } = await exchange(s, "one", K);
    const loopA = await metric(admin, "cebridge_events_dropped_total", { route: "a", reason: "loop" });
    const loopB = await metric(admin, "cebridge_events_dropped_total", { route: "b", reason: "loop" });
    report(t, {
      scenario: "two-way bridge, one daemon",
      sent: 2 * K,
      delivered: fromNats.filter((id) => s.onMqtt.has(id)).length + fromMqtt.filter((id) => s.onNats.has(id)).length,
      duplicates: s.onMqtt.duplicates + s.onNats.duplicates,
      deadLettered: 0,
      lost: s.onMqtt.missing(fromNats).length + s.onNats.missing(fromMqtt).length,
      note: `loop drops: route a ${loopA}, route b ${loopB}`,
    });
    assert.deepEqual(copies(s.onMqtt, fromNats), [1], "NATS-born events: exactly one copy on MQTT");
    assert.deepEqual(copies(s.onNats, fromMqtt), [1], "MQTT-born events: exactly one copy on NATS");
    assert.deepEqual(copies(s.onNats, fromNats), [1], "NATS-born events never come back to NATS (only the original)");
    assert.deepEqual(copies(s.onMqtt, fromMqtt), [1], "MQTT-born events never come back to MQTT");
    assert.equal(loopB, K, "route b cut every NATS-born event coming back");
    assert.equal(loopA, K, "route a cut every MQTT-born event coming back");
    assert.equal(await d.stop(), 0, d.stderr());
  });

  test("two-way bridge - split across two daemons: exactly once on the other side, one bounded echo to the origin side, cut by the origin daemon", async (t) => {
    const s = await sides();
    const adminA = `127.0.0.1:${await freePort()}`;
    const adminB = `127.0.0.1:${await freePort()}`;
    const da = await daemon(
      `
engine: { instance_id: tw-a, admin: { listen: "${adminA}" }, shutdown_timeout: 5s, log: { level: error } }
sources: { nats_in: { type: nats, servers: ["${s.nats.url}"], subject: bridge.out } }
sinks: { mqtt_out: { type: mqtt, url: "${s.mosq.url}", topic: bridge/in, client_id: twa-sink } }
routes:
  - { name: a, from: nats_in, to: [mqtt_out] }
`,
      adminA,
    );
    const db = await daemon(
      `
engine: { instance_id: tw-b, admin: { listen: "${adminB}" }, shutdown_timeout: 5s, log: { level: error } }
sources: { mqtt_in: { type: mqtt, url: "${s.mosq.url}", topic: bridge/in, client_id: twb-src } }
sinks: { nats_out: { type: nats, servers: ["${s.nats.url}"], subject: bridge.out } }
routes:
  - { name: b, from: mqtt_in, to: [nats_out] }
`,
      adminB,
    );
    const K = 50;
    const { fromNats, fromMqtt } = await exchange(s, "split", K);
    const loopA = await metric(adminA, "cebridge_events_dropped_total", { route: "a", reason: "loop" });
    const loopB = await metric(adminB, "cebridge_events_dropped_total", { route: "b", reason: "loop" });
    report(t, {
      scenario: "two-way bridge, two daemons (default max_hops)",
      sent: 2 * K,
      delivered: fromNats.filter((id) => s.onMqtt.has(id)).length + fromMqtt.filter((id) => s.onNats.has(id)).length,
      duplicates: s.onMqtt.duplicates + s.onNats.duplicates,
      deadLettered: 0,
      lost: s.onMqtt.missing(fromNats).length + s.onNats.missing(fromMqtt).length,
      note: `each origin side sees original + 1 echo; loop drops: daemon a ${loopA}, daemon b ${loopB}`,
    });
    assert.deepEqual(copies(s.onMqtt, fromNats), [1], "NATS-born events: exactly one copy on MQTT");
    assert.deepEqual(copies(s.onNats, fromMqtt), [1], "MQTT-born events: exactly one copy on NATS");
    assert.deepEqual(copies(s.onNats, fromNats), [2], "NATS-born events: the original plus exactly one echo on NATS, then cut");
    assert.deepEqual(copies(s.onMqtt, fromMqtt), [2], "MQTT-born events: the original plus exactly one echo on MQTT, then cut");
    assert.equal(loopA, K, "daemon a cut the NATS-born echoes");
    assert.equal(loopB, K, "daemon b cut the MQTT-born echoes");
    assert.equal(await da.stop(), 0, da.stderr());
    assert.equal(await db.stop(), 0, db.stderr());
  });

  test("two-way bridge - split across two daemons with max_hops: 1: exactly once on the other side and no echo", async (t) => {
    const s = await sides();
    const adminA = `127.0.0.1:${await freePort()}`;
    const adminB = `127.0.0.1:${await freePort()}`;
    const da = await daemon(
      `
engine: { instance_id: tw-a, admin: { listen: "${adminA}" }, shutdown_timeout: 5s, log: { level: error } }
sources: { nats_in: { type: nats, servers: ["${s.nats.url}"], subject: bridge.out } }
sinks: { mqtt_out: { type: mqtt, url: "${s.mosq.url}", topic: bridge/in, client_id: twa-sink } }
routes:
  - { name: a, from: nats_in, to: [mqtt_out], max_hops: 1 }
`,
      adminA,
    );
    const db = await daemon(
      `
engine: { instance_id: tw-b, admin: { listen: "${adminB}" }, shutdown_timeout: 5s, log: { level: error } }
sources: { mqtt_in: { type: mqtt, url: "${s.mosq.url}", topic: bridge/in, client_id: twb-src } }
sinks: { nats_out: { type: nats, servers: ["${s.nats.url}"], subject: bridge.out } }
routes:
  - { name: b, from: mqtt_in, to: [nats_out], max_hops: 1 }
`,
      adminB,
    );
    const K = 50;
    const { fromNats, fromMqtt } = await exchange(s, "hop1", K);
    const loopA = await metric(adminA, "cebridge_events_dropped_total", { route: "a", reason: "loop" });
    const loopB = await metric(adminB, "cebridge_events_dropped_total", { route: "b", reason: "loop" });
    report(t, {
      scenario: "two-way bridge, two daemons, max_hops 1",
      sent: 2 * K,
      delivered: fromNats.filter((id) => s.onMqtt.has(id)).length + fromMqtt.filter((id) => s.onNats.has(id)).length,
      duplicates: s.onMqtt.duplicates + s.onNats.duplicates,
      deadLettered: 0,
      lost: s.onMqtt.missing(fromNats).length + s.onNats.missing(fromMqtt).length,
      note: `loop drops: daemon a ${loopA}, daemon b ${loopB}`,
    });
    assert.deepEqual(copies(s.onMqtt, fromNats), [1]);
    assert.deepEqual(copies(s.onNats, fromMqtt), [1]);
    assert.deepEqual(copies(s.onNats, fromNats), [1], "no echo");
    assert.deepEqual(copies(s.onMqtt, fromMqtt), [1], "no echo");
    assert.equal(loopB, K, "daemon b cut the events daemon a bridged");
    assert.equal(loopA, K, "daemon a cut the events daemon b bridged");
    assert.equal(await da.stop(), 0, da.stderr());
    assert.equal(await db.stop(), 0, db.stderr());
  });

  test("two-way bridge - loop_prevention: false cycles (one copy at a time, stopped after at most 1 s)", async (t) => {
    const s = await sides();
    const admin = `127.0.0.1:${await freePort()}`;
    const c = components(s, "twx");
    const d = startDaemon(`
engine: { instance_id: tw-x, admin: { listen: "${admin}" }, shutdown_timeout: 1s, log: { level: error } }
sources: ${c.sources}
sinks: ${c.sinks}
routes:
  - { name: a, from: nats_in, to: [mqtt_out], loop_prevention: false }
  - { name: b, from: mqtt_in, to: [nats_out], loop_prevention: false }
`);
    cleanups.push(() => d.stop("SIGKILL"));
    await d.waitReady(admin, 30_000);
    s.publishNats("cycle-0");
    await s.nc.flush();
    const started = Date.now();
    // Stop as soon as the cycle is evident, and in any case after 1 s.
    await waitFor(() => (s.onMqtt.counts.get("cycle-0") ?? 0) >= 20 || Date.now() - started >= 1000, 5000, "cycle or 1 s", 5).catch(() => {});
    d.proc.kill("SIGKILL");
    await d.exited;
    const ranMs = Date.now() - started;
    const onMqtt = s.onMqtt.counts.get("cycle-0") ?? 0;
    const onNats = s.onNats.counts.get("cycle-0") ?? 0;
    report(t, {
      scenario: "two-way bridge, loop_prevention false (1 event)",
      sent: 1,
      delivered: onMqtt > 0 ? 1 : 0,
      duplicates: onMqtt + onNats - 2,
      deadLettered: 0,
      lost: 0,
      note: `cycled for ${ranMs} ms: ${onMqtt} copies on MQTT, ${onNats} on NATS before the kill`,
    });
    assert.ok(onMqtt > 1, `the event cycled back to MQTT (${onMqtt} copies)`);
    assert.ok(onNats > 1, `the event cycled back to NATS (${onNats} copies)`);
  });
});
