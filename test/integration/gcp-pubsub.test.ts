/**
 * `gcp_pubsub` source and sink with the real `@google-cloud/pubsub` client against the wire-level
 * emulator (test/emulators/pubsub): the shared conformance suites, then what is particular to
 * Pub/Sub — flow control against the window with more streams than slots, release delays with and
 * without a retry policy, dead-letter policy and delivery counts, leases kept while slow, exactly-once
 * acks, stream resets, a subscription that appears late, the mappings through the real client, and
 * on the sink side exact bytes, the attribute-limit fallback, ordering keys across a failed publish,
 * error classes and batching.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Topic } from "@google-cloud/pubsub";
import { pubsubSink, pubsubSource } from "../../connectors/gcp-pubsub/definition.js";
import { MESSAGE_PUBLISHED_TYPE, STRUCTURED_CONTENT_TYPE } from "../../connectors/gcp-pubsub/mapping.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { SinkError } from "../../src/core/errors.js";
import type { Logger } from "../../src/core/logger.js";
import type { Sink } from "../../src/core/sink.js";
import type { Source } from "../../src/core/source.js";
import type { PubSubEmulator } from "../emulators/pubsub/server.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { sinkConformance, sourceConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome, rejectedOutcome } from "../support/fake-inbox.js";
import { PROJECT, decodeStored, freshTopic, publishEvents, realClient, startPubSub, type Names } from "../support/pubsub.js";
import { messagePublishedDataProblem } from "../support/pubsub-vectors.js";
import { sleep, waitFor } from "../support/wait.js";

const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, PERMISSION_DENIED: 7, UNAVAILABLE: 14 };

let em: PubSubEmulator;
/** A second emulator with a time scale, for tests that wait out ack deadlines. */
let fast: PubSubEmulator;
const makeSource = await sourceFactory(pubsubSource);
const makeSink = await sinkFactory(pubsubSink);
const topics = new Map<PubSubEmulator, Map<string, Topic>>();

before(async () => {
  em = await startPubSub();
  fast = await startPubSub({ timeScale: 0.05 });
});

after(async () => {
  for (const m of topics.values()) for (const t of m.values()) await t.pubsub.close().catch(() => {});
  await em?.close();
  await fast?.close();
});

/** A real-client Topic for publishing test input (one client per emulator and topic). */
function topicOf(e: PubSubEmulator, n: Names): Topic {
  let m = topics.get(e);
  if (!m) topics.set(e, (m = new Map()));
  let t = m.get(n.topic);
  if (!t) m.set(n.topic, (t = realClient(e).topic(n.topicId, { batching: { maxMessages: 1 } })));
  return t;
}

function sourceFor(e: PubSubEmulator, n: Names, extra: Record<string, unknown> = {}, ctx: ConnectorContext = testContext()): Source {
  return makeSource({ project: PROJECT, subscription: n.subscriptionId, endpoint: e.endpoint, ...extra }, ctx);
}

function sinkFor(e: PubSubEmulator, n: Names, extra: Record<string, unknown> = {}, ctx: ConnectorContext = testContext()): Sink {
  return makeSink({ project: PROJECT, topic: n.topicId, endpoint: e.endpoint, ...extra }, ctx);
}

/** A context whose logger keeps every line (level, message, fields). */
function recordingContext(): ConnectorContext & { lines: string[] } {
  const lines: string[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void => {
      lines.push(`${level} ${msg ?? ""} ${JSON.stringify(obj)}`);
    };
  const log: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => log };
  return { ...testContext(), log, lines };
}

const ids = (evs: readonly CloudEvent[]) => evs.map((e) => String(e.attributes["id"]));

// ---------------------------------------------------------------------------------------------
// Conformance

sourceConformance("gcp_pubsub", {
  redelivers: true,
  pausable: true,
  // The harness subscriptions have a dead-letter policy, so Pub/Sub counts deliveries.
  reportsDeliveryCount: true,
  async fresh(tag, opts) {
    const n = freshTopic(em, tag, { deadLetter: { topic: `projects/${PROJECT}/topics/dl-${tag}`, maxDeliveryAttempts: 100 } });
    em.createTopic(`projects/${PROJECT}/topics/dl-${tag}`);
    // Parallel pulls are StreamingPull streams.
    const extra = opts?.parallelism ? { streams: opts.parallelism } : {};
    return {
      make: () => sourceFor(em, n, extra),
      publish: async (evs) => void (await publishEvents(topicOf(em, n), evs)),
    };
  },
});

sinkConformance("gcp_pubsub", {
  stringly: true,
  async fresh(tag) {
    const n = freshTopic(em, tag);
    return {
      make: () => sinkFor(em, n, { ordering: true }),
      async reader() {
        const events: CloudEvent[] = [];
        let seen = 0;
        const timer = setInterval(() => {
          const all = em.published(n.topic);
          for (; seen < all.length; seen++) events.push(decodeStored(all[seen]!));
        }, 10);
        return { events, close: async () => clearInterval(timer) };
      },
      // An ordering key over Pub/Sub's 1024 bytes can never be published.
      unroutable: { attributes: { specversion: "1.0", id: "too-long-key", source: "urn:x", type: "t", partitionkey: "k".repeat(1025) } },
    };
  },
});

// ---------------------------------------------------------------------------------------------
// Source

describe("gcp_pubsub source", { timeout: 120_000 }, () => {
  it("gcp_pubsub source - more streams than window slots never put more than the window in flight", async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n, { streams: 8 });
    const inbox = new FakeInbox({ capacity: 3, settleDelayMs: 15 });
    try {
      await src.start(inbox);
      const evs = sampleEvents(60, "w");
      await publishEvents(topicOf(em, n), evs);
      await inbox.waitForSettled(60, 30_000);
      assert.ok(inbox.maxInUse <= 3, `in flight peaked at ${inbox.maxInUse}`);
      assert.equal(inbox.refused, 0, "the client never hands over more than the window has room for");
      assert.deepEqual(new Set(inbox.keys.map((k) => k.split(" ")[1])), new Set(ids(evs)));
      assert.equal(em.subscription(n.subscription).stats.nacks, 0, "nothing nacked for lack of room");
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - a message whose lease the client gave up (max_lease) does not push the next one into a full window: it waits for room", { timeout: 60_000 }, async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n, { max_lease: "1s" });
    const inbox = new FakeInbox({ capacity: 1, script: async (_m, info) => (info.index === 0 ? (await sleep(13_000), DELIVERED_OUTCOME) : DELIVERED_OUTCOME) });
    try {
      await src.start(inbox);
      await publishEvents(topicOf(em, n), sampleEvents(2, "ml"));
      await waitFor(() => new Set(inbox.keys).size === 2, 40_000, () => `offers ${inbox.keys.join(",")}`);
      assert.ok(inbox.maxInUse <= 1, `in flight peaked at ${inbox.maxInUse}`);
      assert.ok(inbox.refused >= 1, "the second message found the window full once (the client had dropped the first lease)");
      assert.equal(em.subscription(n.subscription).stats.nacks, 0, "it waited instead of being nacked");
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - without a retry policy an errored message is held for the release delay, then nacked", async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n);
    const settledAt: number[] = [];
    const inbox = new FakeInbox({
      script: (_m, info) => {
        settledAt.push(Date.now());
        return info.seen === 1 ? erroredOutcome() : DELIVERED_OUTCOME;
      },
    });
    try {
      await src.start(inbox);
      await publishEvents(topicOf(em, n), sampleEvents(1, "d"));
      await inbox.waitForSettled(2, 15_000);
      const gap = settledAt[1]! - settledAt[0]!;
      assert.ok(gap >= 900, `redelivered ${gap} ms after the errored settle; the release delay is 1 s`);
      assert.equal(em.subscription(n.subscription).stats.nacks, 1);
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - with a retry policy the nack is immediate and the server's backoff applies", async () => {
    const n = freshTopic(em, uniqueTag(), { retry: { minMs: 1500, maxMs: 10_000 } });
    const src = sourceFor(em, n);
    let nackedAt = 0;
    const settledAt: number[] = [];
    const inbox = new FakeInbox({
      script: (_m, info) => {
        settledAt.push(Date.now());
        return info.seen === 1 ? erroredOutcome() : DELIVERED_OUTCOME;
      },
    });
    try {
      await src.start(inbox);
      await publishEvents(topicOf(em, n), sampleEvents(1, "r"));
      await waitFor(() => em.subscription(n.subscription).stats.nacks === 1, 5_000, "the nack");
      nackedAt = Date.now();
      assert.ok(nackedAt - settledAt[0]! < 800, `nacked ${nackedAt - settledAt[0]!} ms after the settle`);
      await inbox.waitForSettled(2, 15_000);
      assert.ok(settledAt[1]! - settledAt[0]! >= 1400, "redelivered after the subscription's minimum backoff");
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - deliveryAttempt is the delivery count; the subscription's dead-letter policy takes it after max attempts", async () => {
    const tag = uniqueTag();
    const dl = `projects/${PROJECT}/topics/dl-${tag}`;
    em.createTopic(dl);
    const n = freshTopic(em, tag, { deadLetter: { topic: dl, maxDeliveryAttempts: 2 }, retry: { minMs: 10, maxMs: 10 } });
    const src = sourceFor(em, n);
    const inbox = new FakeInbox({ script: () => erroredOutcome() });
    try {
      await src.start(inbox);
      await publishEvents(topicOf(em, n), sampleEvents(1, "dla"));
      await waitFor(() => em.published(dl).length === 1, 10_000, "forwarded to the dead-letter topic");
      assert.deepEqual(
        inbox.offers.map((o) => o.deliveryCount),
        [1, 2],
      );
      const forwarded = em.published(dl)[0]!;
      assert.equal(forwarded.attributes["ce-id"], "dla-0");
      assert.equal(forwarded.attributes["CloudPubSubDeadLetterSourceDeliveryCount"], "2");
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - a permanent failure (rejected / dead-lettered) acks: no redelivery", async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n);
    const inbox = new FakeInbox({ script: (_m, info) => (info.index === 0 ? rejectedOutcome() : { status: "dead_lettered", error: new SinkError("scripted", false) }) });
    try {
      await src.start(inbox);
      await publishEvents(topicOf(em, n), sampleEvents(2, "p"));
      await inbox.waitForSettled(2);
      await waitFor(() => em.subscription(n.subscription).stats.acks === 2, 5_000, "both acked");
      await sleep(1200);
      assert.equal(inbox.offers.length, 2);
      assert.equal(em.subscription(n.subscription).stats.nacks, 0);
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - a slow route keeps its leases: no redelivery while the sink takes longer than the ack deadline", { timeout: 60_000 }, async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n);
    const inbox = new FakeInbox({ settleDelayMs: 14_000 });
    try {
      await src.start(inbox);
      await publishEvents(topicOf(em, n), sampleEvents(3, "slow"));
      await inbox.waitForSettled(3, 30_000);
      const stats = em.subscription(n.subscription).stats;
      assert.equal(stats.expired, 0, "no lease expired (the ack deadline is 10 s)");
      assert.equal(inbox.offers.length, 3, "no duplicate offered");
      await waitFor(() => stats.acks === 3, 5_000);
      assert.equal(stats.deliveries, 3);
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - exactly-once: acks are confirmed; a failed ack is a redelivery to come, not a loss", async () => {
    const n = freshTopic(fast, uniqueTag(), { exactlyOnce: true });
    fast.failAcks({ match: (m) => m.attributes["ce-id"] === "eod-1", kind: "permanent" });
    const ctx = recordingContext();
    const src = sourceFor(fast, n, {}, ctx);
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      const evs = sampleEvents(3, "eod");
      await publishEvents(topicOf(fast, n), evs);
      // The failed ack leaves the lease to expire (60 s × 0.05 = 3 s); then Pub/Sub delivers again.
      await waitFor(() => inbox.keys.filter((k) => k.endsWith(" eod-1")).length === 2, 20_000, () => `offers ${inbox.keys.join(",")}`);
      await waitFor(() => fast.subscription(n.subscription).stats.acks === 3, 5_000, "every message acked in the end");
      assert.ok(ctx.lines.some((l) => l.startsWith("warn exactly-once acknowledgement failed")), ctx.lines.join("\n"));
      assert.equal(inbox.keys.length, 4, "only the message whose ack failed came twice");
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - streams reset with UNAVAILABLE reconnect by themselves and lose nothing", async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n, { streams: 2 });
    const inbox = new FakeInbox({ settleDelayMs: 5 });
    try {
      await src.start(inbox);
      const evs = sampleEvents(200, "rst");
      const pub = publishEvents(topicOf(em, n), evs);
      await inbox.waitForOffers(20);
      assert.ok(em.resetStreams() >= 1);
      await pub;
      await waitFor(() => evs.every((e) => inbox.seen(`urn:cebridge:test ${String(e.attributes["id"])}`) >= 1), 30_000, () => `got ${new Set(inbox.keys).size}`);
      assert.ok((em.calls["StreamingPull"] ?? 0) >= 3, "the streams were reopened");
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - a missing subscription reports down, and the source recovers once it exists", async () => {
    const tag = uniqueTag();
    const topic = `projects/${PROJECT}/topics/late-${tag}`;
    em.createTopic(topic);
    const ctx = testContext();
    const src = makeSource({ project: PROJECT, subscription: `late-${tag}`, endpoint: em.endpoint }, ctx);
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      assert.equal(ctx.isUp, false);
      em.createSubscription({ name: `projects/${PROJECT}/subscriptions/late-${tag}`, topic });
      em.publish(topic, { data: "hello", attributes: { a: "1" } });
      await waitFor(() => inbox.offers.length === 1, 20_000, "the message after recovery");
      assert.equal(ctx.isUp, true);
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - ordering keys: an ordered subscription hands each key's messages over in order", async () => {
    const n = freshTopic(em, uniqueTag(), { ordering: true });
    const src = sourceFor(em, n);
    const inbox = new FakeInbox({ settleDelayMs: 3 });
    try {
      await src.start(inbox);
      const want: Record<string, string[]> = { a: [], b: [], c: [] };
      for (let i = 0; i < 30; i++) {
        const key = "abc"[i % 3]!;
        const id = `${key}-${i}`;
        want[key]!.push(id);
        em.publish(n.topic, { data: id, orderingKey: key });
      }
      await inbox.waitForSettled(30);
      const got: Record<string, string[]> = { a: [], b: [], c: [] };
      for (const o of inbox.offers) {
        const ev = o.events[0]!;
        const data = (ev.data as { value: { message: { data: string } } }).value.message.data;
        got[String(ev.attributes["partitionkey"])]!.push(Buffer.from(data, "base64").toString());
      }
      assert.deepEqual(got, want);
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - a plain message through the real client becomes messagePublished with schema-valid data", async () => {
    const n = freshTopic(em, uniqueTag(), { deadLetter: { topic: `projects/${PROJECT}/topics/dl-unused`, maxDeliveryAttempts: 5 } });
    const src = sourceFor(em, n);
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      const data = Buffer.from([0, 1, 2, 250, 255]);
      const id = await topicOf(em, n).publishMessage({ data, attributes: { attr1: "attr1-value", "X-Tenant": "acme" }, orderingKey: "k1" });
      await inbox.waitForOffers(1);
      const ev = inbox.offers[0]!.events[0]!;
      assert.equal(ev.attributes["type"], MESSAGE_PUBLISHED_TYPE);
      assert.equal(ev.attributes["id"], id);
      assert.equal(ev.attributes["source"], `//pubsub.googleapis.com/${n.topic}`);
      assert.equal(ev.attributes["partitionkey"], "k1");
      assert.equal(ev.attributes["datacontenttype"], "application/json");
      assert.ok(!Number.isNaN(Date.parse(String(ev.attributes["time"]))));
      const value = (ev.data as { value: Record<string, unknown> }).value;
      assert.equal(messagePublishedDataProblem(value), undefined);
      assert.deepEqual(value, {
        subscription: n.subscription,
        message: { data: data.toString("base64"), attributes: { attr1: "attr1-value", "X-Tenant": "acme" }, messageId: id, publishTime: ev.attributes["time"], orderingKey: "k1" },
        deliveryAttempt: 1,
      });
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - mapping: raw keeps the data bytes and escapes attribute names into extensions", async () => {
    const n = freshTopic(em, uniqueTag());
    const src = sourceFor(em, n, { mapping: "raw" });
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      await topicOf(em, n).publishMessage({ data, attributes: { "content-type": "application/octet-stream", "X-Tenant": "acme" } });
      await inbox.waitForOffers(1);
      const ev = inbox.offers[0]!.events[0]!;
      assert.equal(ev.attributes["type"], "com.google.cloud.pubsub.message");
      assert.equal(ev.attributes["datacontenttype"], "application/octet-stream");
      assert.equal(ev.attributes["pubsubxz2dtenant"], "acme");
      assert.ok(ev.data?.kind === "bytes" && Buffer.from(ev.data.bytes).equals(data));
    } finally {
      await src.close();
    }
  });

  it("gcp_pubsub source - binary and structured CloudEvents keep every attribute and data byte", async () => {
    for (const mode of ["binary", "structured"] as const) {
      const n = freshTopic(em, uniqueTag());
      const src = sourceFor(em, n);
      const inbox = new FakeInbox();
      try {
        await src.start(inbox);
        const evs = richEvents(`rich-${mode}`);
        await publishEvents(topicOf(em, n), evs, mode);
        await inbox.waitForSettled(evs.length);
        const got = byId(inbox.offers.map((o) => o.events[0]!));
        for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e, { stringly: mode === "binary", what: `${mode} ${String(e.attributes["id"])}` });
      } finally {
        await src.close();
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Sink

describe("gcp_pubsub sink", { timeout: 60_000 }, () => {
  it("gcp_pubsub sink - binary mode: ce- attributes and data bytes exactly as the event has them", async () => {
    const n = freshTopic(em, uniqueTag());
    const sink = sinkFor(em, n);
    try {
      await sink.open();
      const evs = richEvents("sb");
      for (const e of evs) await sink.write(e, AbortSignal.timeout(10_000));
      const stored = em.published(n.topic);
      assert.equal(stored.length, evs.length);
      const first = stored[0]!;
      assert.equal(first.attributes["ce-subject"], "Grüße, 世界 🚀", "no percent-encoding in Pub/Sub attributes");
      assert.equal(first.attributes["ce-note"], 'naïve café — 100% "quoted" a+b=c');
      assert.equal(first.attributes["ce-time"], "2024-05-06T07:08:09.123456789+02:00");
      assert.equal(first.attributes["content-type"], "application/json");
      for (const [i, e] of evs.entries()) assertSameEvent(decodeStored(stored[i]!), e, { stringly: true });
    } finally {
      await sink.close();
    }
  });

  it("gcp_pubsub sink - structured mode: the JSON event as data under the structured content type", async () => {
    const n = freshTopic(em, uniqueTag());
    const sink = sinkFor(em, n, { mode: "structured" });
    try {
      await sink.open();
      const evs = richEvents("ss");
      await Promise.all(evs.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
      const stored = em.published(n.topic);
      for (const m of stored) assert.deepEqual(m.attributes, { "content-type": STRUCTURED_CONTENT_TYPE });
      const got = byId(stored.map((m) => decodeStored(m)));
      for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e);
    } finally {
      await sink.close();
    }
  });

  it("gcp_pubsub sink - an event over the attribute limits is published structured, complete; the others stay binary", async () => {
    const n = freshTopic(em, uniqueTag());
    const ctx = recordingContext();
    const sink = sinkFor(em, n, {}, ctx);
    try {
      await sink.open();
      const attrs: Record<string, string | number> = { specversion: "1.0", id: "wide", source: "urn:x", type: "t", datacontenttype: "text/plain" };
      for (let i = 0; i < 120; i++) attrs[`ext${i}`] = `v${i}`;
      const wide: CloudEvent = { attributes: attrs, data: { kind: "bytes", bytes: Buffer.from("payload") } };
      const long: CloudEvent = { attributes: { specversion: "1.0", id: "long", source: "urn:x", type: "t", note: "x".repeat(2000) } };
      const normal = sampleEvents(1, "ok")[0]!;
      for (const e of [wide, long, normal]) await sink.write(e, AbortSignal.timeout(10_000));
      const [w, l, o] = em.published(n.topic);
      assert.deepEqual(w!.attributes, { "content-type": STRUCTURED_CONTENT_TYPE });
      assert.deepEqual(l!.attributes, { "content-type": STRUCTURED_CONTENT_TYPE });
      assert.equal(o!.attributes["ce-id"], "ok-0");
      assertSameEvent(decodeStored(w!), wide);
      assertSameEvent(decodeStored(l!), long);
      assert.ok(ctx.lines.some((x) => x.startsWith("debug event published in structured mode") && x.includes('"id":"wide"')), ctx.lines.join("\n"));
    } finally {
      await sink.close();
    }
  });

  it("gcp_pubsub sink - ordering keys keep per-key order across a forced publish failure (written one at a time per key, as the route's ordering does)", async () => {
    const n = freshTopic(em, uniqueTag(), { ordering: true });
    const sink = sinkFor(em, n, { ordering: true });
    // PERMISSION_DENIED is not retried by the client, so the failure reaches the sink.
    em.fail("Publish", { code: GRPC.PERMISSION_DENIED, match: (r: { messages: { attributes: Record<string, string> }[] }) => r.messages.some((m) => m.attributes["ce-id"] === "a-3") });
    try {
      await sink.open();
      const keys = ["a", "b"];
      let failures = 0;
      await Promise.all(
        keys.map(async (key) => {
          for (let i = 0; i < 8; i++) {
            const ev: CloudEvent = { attributes: { specversion: "1.0", id: `${key}-${i}`, source: "urn:x", type: "t", partitionkey: key }, data: { kind: "bytes", bytes: Buffer.from(String(i)) } };
            for (;;) {
              try {
                await sink.write(ev, AbortSignal.timeout(10_000));
                break;
              } catch (err) {
                assert.equal((err as { retryable?: boolean }).retryable, true, String(err));
                failures++;
              }
            }
          }
        }),
      );
      assert.equal(failures, 1);
      const stored = em.published(n.topic);
      for (const key of keys) {
        const order = stored.filter((m) => m.orderingKey === key).map((m) => m.attributes["ce-id"]);
        assert.deepEqual(order, Array.from({ length: 8 }, (_, i) => `${key}-${i}`), `order of key ${key}`);
      }
    } finally {
      await sink.close();
    }
  });

  it("gcp_pubsub sink - after a failure the client holds the key's later messages; resumePublishing lets their retries through", async () => {
    const n = freshTopic(em, uniqueTag());
    const sink = sinkFor(em, n, { ordering: true, batch: { max_events: 1, linger: "0ms" } });
    em.delay("Publish", 50);
    em.fail("Publish", { code: GRPC.PERMISSION_DENIED, match: (r: { messages: { attributes: Record<string, string> }[] }) => r.messages.some((m) => m.attributes["ce-id"] === "k-0") });
    try {
      await sink.open();
      const evs: CloudEvent[] = Array.from({ length: 4 }, (_, i) => ({ attributes: { specversion: "1.0", id: `k-${i}`, source: "urn:x", type: "t", partitionkey: "k" } }));
      const first = await Promise.allSettled(evs.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
      assert.deepEqual(
        first.map((r) => r.status),
        ["rejected", "rejected", "rejected", "rejected"],
        "nothing of the key overtakes the failed message",
      );
      for (const e of evs) await sink.write(e, AbortSignal.timeout(10_000));
      assert.deepEqual(
        em.published(n.topic).map((m) => m.attributes["ce-id"]),
        ["k-0", "k-1", "k-2", "k-3"],
      );
    } finally {
      em.delay("Publish", 0);
      await sink.close();
    }
  });

  it("gcp_pubsub sink - INVALID_ARGUMENT and a missing topic are permanent; PERMISSION_DENIED and UNAVAILABLE are transient", async () => {
    const n = freshTopic(em, uniqueTag());
    const sink = sinkFor(em, n);
    const missing = sinkFor(em, { ...n, topicId: "no-such-topic" });
    try {
      await sink.open();
      await missing.open();
      const ev = sampleEvents(1, "err")[0]!;
      const outcome = async (s: Sink) => {
        try {
          await s.write(ev, AbortSignal.timeout(20_000));
          return "ok";
        } catch (err) {
          const e = err as { retryable?: boolean; code?: string; message: string };
          assert.ok(!/PRIVATE KEY/.test(e.message));
          return `${e.retryable ? "transient" : "permanent"} ${e.code}`;
        }
      };
      em.fail("Publish", { code: GRPC.INVALID_ARGUMENT });
      assert.equal(await outcome(sink), "permanent CEB_SINK_PERMANENT");
      assert.equal(await outcome(missing), "permanent CEB_SINK_PERMANENT");
      em.fail("Publish", { code: GRPC.PERMISSION_DENIED });
      assert.equal(await outcome(sink), "transient CEB_SINK_TRANSIENT");
      // The client retries UNAVAILABLE itself; two failures are absorbed and the write succeeds.
      em.fail("Publish", { code: GRPC.UNAVAILABLE, times: 2 });
      assert.equal(await outcome(sink), "ok");
    } finally {
      await sink.close();
      await missing.close();
    }
  });

  it("gcp_pubsub sink - batch settings shape the Publish calls; each write resolves on its own message id", async () => {
    const n = freshTopic(em, uniqueTag());
    const before = em.calls["Publish"] ?? 0;
    const sink = sinkFor(em, n, { batch: { max_events: 5, linger: "50ms" } });
    try {
      await sink.open();
      const evs = sampleEvents(20, "bt");
      await Promise.all(evs.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
      const calls = (em.calls["Publish"] ?? 0) - before;
      assert.ok(calls >= 4 && calls <= 5, `${calls} Publish calls for 20 events of at most 5`);
      assert.deepEqual(new Set(em.published(n.topic).map((m) => m.attributes["ce-id"])), new Set(ids(evs)));
    } finally {
      await sink.close();
    }
  });

  it("gcp_pubsub sink - PUBSUB_EMULATOR_HOST points a sink without endpoint at the emulator", async () => {
    const n = freshTopic(em, uniqueTag());
    const previous = process.env["PUBSUB_EMULATOR_HOST"];
    process.env["PUBSUB_EMULATOR_HOST"] = em.endpoint;
    const sink = makeSink({ project: PROJECT, topic: n.topicId }, testContext());
    try {
      await sink.open();
      await sink.write(sampleEvents(1, "env")[0]!, AbortSignal.timeout(10_000));
      assert.equal(em.published(n.topic)[0]!.attributes["ce-id"], "env-0");
    } finally {
      if (previous === undefined) delete process.env["PUBSUB_EMULATOR_HOST"];
      else process.env["PUBSUB_EMULATOR_HOST"] = previous;
      await sink.close();
    }
  });

  it("gcp_pubsub sink and source - a 6 MiB event goes through (gRPC's 4 MiB default receive limit is raised)", async () => {
    const n = freshTopic(em, uniqueTag());
    const sink = sinkFor(em, n);
    const src = sourceFor(em, n);
    const inbox = new FakeInbox();
    try {
      await sink.open();
      await src.start(inbox);
      const big: CloudEvent = { attributes: { specversion: "1.0", id: "big6", source: "urn:x", type: "t", datacontenttype: "application/octet-stream" }, data: { kind: "bytes", bytes: Buffer.alloc(6 * 1024 * 1024, 7) } };
      await sink.write(big, AbortSignal.timeout(20_000));
      await inbox.waitForSettled(1, 20_000);
      assertSameEvent(inbox.offers[0]!.events[0]!, big);
    } finally {
      await src.close();
      await sink.close();
    }
  });

  it("gcp_pubsub sink - an aborted write rejects at once", async () => {
    const n = freshTopic(em, uniqueTag());
    const sink = sinkFor(em, n);
    em.delay("Publish", 2000);
    try {
      await sink.open();
      const started = Date.now();
      await assert.rejects(sink.write(sampleEvents(1, "ab")[0]!, AbortSignal.timeout(100)));
      assert.ok(Date.now() - started < 1500);
    } finally {
      em.delay("Publish", 0);
      await sink.close();
    }
  });
});
