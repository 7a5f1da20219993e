/**
 * Fault: the daemon is SIGKILLed twice mid-stream and restarted on the same config, with each
 * durable source. Nothing acknowledged at the source may be missing at the sink; what was in flight
 * at each kill comes back (duplicates, counted and reported).
 *
 * - JetStream durable consumer → HTTP receiver (which counts duplicates; a JetStream sink would hide
 *   them behind Nats-Msg-Id deduplication).
 * - MQTT persistent session (QoS 1, clean: false, fixed client_id) → HTTP receiver. The events are
 *   structured CloudEvents so that a resent message keeps its id (a plain MQTT message gets a new id
 *   on every delivery: MQTT has no message id to derive one from).
 * - MQTT readiness: after a SIGKILL restart with a backlog in the session, the daemon delivers at once
 *   and /readyz must say so while the backlog drains, not only once it is gone.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { connectAsync } from "mqtt";
import { startMosquitto, startNats } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { createStream, ids, natsClient, preload, report, sample, startReceiver, structuredEvent, waitConsumerDrained, type Receiver } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** Polls /readyz in the background; resolves with the time and delivered count when it answers 200. */
function watchReady(admin: string, rx: Receiver, since: number): Promise<string> {
  return (async () => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      try {
        if ((await fetch(`http://${admin}/readyz`)).status === 200) return `ready after ${Date.now() - since} ms with ${rx.tally.distinct} delivered`;
      } catch {
        // not listening yet
      }
      await sleep(20);
    }
    return "not ready within 30 s";
  })();
}

/**
 * Runs the daemon, SIGKILLs it when the receiver reached each fraction of `sent`, restarts it. After a
 * restart the kill waits for deliveries, not for /readyz: a daemon may work before it reports ready.
 */
async function crashTwice(yaml: string, admin: string, rx: Receiver, sent: readonly string[], fractions: readonly number[]): Promise<{ daemon: Daemon; atKills: number[]; readiness: string[] }> {
  let daemon = startDaemon(yaml);
  cleanups.push(() => daemon.stop("SIGKILL"));
  await daemon.waitReady(admin, 30_000);
  const atKills: number[] = [];
  const readiness: Promise<string>[] = [];
  for (const f of fractions) {
    await waitFor(() => rx.tally.distinct >= sent.length * f, 30_000, () => `${rx.tally.distinct}/${sent.length} before kill\n${daemon.stderr().slice(-2000)}`, 2);
    atKills.push(rx.tally.distinct);
    daemon.proc.kill("SIGKILL");
    await daemon.exited;
    await sleep(200);
    const d = startDaemon(yaml);
    daemon = d;
    cleanups.push(() => d.stop("SIGKILL"));
    readiness.push(watchReady(admin, rx, Date.now()));
  }
  await daemon.waitReady(admin, 30_000);
  return { daemon, atKills, readiness: await Promise.all(readiness) };
}

describe("faults - daemon crash", { timeout: 120_000 }, () => {
  test("daemon crash - SIGKILL twice with a JetStream durable consumer: nothing lost", async (t) => {
    const N = 3000;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver({ delayMs: 1 });
    cleanups.push(() => rx.close());
    const sent = ids("dcj", N);
    await createStream(nc, "DCJ", ["dcj.>"]);
    await preload(nc, "dcj.x", sent);

    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: dcj, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: DCJ, consumer: bridge, create: true, ack_wait: 2s }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: dcj, from: js_in, to: [out], max_in_flight: 100 }
`;
    const { daemon, atKills, readiness } = await crashTwice(yaml, admin, rx, sent, [0.2, 0.6]);
    await waitFor(() => rx.tally.hasAll(sent), 45_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`, 50);
    await waitConsumerDrained(nc, "DCJ", "bridge", 20_000);

    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "daemon SIGKILL ×2: JetStream durable → HTTP",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `killed at ${atKills.join(" and ")} delivered; after each restart: ${readiness.join("; ")}`,
    });
    assert.deepEqual(lost, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.ok(rx.tally.duplicates <= 2 * 100, `at most one window redelivered per kill (duplicates ${rx.tally.duplicates})`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("daemon crash - SIGKILL twice with an MQTT persistent session (QoS 1, clean: false, fixed client id): nothing lost", async (t) => {
    const N = 1000;
    const mosq = await startMosquitto();
    cleanups.push(() => mosq.close());
    const rx = await startReceiver({ delayMs: 5 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: dcm, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "dcm/in/#", qos: 1, client_id: dcm-bridge, session_expiry: 10m }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: dcm, from: mqtt_in, to: [out] }
`;
    const sent = ids("dcm", N);
    // A first run creates the persistent session; then the daemon dies and the broker queues every
    // publish for the session (each publish is PUBACKed by mosquitto before the test goes on).
    const first = startDaemon(yaml);
    cleanups.push(() => first.stop("SIGKILL"));
    await first.waitReady(admin, 30_000);
    first.proc.kill("SIGKILL");
    await first.exited;
    const pub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "dcm-pub" });
    cleanups.push(() => pub.endAsync(true));
    await Promise.all(sent.map((id) => pub.publishAsync("dcm/in/x", structuredEvent(id), { qos: 1 })));

    const { daemon, atKills, readiness } = await crashTwice(yaml, admin, rx, sent, [0.2, 0.6]);
    await waitFor(() => rx.tally.hasAll(sent), 45_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`, 50);
    await sleep(500);

    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "daemon SIGKILL ×2: MQTT persistent session → HTTP",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `killed at ${atKills.join(" and ")} delivered; after each restart: ${readiness.join("; ")}`,
    });
    assert.deepEqual(lost, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    // Unacknowledged messages in flight to the source are capped by the Receive Maximum it announces
    // (the route window, 256 by default): at most that many come back per kill.
    assert.ok(rx.tally.duplicates <= 2 * 256, `at most one window redelivered per kill (duplicates ${rx.tally.duplicates})`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});

describe("faults - daemon crash readiness", { timeout: 90_000 }, () => {
  test("daemon crash - MQTT: after a SIGKILL restart with a backlog in the session, /readyz turns 200 while the backlog drains, not after", async (t) => {
    const N = 1000;
    const mosq = await startMosquitto();
    cleanups.push(() => mosq.close());
    const rx = await startReceiver({ delayMs: 5 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: dcr, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  mqtt_in: { type: mqtt, url: "${mosq.url}", topic: "dcr/in/#", qos: 1, client_id: dcr-bridge, session_expiry: 10m }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: dcr, from: mqtt_in, to: [out] }
`;
    const sent = ids("dcr", N);
    const d1 = startDaemon(yaml);
    cleanups.push(() => d1.stop("SIGKILL"));
    await d1.waitReady(admin, 30_000);
    const pub = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "dcr-pub" });
    cleanups.push(() => pub.endAsync(true));
    await Promise.all(sent.map((id) => pub.publishAsync("dcr/in/x", structuredEvent(id), { qos: 1 })));
    await waitFor(() => rx.tally.distinct >= 100, 30_000, "mid-stream", 2);
    d1.proc.kill("SIGKILL");
    await d1.exited;
    const atKill = rx.tally.distinct;

    const d2 = startDaemon(yaml);
    cleanups.push(() => d2.stop("SIGKILL"));
    const readiness = await watchReady(admin, rx, Date.now());
    const deliveredAtReady = rx.tally.distinct;
    await waitFor(() => rx.tally.hasAll(sent), 45_000, () => `delivered ${rx.tally.distinct}/${N}`, 50);
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "daemon SIGKILL, MQTT restart with backlog (readiness)",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `killed at ${atKill} delivered; restart ${readiness}`,
    });
    assert.deepEqual(lost, []);
    assert.equal(await d2.stop(), 0, d2.stderr());
    // The daemon delivers from its session as soon as it connects; readiness must not wait until the
    // session's whole backlog has been handled (with a large backlog that is minutes of "not ready").
    assert.ok(deliveredAtReady < N, `/readyz answered 200 only once the whole backlog was delivered (${readiness}; ${N - atKill} were queued at the restart)`);
  });
});
