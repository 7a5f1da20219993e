/**
 * AMQP source and sink against a private RabbitMQ 3.10 with its AMQP 1.0 plugin (one broker for
 * the file; every case has its own queues), plus interop with Apache Qpid Proton, which shares no
 * code with rhea.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import rhea from "rhea";
import { amqpSink, amqpSource } from "../../connectors/amqp/definition.js";
import { decodeProtobuf, type CloudEvent } from "../../src/cloudevents/index.js";
import { SinkError } from "../../src/core/errors.js";
import { amqpClient, type AmqpTestClient } from "../support/amqp-client.js";
import { declareQueue, queueDepths, startRabbitMq, type RabbitHandle } from "../support/brokers.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { sinkConformance, sourceConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, richEvents, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome } from "../support/fake-inbox.js";
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
});

