/**
 * AMQP interop on a private RabbitMQ: Apache Qpid Proton (which shares no code with rhea) reads
 * what the sink writes and writes what the source reads; and the rhea disposition merge, shown on
 * raw rhea, then through the source with and without its workaround.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Delivery, EventContext } from "rhea";
import { amqpSink, amqpSource } from "../../connectors/amqp/definition.js";
import { createAmqpSource } from "../../connectors/amqp/source.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { SinkError } from "../../src/core/errors.js";
import { amqpClient, type AmqpTestClient } from "../support/amqp-client.js";
import { declareQueue, queueDepths, startRabbitMq, type RabbitHandle } from "../support/brokers.js";
import { componentConfig, sinkFactory, sourceFactory } from "../support/component.js";
import { uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox } from "../support/fake-inbox.js";
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

async function queue(tag: string): Promise<string> {
  const name = `q-${tag}`;
  await declareQueue(rabbit.url, name);
  return `/amq/queue/${name}`;
}

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
        await waitFor(() => inbox.offers.length >= 3, 2_500);
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
    const deliveries: Delivery[] = [];
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
