/**
 * Fixture tables for the pure Pub/Sub mapping: binary `ce-` attributes, structured, plain messages →
 * Google's messagePublished event (data validated against the vendored MessagePublishedData schema),
 * `mapping: raw` with escaped extensions, invalid messages, and the sink's binary/structured encoding
 * with the attribute-limit fallback (the hop's trace attributes counted in).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MESSAGE_PUBLISHED_TYPE,
  PUBSUB_LIMITS,
  RAW_TYPE,
  STRUCTURED_CONTENT_TYPE,
  attributeLimitProblem,
  decodePubSubMessage,
  encodePubSubMessage,
  type InboundOptions,
  type PubSubInbound,
} from "../../../connectors/gcp-pubsub/mapping.js";
import { makeEvent, type AttributeValue, type CloudEvent } from "../../../src/cloudevents/index.js";
import { messagePublishedDataProblem, pubsubVector } from "../../support/pubsub-vectors.js";

const opts: InboundOptions = {
  topic: "projects/test-project/topics/my-topic",
  subscription: "projects/test-project/subscriptions/my-subscription",
  mapping: "message_published",
  rawType: RAW_TYPE,
};

const utf8 = (s: string) => Buffer.from(s, "utf8");

function msg(m: Partial<PubSubInbound>): PubSubInbound {
  return {
    messageId: "message-id",
    data: Buffer.alloc(0),
    attributes: {},
    orderingKey: "",
    publishTime: "2021-02-05T04:06:14.109Z",
    deliveryAttempt: 0,
    ...m,
  };
}

function dataText(ev: CloudEvent): string | null {
  const d = ev.data;
  if (d === undefined) return null;
  if (d.kind === "bytes") return Buffer.from(d.bytes).toString("utf8");
  if (d.kind === "text") return d.text;
  // A structured event without datacontenttype carries its text data as a JSON string.
  return typeof d.value === "string" ? d.value : JSON.stringify(d.value);
}

interface Case {
  name: string;
  msg: PubSubInbound;
  options?: Partial<InboundOptions>;
  attributes?: Record<string, AttributeValue>;
  data?: string | null;
  invalid?: string;
}

const STRUCTURED = '{"specversion":"1.0","id":"s1","source":"urn:a","type":"t.x","count":3,"data":{"a":1}}';

const cases: Case[] = [
  {
    name: "structured by the content-type attribute (name and value in any case)",
    msg: msg({ attributes: { "Content-Type": "Application/CloudEvents+JSON; charset=UTF-8" }, data: utf8(STRUCTURED) }),
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", count: 3 },
    data: '{"a":1}',
  },
  {
    name: "binary: ce- attributes, values as they are (no percent-decoding), content-type wins over ce-datacontenttype",
    msg: msg({
      attributes: {
        "ce-specversion": "1.0",
        "ce-id": "100%41 x",
        "ce-source": "//pubsub.googleapis.com/projects/p/topics/t",
        "ce-type": "com.example.x",
        "ce-datacontenttype": "text/plain",
        "content-type": "application/json",
        "ce-note": "Euro € 😀",
        other: "ignored",
      },
      data: utf8('{"k":true}'),
    }),
    attributes: {
      specversion: "1.0",
      id: "100%41 x",
      source: "//pubsub.googleapis.com/projects/p/topics/t",
      type: "com.example.x",
      datacontenttype: "application/json",
      note: "Euro € 😀",
    },
    data: '{"k":true}',
  },
  {
    name: "binary: ce-datacontenttype alone (Google's example), attribute names in any case",
    msg: msg({
      attributes: { "CE-SpecVersion": "1.0", "Ce-Id": "1", "ce-source": "urn:s", "ce-type": "t", "ce-datacontenttype": "application/octet-stream" },
      data: Buffer.from([0, 1, 255]),
    }),
    attributes: { specversion: "1.0", id: "1", source: "urn:s", type: "t", datacontenttype: "application/octet-stream" },
    data: Buffer.from([0, 1, 255]).toString("utf8"),
  },
  {
    name: "binary without data has no data",
    msg: msg({ attributes: { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "urn:s", "ce-type": "t" } }),
    attributes: { specversion: "1.0", id: "1", source: "urn:s", type: "t" },
    data: null,
  },
  {
    name: "structured without attributes (TriggerMesh's Pub/Sub target)",
    msg: msg({ data: utf8(` ${STRUCTURED}`) }),
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", count: 3 },
    data: '{"a":1}',
  },
  {
    name: "plain → messagePublished (Google's complex example), orderingKey also as partitionkey",
    msg: msg({ data: utf8("test message 3"), attributes: { attr1: "attr1-value" }, orderingKey: "ordering-key" }),
    attributes: {
      specversion: "1.0",
      id: "message-id",
      source: "//pubsub.googleapis.com/projects/test-project/topics/my-topic",
      type: MESSAGE_PUBLISHED_TYPE,
      time: "2021-02-05T04:06:14.109Z",
      datacontenttype: "application/json",
      partitionkey: "ordering-key",
    },
    data: JSON.stringify(pubsubVector("binary_pubsub_MessagePublishedData-complex.json")),
  },
  {
    name: "plain → messagePublished (Google's simple example): no attributes, no ordering key",
    msg: msg({ data: Buffer.from([1, 2, 3, 4]) }),
    attributes: {
      specversion: "1.0",
      id: "message-id",
      source: "//pubsub.googleapis.com/projects/test-project/topics/my-topic",
      type: MESSAGE_PUBLISHED_TYPE,
      time: "2021-02-05T04:06:14.109Z",
      datacontenttype: "application/json",
    },
    data: JSON.stringify(pubsubVector("binary_pubsub_MessagePublishedData-simple.json")),
  },
  {
    name: "plain JSON with a content-type is not sniffed: it stays a plain message",
    msg: msg({ data: utf8(STRUCTURED), attributes: { "content-type": "application/json" } }),
    attributes: {
      specversion: "1.0",
      id: "message-id",
      source: "//pubsub.googleapis.com/projects/test-project/topics/my-topic",
      type: MESSAGE_PUBLISHED_TYPE,
      time: "2021-02-05T04:06:14.109Z",
      datacontenttype: "application/json",
    },
    data: JSON.stringify({
      subscription: opts.subscription,
      message: { data: utf8(STRUCTURED).toString("base64"), attributes: { "content-type": "application/json" }, messageId: "message-id", publishTime: "2021-02-05T04:06:14.109Z" },
    }),
  },
  {
    name: "messagePublished carries deliveryAttempt when the subscription has a dead-letter policy; source falls back to the subscription",
    msg: msg({ data: utf8("x"), deliveryAttempt: 3, publishTime: "2021-02-05T04:06:14.1091234Z" }),
    options: { topic: undefined },
    attributes: {
      specversion: "1.0",
      id: "message-id",
      source: "//pubsub.googleapis.com/projects/test-project/subscriptions/my-subscription",
      type: MESSAGE_PUBLISHED_TYPE,
      time: "2021-02-05T04:06:14.1091234Z",
      datacontenttype: "application/json",
    },
    data: JSON.stringify({
      subscription: opts.subscription,
      message: { data: "eA==", messageId: "message-id", publishTime: "2021-02-05T04:06:14.1091234Z" },
      deliveryAttempt: 3,
    }),
  },
  {
    name: "raw: data bytes, content-type as datacontenttype, attributes as escaped extensions, ordering key as partitionkey",
    msg: msg({
      data: Buffer.from([0xde, 0xad, 0xbe, 0xef]),
      attributes: { "content-type": "application/x-thing", "X-Tenant": "acme", x_tenant: "b", zone: "eu", "ünï": "u" },
      orderingKey: "k1",
    }),
    options: { mapping: "raw" },
    attributes: {
      specversion: "1.0",
      id: "message-id",
      source: "//pubsub.googleapis.com/projects/test-project/topics/my-topic",
      type: RAW_TYPE,
      time: "2021-02-05T04:06:14.109Z",
      datacontenttype: "application/x-thing",
      partitionkey: "k1",
      pubsubxz2dtenant: "acme",
      pubsubxz5ftenant: "b",
      pubsubz7aone: "eu",
      pubsubzfcnzef: "u",
    },
    data: Buffer.from([0xde, 0xad, 0xbe, 0xef]).toString("utf8"),
  },
  {
    name: "raw with a configured type; no data and no content type → no data",
    msg: msg({ attributes: { a: "1" } }),
    options: { mapping: "raw", rawType: "com.example.raw" },
    attributes: {
      specversion: "1.0",
      id: "message-id",
      source: "//pubsub.googleapis.com/projects/test-project/topics/my-topic",
      type: "com.example.raw",
      time: "2021-02-05T04:06:14.109Z",
      pubsuba: "1",
    },
    data: null,
  },
  { name: "invalid: binary without ce-type", msg: msg({ attributes: { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "urn:s" }, data: utf8("d") }), invalid: "CEB_EVENT_INVALID" },
  { name: "invalid: a ce- attribute that is not an attribute name", msg: msg({ attributes: { "ce-my-ext": "1", "ce-id": "1" } }), invalid: "CEB_EVENT_INVALID" },
  { name: "invalid: structured content type with malformed JSON", msg: msg({ attributes: { "content-type": STRUCTURED_CONTENT_TYPE }, data: utf8("{nope") }), invalid: "CEB_FORMAT" },
  { name: "invalid: over max_payload", msg: msg({ data: Buffer.alloc(11) }), options: { maxPayload: 10 }, invalid: "CEB_TOO_LARGE" },
];

describe("gcp_pubsub mapping - decode", () => {
  for (const c of cases) {
    it(`gcp_pubsub mapping - ${c.name}`, () => {
      const d = decodePubSubMessage(c.msg, { ...opts, ...c.options });
      if (c.invalid) {
        assert.equal(d.invalid?.code, c.invalid, d.invalid?.message);
        assert.equal(d.event.attributes["type"], "dev.cebridge.invalid");
        assert.equal(d.event.attributes["id"], "message-id", "the invalid event keeps the message id");
        const value = (d.event.data as { value: { raw_base64: string; metadata: Record<string, string> } }).value;
        assert.equal(value.raw_base64, Buffer.from(c.msg.data).toString("base64"));
        for (const [k, v] of Object.entries(c.msg.attributes)) assert.equal(value.metadata[`attribute:${k}`], v);
        assert.equal(value.metadata["subscription"], opts.subscription);
        return;
      }
      assert.equal(d.invalid, undefined, d.invalid?.message);
      assert.deepEqual({ ...d.event.attributes }, c.attributes);
      if (c.data === null) assert.equal(d.event.data, undefined);
      else if (d.event.data?.kind === "json") assert.deepEqual(d.event.data.value, JSON.parse(c.data!));
      else assert.equal(dataText(d.event), c.data);
    });
  }

  it("gcp_pubsub mapping - every messagePublished data validates against Google's MessagePublishedData schema", () => {
    const inputs = [
      msg({ data: utf8("test message 3"), attributes: { attr1: "attr1-value" }, orderingKey: "ordering-key" }),
      msg({ data: Buffer.from([1, 2, 3, 4]) }),
      msg({ attributes: { only: "attributes" } }),
      msg({ data: Buffer.from([0, 255]), deliveryAttempt: 5, publishTime: "2024-12-31T23:59:59.123456789Z" }),
    ];
    for (const m of inputs) {
      const d = decodePubSubMessage(m, opts);
      assert.equal(d.event.attributes["type"], MESSAGE_PUBLISHED_TYPE);
      assert.equal(d.event.data?.kind, "json");
      assert.equal(messagePublishedDataProblem((d.event.data as { value: unknown }).value), undefined);
    }
  });

  it("gcp_pubsub mapping - the schema validator accepts Google's examples and refuses a wrong shape", () => {
    for (const f of [
      "binary_pubsub_MessagePublishedData-complex.json",
      "binary_pubsub_MessagePublishedData-simple.json",
      "pubsub_v1_MessagePublishedData-binary.json",
      "pubsub_v1_MessagePublishedData-duplicatedFields.json",
      "pubsub_v1_MessagePublishedData-text.json",
    ]) {
      assert.equal(messagePublishedDataProblem(pubsubVector(f)), undefined, f);
    }
    assert.equal(messagePublishedDataProblem(pubsubVector("structured_pubsub_MessagePublishedData.json")["data"]), undefined);
    assert.notEqual(messagePublishedDataProblem({ message: { attributes: { n: 1 } } }), undefined, "a number attribute value is refused");
    assert.notEqual(messagePublishedDataProblem({ message: { publishTime: "yesterday" } }), undefined, "a bad date-time is refused");
    assert.notEqual(messagePublishedDataProblem({ deliveryAttempt: "2" }), undefined, "deliveryAttempt must be an integer");
  });

  it("gcp_pubsub mapping - Google's structured example decodes to exactly its attributes and data", () => {
    const vector = pubsubVector("structured_pubsub_MessagePublishedData.json");
    const d = decodePubSubMessage(msg({ attributes: { "content-type": STRUCTURED_CONTENT_TYPE }, data: utf8(JSON.stringify(vector)) }), opts);
    assert.equal(d.invalid, undefined);
    const { data, ...attributes } = vector;
    assert.deepEqual({ ...d.event.attributes }, attributes);
    assert.deepEqual((d.event.data as { value: unknown }).value, data);
  });
});

const rich = makeEvent(
  {
    specversion: "1.0",
    id: "A 1 %",
    source: "https://x.example/y",
    type: "com.example.t",
    datacontenttype: "text/plain; charset=utf-8",
    subject: "Ünïcode 😀",
    count: 42,
    flag: true,
    partitionkey: "k-1",
  },
  { kind: "text", text: "hello" },
);

describe("gcp_pubsub mapping - encode", () => {
  it("gcp_pubsub mapping - binary: ce- attributes as they are, content-type, data bytes; round trip", () => {
    const out = encodePubSubMessage(rich, { mode: "binary", ordering: false });
    assert.equal(out.mode, "binary");
    assert.deepEqual(out.attributes, {
      "ce-specversion": "1.0",
      "ce-id": "A 1 %",
      "ce-source": "https://x.example/y",
      "ce-type": "com.example.t",
      "ce-datacontenttype": "text/plain; charset=utf-8",
      "ce-subject": "Ünïcode 😀",
      "ce-count": "42",
      "ce-flag": "true",
      "ce-partitionkey": "k-1",
      "content-type": "text/plain; charset=utf-8",
    });
    assert.equal(out.data.toString("utf8"), "hello");
    assert.equal(out.orderingKey, undefined, "no ordering key unless ordering is on");
    const back = decodePubSubMessage(msg({ attributes: out.attributes, data: out.data }), opts);
    assert.deepEqual({ ...back.event.attributes }, { ...rich.attributes, count: "42", flag: "true" });
    assert.equal(dataText(back.event), "hello");
  });

  it("gcp_pubsub mapping - binary makes implied JSON explicit and never sends a cloudevents content-type", () => {
    const json = encodePubSubMessage(makeEvent({ specversion: "1.0", id: "1", source: "urn:s", type: "t" }, { kind: "json", value: { a: [1] } }), { mode: "binary", ordering: false });
    assert.equal(json.attributes["ce-datacontenttype"], "application/json");
    assert.equal(json.attributes["content-type"], "application/json");
    assert.equal(json.data.toString(), '{"a":[1]}');
    const nested = encodePubSubMessage(
      makeEvent({ specversion: "1.0", id: "1", source: "urn:s", type: "t", datacontenttype: STRUCTURED_CONTENT_TYPE }, { kind: "bytes", bytes: utf8("{}") }),
      { mode: "binary", ordering: false },
    );
    assert.equal(nested.attributes["content-type"], undefined);
    assert.equal(nested.attributes["ce-datacontenttype"], STRUCTURED_CONTENT_TYPE);
  });

  it("gcp_pubsub mapping - structured: the JSON event and the structured content type", () => {
    const out = encodePubSubMessage(rich, { mode: "structured", ordering: true });
    assert.equal(out.mode, "structured");
    assert.deepEqual(out.attributes, { "content-type": STRUCTURED_CONTENT_TYPE });
    assert.deepEqual(JSON.parse(out.data.toString()), { ...rich.attributes, data: "hello" });
    assert.equal(out.orderingKey, "k-1");
  });

  const base = { specversion: "1.0", id: "1", source: "urn:s", type: "t" } as Record<string, AttributeValue>;
  const tooMany: Record<string, AttributeValue> = { ...base };
  for (let i = 0; i < PUBSUB_LIMITS.attributes; i++) tooMany[`x${i}`] = "v";
  const justEnough: Record<string, AttributeValue> = { ...base };
  for (let i = 0; i < PUBSUB_LIMITS.attributes - 4; i++) justEnough[`x${i}`] = "v"; // text data without a content type: 4 + 96 ce- attributes
  const limitCases: { name: string; attrs: Record<string, AttributeValue>; fits: boolean }[] = [
    { name: "exactly 100 attributes stay binary", attrs: justEnough, fits: true },
    { name: "over 100 attributes go structured", attrs: tooMany, fits: false },
    { name: "a 1024-byte value stays binary", attrs: { ...base, big: "é".repeat(512) }, fits: true },
    { name: "a 1025-byte value goes structured", attrs: { ...base, big: "a" + "é".repeat(512) }, fits: false },
    { name: "a 256-byte key stays binary", attrs: { ...base, ["k".repeat(253)]: "v" }, fits: true },
    { name: "a 257-byte key goes structured", attrs: { ...base, ["k".repeat(254)]: "v" }, fits: false },
  ];
  for (const c of limitCases) {
    it(`gcp_pubsub mapping - attribute limits: ${c.name}, never truncated`, () => {
      const ev = makeEvent(c.attrs, { kind: "text", text: "d" });
      const out = encodePubSubMessage(ev, { mode: "binary", ordering: false });
      assert.equal(out.mode, c.fits ? "binary" : "structured", out.fallback);
      assert.equal(attributeLimitProblem(out.attributes), undefined, "what is sent is always within the limits");
      const back = decodePubSubMessage(msg({ attributes: out.attributes, data: out.data }), opts);
      assert.equal(back.invalid, undefined);
      const expected: Record<string, string> = {};
      for (const [k, v] of Object.entries(c.attrs)) expected[k] = String(v);
      const got: Record<string, string> = {};
      for (const [k, v] of Object.entries(back.event.attributes)) if (k !== "datacontenttype") got[k] = String(v);
      assert.deepEqual(got, expected);
      assert.equal(dataText(back.event), "d");
    });
  }

  it("gcp_pubsub mapping - attribute limits: the trace attributes count toward the 100, so 100 ce- attributes and a trace context go structured, with the trace kept", () => {
    const ev = makeEvent(justEnough, { kind: "text", text: "d" });
    const hop = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "x=1" };
    const out = encodePubSubMessage(ev, { mode: "binary", ordering: false }, hop);
    assert.equal(out.mode, "structured");
    assert.equal(out.fallback, "102 attributes (2 of them for the trace context), over 100");
    assert.deepEqual(out.attributes, { "content-type": STRUCTURED_CONTENT_TYPE, googclient_traceparent: hop.traceparent, googclient_tracestate: "x=1" });
    assert.equal(attributeLimitProblem(out.attributes), undefined, "the client libraries' googclient_ prefix is not the reserved goog");
    const oneLess = { ...justEnough };
    delete oneLess["x0"];
    const fits = encodePubSubMessage(makeEvent(oneLess, { kind: "text", text: "d" }), { mode: "binary", ordering: false }, { traceparent: hop.traceparent });
    assert.equal(fits.mode, "binary", fits.fallback);
    assert.equal(Object.keys(fits.attributes).length, 100);
    assert.equal(attributeLimitProblem({ googx: "v" }), "attribute googx starts with the reserved prefix goog");
  });

  it("gcp_pubsub mapping - ordering key limits and message size are permanent failures naming the limit", () => {
    const longKey = makeEvent({ ...base, partitionkey: "k".repeat(1025) }, { kind: "text", text: "d" });
    assert.throws(() => encodePubSubMessage(longKey, { mode: "binary", ordering: true }), (e: Error & { code?: string; retryable?: boolean }) => e.code === "CEB_TOO_LARGE" && e.retryable === false && /1024/.test(e.message));
    assert.doesNotThrow(() => encodePubSubMessage(longKey, { mode: "binary", ordering: false }), "without ordering the key is just an attribute (it goes structured)");
    const huge = makeEvent(base, { kind: "bytes", bytes: Buffer.alloc(PUBSUB_LIMITS.messageBytes) });
    assert.throws(() => encodePubSubMessage(huge, { mode: "binary", ordering: false }), (e: Error & { code?: string }) => e.code === "CEB_TOO_LARGE" && /10000000/.test(e.message));
  });
});
