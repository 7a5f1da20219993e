/**
 * Scale-out: three daemon processes share one source and each takes a share of the work.
 *
 * - JetStream: the same durable pull consumer (`consumer: shared`, `create: true` on all three: the
 *   consumer is created once with identical settings, the others bind to it).
 * - MQTT: one shared subscription `$share/g/scale/in/#`, each daemon with its own (default) client id.
 *
 * Every one of 3000 events reaches the HTTP receiver at least once, and each daemon's
 * `cebridge_events_received_total` is over 10% of the events.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connectAsync } from "mqtt";
import { startMosquitto, startNats } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { createStream, ids, metric, natsClient, preload, report, sample, startReceiver, structuredEvent, waitConsumerDrained } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function startThree(yaml: (i: number, admin: string) => string): Promise<{ daemons: Daemon[]; admins: string[] }> {
  const admins: string[] = [];
  const daemons: Daemon[] = [];
  for (let i = 0; i < 3; i++) {
    const admin = `127.0.0.1:${await freePort()}`;
    admins.push(admin);
    const d = startDaemon(yaml(i, admin));
    cleanups.push(() => d.stop("SIGKILL"));
    daemons.push(d);
  }
  await Promise.all(daemons.map((d, i) => d.waitReady(admins[i]!, 30_000)));
  return { daemons, admins };
}

describe("e2e - scale-out", { timeout: 120_000 }, () => {
  test("scale-out - three daemons on one JetStream durable consumer each take a share, every event delivered", async (t) => {
    const N = 3000;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver({ delayMs: 2 });
    cleanups.push(() => rx.close());
    await createStream(nc, "SCALE", ["scale.>"]);

    const { daemons, admins } = await startThree(
      (i, admin) => `
engine: { instance_id: scale-js-${i}, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SCALE, consumer: shared, create: true, ack_wait: 10s }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: scale, from: js_in, to: [out], max_in_flight: 64 }
`,
    );
    const sent = ids("sjs", N);
    await preload(nc, "scale.x", sent);
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}`, 50);
    await waitConsumerDrained(nc, "SCALE", "shared", 20_000);
    const shares = await Promise.all(admins.map((a) => metric(a, "cebridge_events_received_total", { route: "scale" })));
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "scale-out: 3 daemons on one JetStream durable",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `received per daemon ${shares.join(" / ")}`,
    });
    assert.deepEqual(lost, []);
    assert.equal(shares.reduce((a, b) => a + b, 0), rx.tally.deliveries, "every delivery came through one of the three");
    for (const [i, s] of shares.entries()) assert.ok(s > N * 0.1, `daemon ${i} took ${s} of ${N}`);
    for (const d of daemons) assert.equal(await d.stop(), 0, d.stderr());
  });

  test("scale-out - three daemons on one MQTT shared subscription ($share/g/...) each take a share, every event delivered", async (t) => {
    const N = 3000;
    const mosq = await startMosquitto();
    cleanups.push(() => mosq.close());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());

    const { daemons, admins } = await startThree(
      (i, admin) => `
engine: { instance_id: scale-mqtt-${i}, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "$share/g/scale/in/#", qos: 1 }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: scale, from: mqtt_in, to: [out] }
`,
    );
    const sent = ids("smq", N);
    const pub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "scale-pub" });
    cleanups.push(() => pub.endAsync(true));
    await Promise.all(sent.map((id) => pub.publishAsync("scale/in/x", structuredEvent(id), { qos: 1 })));
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}`, 50);
    await sleep(300);
    const shares = await Promise.all(admins.map((a) => metric(a, "cebridge_events_received_total", { route: "scale" })));
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "scale-out: 3 daemons on one MQTT shared subscription",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `received per daemon ${shares.join(" / ")}`,
    });
    assert.deepEqual(lost, []);
    assert.equal(shares.reduce((a, b) => a + b, 0), rx.tally.deliveries, "every delivery came through one of the three");
    for (const [i, s] of shares.entries()) assert.ok(s > N * 0.1, `daemon ${i} took ${s} of ${N}`);
    for (const d of daemons) assert.equal(await d.stop(), 0, d.stderr());
  });
});
