/**
 * Fault tests for the Pub/Sub connectors, through the built daemon and the emulator:
 * - the daemon SIGKILLed twice mid-stream on a Pub/Sub subscription loses nothing after restart;
 * - a transient sink failure nacks the message and it comes back (and is then delivered once);
 * - a permanent failure dead-letters the event once and acks it (no redelivery);
 * - a sink slower than the ack deadline keeps its leases: no duplicates;
 * - ordering keys keep per-key order across a forced publish failure (route `ordering: partitionkey`
 *   in front of a sink with `ordering: true`).
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { encodeNatsMessage } from "../../connectors/nats/mapping.js";
import { STRUCTURED_CONTENT_TYPE } from "../../connectors/gcp-pubsub/mapping.js";
import type { PubSubEmulator } from "../emulators/pubsub/server.js";
import { startNats } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { createStream, ids, natsClient, readJsonl, report, sample, startReceiver, structuredEvent, type Receiver } from "../support/counting.js";
import { freePort } from "../support/ports.js";
import { PROJECT, freshTopic, startPubSub, type Names } from "../support/pubsub.js";
import { sleep, waitFor } from "../support/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function emulator(timeScale = 1): Promise<PubSubEmulator> {
  const em = await startPubSub({ timeScale });
  cleanups.push(() => em.close());
  return em;
}

async function receiver(opts: Parameters<typeof startReceiver>[0] = {}): Promise<Receiver> {
  const rx = await startReceiver(opts);
  cleanups.push(() => rx.close());
  return rx;
}

function run(yaml: string): Daemon {
  const d = startDaemon(yaml);
  cleanups.push(() => d.stop("SIGKILL"));
  return d;
}

/** Structured CloudEvents as Pub/Sub messages (the id survives redelivery; the HTTP sink sends ce-id). */
function preload(em: PubSubEmulator, n: Names, list: readonly string[], extra: (id: string) => Record<string, unknown> = () => ({})): void {
  for (const id of list) em.publish(n.topic, { data: structuredEvent(id, extra(id)), attributes: { "content-type": STRUCTURED_CONTENT_TYPE } });
}

function config(admin: string, source: string, sink: string, route = ""): string {
  return `
engine: { instance_id: gcp-faults, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  ps_in: ${source}
sinks:
  out: ${sink}
  dlq: { type: file, path: "${join(mkdtempSync(join(tmpdir(), "cebridge-gcp-dl-")), "dead.jsonl")}" }
routes:
  - { name: gcp, from: ps_in, to: [out], dead_letter: dlq${route} }
`;
}

function deadLetterFile(yaml: string): string {
  return /path: "([^"]+dead\.jsonl)"/.exec(yaml)![1]!;
}

describe("faults - gcp_pubsub", { timeout: 150_000 }, () => {
  test("gcp_pubsub - daemon SIGKILLed twice mid-stream: nothing lost after restart", async (t) => {
    const N = 2000;
    // Leases of 2 s (10 s × 0.2): what the killed daemon held comes back quickly.
    const em = await emulator(0.2);
    const n = freshTopic(em, "crash");
    const rx = await receiver({ delayMs: 1 });
    const sent = ids("gcpk", N);
    preload(em, n, sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = config(admin, `{ type: gcp_pubsub, project: ${PROJECT}, subscription: ${n.subscriptionId}, endpoint: "${em.endpoint}" }`, `{ type: http, url: "${rx.url}" }`, ", max_in_flight: 100");
    let daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    const atKills: number[] = [];
    for (const f of [0.2, 0.6]) {
      await waitFor(() => rx.tally.distinct >= N * f, 60_000, () => `${rx.tally.distinct}/${N} before the kill\n${daemon.stderr().slice(-2000)}`, 2);
      atKills.push(rx.tally.distinct);
      daemon.proc.kill("SIGKILL");
      await daemon.exited;
      daemon = run(yaml);
    }
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`, 50);
    const sub = em.subscription(n.subscription);
    await waitFor(() => sub.leases.size === 0 && sub.backlog === 0, 20_000, "subscription drained and acknowledged");
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "daemon SIGKILL ×2: Pub/Sub subscription → HTTP",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: lost.length,
      note: `killed at ${atKills.join(" and ")} delivered; ${sub.stats.expired} leases expired`,
    });
    assert.deepEqual(lost, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("gcp_pubsub - a transient sink failure nacks the message, and it comes back and is delivered once", async () => {
    const em = await emulator();
    const n = freshTopic(em, "transient");
    // Refused for 800 ms from its first attempt: longer than the route's retry budget (200 ms), so
    // the route gives up and nacks it, and shorter than the release delay (1 s) that precedes the
    // nack, so the redelivery is accepted. A count of refusals would race the retry timing.
    let firstAttempt: number | undefined;
    const rx = await receiver({
      status: (id) => {
        if (id !== "gcpt-2") return 200;
        firstAttempt ??= Date.now();
        return Date.now() - firstAttempt < 800 ? 503 : 200;
      },
    });
    const sent = ids("gcpt", 5);
    preload(em, n, sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = config(
      admin,
      `{ type: gcp_pubsub, project: ${PROJECT}, subscription: ${n.subscriptionId}, endpoint: "${em.endpoint}" }`,
      `{ type: http, url: "${rx.url}" }`,
      ", retry: { initial: 50ms, max: 100ms, max_elapsed: 200ms }",
    );
    const daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    await waitFor(() => rx.tally.hasAll(sent), 30_000, () => `delivered ${[...rx.tally.counts.keys()]}\n${daemon.stderr()}`);
    const sub = em.subscription(n.subscription);
    assert.ok(sub.stats.nacks >= 1, "the message was nacked after the route's retries ran out");
    assert.equal(sub.stats.deliveries, 5 + sub.stats.nacks, "only the failing message came back");
    for (const id of sent) assert.equal(rx.tally.counts.get(id), 1, `${id} delivered once`);
    assert.deepEqual(readJsonl(deadLetterFile(yaml)), [], "nothing dead-lettered");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("gcp_pubsub - a permanent failure is dead-lettered once and acked", async () => {
    const em = await emulator();
    const n = freshTopic(em, "permanent");
    const rx = await receiver({ status: (id) => (id === "gcpp-1" ? 400 : 200) });
    const sent = ids("gcpp", 4);
    preload(em, n, sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = config(admin, `{ type: gcp_pubsub, project: ${PROJECT}, subscription: ${n.subscriptionId}, endpoint: "${em.endpoint}" }`, `{ type: http, url: "${rx.url}" }`);
    const daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    const dl = deadLetterFile(yaml);
    await waitFor(() => readJsonl(dl).length >= 1 && rx.tally.distinct >= 3, 30_000, () => daemon.stderr());
    const sub = em.subscription(n.subscription);
    await waitFor(() => sub.stats.acks === 4, 10_000, "every message acked, the dead-lettered one too");
    await sleep(1500);
    const letters = readJsonl(dl);
    assert.equal(letters.length, 1, "dead-lettered exactly once");
    assert.equal(letters[0]!["id"], "gcpp-1");
    assert.equal(letters[0]!["cebridgeerror"], "CEB_SINK_PERMANENT");
    assert.equal(letters[0]!["cebridgesink"], "out");
    assert.equal(sub.stats.deliveries, 4, "no redelivery");
    assert.equal(sub.stats.nacks, 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("gcp_pubsub - a sink slower than the ack deadline keeps its leases: no duplicates", async () => {
    const em = await emulator();
    const n = freshTopic(em, "slow");
    // 10 s ack deadline; each delivery takes 16 s.
    const rx = await receiver({ delayMs: 16_000 });
    const sent = ids("gcps", 5);
    preload(em, n, sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = config(admin, `{ type: gcp_pubsub, project: ${PROJECT}, subscription: ${n.subscriptionId}, endpoint: "${em.endpoint}" }`, `{ type: http, url: "${rx.url}", timeout: 60s }`);
    const daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `${rx.tally.distinct}\n${daemon.stderr()}`, 100);
    const sub = em.subscription(n.subscription);
    await waitFor(() => sub.stats.acks === 5, 10_000);
    assert.equal(sub.stats.expired, 0, "no lease expired");
    assert.equal(sub.stats.deliveries, 5, "Pub/Sub delivered each message once");
    assert.equal(rx.requests, 5, "the sink saw each event once");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("gcp_pubsub - ordering keys keep per-key order across a forced publish failure", async () => {
    const em = await emulator();
    const n = freshTopic(em, "ordered", { ordering: true });
    // PERMISSION_DENIED is not retried inside the client: the failure reaches the sink and the route.
    em.fail("Publish", { code: 7, match: (r: { messages: { attributes: Record<string, string> }[] }) => r.messages.some((m) => m.attributes["ce-id"] === "ord-k1-4") });
    const nats = await startNats({ jetstream: true });
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    await createStream(nc, "ORD", ["ord.>"]);
    const keys = ["k0", "k1", "k2", "k3"];
    const perKey = 25;
    const js = jetstream(nc);
    for (let i = 0; i < perKey; i++) {
      for (const k of keys) {
        const m = encodeNatsMessage({ attributes: { specversion: "1.0", id: `ord-${k}-${i}`, source: "urn:ord", type: "t", partitionkey: k } }, "binary");
        const h = natsHeaders();
        for (const [name, v] of m.headers) h.append(name, v);
        await js.publish("ord.x", m.payload, { headers: h });
      }
    }
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: gcp-order, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: ORD, consumer: bridge, create: true }
sinks:
  ps_out: { type: gcp_pubsub, project: ${PROJECT}, topic: ${n.topicId}, endpoint: "${em.endpoint}", ordering: true }
routes:
  - { name: ordered, from: js_in, to: [ps_out], ordering: partitionkey, retry: { initial: 50ms, max: 200ms, max_elapsed: 30s } }
`;
    const daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    await waitFor(() => em.published(n.topic).length >= keys.length * perKey, 30_000, () => `${em.published(n.topic).length}\n${daemon.stderr()}`);
    await sleep(300);
    const stored = em.published(n.topic);
    assert.equal(stored.length, keys.length * perKey, "each event published once");
    for (const k of keys) {
      const order = stored.filter((m) => m.orderingKey === k).map((m) => m.attributes["ce-id"]);
      assert.deepEqual(order, Array.from({ length: perKey }, (_, i) => `ord-${k}-${i}`), `order of ${k}`);
    }
    assert.equal(em.injected["Publish"], 1, "the forced failure happened");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
