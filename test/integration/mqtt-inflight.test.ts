/**
 * MQTT source, QoS 1: many messages in flight on one connection, with every PUBACK sent only after
 * its message settled and in the order the PUBLISH packets arrived (MQTT §4.6; an errored message
 * is never acknowledged on its connection, which is dropped once the others settled). A TCP relay between
 * the source and a private mosquitto reads the packets on the wire in both directions.
 */
import assert from "node:assert/strict";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { connectAsync, type MqttClient } from "mqtt";
import { mqttSource } from "../../connectors/mqtt/definition.js";
import { encodeMqttMessage } from "../../connectors/mqtt/mapping.js";
import type { Received } from "../../src/core/source.js";
import { startMosquitto, type BrokerHandle } from "../support/brokers.js";
import { sourceFactory } from "../support/component.js";
import { uniqueTag } from "../support/conformance.js";
import { FrameReader } from "../support/counting.js";
import { testContext } from "../support/context.js";
import { sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome } from "../support/fake-inbox.js";
import { sleep, waitFor } from "../support/wait.js";

const makeSource = await sourceFactory(mqttSource);
let broker: BrokerHandle;
let pub: MqttClient;

before(async () => {
  broker = await startMosquitto();
  pub = await connectAsync(broker.url, { protocolVersion: 5, clientId: `if-pub-${process.pid}` });
});

after(async () => {
  await pub?.endAsync();
  await broker?.close();
});

/** The packet ids of the PUBLISH (QoS > 0) and PUBACK packets on one direction of the wire, in order. */
class WireReader {
  private readonly seen: { type: number; id: number }[] = [];
  private readonly frames = new FrameReader((type, flags, body) => {
    if (type === 4) this.seen.push({ type, id: body.readUInt16BE(0) });
    else if (type === 3 && ((flags >> 1) & 3) > 0) this.seen.push({ type, id: body.readUInt16BE(2 + body.readUInt16BE(0)) });
  });

  push(chunk: Buffer): void {
    this.frames.push(chunk);
  }

  ids(type: 3 | 4): number[] {
    return this.seen.filter((p) => p.type === type).map((p) => p.id);
  }
}

/** A TCP relay to the broker that records what each side sends (every connection, in order). */
async function relay(port: number): Promise<{ url: string; toBroker: WireReader; toClient: WireReader; close(): Promise<void> }> {
  const toBroker = new WireReader();
  const toClient = new WireReader();
  const sockets: Socket[] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ port, host: "127.0.0.1" });
    sockets.push(client, upstream);
    client.on("data", (d: Buffer) => {
      toBroker.push(d);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => {
      toClient.push(d);
      client.write(d);
    });
    client.on("end", () => upstream.end());
    upstream.on("end", () => client.end());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => {});
    upstream.on("error", () => {});
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const addr = server.address() as { port: number };
  return {
    url: `mqtt://127.0.0.1:${addr.port}`,
    toBroker,
    toClient,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((res) => server.close(() => res()));
    },
  };
}

async function publishAll(topic: string, n: number, tag: string): Promise<string[]> {
  const evs = sampleEvents(n, tag);
  for (const e of evs) {
    const out = encodeMqttMessage(e, "binary", 5);
    await pub.publishAsync(topic, out.payload, { qos: 1, ...(out.properties ? { properties: out.properties } : {}) });
  }
  return evs.map((e) => String(e.attributes["id"]));
}

const idOf = (m: Received) => String(m.events[0]!.attributes["id"]);

describe("mqtt source - QoS 1 in flight", { timeout: 60_000 }, () => {
  it("many messages in flight on one connection; each PUBACK after its settle, in arrival order", async () => {
    const tag = uniqueTag();
    const r = await relay(broker.port);
    const inbox = new FakeInbox({ capacity: 32, script: () => "hold" });
    const src = makeSource({ url: r.url, topic: `if/${tag}/#`, client_id: `if-${tag}` }, testContext());
    await src.start(inbox);
    try {
      const N = 12;
      const sent = await publishAll(`if/${tag}/e`, N, tag);
      await inbox.waitForOffers(N);
      assert.equal(inbox.maxInUse, N, "all of them in the route at once, on one connection");
      await sleep(200);
      assert.deepEqual(r.toBroker.ids(4), [], "no PUBACK before a settle");
      const arrived = r.toClient.ids(3);
      assert.equal(arrived.length, N);
      const held = new Map(inbox.held.map((m) => [idOf(m), m]));
      // Settle out of order; after each step the PUBACKs on the wire are exactly the settled prefix.
      const order = [3, 1, 0, 2, 7, 5, 6, 4, 11, 8, 10, 9];
      const settled = new Set<number>();
      for (const k of order) {
        inbox.settle(held.get(sent[k]!)!, DELIVERED_OUTCOME);
        settled.add(k);
        let prefix = 0;
        while (settled.has(prefix)) prefix++;
        await waitFor(() => r.toBroker.ids(4).length >= prefix, 5000, "PUBACKs of the settled prefix");
        await sleep(30);
        assert.deepEqual(r.toBroker.ids(4), arrived.slice(0, prefix), `after settling ${[...settled].join(",")}`);
      }
    } finally {
      await src.close();
      await r.close();
    }
    // Everything was acknowledged: a new session member gets nothing back.
    const again = new FakeInbox();
    const second = makeSource({ url: broker.url, topic: `if/${tag}/#`, client_id: `if-${tag}` }, testContext());
    await second.start(again);
    try {
      await sleep(500);
      assert.deepEqual(again.keys, []);
    } finally {
      await second.close();
    }
  });

  it("an errored message in the middle comes back alone; nothing unsettled is acknowledged at shutdown", async () => {
    const tag = uniqueTag();
    const r = await relay(broker.port);
    const inbox = new FakeInbox({ capacity: 32, script: () => "hold" });
    const opts = { url: r.url, topic: `ie/${tag}/#`, client_id: `ie-${tag}` };
    const src = makeSource(opts, testContext());
    await src.start(inbox);
    const N = 10;
    let arrived: number[] = [];
    let sent: string[] = [];
    try {
      sent = await publishAll(`ie/${tag}/e`, N, tag);
      await inbox.waitForOffers(N);
      arrived = r.toClient.ids(3);
      const held = new Map(inbox.held.map((m) => [idOf(m), m]));
      // 4 errored while 6 and 8 are still open: the connection stays until they settle.
      for (const k of [0, 1, 2, 3, 5, 7, 9]) inbox.settle(held.get(sent[k]!)!, DELIVERED_OUTCOME);
      inbox.settle(held.get(sent[4]!)!, erroredOutcome());
      // The errored one is never acknowledged on this connection; the PUBACKs that go out keep the
      // arrival order, and none passes a message still open (6).
      await waitFor(() => r.toBroker.ids(4).length >= 5, 5000, "PUBACKs up to the first open message");
      await sleep(100);
      assert.deepEqual(r.toBroker.ids(4), [0, 1, 2, 3, 5].map((k) => arrived[k]), "up to 6, which is open, without 4");
      inbox.settle(held.get(sent[6]!)!, DELIVERED_OUTCOME);
      inbox.settle(held.get(sent[8]!)!, DELIVERED_OUTCOME);
      // Then every settled one is acknowledged, in order, the errored one never, and it comes back.
      await waitFor(() => inbox.offers.length > N, 10_000, "redelivery of the errored message");
      const acked = r.toBroker.ids(4).slice(0, N - 1);
      assert.deepEqual(acked, arrived.filter((_, k) => k !== 4));
      await sleep(300);
      assert.deepEqual(inbox.keys.slice(N).map((k) => k.split(" ")[1]), [sent[4]]);
      // The redelivered one is left unsettled over a shutdown: it must not be acknowledged.
      await src.close();
      assert.equal(r.toBroker.ids(4).length, N - 1);
    } finally {
      await src.close();
      await r.close();
    }
    const again = new FakeInbox();
    const second = makeSource({ ...opts, url: broker.url }, testContext());
    await second.start(again);
    try {
      await waitFor(() => again.keys.length >= 1, 10_000, "the unsettled message after the restart");
      await sleep(300);
      assert.deepEqual(again.keys.map((k) => k.split(" ")[1]), [sent[4]]);
    } finally {
      await second.close();
    }
  });
});
