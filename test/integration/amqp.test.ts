/**
 * AMQP source and sink against a private RabbitMQ 3.10 with its AMQP 1.0 plugin (one broker for
 * the file; every case has its own queues), plus interop with Apache Qpid Proton, which shares no
 * code with rhea.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import rhea, { type EventContext } from "rhea";
import { amqpSink, amqpSource } from "../../connectors/amqp/definition.js";
import { createAmqpSource } from "../../connectors/amqp/source.js";
import { decodeProtobuf, type CloudEvent } from "../../src/cloudevents/index.js";
import { SinkError } from "../../src/core/errors.js";
import { amqpClient, type AmqpTestClient } from "../support/amqp-client.js";
import { declareQueue, queueDepths, startRabbitMq, type RabbitHandle } from "../support/brokers.js";
import { componentConfig, sinkFactory, sourceFactory } from "../support/component.js";
import { sinkConformance, sourceConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, richEvents, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome } from "../support/fake-inbox.js";
import { protonReceive, protonSend } from "../support/proton.js";
import { sleep, waitFor } from "../support/wait.js";

let rabbit: RabbitHandle;
let client: AmqpTestClient;
const makeSource = await sourceFactory(amqpSource);
const makeSink = await sinkFactory(amqpSink);
const AUTH = { username: "guest", password: "guest" };

before(async () => {
  rabbit = await startRabbitMq();
  client = await amqpClient(rabbit.url);
});

after(async () => {
  await client?.close();
  await rabbit?.close();
});

/** A new durable queue; its address for an existing queue is `/amq/queue/<name>`. */
async function queue(tag: string): Promise<string> {
  const name = `q-${tag}`;
  await declareQueue(rabbit.url, name);
  return `/amq/queue/${name}`;
}

sourceConformance("amqp", {
  redelivers: true,
  pausable: true,
  async fresh(tag) {
    const address = await queue(tag);
    return {
      make: () => makeSource({ url: rabbit.url, ...AUTH, address }, testContext()),
      publish: (evs) => client.publish(address, evs),
    };
  },
});

sinkConformance("amqp", {
  async fresh(tag) {
    const address = await queue(tag);
    const big: CloudEvent = { attributes: { specversion: "1.0", id: `${tag}-big`, source: "urn:x", type: "t" }, data: { kind: "bytes", bytes: Buffer.alloc(70_000, 1) } };
    return {
      make: () => makeSink({ url: rabbit.url, ...AUTH, address, max_message_size: "64KiB" }, testContext()),
      reader: () => client.reader(address),
      unroutable: big,
    };
  },
});

describe("amqp source", { timeout: 120_000 }, () => {
  it("amqp source - credit never exceeds the free window: the broker holds the rest ready", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    await client.publish(address, sampleEvents(10, tag));
    const src = makeSource({ url: rabbit.url, ...AUTH, address }, testContext());
    let holding = true;
    const inbox = new FakeInbox({ capacity: 3, script: () => (holding ? "hold" : DELIVERED_OUTCOME) });
    try {
      await src.start(inbox);
      await inbox.waitForOffers(3);
      await sleep(500);
      assert.equal(inbox.offers.length, 3, "no delivery beyond the window");
      const depth = (await queueDepths(rabbit)).get(`q-${tag}`);
      assert.deepEqual(depth, [7, 3], "3 unacknowledged (credit = window), 7 still ready on the broker");
      holding = false;
      inbox.releaseHeld(DELIVERED_OUTCOME);
      await inbox.waitForSettled(10);
    } finally {
      await src.close();
    }
    await waitFor(async () => (await queueDepths(rabbit)).get(`q-${tag}`)?.join() === "0,0", 10_000, "queue drained");
  });

  it("amqp source - reads binary mode with either prefix and native or string values, and structured JSON and Protobuf", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    const rich = richEvents(tag);
    const utc = { attributes: { ...rich[0]!.attributes, id: `${tag}-utc`, time: "2024-05-06T05:08:09.123Z" }, data: rich[0]!.data } as CloudEvent;
    await client.publish(address, [...rich, utc], { prefix: "cloudEvents:" });
    await client.publish(address, rich.map((e) => ({ ...e, attributes: { ...e.attributes, id: `${e.attributes["id"]}-u` } })), { prefix: "cloudEvents_" });
    await client.publish(address, rich.map((e) => ({ ...e, attributes: { ...e.attributes, id: `${e.attributes["id"]}-j` } })), { mode: "structured" });
    await client.publish(address, rich.map((e) => ({ ...e, attributes: { ...e.attributes, id: `${e.attributes["id"]}-p` } })), { mode: "structured", format: "protobuf" });
    const src = makeSource({ url: rabbit.url, ...AUTH, address }, testContext());
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      const total = rich.length * 4 + 1;
      await inbox.waitForSettled(total);
      const got = new Map(inbox.offers.map((o) => [String(o.events[0]!.attributes["id"]), o]));
      for (const o of inbox.offers) assert.equal(o.invalid, undefined, o.invalid?.message);
      for (const suffix of ["", "-u", "-j", "-p"]) {
        for (const e of rich) {
          const id = `${e.attributes["id"]}${suffix}`;
          const o = got.get(id);
          assert.ok(o, `${id} arrived`);
          assertSameEvent(o.events[0]!, { ...e, attributes: { ...e.attributes, id } }, { what: id });
        }
      }
      // The AMQP timestamp carried the millisecond time, and it came back as the same string.
      assertSameEvent(got.get(`${tag}-utc`)!.events[0]!, utc);
      assert.equal(got.get(`${tag}-ext`)!.deliveryCount, 1, "first delivery known from first-acquirer");
    } finally {
      await src.close();
    }
  });

  it("amqp source - plain messages: message-id as id, application properties as extensions", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    await client.publishRaw(address, [
      { message_id: `${tag}-m1`, subject: "hello", content_type: "text/plain", application_properties: { "X-Tenant": "acme", n: 3 }, body: rhea.message.data_section(Buffer.from("hi")) },
    ]);
    const src = makeSource({ url: rabbit.url, ...AUTH, address }, testContext());
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      await inbox.waitForSettled(1);
      const ev = inbox.offers[0]!.events[0]!;
      assert.equal(ev.attributes["id"], `${tag}-m1`);
      assert.equal(ev.attributes["type"], "org.amqp.message");
      assert.equal(ev.attributes["source"], `amqp://127.0.0.1:${rabbit.port}/amq/queue/q-${tag}`);
      assert.equal(ev.attributes["subject"], "hello");
      assert.equal(ev.attributes["amqpxz2dtenant"], "acme");
      assert.equal(ev.attributes["amqpn"], 3);
      assert.deepEqual(ev.data, { kind: "bytes", bytes: Buffer.from("hi") });
    } finally {
      await src.close();
    }
  });

  it("amqp source - a message that is no valid CloudEvent is offered as invalid with its bytes", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    await client.publishRaw(address, [{ message_id: `${tag}-bad`, content_type: "application/cloudevents+json", body: rhea.message.data_section(Buffer.from("{oops")) }]);
    const src = makeSource({ url: rabbit.url, ...AUTH, address }, testContext());
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      await inbox.waitForSettled(1);
      assert.equal(inbox.offers[0]!.invalid?.code, "CEB_FORMAT");
      assert.equal(inbox.offers[0]!.events[0]!.attributes["id"], `${tag}-bad`);
    } finally {
      await src.close();
    }
  });

  it("amqp source - start fails naming the address when the queue does not exist", async () => {
    const src = makeSource({ url: rabbit.url, ...AUTH, address: `/amq/queue/missing-${uniqueTag()}` }, testContext());
    try {
      await assert.rejects(src.start(new FakeInbox()), /cannot receive from AMQP address "\/amq\/queue\/missing-.*amqp:not-found/);
    } finally {
      await src.close();
    }
  });

  it("amqp source - dead_lettered and rejected become `rejected` with an error condition (the broker's DLX gets them)", async () => {
    const tag = uniqueTag();
    const name = `dlx-src-${tag}`;
    await rabbit.ctl("set_policy", `dlx-${tag}`, `^${name}$`, JSON.stringify({ "dead-letter-exchange": "", "dead-letter-routing-key": `${name}-dlq` }), "--apply-to", "queues");
    await declareQueue(rabbit.url, `${name}-dlq`);
    await declareQueue(rabbit.url, name);
    const evs = sampleEvents(3, tag);
    await client.publish(`/amq/queue/${name}`, evs);
    const src = makeSource({ url: rabbit.url, ...AUTH, address: `/amq/queue/${name}` }, testContext());
    const outcomes = [
      DELIVERED_OUTCOME,
      { status: "dead_lettered" as const, error: new SinkError("bad event", false) },
      { status: "rejected" as const, error: new SinkError("refused", false) },
    ];
    const inbox = new FakeInbox({ script: (_m, info) => outcomes[info.index]! });
    try {
      await src.start(inbox);
      await inbox.waitForSettled(3);
    } finally {
      await src.close();
    }
    const dlq = await client.reader(`/amq/queue/${name}-dlq`);
    try {
      await waitFor(() => dlq.events.length >= 2, 10_000, () => `dead-lettered by the broker: ${dlq.events.length}`);
      assert.deepEqual(dlq.events.map((e) => e.attributes["id"]).sort(), [`${tag}-1`, `${tag}-2`]);
    } finally {
      await dlq.close();
    }
  });

  it("amqp source - an errored message is released after the release delay and comes back", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    await client.publish(address, sampleEvents(1, tag));
    const src = makeSource({ url: rabbit.url, ...AUTH, address }, testContext());
    const seenAt: number[] = [];
    const inbox = new FakeInbox({
      script: (_m, info) => {
        seenAt.push(Date.now());
        return info.seen === 1 ? erroredOutcome() : DELIVERED_OUTCOME;
      },
    });
    try {
      await src.start(inbox);
      await inbox.waitForSettled(2, 15_000);
      assert.ok(seenAt[1]! - seenAt[0]! >= 900, `released after about 1 s, came back after ${seenAt[1]! - seenAt[0]!} ms`);
      assert.equal(inbox.offers[1]!.deliveryCount, undefined, "RabbitMQ sends no delivery-count on a redelivery");
    } finally {
      await src.close();
    }
  });
});

describe("amqp source - rhea disposition merge", { timeout: 120_000 }, () => {
  /** Two deliveries held until both arrived, then settled in one turn: accept #0, release #1. */
  async function acceptAndReleaseInOneTurn(oneVerbPerTurn: boolean | undefined): Promise<{ returned: boolean; depth: [number, number] | undefined }> {
    const tag = uniqueTag();
    const address = await queue(tag);
    const [first, second] = sampleEvents(2, tag);
    await client.publish(address, [first!, second!]);
    const cfg = componentConfig(amqpSource, { url: rabbit.url, ...AUTH, address });
    const src = createAmqpSource(cfg as never, testContext(), oneVerbPerTurn === undefined ? {} : { oneVerbPerTurn });
    const inbox = new FakeInbox({ script: () => "hold" });
    let returned = false;
    try {
      await src.start(inbox);
      await inbox.waitForOffers(2);
      const [a, b] = inbox.held;
      inbox.settle(a!, DELIVERED_OUTCOME);
      inbox.settle(b!, { status: "errored", error: new SinkError("x", true), release: "shutdown" });
      try {
        await waitFor(() => inbox.offers.length >= 3, 4_000);
        returned = true;
        inbox.releaseHeld(DELIVERED_OUTCOME);
      } catch {
        returned = false;
      }
    } finally {
      await src.close();
    }
    await sleep(300);
    return { returned, depth: (await queueDepths(rabbit)).get(`q-${tag}`) };
  }

  it("amqp source - raw rhea merges an accept and a release of one turn into one accepted range (the bug is real)", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    await client.publish(address, sampleEvents(2, tag));
    const conn = client.conn;
    const session = conn.create_session();
    session.begin();
    const rcv = session.open_receiver({ source: { address }, autoaccept: false, credit_window: 0 });
    const deliveries: import("rhea").Delivery[] = [];
    rcv.on("message", (c: EventContext) => deliveries.push(c.delivery!));
    rcv.once("receiver_open", () => rcv.add_credit(2));
    await waitFor(() => deliveries.length === 2, 10_000);
    deliveries[0]!.accept();
    deliveries[1]!.release();
    await sleep(500);
    session.close();
    await sleep(500);
    assert.deepEqual((await queueDepths(rabbit)).get(`q-${tag}`), [0, 0], "the released message was accepted with the first: it is gone");
  });

  it("amqp source - without the workaround the released message is lost", async () => {
    const r = await acceptAndReleaseInOneTurn(false);
    assert.equal(r.returned, false);
    assert.deepEqual(r.depth, [0, 0]);
  });

  it("amqp source - with one outcome kind per turn the released message comes back", async () => {
    const r = await acceptAndReleaseInOneTurn(undefined);
    assert.equal(r.returned, true, "the released message was redelivered");
    assert.deepEqual(r.depth, [0, 0]);
  });
});

describe("amqp sink", { timeout: 120_000 }, () => {
  it("amqp sink - binary and structured (JSON, Protobuf), both prefixes: every attribute and data byte arrives", async () => {
    const tag = uniqueTag();
    const variants: [string, Record<string, unknown>][] = [
      ["bin", { mode: "binary" }],
      ["binu", { mode: "binary", prefix: "cloudEvents_" }],
      ["json", { mode: "structured" }],
      ["pb", { mode: "structured", format: "protobuf" }],
    ];
    for (const [v, opts] of variants) {
      const address = await queue(`${tag}-${v}`);
      const reader = await client.reader(address);
      const sink = makeSink({ url: rabbit.url, ...AUTH, address, ...opts }, testContext());
      try {
        await sink.open();
        const rich = richEvents(`${tag}-${v}`);
        await Promise.all(rich.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
        await waitFor(() => reader.events.length >= rich.length, 10_000);
        const got = new Map(reader.events.map((e) => [String(e.attributes["id"]), e]));
        for (const e of rich) assertSameEvent(got.get(String(e.attributes["id"]))!, e, { what: `${v} ${e.attributes["id"]}` });
        for (const m of reader.raw) assert.equal(m["durable"], true, "durable by default");
        if (v === "pb") {
          assert.equal(reader.raw[0]!["content_type"], "application/cloudevents+protobuf");
          const body = (reader.raw[0]!["body"] as { content: Buffer }).content;
          assert.equal(decodeProtobuf(body).attributes["specversion"], "1.0");
        }
      } finally {
        await sink.close();
        await reader.close();
      }
    }
  });

  it("amqp sink - an address template routes each event; a missing exchange fails permanently, other addresses keep working", async () => {
    const tag = uniqueTag();
    const a = await queue(`${tag}-a`);
    const reader = await client.reader(a);
    const sink = makeSink({ url: rabbit.url, ...AUTH, address: "/amq/queue/q-{qtag}" }, testContext());
    const bad = makeSink({ url: rabbit.url, ...AUTH, address: `/exchange/nope-${tag}/{type}` }, testContext());
    try {
      await sink.open();
      await bad.open();
      const ev: CloudEvent = { attributes: { specversion: "1.0", id: `${tag}-1`, source: "urn:x", type: "t", qtag: `${tag}-a` } };
      await sink.write(ev, AbortSignal.timeout(10_000));
      await assert.rejects(bad.write(ev, AbortSignal.timeout(10_000)), (e: { retryable?: boolean; message: string }) => e.retryable === false && /amqp:not-found/.test(e.message));
      await sink.write({ attributes: { ...ev.attributes, id: `${tag}-2` } }, AbortSignal.timeout(10_000));
      await waitFor(() => reader.events.length >= 2, 10_000);
      assert.deepEqual(reader.events.map((e) => e.attributes["id"]), [`${tag}-1`, `${tag}-2`]);
    } finally {
      await sink.close();
      await bad.close();
      await reader.close();
    }
  });

  it("amqp sink - writes in flight when the broker dies fail as transient; writes while down fail at once", async () => {
    // Its own broker: this case kills it.
    const own = await startRabbitMq();
    try {
      await declareQueue(own.url, "crash");
      const ctx = testContext();
      const sink = makeSink({ url: own.url, ...AUTH, address: "/amq/queue/crash" }, ctx);
      await sink.open();
      const evs = sampleEvents(200, uniqueTag());
      const writes = evs.map((e) => sink.write(e, AbortSignal.timeout(20_000)).then(() => "ok", (err: { retryable?: boolean; code?: string }) => `${err.retryable}:${err.code}`));
      await own.stop();
      const results = await Promise.all(writes);
      const failed = results.filter((r) => r !== "ok");
      assert.ok(failed.every((r) => r === "true:CEB_NOT_CONNECTED"), `every failure is transient: ${[...new Set(failed)].join(", ")}`);
      await waitFor(() => !ctx.isUp, 5_000, "reported down");
      await assert.rejects(sink.write(evs[0]!, AbortSignal.timeout(5_000)), (e: { code?: string }) => e.code === "CEB_NOT_CONNECTED");
      await own.restart();
      await waitFor(() => ctx.isUp, 30_000, "reconnected");
      await sink.write(evs[0]!, AbortSignal.timeout(10_000));
      await sink.close();
    } finally {
      await own.close();
    }
  });
});

describe("amqp interop - Apache Qpid Proton", { timeout: 120_000 }, () => {
  it("amqp interop - Proton reads what the sink writes: AMQP types, prefix, content-type symbol, one data section", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    const sink = makeSink({ url: rabbit.url, ...AUTH, address }, testContext());
    const ev: CloudEvent = {
      attributes: {
        specversion: "1.0",
        id: `${tag}-1`,
        source: "https://example.com/x",
        type: "com.example.t",
        datacontenttype: "application/octet-stream",
        time: "2024-05-06T05:08:09.123Z",
        count: 42,
        neg: -2147483648,
        flag: true,
        note: "Grüße",
      },
      data: { kind: "bytes", bytes: Buffer.from([0, 1, 2, 255]) },
    };
    const nanos: CloudEvent = { attributes: { specversion: "1.0", id: `${tag}-2`, source: "/s", type: "t", time: "2024-05-06T05:08:09.123456789Z" } };
    try {
      await sink.open();
      await sink.write(ev, AbortSignal.timeout(10_000));
      await sink.write(nanos, AbortSignal.timeout(10_000));
    } finally {
      await sink.close();
    }
    const [m1, m2] = await protonReceive(rabbit.url, address, 2);
    assert.equal(m1!.id, `${tag}-1`, "message-id = the event id");
    assert.equal(m1!.durable, true);
    assert.equal(m1!.content_type, "application/octet-stream");
    assert.equal(m1!.content_type_type, "symbol");
    assert.deepEqual(m1!.properties, {
      "cloudEvents:specversion": { type: "string", value: "1.0" },
      "cloudEvents:id": { type: "string", value: `${tag}-1` },
      "cloudEvents:source": { type: "string", value: "https://example.com/x" },
      "cloudEvents:type": { type: "string", value: "com.example.t" },
      "cloudEvents:time": { type: "timestamp", value: 1714972089123 },
      "cloudEvents:count": { type: "long", value: 42 },
      "cloudEvents:neg": { type: "long", value: -2147483648 },
      "cloudEvents:flag": { type: "boolean", value: true },
      "cloudEvents:note": { type: "string", value: "Grüße" },
    });
    assert.deepEqual(m1!.body, { type: "binary", value: "AAEC/w==", inferred: true }, "one data section");
    assert.deepEqual(m2!.properties["cloudEvents:time"], { type: "string", value: "2024-05-06T05:08:09.123456789Z" }, "sub-millisecond time stays a string");
    assert.equal(m2!.body, null, "no data: an amqp-value null body");
  });

  it("amqp interop - the source reads what Proton sends: cloudEvents_ prefix, int, symbol, ulong, timestamp, binary", async () => {
    const tag = uniqueTag();
    const address = await queue(tag);
    await protonSend(rabbit.url, address, [
      {
        id: "native-id",
        content_type: "application/json",
        properties: {
          cloudEvents_specversion: { type: "symbol", value: "1.0" },
          cloudEvents_id: { type: "string", value: `${tag}-p` },
          cloudEvents_source: { type: "string", value: "urn:proton" },
          cloudEvents_type: { type: "symbol", value: "org.example.proton" },
          cloudEvents_time: { type: "timestamp", value: 1714972089123 },
          cloudEvents_small: { type: "int", value: 7 },
          cloudEvents_big: { type: "ulong", value: 2147483647 },
          cloudEvents_flag: { type: "boolean", value: false },
          cloudEvents_blob: { type: "binary", value: Buffer.from([9, 8]).toString("base64") },
          unrelated: { type: "string", value: "ignored" },
        },
        body_base64: Buffer.from('{"k":[1,2]}').toString("base64"),
      },
    ]);
    const src = makeSource({ url: rabbit.url, ...AUTH, address }, testContext());
    const inbox = new FakeInbox();
    try {
      await src.start(inbox);
      await inbox.waitForSettled(1);
      const o = inbox.offers[0]!;
      assert.equal(o.invalid, undefined, o.invalid?.message);
      assertSameEvent(o.events[0]!, {
        attributes: {
          specversion: "1.0",
          id: `${tag}-p`,
          source: "urn:proton",
          type: "org.example.proton",
          time: "2024-05-06T05:08:09.123Z",
          small: 7,
          big: 2147483647,
          flag: false,
          blob: "CQg=",
          datacontenttype: "application/json",
        },
        data: { kind: "bytes", bytes: Buffer.from('{"k":[1,2]}') },
      });
    } finally {
      await src.close();
    }
  });
});
