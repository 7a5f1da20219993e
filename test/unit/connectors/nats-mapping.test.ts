/**
 * Fixture tables for the pure NATS mapping, subject rules and definition lint.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import {
  decodeNatsMessage,
  encodeNatsMessage,
  headerExtensionName,
  msgIdFor,
  nanosToRfc3339,
  renderPlainSource,
  type InboundOptions,
  type NatsInbound,
} from "../../../connectors/nats/mapping.js";
import { checkNatsPublishTemplate, sanitizeNats } from "../../../connectors/nats/names.js";
import { jetstreamSink, jetstreamSource, natsSink, natsSource } from "../../../connectors/nats/definition.js";
import { compileTemplate } from "../../../src/core/template.js";
import { SinkError } from "../../../src/core/errors.js";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/index.js";
import { componentConfig } from "../../support/component.js";

const opts: InboundOptions = {
  plainSource: "nats://{server}/{subject}",
  plainType: "io.nats.message",
  server: "nats.example:4222",
  now: () => new Date("2025-01-02T03:04:05.678Z"),
  newId: () => "generated-id",
};

const utf8 = (s: string) => new TextEncoder().encode(s);

interface Case {
  name: string;
  msg: NatsInbound;
  attributes?: Record<string, AttributeValue>;
  data?: string | null;
  invalid?: string;
  options?: Partial<InboundOptions>;
}

const STRUCTURED = '{"specversion":"1.0","id":"s1","source":"urn:a","type":"t.x","count":3,"data":{"a":1}}';

const cases: Case[] = [
  {
    name: "structured by content type (any case)",
    msg: { subject: "a.b", headers: [["content-type", "Application/CloudEvents+JSON; charset=utf-8"]], payload: utf8(STRUCTURED) },
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", count: 3 },
    data: '{"a":1}',
  },
  {
    name: "structured without headers (NATS binding 1.0.2 style)",
    msg: { subject: "a.b", headers: [], payload: utf8(`  ${STRUCTURED}`) },
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", count: 3 },
    data: '{"a":1}',
  },
  {
    name: "binary with ce- headers, ce-datacontenttype, percent-decoded, names case-insensitive",
    msg: {
      subject: "a.b",
      headers: [
        ["ce-specversion", "1.0"],
        ["CE-ID", "b1"],
        ["ce-source", "urn:b"],
        ["ce-type", "t.y"],
        ["ce-subject", "caf%C3%A9%20au%20lait"],
        ["ce-datacontenttype", "text/plain"],
        ["content-type", "application/octet-stream"],
      ],
      payload: utf8("hi"),
    },
    attributes: { specversion: "1.0", id: "b1", source: "urn:b", type: "t.y", subject: "café au lait", datacontenttype: "text/plain" },
    data: "hi",
  },
  {
    name: "binary, datacontenttype from Content-Type when ce-datacontenttype is absent (sdk-go)",
    msg: {
      subject: "a.b",
      headers: [["ce-specversion", "1.0"], ["ce-id", "b2"], ["ce-source", "urn:b"], ["ce-type", "t"], ["Content-Type", "application/json"]],
      payload: utf8("{}"),
    },
    attributes: { specversion: "1.0", id: "b2", source: "urn:b", type: "t", datacontenttype: "application/json" },
    data: "{}",
  },
  {
    name: "binary, a stray % is kept raw (tolerant decode)",
    msg: { subject: "a", headers: [["ce-specversion", "1.0"], ["ce-id", "100%"], ["ce-source", "urn:b"], ["ce-type", "t"]], payload: new Uint8Array() },
    attributes: { specversion: "1.0", id: "100%", source: "urn:b", type: "t" },
    data: null,
  },
  {
    name: "plain core message: new id, receive time, default source template",
    msg: { subject: "sensors.t1", headers: [], payload: utf8("21.5") },
    attributes: {
      specversion: "1.0",
      id: "generated-id",
      source: "nats://nats.example:4222/sensors.t1",
      type: "io.nats.message",
      subject: "sensors.t1",
      time: "2025-01-02T03:04:05.678Z",
    },
    data: "21.5",
  },
  {
    name: "plain message: Nats-Msg-Id is the id, Content-Type the datacontenttype, other headers extensions",
    msg: { subject: "s", headers: [["Nats-Msg-Id", "abc"], ["Content-Type", "text/plain"], ["X-Tenant", "a"], ["X-Tenant", "b"], ["zone", "z1"]], payload: utf8("x") },
    attributes: {
      specversion: "1.0",
      id: "abc",
      source: "nats://nats.example:4222/s",
      type: "io.nats.message",
      subject: "s",
      time: "2025-01-02T03:04:05.678Z",
      datacontenttype: "text/plain",
      natsxz2dtenant: "a,b",
      natsz7aone: "z1",
    },
    data: "x",
  },
  {
    name: "plain JetStream message: {stream}-{seq} id, stream timestamp with nanoseconds, {stream} in source",
    msg: { subject: "orders.new", headers: [], payload: utf8("[1,2]"), jetstream: { stream: "ORDERS", seq: 42, timestampNanos: 1735787045678901234n } },
    options: { plainSource: "nats://{server}/{stream}/{subject}", plainType: "com.example.nats" },
    attributes: {
      specversion: "1.0",
      id: "ORDERS-42",
      source: "nats://nats.example:4222/ORDERS/orders.new",
      type: "com.example.nats",
      subject: "orders.new",
      time: "2025-01-02T03:04:05.678901234Z",
    },
    data: "[1,2]",
  },
  {
    name: "plain JetStream message with Nats-Msg-Id keeps that id",
    msg: { subject: "o", headers: [["Nats-Msg-Id", "m-9"]], payload: utf8(""), jetstream: { stream: "S", seq: 1, timestampNanos: 1000000000n } },
    attributes: { specversion: "1.0", id: "m-9", source: "nats://nats.example:4222/o", type: "io.nats.message", subject: "o", time: "1970-01-01T00:00:01.000Z" },
    data: null,
  },
  {
    name: "JSON that is not a CloudEvent stays plain",
    msg: { subject: "j", headers: [], payload: utf8('{"hello":"world"}') },
    attributes: { specversion: "1.0", id: "generated-id", source: "nats://nats.example:4222/j", type: "io.nats.message", subject: "j", time: "2025-01-02T03:04:05.678Z" },
    data: '{"hello":"world"}',
  },
  { name: "invalid: malformed structured JSON", msg: { subject: "x", headers: [["Content-Type", "application/cloudevents+json"]], payload: utf8("{nope") }, invalid: "CEB_FORMAT" },
  {
    name: "invalid: binary without a required attribute",
    msg: { subject: "x", headers: [["ce-specversion", "1.0"], ["ce-id", "1"], ["ce-type", "t"]], payload: utf8("") },
    invalid: "CEB_EVENT_INVALID",
  },
  {
    name: "invalid: JSON object with specversion but missing id",
    msg: { subject: "x", headers: [], payload: utf8('{"specversion":"1.0","source":"urn:a","type":"t"}') },
    invalid: "CEB_EVENT_INVALID",
  },
  {
    name: "invalid: percent escape decoding to invalid UTF-8",
    msg: { subject: "x", headers: [["ce-specversion", "1.0"], ["ce-id", "%FF"], ["ce-source", "urn:a"], ["ce-type", "t"]], payload: utf8("") },
    invalid: "CEB_FORMAT",
  },
  { name: "invalid: over max_payload", msg: { subject: "x", headers: [], payload: utf8("12345") }, options: { maxPayload: 4 }, invalid: "CEB_TOO_LARGE" },
];

function dataText(ev: CloudEvent): string | null {
  const d = ev.data;
  if (d === undefined) return null;
  if (d.kind === "bytes") return Buffer.from(d.bytes).toString("utf8");
  if (d.kind === "text") return d.text;
  return JSON.stringify(d.value);
}

describe("nats mapping - decode", () => {
  for (const c of cases) {
    it(`nats mapping - ${c.name}`, () => {
      const out = decodeNatsMessage(c.msg, { ...opts, ...c.options });
      if (c.invalid) {
        assert.equal(out.invalid?.code, c.invalid, out.invalid?.message);
        const ev = out.event;
        assert.equal(ev.attributes["type"], "dev.cebridge.invalid");
        const value = (ev.data as { value: { raw_base64: string; metadata: Record<string, string> } }).value;
        assert.deepEqual(Buffer.from(value.raw_base64, "base64"), Buffer.from(c.msg.payload));
        assert.equal(value.metadata["subject"], c.msg.subject);
        return;
      }
      assert.equal(out.invalid, undefined, out.invalid?.message);
      assert.deepEqual(out.event.attributes, c.attributes);
      assert.equal(dataText(out.event), c.data);
    });
  }

  it("nats mapping - an invalid message keeps its Nats-Msg-Id as the dead letter's id", () => {
    const out = decodeNatsMessage({ subject: "x", headers: [["Nats-Msg-Id", "keep-me"], ["content-type", "application/cloudevents+json"]], payload: utf8("[") }, opts);
    assert.equal(out.event.attributes["id"], "keep-me");
  });
});

describe("nats mapping - encode", () => {
  const ev: CloudEvent = {
    attributes: { specversion: "1.0", id: "1", source: "urn:a", type: "t", note: 'x "y" 100%', n: 5, datacontenttype: "text/plain; charset=utf-8" },
    data: { kind: "text", text: "héllo" },
  };

  it("nats mapping - structured: one Content-Type header and the JSON event", () => {
    const out = encodeNatsMessage(ev, "structured");
    assert.deepEqual(out.headers, [["Content-Type", "application/cloudevents+json; charset=utf-8"]]);
    assert.deepEqual(JSON.parse(Buffer.from(out.payload).toString()), {
      specversion: "1.0",
      id: "1",
      source: "urn:a",
      type: "t",
      note: 'x "y" 100%',
      n: 5,
      datacontenttype: "text/plain; charset=utf-8",
      data: "héllo",
    });
  });

  it("nats mapping - binary: lower-case ce- headers, percent-encoded, ce-datacontenttype and Content-Type", () => {
    const out = encodeNatsMessage(ev, "binary");
    assert.deepEqual(out.headers, [
      ["ce-specversion", "1.0"],
      ["ce-id", "1"],
      ["ce-source", "urn:a"],
      ["ce-type", "t"],
      ["ce-note", "x%20%22y%22%20100%25"],
      ["ce-n", "5"],
      ["ce-datacontenttype", "text/plain;%20charset=utf-8"],
      ["Content-Type", "text/plain; charset=utf-8"],
    ]);
    assert.equal(Buffer.from(out.payload).toString(), "héllo");
  });

  it("nats mapping - binary: JSON data without datacontenttype gets application/json made explicit", () => {
    const out = encodeNatsMessage({ attributes: { specversion: "1.0", id: "1", source: "urn:a", type: "t" }, data: { kind: "json", value: { a: [1] } } }, "binary");
    assert.ok(out.headers.some(([k, v]) => k === "ce-datacontenttype" && v === "application/json"));
    assert.equal(Buffer.from(out.payload).toString(), '{"a":[1]}');
  });

  it("nats mapping - binary: no data means an empty payload and no content type", () => {
    const out = encodeNatsMessage({ attributes: { specversion: "1.0", id: "1", source: "urn:a", type: "t" } }, "binary");
    assert.equal(out.payload.byteLength, 0);
    assert.ok(!out.headers.some(([k]) => k.toLowerCase().includes("content")));
  });

  it("nats mapping - encode then decode is the identity in both modes", () => {
    for (const mode of ["structured", "binary"] as const) {
      const back = decodeNatsMessage({ subject: "s", headers: encodeNatsMessage(ev, mode).headers, payload: encodeNatsMessage(ev, mode).payload }, opts);
      assert.equal(back.invalid, undefined);
      const attrs = Object.fromEntries(Object.entries(back.event.attributes).map(([k, v]) => [k, String(v)]));
      assert.deepEqual(attrs, Object.fromEntries(Object.entries(ev.attributes).map(([k, v]) => [k, String(v)])));
      assert.equal(dataText(back.event), "héllo");
    }
  });

  it("nats mapping - Nats-Msg-Id is the SHA-256 hex of source NUL id (deterministic, fixed length)", () => {
    const a: CloudEvent = { attributes: { specversion: "1.0", id: "1", source: "urn:a", type: "t" } };
    assert.equal(msgIdFor(a), createHash("sha256").update("urn:a\u00001").digest("hex"));
    assert.equal(msgIdFor(a), msgIdFor({ attributes: { ...a.attributes, type: "other" } }));
    assert.notEqual(msgIdFor(a), msgIdFor({ attributes: { ...a.attributes, id: "2" } }));
    // The separator keeps ("ab","c") and ("a","bc") apart.
    assert.notEqual(
      msgIdFor({ attributes: { specversion: "1.0", id: "c", source: "ab", type: "t" } }),
      msgIdFor({ attributes: { specversion: "1.0", id: "bc", source: "a", type: "t" } }),
    );
    assert.match(msgIdFor(a), /^[0-9a-f]{64}$/);
  });
});

describe("nats mapping - helpers", () => {
  const sanitize: [string, string][] = [
    ["com.example.order", "com.example.order"],
    ["a*b>c", "a_b_c"],
    ["with space\ttab", "with_space_tab"],
    ["", "_"],
    [".lead", "_.lead"],
    ["trail.", "trail._"],
    ["a..b", "a._.b"],
    ["ünï.cödé", "ünï.cödé"],
  ];
  for (const [input, want] of sanitize) {
    it(`nats subject - sanitizes ${JSON.stringify(input)} to ${JSON.stringify(want)}`, () => assert.equal(sanitizeNats(input), want));
  }

  it("nats subject - a template keeps dots of values and defaults", () => {
    const t = compileTemplate("ce.{type}.{subject:-none}", sanitizeNats);
    assert.equal(t.render({ attributes: { specversion: "1.0", id: "1", source: "s", type: "com.example.order" } }), "ce.com.example.order.none");
    assert.equal(t.render({ attributes: { specversion: "1.0", id: "1", source: "s", type: "a > b", subject: "x*" } }), "ce.a___b.x_");
  });

  const templates: [string, boolean][] = [
    ["ce.{type}", true],
    ["ce.*.{type}", false],
    ["ce.>", false],
    ["ce..{type}", false],
    [".ce", false],
    ["ce {type}", false],
    ["{type}", true],
  ];
  for (const [t, ok] of templates) {
    it(`nats subject - publish template ${JSON.stringify(t)} is ${ok ? "valid" : "refused"}`, () => assert.equal(checkNatsPublishTemplate(t) === undefined, ok));
  }

  it("nats mapping - header extension names are [a-z0-9] and collision-free", () => {
    const names = ["X-Tenant", "x_tenant", "xtenant", "zone", "Z", "a.b", "A-B"].map(headerExtensionName);
    for (const n of names) assert.match(n, /^[a-z0-9]+$/);
    assert.equal(names[0], "natsxz2dtenant");
    assert.equal(new Set(names.slice(0, 6)).size, 6);
  });

  it("nats mapping - nanosecond timestamps", () => {
    assert.equal(nanosToRfc3339(0n), "1970-01-01T00:00:00.000Z");
    assert.equal(nanosToRfc3339(1_500_000_000n), "1970-01-01T00:00:01.500Z");
    assert.equal(nanosToRfc3339(1_000_000_001n), "1970-01-01T00:00:01.000000001Z");
    assert.equal(nanosToRfc3339(1_000_123_000n), "1970-01-01T00:00:01.000123Z");
  });

  it("nats mapping - plain source template placeholders", () => {
    assert.equal(renderPlainSource("nats://{server}/{stream}/{subject}", { server: "h:1", subject: "a.b", stream: "S" }), "nats://h:1/S/a.b");
    assert.equal(renderPlainSource("x/{stream}", { server: "h:1", subject: "a" }), "x/{stream}");
  });

});

describe("nats definitions", () => {
  it("nats definitions - defaults: structured mode, 30s ack_wait, plain mapping, servers", () => {
    const sink = componentConfig(natsSink, { subject: "ce.{type}" });
    assert.equal(sink["mode"], "structured");
    assert.deepEqual(sink["servers"], ["nats://127.0.0.1:4222"]);
    const src = componentConfig(jetstreamSource, { stream: "S", consumer: "C" });
    assert.equal(src["ack_wait"], 30_000);
    assert.equal(src["create"], false);
    assert.deepEqual(src["plain"], { source: "nats://{server}/{subject}", type: "io.nats.message" });
    const js = componentConfig(jetstreamSink, { subject: "a", stream: "S", create: true, subjects: ["a"] });
    assert.equal(js["duplicate_window"], 300_000);
  });

  it("nats definitions - guarantees and pausability", () => {
    assert.equal(natsSink.guarantee({} as never), "best-effort");
    assert.equal(jetstreamSink.guarantee({} as never), "confirmed");
    assert.equal(natsSource.pausable({} as never), false);
    assert.equal(jetstreamSource.pausable({} as never), true);
  });

  const lintCases: [string, typeof natsSink | typeof natsSource, Record<string, unknown>, string][] = [
    ["two auth methods", natsSource, { subject: "a", token: "t", nkey: "SU..." }, "error"],
    ["password without user", natsSource, { subject: "a", password: "p" }, "error"],
    ["wildcard in a publish subject", natsSink, { subject: "a.*" }, "error"],
    ["create without stream", jetstreamSink, { subject: "a", create: true, subjects: ["a"] }, "error"],
    ["create without subjects", jetstreamSink, { subject: "a", create: true, stream: "S" }, "error"],
    ["short duplicate window", jetstreamSink, { subject: "a", duplicate_window: "30s" }, "warning"],
    ["subjects without create", jetstreamSource, { stream: "S", consumer: "C", subjects: ["a"] }, "warning"],
  ];
  for (const [what, def, raw, level] of lintCases) {
    it(`nats definitions - lint: ${what} is a${level === "error" ? "n error" : " warning"}`, () => {
      let cfg: Record<string, unknown>;
      try {
        cfg = componentConfig(def, raw);
        assert.equal(level, "warning", "expected the schema or lint to refuse it");
      } catch (err) {
        assert.equal(level, "error", String(err));
        return;
      }
      const issues = def.lint?.(cfg as never) ?? [];
      assert.ok(issues.some((i) => i.level === level), JSON.stringify(issues));
    });
  }

  it("nats definitions - unknown keys are refused", () => {
    assert.throws(() => componentConfig(natsSink, { subject: "a", bogus: 1 }));
  });
});
