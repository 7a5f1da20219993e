/**
 * Fixture tables for the pure AMQP mapping, its rhea glue (through rhea's own codec, no broker),
 * and the definition's lint.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import rhea from "rhea";
import { amqpSink, amqpSource } from "../../../connectors/amqp/definition.js";
import {
  decodeAmqpMessage,
  encodeAmqpMessage,
  messageIdString,
  plainSourceFor,
  type AmqpInbound,
  type AmqpInboundOptions,
  type AmqpOutboundOptions,
} from "../../../connectors/amqp/mapping.js";
import { sanitizeAddressValue } from "../../../connectors/amqp/sink.js";
import { bodyOf, deliveryCountOf, encodeOutbound, inboundOf } from "../../../connectors/amqp/wire.js";
import { decodeProtobuf, encodeProtobuf, serializeStructured, type AttributeValue, type CloudEvent } from "../../../src/cloudevents/index.js";
import { componentConfig } from "../../support/component.js";
import { assertSameEvent } from "../../support/events.js";

const opts: AmqpInboundOptions = {
  source: "amqp://broker.example:5672/amq/queue/orders",
  now: () => new Date("2025-01-02T03:04:05.678Z"),
  newId: () => "generated-id",
};
const b = (s: string) => Buffer.from(s, "utf8");
const data = (s: string | Buffer) => ({ kind: "data" as const, bytes: typeof s === "string" ? b(s) : s });

interface Case {
  name: string;
  msg: AmqpInbound;
  attributes?: Record<string, AttributeValue>;
  /** Expected data bytes as text; null = no data. */
  data?: string | null;
  invalid?: string;
  /** A regex the invalid reason must match. */
  reason?: RegExp;
}

const CE = { specversion: "1.0", id: "e1", source: "urn:src", type: "t.x" };
const P = (prefix: string, o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [prefix + k, v]));
const PLAIN_BASE = { specversion: "1.0", source: opts.source, type: "org.amqp.message" };

const cases: Case[] = [
  {
    name: "binary, cloudEvents: prefix, native AMQP values",
    msg: {
      contentType: "application/json",
      applicationProperties: { ...P("cloudEvents:", { ...CE, time: new Date("2024-05-06T05:08:09.123Z"), count: 42, flag: true, blob: Buffer.from([1, 2, 255]) }), other: "x" },
      body: data('{"a":1}'),
    },
    attributes: { ...CE, time: "2024-05-06T05:08:09.123Z", count: 42, flag: true, blob: "AQL/", datacontenttype: "application/json" },
    data: '{"a":1}',
  },
  {
    name: "binary, cloudEvents_ prefix, canonical strings (nanosecond time kept)",
    msg: { contentType: "text/plain", applicationProperties: P("cloudEvents_", { ...CE, time: "2024-05-06T07:08:09.123456789+02:00", count: "42" }), body: data("hi") },
    attributes: { ...CE, time: "2024-05-06T07:08:09.123456789+02:00", count: "42", datacontenttype: "text/plain" },
    data: "hi",
  },
  {
    name: "binary, both prefixes: the message's is cloudEvents:, the other set is ignored",
    msg: { applicationProperties: { ...P("cloudEvents:", CE), ...P("cloudEvents_", { ...CE, id: "other", extra: "x" }) }, body: data("") },
    attributes: { ...CE },
    data: null,
  },
  {
    name: "binary, datacontenttype from the prefixed property when content-type is absent",
    msg: { applicationProperties: P("cloudEvents:", { ...CE, datacontenttype: "text/csv" }), body: data("a,b") },
    attributes: { ...CE, datacontenttype: "text/csv" },
    data: "a,b",
  },
  {
    name: "binary, content-type wins over the prefixed datacontenttype",
    msg: { contentType: "text/plain", applicationProperties: P("cloudEvents:", { ...CE, datacontenttype: "text/csv" }), body: data("a") },
    attributes: { ...CE, datacontenttype: "text/plain" },
    data: "a",
  },
  {
    name: "binary, amqp-value null body (what rhea writes for no data) has no data",
    msg: { applicationProperties: P("cloudEvents:", CE), body: { kind: "value", value: null } },
    attributes: { ...CE },
    data: null,
  },
  {
    name: "binary, an amqp-value binary body is tolerated as the data",
    msg: { contentType: "application/octet-stream", applicationProperties: P("cloudEvents:", CE), body: { kind: "value", value: Buffer.from([0, 1]) } },
    attributes: { ...CE, datacontenttype: "application/octet-stream" },
    data: "\u0000\u0001",
  },
  {
    name: "structured JSON by content type (any case, parameters)",
    msg: { contentType: "Application/CloudEvents+JSON; charset=utf-8", body: data(JSON.stringify({ ...CE, n: 3, data: { x: 1 } })) },
    attributes: { ...CE, n: 3 },
    data: '{"x":1}',
  },
  {
    name: "structured JSON in an amqp-value string body",
    msg: { contentType: "application/cloudevents+json", body: { kind: "value", value: JSON.stringify({ ...CE, datacontenttype: "text/plain", data: "hé" }) } },
    attributes: { ...CE, datacontenttype: "text/plain" },
    data: "hé",
  },
  {
    name: "structured Protobuf by content type, nanosecond time",
    msg: { contentType: "application/cloudevents+protobuf", body: data(Buffer.from(encodeProtobuf({ attributes: { ...CE, time: "2024-05-06T05:08:09.123456789Z" } }))) },
    attributes: { ...CE, time: "2024-05-06T05:08:09.123456789Z" },
    data: null,
  },
  {
    name: "a JSON CloudEvent in the body without properties is structured (Event Grid → Service Bus)",
    msg: { contentType: "application/json", applicationProperties: { "aeg-delivery-count": 0, "aeg-event-type": "Notification" }, body: data(JSON.stringify({ ...CE, data: 1 })) },
    attributes: { ...CE },
    data: "1",
  },
  {
    name: "plain: message-id, subject, creation-time, content-type, application properties as typed extensions",
    msg: {
      messageId: "m-1",
      subject: "orders.created",
      creationTime: new Date("2024-01-02T03:04:05.006Z"),
      contentType: "text/plain",
      applicationProperties: { "X-Tenant": "acme", retries: 3, vip: true, big: 5e9, at: new Date("2024-01-01T00:00:00.000Z"), raw: Buffer.from("hi"), tags: ["a", "b"] },
      body: data("hello"),
    },
    attributes: {
      ...PLAIN_BASE,
      id: "m-1",
      subject: "orders.created",
      time: "2024-01-02T03:04:05.006Z",
      datacontenttype: "text/plain",
      amqpxz2dtenant: "acme",
      amqpretries: 3,
      amqpvip: true,
      amqpbig: "5000000000",
      amqpat: "2024-01-01T00:00:00.000Z",
      amqpraw: "aGk=",
      amqptags: '["a","b"]',
    },
    data: "hello",
  },
  {
    name: "plain: a UUID message-id in its canonical form, receive time, no data",
    msg: { messageId: Buffer.from("0af7651916cd43dd8448eb211c80319c", "hex"), body: undefined },
    attributes: { ...PLAIN_BASE, id: "0af76519-16cd-43dd-8448-eb211c80319c", time: "2025-01-02T03:04:05.678Z" },
    data: null,
  },
  {
    name: "plain: a numeric message-id, no message-id at all gets a new one",
    msg: { messageId: 77, body: data("x") },
    attributes: { ...PLAIN_BASE, id: "77", time: "2025-01-02T03:04:05.678Z" },
    data: "x",
  },
  {
    name: "plain: without message-id a new id",
    msg: { body: data("x") },
    attributes: { ...PLAIN_BASE, id: "generated-id", time: "2025-01-02T03:04:05.678Z" },
    data: "x",
  },
  { name: "invalid: the batch content type (no batch mode in AMQP)", msg: { contentType: "application/cloudevents-batch+json", body: data("[]") }, invalid: "CEB_UNSUPPORTED_MEDIA", reason: /no batch mode/ },
  { name: "invalid: an unknown structured format", msg: { contentType: "application/cloudevents+avro", body: data("x") }, invalid: "CEB_UNSUPPORTED_MEDIA", reason: /avro/ },
  { name: "invalid: malformed structured JSON", msg: { contentType: "application/cloudevents+json", body: data("{") }, invalid: "CEB_FORMAT" },
  { name: "invalid: an Integer outside int32", msg: { applicationProperties: P("cloudEvents:", { ...CE, n: 5e9 }), body: undefined }, invalid: "CEB_FORMAT", reason: /"cloudEvents:n": 5000000000 is not a CloudEvents Integer/ },
  { name: "invalid: a fraction", msg: { applicationProperties: P("cloudEvents:", { ...CE, n: 1.5 }), body: undefined }, invalid: "CEB_FORMAT", reason: /1\.5/ },
  { name: "invalid: a list value", msg: { applicationProperties: P("cloudEvents:", { ...CE, n: [1] }), body: undefined }, invalid: "CEB_FORMAT", reason: /a list cannot be/ },
  { name: "invalid: an attribute name outside [a-z0-9]", msg: { applicationProperties: P("cloudEvents:", { ...CE, Bad: "x" }), body: undefined }, invalid: "CEB_EVENT_INVALID", reason: /"Bad"/ },
  { name: "invalid: a required attribute missing", msg: { messageId: "keep-me", applicationProperties: P("cloudEvents:", { specversion: "1.0", id: "x", source: "/s" }), body: undefined }, invalid: "CEB_EVENT_INVALID", reason: /"type": required/ },
  { name: "invalid: a native timestamp for id", msg: { applicationProperties: P("cloudEvents:", { ...CE, id: 5 }), body: undefined }, invalid: "CEB_EVENT_INVALID", reason: /"id": must be a string/ },
  { name: "invalid: an amqp-sequence body", msg: { applicationProperties: P("cloudEvents:", CE), body: { kind: "sequence" } }, invalid: "CEB_FORMAT", reason: /amqp-sequence/ },
  { name: "invalid: an amqp-value map body", msg: { body: { kind: "value", value: { a: 1 } } }, invalid: "CEB_FORMAT", reason: /amqp-value body holding a map/ },
];

function dataText(ev: CloudEvent): string | null {
  const d = ev.data;
  if (d === undefined) return null;
  if (d.kind === "bytes") return Buffer.from(d.bytes).toString("utf8");
  if (d.kind === "text") return d.text;
  return JSON.stringify(d.value);
}

describe("amqp mapping - receiving", () => {
  for (const c of cases) {
    it(`amqp mapping - ${c.name}`, () => {
      const out = decodeAmqpMessage(c.msg, opts);
      if (c.invalid) {
        assert.equal(out.invalid?.code, c.invalid, out.invalid?.message);
        if (c.reason) assert.match(out.invalid!.message, c.reason);
        assert.equal(out.event.attributes["type"], "dev.cebridge.invalid");
        assert.equal(out.event.attributes["source"], opts.source);
        return;
      }
      assert.equal(out.invalid, undefined, out.invalid?.message);
      assert.deepEqual(out.event.attributes, c.attributes);
      assert.equal(dataText(out.event), c.data ?? null);
    });
  }

  it("amqp mapping - an invalid message keeps its message-id, raw bytes and metadata for redrive", () => {
    const out = decodeAmqpMessage({ messageId: "keep-me", contentType: "application/cloudevents+json", applicationProperties: { a: 1 }, body: data("{nope") }, opts);
    assert.equal(out.event.attributes["id"], "keep-me");
    const value = (out.event.data as { value: { raw_base64: string; metadata: Record<string, string> } }).value;
    assert.equal(Buffer.from(value.raw_base64, "base64").toString(), "{nope");
    assert.deepEqual(value.metadata, { message_id: "keep-me", content_type: "application/cloudevents+json", "application_property:a": "1" });
  });

  it("amqp mapping - a body over max_message_size is invalid as CEB_TOO_LARGE", () => {
    const out = decodeAmqpMessage({ applicationProperties: P("cloudEvents:", CE), body: data("x".repeat(11)) }, { ...opts, maxMessageSize: 10 });
    assert.equal(out.invalid?.code, "CEB_TOO_LARGE");
  });

  it("amqp mapping - plain source and message ids", () => {
    assert.equal(plainSourceFor("amqp://h", "/amq/queue/q"), "amqp://h:5672/amq/queue/q");
    assert.equal(plainSourceFor("amqps://h:1234", "q"), "amqp://h:1234/q");
    assert.equal(messageIdString(Buffer.from([0xab, 0xcd])), "abcd");
    assert.equal(messageIdString(""), undefined);
  });
});

const BIN: AmqpOutboundOptions = { mode: "binary", prefix: "cloudEvents:", format: "json", durable: true };

describe("amqp mapping - sending", () => {
  const ev: CloudEvent = {
    attributes: { ...CE, datacontenttype: "application/json", time: "2024-05-06T05:08:09.123Z", count: 42, flag: false, note: "x" },
    data: { kind: "bytes", bytes: b('{"a":1}') },
  };

  it("amqp mapping - binary: prefixed properties, Integer as long, ms time as timestamp, content-type, one data section", () => {
    assert.deepEqual(encodeAmqpMessage(ev, BIN), {
      messageId: "e1",
      durable: true,
      contentType: "application/json",
      applicationProperties: {
        "cloudEvents:specversion": "1.0",
        "cloudEvents:id": "e1",
        "cloudEvents:source": "urn:src",
        "cloudEvents:type": "t.x",
        "cloudEvents:time": { timestamp: 1714972089123 },
        "cloudEvents:count": { long: 42 },
        "cloudEvents:flag": false,
        "cloudEvents:note": "x",
      },
      body: b('{"a":1}'),
    });
  });

  it("amqp mapping - binary: a time an AMQP timestamp cannot spell exactly stays a string", () => {
    for (const time of ["2024-05-06T05:08:09.123456789Z", "2024-05-06T05:08:09Z", "2024-05-06T07:08:09.123+02:00"]) {
      const out = encodeAmqpMessage({ attributes: { ...CE, time } }, BIN);
      assert.equal(out.applicationProperties!["cloudEvents:time"], time);
    }
  });

  it("amqp mapping - binary: cloudEvents_ prefix, not durable, JSON data gets an explicit content type, no data has no body", () => {
    const out = encodeAmqpMessage({ attributes: { ...CE }, data: { kind: "json", value: [1] } }, { ...BIN, prefix: "cloudEvents_", durable: false });
    assert.equal(out.contentType, "application/json");
    assert.equal(out.durable, false);
    assert.deepEqual(Object.keys(out.applicationProperties!), ["cloudEvents_specversion", "cloudEvents_id", "cloudEvents_source", "cloudEvents_type"]);
    assert.deepEqual(out.body, b("[1]"));
    assert.equal(encodeAmqpMessage({ attributes: { ...CE } }, BIN).body, undefined);
  });

  it("amqp mapping - structured: JSON and Protobuf bodies under their media types", () => {
    const json = encodeAmqpMessage(ev, { ...BIN, mode: "structured" });
    assert.equal(json.contentType, "application/cloudevents+json; charset=utf-8");
    assert.equal(json.applicationProperties, undefined);
    assert.equal(Buffer.from(json.body!).toString(), serializeStructured(ev));
    const pb = encodeAmqpMessage(ev, { ...BIN, mode: "structured", format: "protobuf" });
    assert.equal(pb.contentType, "application/cloudevents+protobuf");
    assertSameEvent(decodeProtobuf(pb.body!), ev);
  });

  it("amqp mapping - address values cannot add segments", () => {
    assert.equal(sanitizeAddressValue("a/b c"), "a_b_c");
    assert.equal(sanitizeAddressValue(""), "_");
    assert.equal(sanitizeAddressValue("com.example.x"), "com.example.x");
  });
});

describe("amqp wire - through rhea's own codec", () => {
  const roundTrip = (out: Parameters<typeof encodeOutbound>[0]) => rhea.message.decode(encodeOutbound(out));

  it("amqp wire - sent types arrive as AMQP long, timestamp, boolean and string; header durable", () => {
    const ev: CloudEvent = { attributes: { ...CE, time: "2024-05-06T05:08:09.123Z", count: -7, flag: true }, data: { kind: "bytes", bytes: Buffer.from([0, 255]) } };
    const m = roundTrip(encodeAmqpMessage(ev, BIN));
    assert.equal(m["durable"], true);
    assert.equal(m["message_id"], "e1");
    const props = m["application_properties"] as Record<string, unknown>;
    assert.ok(props["cloudEvents:time"] instanceof Date);
    assert.equal((props["cloudEvents:time"] as Date).toISOString(), "2024-05-06T05:08:09.123Z");
    assert.equal(props["cloudEvents:count"], -7);
    assert.equal(props["cloudEvents:flag"], true);
    // The long and timestamp type codes are on the wire (0x81 long, 0x83 timestamp).
    const bytes = encodeOutbound(encodeAmqpMessage(ev, BIN));
    const at = bytes.indexOf(Buffer.from("cloudEvents:count"));
    assert.ok([0x81, 0x55].includes(bytes[at + "cloudEvents:count".length]!), "Integer goes as long (0x81) or smalllong (0x55)");
    const tat = bytes.indexOf(Buffer.from("cloudEvents:time"));
    assert.equal(bytes[tat + "cloudEvents:time".length], 0x83, "time goes as an AMQP timestamp");
    // And it decodes back to the same event.
    assertSameEvent(decodeAmqpMessage(inboundOf(m), opts).event, ev);
  });

  it("amqp wire - body shapes: one data section, several concatenated, amqp-value, sequence, none", () => {
    assert.deepEqual(bodyOf(rhea.message.data_section(b("ab"))), { kind: "data", bytes: b("ab") });
    const multi = rhea.message.decode(rhea.message.encode({ body: rhea.message.data_sections([b("ab"), b("cd")]) }));
    assert.deepEqual(bodyOf(multi.body), { kind: "data", bytes: b("abcd") });
    assert.deepEqual(bodyOf(rhea.message.decode(rhea.message.encode({ body: "text" })).body), { kind: "value", value: "text" });
    assert.deepEqual(bodyOf(rhea.message.decode(rhea.message.encode({ body: rhea.message.sequence_section([1]) })).body), { kind: "sequence" });
    assert.deepEqual(bodyOf(rhea.message.decode(rhea.message.encode({})).body), { kind: "value", value: null });
  });

  it("amqp wire - delivery count from the header", () => {
    assert.equal(deliveryCountOf(rhea.message.decode(rhea.message.encode({ delivery_count: 2, body: null }))), 3);
    assert.equal(deliveryCountOf(rhea.message.decode(rhea.message.encode({ first_acquirer: true, body: null }))), 1);
    assert.equal(deliveryCountOf(rhea.message.decode(rhea.message.encode({ body: null }))), undefined);
  });
});

describe("amqp definitions", () => {
  it("amqp definitions - defaults", () => {
    const sink = componentConfig(amqpSink, { address: "/exchange/x/{type}" });
    assert.deepEqual(
      { mode: sink["mode"], format: sink["format"], prefix: sink["prefix"], durable: sink["durable"], url: sink["url"], max: sink["max_message_size"] },
      { mode: "binary", format: "json", prefix: "cloudEvents:", durable: true, url: "amqp://127.0.0.1:5672", max: 1048576 },
    );
    assert.equal(componentConfig(amqpSource, { address: "/amq/queue/q" })["idle_timeout"], 30000);
  });

  const errors: [string, typeof amqpSink | typeof amqpSource, Record<string, unknown>, RegExp][] = [
    ["credentials in the URL", amqpSource, { address: "q", url: "amqp://u:p@h" }, /credentials in the URL/],
    ["a path in the URL", amqpSource, { address: "q", url: "amqp://h/vhost" }, /takes no path/],
    ["an http URL", amqpSource, { address: "q", url: "http://h" }, /url/],
    ["password without username", amqpSink, { address: "q", password: "p" }, /password needs username/],
    ["PLAIN without a password", amqpSink, { address: "q", sasl: "PLAIN", username: "u" }, /PLAIN needs/],
    ["EXTERNAL without a client certificate", amqpSink, { address: "q", sasl: "EXTERNAL" }, /EXTERNAL/],
    ["protobuf in binary mode", amqpSink, { address: "q", format: "protobuf" }, /format applies/],
    ["an unknown prefix", amqpSink, { address: "q", prefix: "ce-" }, /prefix/],
  ];
  for (const [what, def, raw, re] of errors) {
    it(`amqp definitions - ${what} is an error`, () => assert.throws(() => componentConfig(def, raw), re));
  }

  it("amqp definitions - warnings: receiving from an exchange, non-durable messages", () => {
    const src = componentConfig(amqpSource, { address: "/exchange/events/#" });
    assert.ok(amqpSource.lint?.(src as never).some((i) => i.level === "warning" && i.path[0] === "address"));
    const sink = componentConfig(amqpSink, { address: "q", durable: false });
    assert.ok(amqpSink.lint?.(sink as never).some((i) => i.level === "warning" && i.path[0] === "durable"));
    assert.doesNotThrow(() => componentConfig(amqpSink, { address: "q", mode: "structured", format: "protobuf", prefix: "cloudEvents_" }));
  });
});
