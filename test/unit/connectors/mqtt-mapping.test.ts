/**
 * Fixture tables for the pure MQTT mapping, topic rules and definition lint.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  decodeMqttMessage,
  encodeMqttMessage,
  plainSourceFor,
  userPropertyExtensionName,
  type MqttInbound,
  type MqttInboundOptions,
} from "../../../connectors/mqtt/mapping.js";
import { checkMqttFilter, checkMqttPublishTemplate, sanitizeMqtt } from "../../../connectors/mqtt/names.js";
import { mqttSink, mqttSource } from "../../../connectors/mqtt/definition.js";
import { compileTemplate } from "../../../src/core/template.js";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/index.js";
import { componentConfig } from "../../support/component.js";

const opts: MqttInboundOptions = {
  source: "mqtt://broker.example:1883",
  now: () => new Date("2025-01-02T03:04:05.678Z"),
  newId: () => "generated-id",
};
const buf = (s: string) => Buffer.from(s, "utf8");
const STRUCTURED = '{"specversion":"1.0","id":"s1","source":"urn:a","type":"t.x","flag":true,"data":"hi","datacontenttype":"text/plain"}';

interface Case {
  name: string;
  msg: MqttInbound;
  attributes?: Record<string, AttributeValue>;
  data?: string | null;
  invalid?: string;
  options?: Partial<MqttInboundOptions>;
}

const PLAIN_BASE = { specversion: "1.0", id: "generated-id", source: "mqtt://broker.example:1883", type: "org.mqtt.message", time: "2025-01-02T03:04:05.678Z" };

const cases: Case[] = [
  {
    name: "MQTT 5 structured by content type",
    msg: { topic: "a/b", payload: buf(STRUCTURED), protocolVersion: 5, contentType: "application/cloudevents+json; charset=utf-8" },
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", flag: true, datacontenttype: "text/plain" },
    data: "hi",
  },
  {
    name: "MQTT 5 binary: user properties are attributes, content type is datacontenttype, values used as they are",
    msg: {
      topic: "a/b",
      payload: buf('{"x":1}'),
      protocolVersion: 5,
      contentType: "application/json",
      userProperties: { specversion: "1.0", id: "b1", source: "urn:b", type: "t", subject: "100% café", "Not-An-Attr": "ignored" },
    },
    attributes: { specversion: "1.0", id: "b1", source: "urn:b", type: "t", subject: "100% café", datacontenttype: "application/json" },
    data: '{"x":1}',
  },
  {
    name: "MQTT 5 binary: a datacontenttype user property is the fallback (cloudevents SDK)",
    msg: { topic: "a", payload: buf("x"), protocolVersion: 5, userProperties: { specversion: "1.0", id: "b2", source: "urn:b", type: "t", datacontenttype: "text/plain" } },
    attributes: { specversion: "1.0", id: "b2", source: "urn:b", type: "t", datacontenttype: "text/plain" },
    data: "x",
  },
  {
    name: "MQTT 5 binary: the content type property wins over the user property",
    msg: { topic: "a", payload: buf("x"), protocolVersion: 5, contentType: "text/csv", userProperties: { specversion: "1.0", id: "b3", source: "urn:b", type: "t", datacontenttype: "text/plain" } },
    attributes: { specversion: "1.0", id: "b3", source: "urn:b", type: "t", datacontenttype: "text/csv" },
    data: "x",
  },
  {
    name: "MQTT 3.1.1 structured JSON",
    msg: { topic: "a", payload: buf(STRUCTURED), protocolVersion: 4 },
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", flag: true, datacontenttype: "text/plain" },
    data: "hi",
  },
  {
    name: "MQTT 5 without CE metadata but a structured JSON body",
    msg: { topic: "a", payload: buf(STRUCTURED), protocolVersion: 5, contentType: "application/json" },
    attributes: { specversion: "1.0", id: "s1", source: "urn:a", type: "t.x", flag: true, datacontenttype: "text/plain" },
    data: "hi",
  },
  {
    name: "plain MQTT 3.1.1 message",
    msg: { topic: "sensors/t1", payload: buf("21.5"), protocolVersion: 4 },
    attributes: { ...PLAIN_BASE, subject: "sensors/t1" },
    data: "21.5",
  },
  {
    name: "plain MQTT 5 message: content type and user properties as extensions",
    msg: { topic: "s", payload: buf("x"), protocolVersion: 5, contentType: "text/plain", userProperties: { Unit: "C", "tag-list": ["a", "b"] } },
    attributes: { ...PLAIN_BASE, subject: "s", datacontenttype: "text/plain", mqttunit: "C", mqtttagz2dlist: "a,b" },
    data: "x",
  },
  { name: "plain empty payload has no data", msg: { topic: "e", payload: buf(""), protocolVersion: 5 }, attributes: { ...PLAIN_BASE, subject: "e" }, data: null },
  { name: "invalid: structured content type with malformed JSON", msg: { topic: "x", payload: buf("{"), protocolVersion: 5, contentType: "application/cloudevents+json" }, invalid: "CEB_FORMAT" },
  { name: "invalid: binary without source", msg: { topic: "x", payload: buf(""), protocolVersion: 5, userProperties: { specversion: "1.0", id: "1", type: "t" } }, invalid: "CEB_EVENT_INVALID" },
  {
    name: "invalid: a repeated attribute user property",
    msg: { topic: "x", payload: buf(""), protocolVersion: 5, userProperties: { specversion: "1.0", id: ["1", "2"], source: "urn:a", type: "t" } },
    invalid: "CEB_EVENT_INVALID",
  },
  { name: "invalid: 3.1.1 JSON with specversion but wrong types", msg: { topic: "x", payload: buf('{"specversion":"1.0","id":1,"source":"urn:a","type":"t"}'), protocolVersion: 4 }, invalid: "CEB_EVENT_INVALID" },
  { name: "invalid: over max_payload", msg: { topic: "x", payload: buf("123"), protocolVersion: 4 }, options: { maxPayload: 2 }, invalid: "CEB_TOO_LARGE" },
];

function dataText(ev: CloudEvent): string | null {
  const d = ev.data;
  if (d === undefined) return null;
  if (d.kind === "bytes") return Buffer.from(d.bytes).toString("utf8");
  if (d.kind === "text") return d.text;
  return JSON.stringify(d.value);
}

describe("mqtt mapping - decode", () => {
  for (const c of cases) {
    it(`mqtt mapping - ${c.name}`, () => {
      const out = decodeMqttMessage(c.msg, { ...opts, ...c.options });
      if (c.invalid) {
        assert.equal(out.invalid?.code, c.invalid, out.invalid?.message);
        assert.equal(out.event.attributes["type"], "dev.cebridge.invalid");
        assert.equal(out.event.attributes["source"], opts.source);
        const value = (out.event.data as { value: { raw_base64: string; metadata: Record<string, string> } }).value;
        assert.deepEqual(Buffer.from(value.raw_base64, "base64"), Buffer.from(c.msg.payload));
        assert.equal(value.metadata["topic"], c.msg.topic);
        return;
      }
      assert.equal(out.invalid, undefined, out.invalid?.message);
      assert.deepEqual(out.event.attributes, c.attributes);
      assert.equal(dataText(out.event), c.data);
    });
  }
});

describe("mqtt mapping - encode", () => {
  const ev: CloudEvent = {
    attributes: { specversion: "1.0", id: "1", source: "urn:a", type: "t", subject: "100% ünï", n: 7, ok: false, datacontenttype: "application/xml" },
    data: { kind: "bytes", bytes: buf("<a/>") },
  };

  it("mqtt mapping - v5 binary: content type = datacontenttype, user properties = every attribute as a string", () => {
    const out = encodeMqttMessage(ev, "binary", 5);
    assert.deepEqual(out.properties, {
      contentType: "application/xml",
      userProperties: { specversion: "1.0", id: "1", source: "urn:a", type: "t", datacontenttype: "application/xml", subject: "100% ünï", n: "7", ok: "false" },
    });
    assert.equal(out.payload.toString(), "<a/>");
  });

  it("mqtt mapping - v5 structured: the JSON event with the CloudEvents content type", () => {
    const out = encodeMqttMessage(ev, "structured", 5);
    assert.deepEqual(out.properties, { contentType: "application/cloudevents+json; charset=utf-8" });
    const doc = JSON.parse(out.payload.toString());
    assert.equal(doc.n, 7);
    assert.equal(doc.ok, false);
    assert.equal(doc.data, "<a/>");
  });

  it("mqtt mapping - v3.1.1 is always structured, without properties", () => {
    const out = encodeMqttMessage(ev, "binary", 4);
    assert.equal(out.properties, undefined);
    assert.equal(JSON.parse(out.payload.toString()).id, "1");
  });

  it("mqtt mapping - encode then decode keeps every attribute and the data bytes", () => {
    for (const [mode, v] of [["binary", 5], ["structured", 5], ["structured", 4]] as const) {
      const out = encodeMqttMessage(ev, mode, v);
      const back = decodeMqttMessage(
        { topic: "t", payload: out.payload, protocolVersion: v, contentType: out.properties?.contentType, userProperties: out.properties?.userProperties },
        opts,
      );
      assert.equal(back.invalid, undefined);
      const s = (a: Readonly<Record<string, AttributeValue>>) => Object.fromEntries(Object.entries(a).map(([k, x]) => [k, String(x)]));
      assert.deepEqual(s(back.event.attributes), s(ev.attributes), `${mode} v${v}`);
      assert.equal(dataText(back.event), "<a/>");
    }
  });
});

describe("mqtt mapping - helpers", () => {
  const sanitize: [string, string][] = [
    ["com.example", "com.example"],
    ["a/b", "a_b"],
    ["+#", "__"],
    ["", "_"],
    ["x\u0000y", "x_y"],
    ["ünï cödé", "ünï cödé"],
  ];
  for (const [input, want] of sanitize) {
    it(`mqtt topic - sanitizes ${JSON.stringify(input)} to ${JSON.stringify(want)}`, () => assert.equal(sanitizeMqtt(input), want));
  }

  it("mqtt topic - a template never gains levels or wildcards from values", () => {
    const t = compileTemplate("ev/{source}/{subject:-}", sanitizeMqtt);
    assert.equal(t.render({ attributes: { specversion: "1.0", id: "1", source: "https://x/y", type: "t" } }), "ev/https:__x_y/_");
  });

  const filters: [string, boolean][] = [
    ["a/b", true],
    ["a/+/c", true],
    ["a/#", true],
    ["#", true],
    ["a/#/b", false],
    ["a/b#", false],
    ["a/b+", false],
    ["$share/g/a/+", true],
    ["$share/g", false],
    ["$share//a", false],
    ["$share/g/", false],
  ];
  for (const [f, ok] of filters) {
    it(`mqtt topic - filter ${JSON.stringify(f)} is ${ok ? "valid" : "refused"}`, () => assert.equal(checkMqttFilter(f) === undefined, ok));
  }

  const templates: [string, boolean][] = [
    ["events/{type}", true],
    ["events/+/{type}", false],
    ["events/#", false],
    ["$SYS/{type}", false],
  ];
  for (const [t, ok] of templates) {
    it(`mqtt topic - publish template ${JSON.stringify(t)} is ${ok ? "valid" : "refused"}`, () => assert.equal(checkMqttPublishTemplate(t) === undefined, ok));
  }

  it("mqtt mapping - plain source from the broker URL", () => {
    assert.equal(plainSourceFor("mqtt://h:1884"), "mqtt://h:1884");
    assert.equal(plainSourceFor("mqtt://h"), "mqtt://h:1883");
    assert.equal(plainSourceFor("mqtts://h"), "mqtt://h:8883");
    assert.equal(plainSourceFor("tcp://10.0.0.1:1883"), "mqtt://10.0.0.1:1883");
  });

  it("mqtt mapping - user property extension names are [a-z0-9] and collision-free", () => {
    const names = ["Tenant-Id", "tenant_id", "tenantid", "zz", "Größe"].map(userPropertyExtensionName);
    for (const n of names) assert.match(n, /^[a-z0-9]+$/);
    assert.equal(new Set(names).size, names.length);
  });
});

describe("mqtt definitions", () => {
  it("mqtt definitions - defaults: qos 1, MQTT 5, 1h session, one connection; mode resolved at run time", () => {
    const src = componentConfig(mqttSource, { topic: "a/#" });
    assert.equal(src["qos"], 1);
    assert.equal(src["protocol_version"], 5);
    assert.equal(src["session_expiry"], 3_600_000);
    assert.equal(src["connections"], 1);
    const sink = componentConfig(mqttSink, { topic: "a/{type}" });
    assert.equal(sink["mode"], undefined);
    assert.equal(sink["retain"], false);
  });

  it("mqtt definitions - pausable only with QoS ≥ 1; best-effort sink only with QoS 0", () => {
    assert.equal(mqttSource.pausable({ qos: 1 } as never), true);
    assert.equal(mqttSource.pausable({ qos: 0 } as never), false);
    assert.equal(mqttSink.guarantee({ qos: 0 } as never), "best-effort");
    assert.equal(mqttSink.guarantee({ qos: 1 } as never), "confirmed");
  });

  const errors: [string, typeof mqttSink | typeof mqttSource, Record<string, unknown>][] = [
    ["binary mode on MQTT 3.1.1", mqttSink, { topic: "a", protocol_version: 4, mode: "binary" }],
    ["a wildcard in a publish topic", mqttSink, { topic: "a/+" }],
    ["several connections without $share", mqttSource, { topic: "a/#", connections: 2 }],
    ["a malformed filter", mqttSource, { topic: "a/#/b" }],
    ["a URL without scheme", mqttSource, { topic: "a", url: "localhost:1883" }],
    ["qos 3", mqttSource, { topic: "a", qos: 3 }],
  ];
  for (const [what, def, raw] of errors) {
    it(`mqtt definitions - ${what} is an error`, () => assert.throws(() => componentConfig(def, raw)));
  }

  it("mqtt definitions - QoS 2 on a source is a warning", () => {
    const cfg = componentConfig(mqttSource, { topic: "a", qos: 2 });
    assert.ok(mqttSource.lint?.(cfg as never).some((i) => i.level === "warning" && i.path[0] === "qos"));
  });
});
