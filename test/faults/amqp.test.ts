/**
 * Fault matrix for the AMQP connectors on a private RabbitMQ (one node for the file, crashed and
 * restarted by the cases that need it):
 * - the broker is SIGKILLed mid-stream and restarted on the same store, while the daemon both
 *   receives from it (AMQP → HTTP) and sends to it (JetStream → AMQP): nothing lost either way;
 * - the daemon is SIGKILLed twice mid-stream: what it had not accepted comes back, nothing lost;
 * - the merged-disposition case: a third of the events fail transiently, so accepts and releases
 *   are settled in the same turns; every released message must come back (rhea would turn the
 *   release into an accept without the workaround);
 * - the sink alone: writes in flight at a broker crash fail as transient, writes while it is down
 *   fail at once, and it reconnects.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { amqpSink } from "../../connectors/amqp/definition.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { amqpClient, type AmqpTestClient } from "../support/amqp-client.js";
import { declareQueue, queueDepths, startNats, startRabbitMq, type RabbitHandle } from "../support/brokers.js";
import { sinkFactory } from "../support/component.js";
import { testContext } from "../support/context.js";
import { createStream, ids, natsClient, preload, report, routeStatus, sample, startReceiver, Tally, waitConsumerDrained, type Receiver } from "../support/counting.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { sampleEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

let rabbit: RabbitHandle;
const cleanups: (() => Promise<unknown>)[] = [];
const AUTH = `username: guest, password: guest`;

before(async () => {
  rabbit = await startRabbitMq();
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  await rabbit?.close();
});

/** A binary-mode CloudEvent per id, published to `address` in chunks (each waits for `accepted`). */
async function preloadAmqp(address: string, list: readonly string[], chunk = 500): Promise<void> {
  const c = await amqpClient(rabbit.url);
  try {
    for (let i = 0; i < list.length; i += chunk) {
      const evs: CloudEvent[] = list.slice(i, i + chunk).map((id) => ({
        attributes: { specversion: "1.0", id, source: "urn:cebridge:faults", type: "dev.cebridge.test.fault", datacontenttype: "application/json" },
        data: { kind: "bytes", bytes: Buffer.from(JSON.stringify({ id })) },
      }));
      await c.publish(address, evs);
    }
  } finally {
    await c.close();
  }
}

/** Reads `address` until `expected` distinct ids arrived (or the deadline), counting duplicates. */
async function drainAmqp(address: string, expected: readonly string[], timeoutMs = 30_000): Promise<Tally> {
  const c = await amqpClient(rabbit.url);
  const r = await c.reader(address);
  const tally = new Tally();
  let seen = 0;
  try {
    await waitFor(
      () => {
        for (; seen < r.events.length; seen++) tally.add(String(r.events[seen]!.attributes["id"]));
        return tally.hasAll(expected);
      },
      timeoutMs,
      () => `read ${tally.distinct}/${expected.length} from ${address}, missing ${sample(tally.missing(expected))}`,
      50,
    );
    await sleep(300);
    for (; seen < r.events.length; seen++) tally.add(String(r.events[seen]!.attributes["id"]));
    return tally;
  } finally {
    await r.close();
    await c.close();
  }
}

async function queue(name: string): Promise<string> {
  await declareQueue(rabbit.url, name);
  return `/amq/queue/${name}`;
}

describe("faults - amqp", { timeout: 170_000 }, () => {
  test("amqp - RabbitMQ SIGKILLed mid-stream and restarted: the source and the sink both recover, nothing lost", async (t) => {
    const N = 1500;
    const inAddr = await queue("fa-in");
    const outAddr = await queue("fa-out");
    const before = ids("fa", N);
    const later = ids("fa", 300, N);
    await preloadAmqp(inAddr, before);

    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    await createStream(nc, "FA", ["fa.>"]);
    const toAmqp = ids("fb", N);
    await preload(nc, "fa.x", toAmqp);

    // Slow enough (25 in flight × 25 ms: ~1,000/s) that most of the queue is still there at the crash;
    // at 2 ms the whole stream was sometimes through before RabbitMQ was killed.
    const rx = await startReceiver({ delayMs: 25 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: fa, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  amqp_in: { type: amqp, url: "${rabbit.url}", ${AUTH}, address: "${inAddr}" }
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: FA, consumer: bridge, create: true, ack_wait: 5s }
sinks:
  out: { type: http, url: "${rx.url}" }
  amqp_out: { type: amqp, url: "${rabbit.url}", ${AUTH}, address: "${outAddr}" }
routes:
  - { name: from-amqp, from: amqp_in, to: [out], max_in_flight: 25 }
  - { name: to-amqp, from: js_in, to: [amqp_out], max_in_flight: 100, retry: { initial: 50ms, max: 1s, max_elapsed: 2m } }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    await waitFor(() => rx.tally.distinct >= N * 0.3, 30_000, () => `30% delivered: ${rx.tally.distinct}\n${daemon.stderr().slice(-2000)}`, 5);
    const atCrash = rx.tally.distinct;
    await rabbit.stop();
    const leftAtCrash = N - rx.tally.distinct;
    await sleep(1500);
    await rabbit.restart();
    const depth = (await queueDepths(rabbit)).get("fa-in");
    // Accepts the broker had not written yet come back too: more than N − atCrash may be left.
    assert.ok(depth !== undefined && depth[0] + depth[1] <= N, `the durable queue survived the crash (${depth})`);
    // Messages never delivered must still be there (only when the crash left some: a busy machine
    // can be slow to kill).
    if (leftAtCrash > 100) assert.ok(depth[0] + depth[1] > 0, `the undelivered messages survived the crash (${depth}, ${leftAtCrash} undelivered)`);
    await daemon.waitReady(admin, 60_000);
    await preloadAmqp(inAddr, later);

    const sent = [...before, ...later];
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${sent.length}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-3000)}`, 50);
    await waitConsumerDrained(nc, "FA", "bridge", 60_000);
    const written = await drainAmqp(outAddr, toAmqp);
    await waitFor(async () => (await queueDepths(rabbit)).get("fa-in")?.join() === "0,0", 15_000, "the source queue is drained and acknowledged");

    const lostIn = rx.tally.missing(sent);
    const lostOut = written.missing(toAmqp);
    const st = await routeStatus(admin, "from-amqp");
    report(t, {
      scenario: "broker restart: RabbitMQ SIGKILL (AMQP → HTTP)",
      sent: sent.length,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: st.counters.deadLettered,
      lost: lostIn.length,
      note: `crash after ${atCrash} delivered; 300 more published after the restart`,
    });
    report(t, {
      scenario: "broker restart: RabbitMQ SIGKILL (JetStream → AMQP)",
      sent: toAmqp.length,
      delivered: written.distinct,
      duplicates: written.duplicates,
      deadLettered: 0,
      lost: lostOut.length,
      note: "writes in flight at the crash failed as transient and were retried",
    });
    assert.deepEqual(lostIn, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.deepEqual(lostOut, []);
    assert.deepEqual(written.unexpected(toAmqp), []);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("amqp - daemon SIGKILLed twice mid-stream: what it had not accepted comes back, nothing lost", async (t) => {
    const N = 2000;
    const addr = await queue("fk-in");
    const sent = ids("fk", N);
    await preloadAmqp(addr, sent);
    const rx = await startReceiver({ delayMs: 1 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: fk, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  amqp_in: { type: amqp, url: "${rabbit.url}", ${AUTH}, address: "${addr}" }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: fk, from: amqp_in, to: [out], max_in_flight: 100 }
`;
    let daemon: Daemon = startDaemon(yaml);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);
    const atKills: number[] = [];
    for (const f of [0.2, 0.6]) {
      await waitFor(() => rx.tally.distinct >= N * f, 30_000, () => `${rx.tally.distinct}/${N} before the kill\n${daemon.stderr().slice(-2000)}`, 2);
      atKills.push(rx.tally.distinct);
      daemon.proc.kill("SIGKILL");
      await daemon.exited;
      await sleep(200);
      const d = startDaemon(yaml);
      daemon = d;
      cleanups.push(() => d.stop("SIGKILL"));
    }
    await daemon.waitReady(admin, 30_000);
    await waitFor(() => rx.tally.hasAll(sent), 45_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`, 50);
    await waitFor(async () => (await queueDepths(rabbit)).get("fk-in")?.join() === "0,0", 15_000, "the queue is drained and acknowledged");
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "daemon SIGKILL ×2: AMQP (RabbitMQ) → HTTP",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `killed at ${atKills.join(" and ")} delivered`,
    });
    assert.deepEqual(lost, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.ok(rx.tally.duplicates <= 2 * 100, `at most one window redelivered per kill (duplicates ${rx.tally.duplicates})`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("amqp - merged dispositions: accepts and releases settled in the same turns, every released message comes back", async (t) => {
    const N = 900;
    const addr = await queue("fm-in");
    const sent = ids("fm", N);
    await preloadAmqp(addr, sent);
    const failing = new Set(sent.filter((_, i) => i % 3 === 1));
    const attempts = new Map<string, number>();
    const rx: Receiver = await startReceiver({
      status: (id) => {
        if (id === undefined) return 400;
        const n = (attempts.get(id) ?? 0) + 1;
        attempts.set(id, n);
        return failing.has(id) && n <= 1 ? 503 : 200;
      },
      // Retry-After: 0 makes the release immediate (no release delay), so it is settled in the same
      // turns as the accepts of its neighbours: exactly when rhea would merge them.
      headers: (_id, status): Record<string, string> => (status === 503 ? { "retry-after": "0" } : {}),
    });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: fm, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  amqp_in: { type: amqp, url: "${rabbit.url}", ${AUTH}, address: "${addr}" }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: fm, from: amqp_in, to: [out], max_in_flight: 200, retry: { initial: 1ms, max: 1ms, max_elapsed: 1ms } }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`, 50);
    await waitFor(async () => (await queueDepths(rabbit)).get("fm-in")?.join() === "0,0", 15_000, "the queue is drained and acknowledged");
    const st = await routeStatus(admin, "fm");
    const redelivered = [...failing].filter((id) => (attempts.get(id) ?? 0) >= 2).length;
    report(t, {
      scenario: "merged dispositions: 1 in 3 released, the rest accepted in the same turns (AMQP → HTTP)",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: st.counters.deadLettered,
      lost: rx.tally.missing(sent).length,
      note: `${st.counters.released} released, ${redelivered}/${failing.size} failing events came back`,
    });
    assert.deepEqual(rx.tally.missing(sent), []);
    assert.equal(redelivered, failing.size, "every released message was redelivered");
    assert.ok(st.counters.released >= failing.size, `released ${st.counters.released}`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("amqp - sink: writes in flight at a broker crash fail as transient, writes while it is down fail at once, then it reconnects", async () => {
    const makeSink = await sinkFactory(amqpSink);
    const address = await queue("fs-out");
    const ctx = testContext();
    const sink = makeSink({ url: rabbit.url, username: "guest", password: "guest", address }, ctx);
    try {
      await sink.open();
      const evs = sampleEvents(200, "fs");
      const writes = evs.map((e) => sink.write(e, AbortSignal.timeout(20_000)).then(() => "ok", (err: { retryable?: boolean; code?: string }) => `${err.retryable}:${err.code}`));
      await rabbit.stop();
      const results = await Promise.all(writes);
      const failed = results.filter((r) => r !== "ok");
      assert.ok(failed.every((r) => r === "true:CEB_NOT_CONNECTED"), `every failure is transient: ${[...new Set(failed)].join(", ")}`);
      await waitFor(() => !ctx.isUp, 5_000, "reported down");
      await assert.rejects(sink.write(evs[0]!, AbortSignal.timeout(5_000)), (e: { code?: string }) => e.code === "CEB_NOT_CONNECTED");
      await rabbit.restart();
      await waitFor(() => ctx.isUp, 30_000, "reconnected");
      await sink.write(evs[0]!, AbortSignal.timeout(10_000));
    } finally {
      await sink.close();
    }
  });
});
