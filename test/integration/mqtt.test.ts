/**
 * MQTT source and sink against a private mosquitto (MQTT 5 and 3.1.1).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connectAsync, type IClientPublishOptions, type IPublishPacket, type MqttClient } from "mqtt";
import { MQTT, type CloudEventV1 } from "cloudevents";
import { mqttSink, mqttSource } from "../../connectors/mqtt/definition.js";
import { decodeMqttMessage, encodeMqttMessage, type MqttMode, type UserProperties } from "../../connectors/mqtt/mapping.js";
import { attributeString, type CloudEvent } from "../../src/cloudevents/index.js";
import { startMosquitto, type BrokerHandle } from "../support/brokers.js";
import { sinkConformance, sourceConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, dataBytes, richEvents, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome } from "../support/fake-inbox.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { sleep, waitFor } from "../support/wait.js";

let broker: BrokerHandle;
let pub5: MqttClient;
let pub4: MqttClient;
const makeSource = await sourceFactory(mqttSource);
const makeSink = await sinkFactory(mqttSink);

before(async () => {
  broker = await startMosquitto();
  pub5 = await connectAsync(broker.url, { protocolVersion: 5, clientId: `pub5-${process.pid}` });
  pub4 = await connectAsync(broker.url, { protocolVersion: 4, clientId: `pub4-${process.pid}` });
});

after(async () => {
  await pub5?.endAsync();
  await pub4?.endAsync();
  await broker?.close();
});

async function publish(topic: string, evs: readonly CloudEvent[], mode: MqttMode, version: 4 | 5 = 5, qos: 0 | 1 = 1): Promise<void> {
  const client = version === 5 ? pub5 : pub4;
  for (const e of evs) {
    const out = encodeMqttMessage(e, mode, version);
    const opts: IClientPublishOptions = { qos };
    if (out.properties) opts.properties = out.properties;
    await client.publishAsync(topic, out.payload, opts);
  }
}

interface Captured {
  topic: string;
  payload: Buffer;
  contentType: string | undefined;
  userProperties: UserProperties | undefined;
}

/** A plain mqtt.js subscriber: keeps the raw packets and decodes them with our mapping. */
async function reader(filter: string, version: 4 | 5 = 5): Promise<{ events: CloudEvent[]; raw: Captured[]; close(): Promise<void> }> {
  const client = await connectAsync(broker.url, { protocolVersion: version, clientId: `rd-${uniqueTag()}` });
  const events: CloudEvent[] = [];
  const raw: Captured[] = [];
  client.on("message", (topic, payload, packet: IPublishPacket) => {
    const c: Captured = {
      topic,
      payload,
      contentType: packet.properties?.contentType,
      userProperties: packet.properties?.userProperties as UserProperties | undefined,
    };
    raw.push(c);
    const d = decodeMqttMessage(
      { topic, payload, protocolVersion: version, contentType: c.contentType, userProperties: c.userProperties },
      { source: "mqtt://x:1", now: () => new Date(), newId: () => "new" },
    );
    assert.equal(d.invalid, undefined, d.invalid?.message);
    events.push(d.event);
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { events, raw, close: () => client.endAsync() };
}

sourceConformance("mqtt", {
  redelivers: true,
  pausable: true,
  async fresh(tag, opts) {
    const n = opts?.parallelism ?? 1;
    // Parallel connections share one $share group, as a user scaling one source would configure it.
    const topic = n > 1 ? `$share/g${tag}/t/${tag}/#` : `t/${tag}/#`;
    return {
      make: () => makeSource({ url: broker.url, topic, client_id: `src-${tag}`, ...(n > 1 ? { connections: n } : {}) }, testContext(`mqtt-src-${tag}`)),
      publish: (evs) => publish(`t/${tag}/e`, evs, "binary"),
    };
  },
});

for (const [label, version, mode] of [
  ["v5 binary", 5, "binary"],
  ["v5 structured", 5, "structured"],
  ["v3.1.1 structured", 4, "structured"],
] as const) {
  sinkConformance(`mqtt (${label})`, {
    stringly: mode === "binary",
    async fresh(tag) {
      return {
        make: () =>
          makeSink({ url: broker.url, topic: `s/${tag}/{subject}`, protocol_version: version, ...(version === 5 ? { mode } : {}) }, testContext()),
        reader: () => reader(`s/${tag}/#`, version),
        unroutable: { attributes: { specversion: "1.0", id: "no-subject", source: "urn:x", type: "t" } },
      };
    },
  });
}

describe("mqtt connectors", { timeout: 90_000 }, () => {
  it("mqtt sink - v5 binary: user properties hold every attribute, and datacontenttype is also the content type", async () => {
    const tag = uniqueTag();
    const r = await reader(`b/${tag}/#`);
    const sink = makeSink({ url: broker.url, topic: `b/${tag}/{type}` }, testContext());
    await sink.open();
    try {
      const ev = richEvents(tag)[0]!;
      await sink.write(ev, AbortSignal.timeout(15_000));
      await waitFor(() => r.raw.length === 1);
      const c = r.raw[0]!;
      assert.equal(c.topic, `b/${tag}/com.example.order.created`);
      assert.equal(c.contentType, "application/json");
      const expected: Record<string, string> = {};
      for (const [k, v] of Object.entries(ev.attributes)) expected[k] = attributeString(v);
      assert.deepEqual({ ...c.userProperties }, expected, "values are canonical strings, not percent-encoded");
      assert.ok(c.payload.equals(dataBytes(ev)!));
    } finally {
      await sink.close();
      await r.close();
    }
  });

  it("mqtt sink - QoS 0 (written without mqtt.js's publish): writes of one turn arrive in order, byte for byte, in every mode and version", async () => {
    for (const [version, mode] of [[5, "binary"], [5, "structured"], [4, "structured"]] as const) {
      const tag = uniqueTag();
      const r = await reader(`q0/${tag}/#`, version);
      const sink = makeSink({ url: broker.url, topic: `q0/${tag}/{type}`, qos: 0, protocol_version: version, mode }, testContext());
      await sink.open();
      try {
        const evs = [...richEvents(tag), ...sampleEvents(40, tag)];
        await Promise.all(evs.map((e) => sink.write(e, AbortSignal.timeout(15_000))));
        await waitFor(() => r.raw.length === evs.length, 10_000);
        for (let i = 0; i < evs.length; i++) {
          const want = encodeMqttMessage(evs[i]!, mode, version);
          const got = r.raw[i]!;
          assert.equal(got.topic, `q0/${tag}/${evs[i]!.attributes["type"]}`, `${version}/${mode} #${i}`);
          assert.ok(got.payload.equals(want.payload), `${version}/${mode} #${i}: payload`);
          assert.equal(got.contentType, want.properties?.contentType);
          assert.deepEqual(got.userProperties === undefined ? undefined : { ...got.userProperties }, want.properties?.userProperties);
          // Binary mode carries extension values as strings (the bytes above are what matters there).
          if (mode === "structured") assertSameEvent(r.events[i]!, evs[i]!);
        }
      } finally {
        await sink.close();
        await r.close();
      }
    }
  });

  it("mqtt sink - QoS 0 with retain: a late subscriber gets the last event", async () => {
    const tag = uniqueTag();
    const sink = makeSink({ url: broker.url, topic: `rt/${tag}`, qos: 0, retain: true }, testContext());
    await sink.open();
    try {
      const evs = sampleEvents(2, tag);
      for (const e of evs) await sink.write(e, AbortSignal.timeout(15_000));
      await sleep(200);
      const r = await reader(`rt/${tag}`);
      try {
        await waitFor(() => r.raw.length === 1);
        assert.equal(r.events[0]!.attributes["id"], evs[1]!.attributes["id"]);
      } finally {
        await r.close();
      }
    } finally {
      await sink.close();
    }
  });

  it("mqtt sink - topic values cannot add levels or wildcards: / + # become _ and empty values _", async () => {
    const tag = uniqueTag();
    const r = await reader(`w/${tag}/#`);
    const sink = makeSink({ url: broker.url, topic: `w/${tag}/{subject}/{kind:-}` }, testContext());
    await sink.open();
    try {
      const ev: CloudEvent = { attributes: { specversion: "1.0", id: "1", source: "urn:x", type: "t", subject: "a/b+c#d" } };
      await sink.write(ev, AbortSignal.timeout(15_000));
      await waitFor(() => r.raw.length === 1);
      assert.equal(r.raw[0]!.topic, `w/${tag}/a_b_c_d/_`);
    } finally {
      await sink.close();
      await r.close();
    }
  });

  it("mqtt sink - what we publish is read by the cloudevents SDK's MQTT.toEvent (binary and structured)", async () => {
    const tag = uniqueTag();
    const r = await reader(`sdk/${tag}/#`);
    const bin = makeSink({ url: broker.url, topic: `sdk/${tag}/bin`, client_id: `bin-${tag}` }, testContext());
    const st = makeSink({ url: broker.url, topic: `sdk/${tag}/st`, mode: "structured", client_id: `st-${tag}` }, testContext());
    await bin.open();
    await st.open();
    try {
      // Latin-1-safe values only: the SDK does not touch encodings, but keep to DESIGN §9's rule.
      const ev: CloudEvent = {
        attributes: {
          specversion: "1.0",
          id: `${tag}-sdk`,
          source: "https://example.com/src",
          type: "com.example.sdk",
          subject: "café",
          time: "2024-05-06T07:08:09.123Z",
          datacontenttype: "application/json",
          tenant: "acme",
        },
        data: { kind: "bytes", bytes: Buffer.from('{"a":1}') },
      };
      await bin.write(ev, AbortSignal.timeout(15_000));
      await st.write(ev, AbortSignal.timeout(15_000));
      await waitFor(() => r.raw.length === 2);
      for (const c of r.raw) {
        const message = {
          PUBLISH: { "Content Type": c.contentType },
          body: c.contentType?.startsWith("application/cloudevents") ? c.payload.toString("utf8") : c.payload,
          headers: (c.userProperties ?? {}) as Record<string, string>,
        };
        assert.ok(MQTT.isEvent(message as never), `${c.topic} is an event for the SDK`);
        const got = MQTT.toEvent(message as never) as CloudEventV1<unknown>;
        assert.equal(got.id, ev.attributes["id"]);
        assert.equal(got.source, ev.attributes["source"]);
        assert.equal(got.type, ev.attributes["type"]);
        assert.equal(got.subject, "café");
        assert.equal(got.specversion, "1.0");
        assert.equal(Date.parse(String(got.time)), Date.parse("2024-05-06T07:08:09.123Z"));
        assert.equal((got as unknown as Record<string, unknown>)["tenant"], "acme");
        // The SDK's binary reader takes attributes only from user properties and ignores the PUBLISH
        // Content Type, so our binary mode also sends datacontenttype as a user property.
        assert.equal(got.datacontenttype, "application/json");
        if (c.topic.endsWith("/st")) assert.deepEqual(got.data, { a: 1 });
        else assert.equal(Buffer.from(got.data as Uint8Array).toString("utf8"), '{"a":1}', "the SDK hands binary payloads over as bytes");
      }
    } finally {
      await bin.close();
      await st.close();
      await r.close();
    }
  });

  it("mqtt source - reads what the cloudevents SDK's MQTT.binary / MQTT.structured produce", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox();
    const src = makeSource({ url: broker.url, topic: `in/${tag}/#`, client_id: `in-${tag}` }, testContext());
    await src.start(inbox);
    try {
      const sdkEvent = { specversion: "1.0", id: "sdk-1", source: "urn:sdk", type: "com.example.sdk", time: "2024-01-02T03:04:05.678Z", datacontenttype: "text/plain", tenant: "acme", data: "hello" } as const;
      const b = MQTT.binary(sdkEvent as never) as unknown as { body: unknown; headers: Record<string, unknown>; PUBLISH: Record<string, string> };
      // The SDK returns unset attributes as undefined, which mqtt.js rejects (docs/performance.md).
      const userProperties = Object.fromEntries(Object.entries(b.headers).filter(([, v]) => v !== undefined).map(([k, v]) => [k, String(v)]));
      await pub5.publishAsync(`in/${tag}/b`, String(b.body), { qos: 1, properties: { contentType: b.PUBLISH["Content Type"]!, userProperties } });
      const s = MQTT.structured(sdkEvent as never) as unknown as { body: unknown; PUBLISH: Record<string, string> };
      await pub5.publishAsync(`in/${tag}/s`, JSON.stringify(s.body), { qos: 1, properties: { contentType: s.PUBLISH["Content Type"]! } });
      await inbox.waitForSettled(2);
      for (const o of inbox.offers) {
        assert.equal(o.invalid, undefined);
        const e = o.events[0]!;
        assert.equal(e.attributes["id"], "sdk-1");
        assert.equal(e.attributes["source"], "urn:sdk");
        assert.equal(e.attributes["tenant"], "acme");
        assert.equal(e.attributes["datacontenttype"], "text/plain");
        assert.equal(Date.parse(String(e.attributes["time"])), Date.parse(sdkEvent.time));
        assert.equal(dataBytes(e)!.toString("utf8"), "hello");
      }
    } finally {
      await src.close();
    }
  });

  for (const mode of ["binary", "structured"] as const) {
    it(`mqtt - rich events survive sink → source on MQTT 5 in ${mode} mode`, async () => {
      const tag = uniqueTag();
      const inbox = new FakeInbox();
      const src = makeSource({ url: broker.url, topic: `r/${tag}/#`, client_id: `rs-${tag}` }, testContext());
      await src.start(inbox);
      const sink = makeSink({ url: broker.url, topic: `r/${tag}/x`, mode }, testContext());
      await sink.open();
      try {
        const evs = richEvents(tag);
        for (const e of evs) await sink.write(e, AbortSignal.timeout(15_000));
        await inbox.waitForSettled(evs.length);
        inbox.offers.forEach((o, i) => {
          assert.equal(o.invalid, undefined);
          assertSameEvent(o.events[0]!, evs[i]!, { stringly: mode === "binary" });
        });
      } finally {
        await sink.close();
        await src.close();
      }
    });
  }

  it("mqtt - MQTT 3.1.1 carries structured events both ways", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox();
    const src = makeSource({ url: broker.url, topic: `v4/${tag}/#`, client_id: `v4-${tag}`, protocol_version: 4 }, testContext());
    await src.start(inbox);
    const sink = makeSink({ url: broker.url, topic: `v4/${tag}/x`, protocol_version: 4 }, testContext());
    await sink.open();
    try {
      const evs = richEvents(tag);
      for (const e of evs) await sink.write(e, AbortSignal.timeout(15_000));
      await inbox.waitForSettled(evs.length);
      inbox.offers.forEach((o, i) => assertSameEvent(o.events[0]!, evs[i]!));
    } finally {
      await sink.close();
      await src.close();
    }
  });

  it("mqtt source - maps a plain message per DESIGN §5", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox();
    const src = makeSource({ url: broker.url, topic: `p/${tag}/#`, client_id: `p-${tag}` }, testContext());
    await src.start(inbox);
    try {
      await pub5.publishAsync(`p/${tag}/temp`, "21.5", { qos: 1, properties: { contentType: "text/plain", userProperties: { Unit: "C" } } });
      await pub4.publishAsync(`p/${tag}/raw`, Buffer.from([1, 2, 3]), { qos: 1 });
      await inbox.waitForSettled(2);
      const byTopic = new Map(inbox.offers.map((o) => [String(o.events[0]!.attributes["subject"]), o.events[0]!]));
      const a = byTopic.get(`p/${tag}/temp`)!;
      assert.equal(a.attributes["type"], "org.mqtt.message");
      assert.equal(a.attributes["source"], `mqtt://127.0.0.1:${broker.port}`);
      assert.equal(a.attributes["datacontenttype"], "text/plain");
      assert.equal(a.attributes["mqttunit"], "C");
      assert.match(String(a.attributes["id"]), /^[0-9a-f-]{36}$/);
      assert.equal(dataBytes(a)!.toString(), "21.5");
      const b = byTopic.get(`p/${tag}/raw`)!;
      assert.deepEqual([...dataBytes(b)!], [1, 2, 3]);
      assert.equal(b.attributes["datacontenttype"], undefined);
    } finally {
      await src.close();
    }
  });

  it("mqtt source - an invalid CloudEvent is offered as dev.cebridge.invalid and acknowledged once dead-lettered", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox({ script: (m) => (m.invalid ? { status: "dead_lettered", error: m.invalid } : DELIVERED_OUTCOME) });
    const src = makeSource({ url: broker.url, topic: `i/${tag}/#`, client_id: `i-${tag}` }, testContext());
    await src.start(inbox);
    try {
      await pub5.publishAsync(`i/${tag}/x`, "{}", { qos: 1, properties: { userProperties: { specversion: "1.0", id: "x" } } });
      await inbox.waitForSettled(1);
      assert.equal(inbox.offers[0]!.invalid?.code, "CEB_EVENT_INVALID");
      assert.equal(inbox.offers[0]!.events[0]!.attributes["type"], "dev.cebridge.invalid");
      await sleep(500);
      assert.equal(inbox.offers.length, 1);
    } finally {
      await src.close();
    }
  });

  it("mqtt source - connections: N in a shared subscription share the window, each message once", async () => {
    const tag = uniqueTag();
    const inbox = new FakeInbox({ capacity: 8, settleDelayMs: 40 });
    const src = makeSource({ url: broker.url, topic: `$share/g${tag}/sh/${tag}/#`, client_id: `sh-${tag}`, connections: 3 }, testContext());
    await src.start(inbox);
    try {
      const evs = sampleEvents(30, tag);
      await publish(`sh/${tag}/e`, evs, "binary");
      await inbox.waitForSettled(30, 20_000);
      await sleep(300);
      assert.equal(inbox.keys.length, 30);
      assert.equal(new Set(inbox.keys).size, 30);
      assert.ok(inbox.maxInUse > 1, `parallelism ${inbox.maxInUse}`);
      assert.ok(inbox.maxInUse <= 8, `never more than the window, peak ${inbox.maxInUse}`);
    } finally {
      await src.close();
    }
  });

  it("mqtt source - a real crash (socket destroyed, no DISCONNECT) redelivers the unacknowledged message", async () => {
    const tag = uniqueTag();
    const opts = { url: broker.url, topic: `cr/${tag}/#`, client_id: `cr-${tag}` };
    const first = makeSource(opts, testContext());
    const holding = new FakeInbox({ script: () => "hold" });
    await first.start(holding);
    await publish(`cr/${tag}/e`, sampleEvents(3, tag), "binary");
    await holding.waitForOffers(1);
    // Settling errored drops the socket without DISCONNECT, like a crash; then close for good.
    holding.settle(holding.held[0]!, erroredOutcome());
    await first.close();
    const second = makeSource(opts, testContext());
    const inbox = new FakeInbox();
    await second.start(inbox);
    try {
      await waitFor(() => inbox.settlements.length >= 3, 15_000, () => `got ${inbox.keys.join(",")}`);
    } finally {
      await second.close();
    }
  });

  it("mqtt sink - QoS 0 is best-effort, QoS 1 confirmed; writes fail retryably while the broker is down", async () => {
    const own = await startMosquitto();
    const ctx = testContext();
    const q0 = makeSink({ url: own.url, topic: "x/{type}", qos: 0 }, testContext());
    const q1 = makeSink({ url: own.url, topic: "x/{type}" }, ctx);
    try {
      assert.equal(q0.guarantee, "best-effort");
      assert.equal(q1.guarantee, "confirmed");
      await q0.open();
      await q1.open();
      await q0.write(sampleEvents(1, "q")[0]!, AbortSignal.timeout(15_000));
      await q1.write(sampleEvents(1, "q")[0]!, AbortSignal.timeout(15_000));
      await own.stop();
      await waitFor(() => !ctx.isUp, 10_000);
      await assert.rejects(q1.write(sampleEvents(1, "q")[0]!, AbortSignal.timeout(15_000)), (e: { retryable?: boolean }) => e.retryable === true);
      await own.restart();
      await waitFor(() => ctx.isUp, 15_000);
      await q1.write(sampleEvents(1, "q")[0]!, AbortSignal.timeout(15_000));
    } finally {
      await q0.close();
      await q1.close();
      await own.close();
    }
  });

  it("mqtt source - QoS 0 with a blocking inbox (buffer when_full: block) stops reading instead of dropping, and keeps order", async () => {
    const tag = uniqueTag();
    const ctx = testContext();
    const inbox = new FakeInbox({ capacity: 1, script: () => "hold", blocking: true });
    const src = makeSource({ url: broker.url, topic: `zb/${tag}/#`, client_id: `zb-${tag}`, qos: 0 }, ctx);
    await src.start(inbox);
    try {
      const events = sampleEvents(5, tag);
      await publish(`zb/${tag}/e`, events, "binary", 5, 0);
      await inbox.waitForOffers(1);
      await sleep(200);
      assert.equal(inbox.offers.length, 1, "the rest waits in the connection, not dropped");
      for (let i = 1; i < 5; i++) {
        inbox.releaseHeld();
        await inbox.waitForOffers(i + 1);
      }
      inbox.releaseHeld();
      assert.equal(ctx.dropped, 0);
      assert.deepEqual(
        inbox.offers.map((m) => m.events[0]!.attributes["id"]),
        events.map((e) => e.attributes["id"]),
      );
    } finally {
      await src.close();
    }
  });

  it("mqtt source - QoS 0 cannot pause: a full window drops and counts overflow", async () => {
    const tag = uniqueTag();
    const ctx = testContext();
    const inbox = new FakeInbox({ capacity: 1, script: () => "hold" });
    const src = makeSource({ url: broker.url, topic: `z/${tag}/#`, client_id: `z-${tag}`, qos: 0 }, ctx);
    await src.start(inbox);
    try {
      await publish(`z/${tag}/e`, sampleEvents(5, tag), "binary", 5, 0);
      await waitFor(() => inbox.offers.length + ctx.dropped === 5);
      assert.equal(inbox.offers.length, 1);
      assert.equal(ctx.dropped, 4);
    } finally {
      await src.close();
    }
  });
});
