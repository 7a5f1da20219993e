/**
 * Fault: poison events.
 *
 * 1. A sink refuses some events for good (HTTP 400 for ids matching /^poison-/): each goes to the
 *    dead-letter file with `cebridgeerror` / `cebridgereason`, is acked at the JetStream source, and
 *    the events around it keep flowing.
 * 2. Bad bytes on the wire, published to core NATS, JetStream and MQTT 5 sources:
 *      - not JSON, while claiming to be a structured CloudEvent (content type application/cloudevents+json;
 *        bytes that claim nothing are a *plain* message, wrapped and delivered, by design: also checked),
 *      - invalid attributes (a structured event without `source`),
 *      - a valid event over the source's `max_payload` (1 KiB).
 *    Each reaches the dead-letter file as a `dev.cebridge.invalid` event whose data keeps the raw bytes,
 *    with the matching error code and a reason; a valid event sent afterwards still arrives.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { connectAsync } from "mqtt";
import { startMosquitto, startNats } from "../support/brokers.js";
import { startDaemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import {
  Tally,
  createStream,
  ids,
  metric,
  natsClient,
  preload,
  readJsonl,
  report,
  routeStatus,
  sample,
  startReceiver,
  structuredEvent,
  waitConsumerDrained,
} from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function deadLetters(path: string): Record<string, unknown>[] {
  return readJsonl(path);
}

describe("faults - poison", { timeout: 120_000 }, () => {
  test("poison - a sink refusing some events for good: they are dead-lettered with error and reason, the stream continues", async (t) => {
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver({ status: (id) => (id && /^poison-/.test(id) ? 400 : 200) });
    cleanups.push(() => rx.close());
    const dl = join(mkdtempSync(join(tmpdir(), "cebridge-poison-")), "dead.jsonl");

    // 500 good events with a poison one every 50.
    const good = ids("ok", 500);
    const poison = ids("poison", 10);
    const sent = good.flatMap((id, i) => (i % 50 === 25 ? [poison[i / 50 - 0.5]!, id] : [id]));
    assert.equal(sent.length, 510);
    await createStream(nc, "POISON", ["poison.>"]);
    await preload(nc, "poison.x", sent);

    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: poison, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: POISON, consumer: bridge, create: true, ack_wait: 5s }
sinks:
  out: { type: http, url: "${rx.url}" }
  dlq: { type: file, path: "${dl}" }
routes:
  - { name: poison, from: js_in, to: [out], dead_letter: dlq, max_in_flight: 20 }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    const dead = new Tally();
    await waitFor(() => rx.tally.hasAll(good), 30_000, () => `delivered ${rx.tally.distinct}/${good.length}, missing ${sample(rx.tally.missing(good))}`, 50);
    await waitConsumerDrained(nc, "POISON", "bridge", 20_000);
    const lines = deadLetters(dl);
    for (const line of lines) dead.add(String(line["id"]));
    const st = await routeStatus(admin, "poison");
    const lost = [...rx.tally.missing(good), ...dead.missing(poison)];
    report(t, {
      scenario: "poison: sink answers 400 for some ids (JetStream → HTTP)",
      sent: sent.length,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates + dead.duplicates,
      deadLettered: dead.distinct,
      lost: lost.length,
      note: `route counters: delivered ${st.counters.delivered}, dead-lettered ${st.counters.deadLettered}, released ${st.counters.released}`,
    });
    assert.deepEqual(lost, []);
    assert.deepEqual([...dead.counts.keys()].sort(), [...poison].sort(), "exactly the poison events are dead-lettered");
    assert.deepEqual(rx.tally.unexpected(good), []);
    for (const line of lines) {
      assert.equal(line["cebridgeerror"], "CEB_SINK_PERMANENT");
      assert.match(String(line["cebridgereason"]), /answered 400: refused poison-\d+/);
      assert.equal(line["cebridgeroute"], "poison");
      assert.equal(line["cebridgesink"], "out");
      assert.equal(line["cebridgeattempts"], 1, "a permanent failure is not retried");
      assert.equal(line["type"], "dev.cebridge.test.fault", "the original event, not wrapped");
    }
    assert.equal(st.counters.released, 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("poison - bad input on the wire (not JSON, invalid attributes, over max_payload) on NATS, JetStream and MQTT sources is dead-lettered as dev.cebridge.invalid; the routes keep running", async (t) => {
    const nats = await startNats();
    const mosq = await startMosquitto();
    cleanups.push(() => nats.close(), () => mosq.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const dl = join(mkdtempSync(join(tmpdir(), "cebridge-poison-")), "dead.jsonl");
    await createStream(nc, "BADIN", ["badin.>"]);

    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: badin, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  nats_in: { type: nats, servers: ["${nats.url}"], subject: "core.in.>", max_payload: 1KiB }
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: BADIN, consumer: bridge, create: true, ack_wait: 5s, max_payload: 1KiB }
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "bad/in/#", client_id: badin-src, max_payload: 1KiB }
sinks:
  out: { type: http, url: "${rx.url}" }
  dlq: { type: file, path: "${dl}" }
routes:
  - { name: nats, from: nats_in, to: [out], dead_letter: dlq }
  - { name: js, from: js_in, to: [out], dead_letter: dlq }
  - { name: mqtt, from: mqtt_in, to: [out], dead_letter: dlq }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    const CE = "application/cloudevents+json";
    const bad = (src: string) => ({
      notjson: Buffer.from(`this is not json {bad-${src}-notjson`),
      attrs: Buffer.from(JSON.stringify({ specversion: "1.0", id: `bad-${src}-attrs`, type: "t", data: "no source attribute" })),
      big: Buffer.from(structuredEvent(`bad-${src}-big`, { pad: "x".repeat(4096) })),
      plain: Buffer.from(`plain bytes plain-${src}`),
    });
    const expected: Record<string, string> = { notjson: "CEB_FORMAT", attrs: "CEB_EVENT_INVALID", big: "CEB_TOO_LARGE" };

    // core NATS
    const bn = bad("nats");
    for (const [kind, payload] of Object.entries(bn)) {
      const h = natsHeaders();
      if (kind === "notjson") h.set("Content-Type", CE);
      nc.publish("core.in.x", payload, { headers: h });
    }
    await nc.flush();
    // JetStream
    const bj = bad("js");
    const js = jetstream(nc);
    for (const [kind, payload] of Object.entries(bj)) {
      const h = natsHeaders();
      if (kind === "notjson") h.set("Content-Type", CE);
      await js.publish("badin.x", payload, { headers: h });
    }
    // MQTT 5
    const bm = bad("mqtt");
    const pub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "badin-pub" });
    cleanups.push(() => pub.endAsync(true));
    for (const [kind, payload] of Object.entries(bm)) {
      await pub.publishAsync("bad/in/x", payload, { qos: 1, ...(kind === "notjson" ? { properties: { contentType: CE } } : {}) });
    }

    // Then one valid event per source: the routes keep running.
    const after = ["after-nats", "after-js", "after-mqtt"];
    nc.publish("core.in.x", structuredEvent("after-nats"));
    await preload(nc, "badin.x", ["after-js"]);
    await pub.publishAsync("bad/in/x", structuredEvent("after-mqtt"), { qos: 1 });

    const wantDead = 3 * 3;
    await waitFor(() => deadLetters(dl).length >= wantDead && rx.tally.hasAll(after), 30_000, () => `dead ${deadLetters(dl).length}/${wantDead}, after ${sample(rx.tally.missing(after))}`, 50);
    await waitConsumerDrained(nc, "BADIN", "bridge", 20_000);
    await sleep(300);

    const lines = deadLetters(dl);
    const seen: string[] = [];
    for (const line of lines) {
      assert.equal(line["type"], "dev.cebridge.invalid", JSON.stringify(line));
      assert.ok(typeof line["cebridgereason"] === "string" && line["cebridgereason"] !== "", "a reason");
      const data = line["data"] as { raw_base64: string; error: { code: string } };
      const raw = Buffer.from(data.raw_base64, "base64").toString("utf8");
      const m = /bad-(nats|js|mqtt)-(notjson|attrs|big)/.exec(raw);
      assert.ok(m, `dead letter keeps the raw bytes: ${raw.slice(0, 80)}`);
      const [, src, kind] = m;
      assert.equal(line["cebridgeerror"], expected[kind!], `${src}/${kind}: ${String(line["cebridgereason"])}`);
      assert.equal(data.error.code, expected[kind!]);
      assert.equal(line["cebridgeroute"], src);
      seen.push(`${src}/${kind}`);
    }
    const want = ["nats", "js", "mqtt"].flatMap((s) => ["notjson", "attrs", "big"].map((k) => `${s}/${k}`));
    const lost = want.filter((w) => !seen.includes(w));
    // Plain bytes (no CloudEvents claim) are wrapped, not dead-lettered.
    const plainArrived = rx.tally.counts.size - after.filter((id) => rx.tally.has(id)).length;
    const deadMetric = await metric(admin, "cebridge_events_dead_lettered_total");
    report(t, {
      scenario: "poison: bad wire input on NATS / JetStream / MQTT sources",
      sent: want.length + after.length + 3,
      delivered: rx.tally.distinct,
      duplicates: seen.length - new Set(seen).size,
      deadLettered: lines.length,
      lost: lost.length + rx.tally.missing(after).length,
      note: `dead-lettered ${JSON.stringify(seen)}; ${plainArrived} plain messages wrapped and delivered; metric dead_lettered ${deadMetric}`,
    });
    assert.deepEqual(lost, [], "every bad message dead-lettered");
    assert.equal(lines.length, wantDead, "each once");
    assert.deepEqual(rx.tally.missing(after), [], "valid events after the bad ones still arrive");
    assert.equal(plainArrived, 3, "plain (non-CloudEvent) bytes are wrapped and delivered, not dead-lettered");
    assert.equal(deadMetric, wantDead);
    for (const r of ["nats", "js", "mqtt"]) assert.equal((await routeStatus(admin, r)).in_flight, 0);
    assert.equal(daemon.proc.exitCode, null);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
