/**
 * JetStream source and sink against a private nats-server with JetStream.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import { headers as natsHeaders, nanos, type NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream";
import { jetstreamSink, jetstreamSource } from "../../connectors/nats/definition.js";
import { decodeNatsMessage, encodeNatsMessage, type NatsMode } from "../../connectors/nats/mapping.js";
import { headerEntries } from "../../connectors/nats/inbound.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { startNats, type BrokerHandle } from "../support/brokers.js";
import { sinkConformance, sourceConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, richEvents, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, rejectedOutcome } from "../support/fake-inbox.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { sleep, waitFor } from "../support/wait.js";

let broker: BrokerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const makeSource = await sourceFactory(jetstreamSource);
const makeSink = await sinkFactory(jetstreamSink);

before(async () => {
  broker = await startNats({ jetstream: true });
  nc = await connect({ servers: broker.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
});

after(async () => {
  await nc?.close();
  await broker?.close();
});

async function publish(subject: string, evs: readonly CloudEvent[], mode: NatsMode): Promise<void> {
  for (const e of evs) {
    const out = encodeNatsMessage(e, mode);
    const h = natsHeaders();
    for (const [k, v] of out.headers) h.append(k, v);
    await js.publish(subject, out.payload, { headers: h });
  }
}

/** Reads a stream from the start with an ordered consumer, decoding with our mapping. */
async function streamReader(stream: string): Promise<{ events: CloudEvent[]; close(): Promise<void> }> {
  const events: CloudEvent[] = [];
  const oc = await js.consumers.get(stream);
  const iter = await oc.consume();
  void (async () => {
    for await (const m of iter) {
      const d = decodeNatsMessage(
        { subject: m.subject, headers: headerEntries(m.headers), payload: m.data, jetstream: { stream, seq: m.seq } },
        { plainSource: "x", plainType: "x", server: "x:1", now: () => new Date(), newId: () => "n" },
      );
      assert.equal(d.invalid, undefined, d.invalid?.message);
      events.push(d.event);
    }
  })();
  return { events, close: async () => void (await iter.close()) };
}

function sourceOptions(tag: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    servers: [broker.url],
    stream: `S_${tag}`,
    consumer: `C_${tag}`,
    create: true,
    subjects: [`js.${tag}.>`],
    ack_wait: "1s",
    ...extra,
  };
}

sourceConformance("nats_jetstream", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  async fresh(tag) {
    return {
      // 3 s, not 1 s: the suite counts deliveries exactly, and on a loaded machine an ack can take
      // longer than a second to leave, which JetStream rightly answers with a redelivery.
      make: () => makeSource(sourceOptions(tag, { ack_wait: "3s" }), testContext(`js-src-${tag}`)),
      publish: (evs) => publish(`js.${tag}.e`, evs, "binary"),
      cleanup: async () => void (await jsm.streams.delete(`S_${tag}`).catch(() => {})),
    };
  },
});

for (const mode of ["structured", "binary"] as const) {
  sinkConformance(`nats_jetstream (${mode})`, {
    stringly: mode === "binary",
    async fresh(tag) {
      const stream = `O_${tag}`;
      await jsm.streams.add({ name: stream, subjects: [`jso.${tag}.>`] });
      return {
        make: () =>
          makeSink({ servers: [broker.url], subject: `jso.${tag}.{subject}`, mode, stream, create: true, subjects: [`jso.${tag}.>`] }, testContext()),
        reader: () => streamReader(stream),
        unroutable: { attributes: { specversion: "1.0", id: "no-subject", source: "urn:x", type: "t" } },
        cleanup: async () => void (await jsm.streams.delete(stream).catch(() => {})),
      };
    },
  });
}

describe("nats_jetstream connectors", { timeout: 90_000 }, () => {
  it("nats_jetstream sink - create makes the stream with a duplicate window ≥ 2 min and Nats-Msg-Id deduplicates retries", async () => {
    const tag = uniqueTag();
    const stream = `D_${tag}`;
    const sink = makeSink({ servers: [broker.url], subject: `jsd.${tag}.{type}`, stream, create: true, subjects: [`jsd.${tag}.>`] }, testContext());
    await sink.open();
    try {
      const info = await jsm.streams.info(stream);
      assert.deepEqual(info.config.subjects, [`jsd.${tag}.>`]);
      assert.ok(info.config.duplicate_window >= nanos(120_000), `duplicate_window ${info.config.duplicate_window}`);
      const ev = sampleEvents(1, tag)[0]!;
      await sink.write(ev, AbortSignal.timeout(15_000));
      await sink.write(ev, AbortSignal.timeout(15_000)); // a retry of the same event
      const after = await jsm.streams.info(stream);
      assert.equal(after.state.messages, 1, "the retried publish was deduplicated");
      const stored = await jsm.streams.getMessage(stream, { seq: 1 });
      const expectedId = createHash("sha256").update(`urn:cebridge:test\u0000${tag}-0`).digest("hex");
      assert.equal(stored?.header.get("Nats-Msg-Id"), expectedId);
      assert.equal(stored?.subject, `jsd.${tag}.dev.cebridge.test.conformance`, "a value keeps its dots");
    } finally {
      await sink.close();
      await jsm.streams.delete(stream).catch(() => {});
    }
  });

  it("nats_jetstream sink - a publish to a subject no stream captures fails retryably; a wrong expected stream fails", async () => {
    const tag = uniqueTag();
    const stream = `W_${tag}`;
    await jsm.streams.add({ name: stream, subjects: [`jsw.${tag}.a`] });
    const other = `W2_${tag}`;
    await jsm.streams.add({ name: other, subjects: [`jsw.${tag}.b`] });
    const ev = sampleEvents(1, tag)[0]!;
    const nowhere = makeSink({ servers: [broker.url], subject: `nowhere.${tag}` }, testContext());
    const wrong = makeSink({ servers: [broker.url], subject: `jsw.${tag}.b`, stream }, testContext());
    await nowhere.open();
    await wrong.open();
    try {
      await assert.rejects(nowhere.write(ev, AbortSignal.timeout(15_000)), (e: { retryable?: boolean }) => e.retryable === true);
      await assert.rejects(wrong.write(ev, AbortSignal.timeout(15_000)), (e: { retryable?: boolean; message?: string }) => e.retryable === false);
    } finally {
      await nowhere.close();
      await wrong.close();
      await jsm.streams.delete(stream).catch(() => {});
      await jsm.streams.delete(other).catch(() => {});
    }
  });

  for (const mode of ["structured", "binary"] as const) {
    it(`nats_jetstream - rich events survive sink → stream → source in ${mode} mode`, async () => {
      const tag = uniqueTag();
      const inbox = new FakeInbox();
      const src = makeSource(sourceOptions(tag), testContext());
      await src.start(inbox);
      const sink = makeSink({ servers: [broker.url], subject: `js.${tag}.{type}`, mode, stream: `S_${tag}` }, testContext());
      await sink.open();
      try {
        const evs = richEvents(tag);
        for (const e of evs) await sink.write(e, AbortSignal.timeout(15_000));
        await inbox.waitForSettled(evs.length);
        inbox.offers.forEach((o, i) => {
          assert.equal(o.invalid, undefined);
          assert.equal(o.deliveryCount, 1);
          assertSameEvent(o.events[0]!, evs[i]!, { stringly: mode === "binary" });
        });
      } finally {
        await sink.close();
        await src.close();
        await jsm.streams.delete(`S_${tag}`).catch(() => {});
      }
    });
  }

  it("nats_jetstream source - create makes the consumer with explicit ack, deliver all, max_ack_pending = window", async () => {
    const tag = uniqueTag();
    const src = makeSource(sourceOptions(tag, { max_deliver: 5, filter_subject: `js.${tag}.only` }), testContext());
    await src.start(new FakeInbox({ capacity: 17 }));
    try {
      const ci = await jsm.consumers.info(`S_${tag}`, `C_${tag}`);
      assert.equal(ci.config.ack_policy, "explicit");
      assert.equal(ci.config.deliver_policy, "all");
      assert.equal(ci.config.max_ack_pending, 17);
      assert.equal(ci.config.max_deliver, 5);
      assert.equal(ci.config.ack_wait, nanos(1000));
      assert.equal(ci.config.filter_subject, `js.${tag}.only`);
      assert.equal(ci.config.durable_name, `C_${tag}`);
    } finally {
      await src.close();
      await jsm.streams.delete(`S_${tag}`).catch(() => {});
    }
  });

  it("nats_jetstream source - maps plain messages: id from Nats-Msg-Id, else {stream}-{seq}; time from the stream", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox();
    const src = makeSource(sourceOptions(tag), testContext());
    await src.start(inbox);
    try {
      const h = natsHeaders();
      h.set("Nats-Msg-Id", "order-7");
      await js.publish(`js.${tag}.p`, "one", { headers: h });
      const pa = await js.publish(`js.${tag}.p`, "two");
      await inbox.waitForSettled(2);
      const [a, b] = inbox.offers.map((o) => o.events[0]!);
      assert.equal(a!.attributes["id"], "order-7");
      assert.equal(b!.attributes["id"], `S_${tag}-${pa.seq}`);
      assert.equal(b!.attributes["source"], `nats://127.0.0.1:${broker.port}/js.${tag}.p`);
      assert.equal(b!.attributes["type"], "io.nats.message");
      assert.match(String(b!.attributes["time"]), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
      const skew = Math.abs(Date.parse(String(b!.attributes["time"])) - Date.now());
      assert.ok(skew < 10_000, `time is the stream timestamp (skew ${skew} ms)`);
    } finally {
      await src.close();
      await jsm.streams.delete(`S_${tag}`).catch(() => {});
    }
  });

  it("nats_jetstream source - rejected terminates the message (no redelivery)", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox({ script: () => rejectedOutcome() });
    const src = makeSource(sourceOptions(tag), testContext());
    await src.start(inbox);
    try {
      await publish(`js.${tag}.e`, sampleEvents(2, tag), "structured");
      await inbox.waitForSettled(2);
      await sleep(2500); // > ack_wait: a non-terminated message would be back by now
      assert.equal(inbox.offers.length, 2);
    } finally {
      await src.close();
      await jsm.streams.delete(`S_${tag}`).catch(() => {});
    }
  });

  it("nats_jetstream source - working() keeps a slow message from being redelivered past ack_wait", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox({ script: async () => (await sleep(3000), DELIVERED_OUTCOME) });
    const src = makeSource(sourceOptions(tag), testContext());
    await src.start(inbox);
    try {
      await publish(`js.${tag}.e`, sampleEvents(1, tag), "structured");
      await inbox.waitForSettled(1, 10_000);
      await sleep(1500);
      assert.equal(inbox.offers.length, 1, "ack_wait is 1s, the route took 3s, and no redelivery happened");
    } finally {
      await src.close();
      await jsm.streams.delete(`S_${tag}`).catch(() => {});
    }
  });

  it("nats_jetstream source - two replicas on one durable split the load, each message once", async () => {
    const tag = uniqueTag();
    const a = new FakeInbox({ capacity: 8, settleDelayMs: 5 });
    const b = new FakeInbox({ capacity: 8, settleDelayMs: 5 });
    const s1 = makeSource(sourceOptions(tag), testContext());
    const s2 = makeSource(sourceOptions(tag), testContext());
    await s1.start(a);
    await s2.start(b);
    try {
      const evs = sampleEvents(200, tag);
      await publish(`js.${tag}.e`, evs, "binary");
      await waitFor(() => a.settlements.length + b.settlements.length >= 200, 30_000);
      await sleep(500);
      const ids = [...a.keys, ...b.keys];
      assert.equal(ids.length, 200);
      assert.equal(new Set(ids).size, 200);
      assert.ok(a.keys.length > 0 && b.keys.length > 0, `split ${a.keys.length}/${b.keys.length}`);
    } finally {
      await s1.close();
      await s2.close();
      await jsm.streams.delete(`S_${tag}`).catch(() => {});
    }
  });

  it("nats_jetstream - source and sink ride through a server crash and restart (same store)", async () => {
    const own = await startNats({ jetstream: true });
    const tag = uniqueTag();
    const ctxSrc = testContext();
    const inbox = new FakeInbox();
    const src = makeSource({ ...sourceOptions(tag), servers: [own.url] }, ctxSrc);
    const sink = makeSink({ servers: [own.url], subject: `js.${tag}.{subject}`, stream: `S_${tag}` }, testContext());
    try {
      await src.start(inbox);
      await sink.open();
      const evs = sampleEvents(10, tag);
      for (const e of evs.slice(0, 5)) await sink.write(e, AbortSignal.timeout(15_000));
      await inbox.waitForSettled(5);
      await own.stop();
      await waitFor(() => !ctxSrc.isUp, 10_000);
      await own.restart();
      // The engine retries transient failures; do the same here.
      for (const e of evs.slice(5)) {
        await waitFor(async () => {
          try {
            await sink.write(e, AbortSignal.timeout(2000));
            return true;
          } catch (err) {
            assert.equal((err as { retryable?: boolean }).retryable, true, String(err));
            return false;
          }
        }, 20_000, "write after restart", 200);
      }
      await waitFor(() => evs.every((e) => inbox.keys.some((k) => k.endsWith(` ${String(e.attributes["id"])}`))), 20_000, () => `got ${inbox.keys.length}`);
    } finally {
      await sink.close();
      await src.close();
      await own.close();
    }
  });
});
