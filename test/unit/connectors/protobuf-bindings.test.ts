/**
 * The Protobuf format in the existing bindings' pure mappings: structured-mode decoding by content
 * type (NATS, MQTT 5, HTTP single and batch), `format: protobuf` on their sinks, and the lint rules
 * of the `format` option. The bytes are checked with protoc, which shares no code with us.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodePubSubMessage } from "../../../connectors/gcp-pubsub/mapping.js";
import { decodeRequest } from "../../../connectors/http/decode.js";
import { httpSink } from "../../../connectors/http/definition.js";
import { mqttSink } from "../../../connectors/mqtt/definition.js";
import { decodeMqttMessage, encodeMqttMessage } from "../../../connectors/mqtt/mapping.js";
import { jetstreamSink, natsSink } from "../../../connectors/nats/definition.js";
import { decodeNatsMessage, encodeNatsMessage } from "../../../connectors/nats/mapping.js";
import { encodeProtobuf, encodeProtobufBatch, type CloudEvent } from "../../../src/cloudevents/index.js";
import { UnsupportedMediaTypeError } from "../../../src/core/errors.js";
import { componentConfig } from "../../support/component.js";
import { assertSameEvent } from "../../support/events.js";
import { protocDecode } from "../../support/protoc.js";

const EV: CloudEvent = {
  attributes: {
    specversion: "1.0",
    id: "pb-1",
    source: "urn:cebridge:test",
    type: "dev.cebridge.pb",
    time: "2024-05-06T05:08:09.123456789Z",
    datacontenttype: "application/octet-stream",
    count: 7,
    flag: true,
  },
  data: { kind: "bytes", bytes: Buffer.from([0, 1, 2, 255]) },
};

describe("protobuf in the bindings", () => {
  it("nats - Content-Type application/cloudevents+protobuf is a Protobuf structured event", () => {
    const out = decodeNatsMessage(
      { subject: "x", headers: [["Content-Type", "application/cloudevents+protobuf"]], payload: encodeProtobuf(EV) },
      { plainSource: "nats://{server}/{subject}", plainType: "io.nats.message", server: "s:4222", now: () => new Date(0), newId: () => "n" },
    );
    assert.equal(out.invalid, undefined);
    assertSameEvent(out.event, EV);
    const bad = decodeNatsMessage(
      { subject: "x", headers: [["Content-Type", "application/cloudevents+protobuf"]], payload: Buffer.from([0xff, 0xff]) },
      { plainSource: "nats://{server}/{subject}", plainType: "io.nats.message", server: "s:4222", now: () => new Date(0), newId: () => "n" },
    );
    assert.equal(bad.invalid?.code, "CEB_FORMAT");
  });

  it("nats - structured mode with format protobuf: the header names it and protoc reads the payload", () => {
    const out = encodeNatsMessage(EV, "structured", "protobuf");
    assert.deepEqual(out.headers, [["Content-Type", "application/cloudevents+protobuf"]]);
    assert.match(protocDecode("CloudEvent", out.payload), /^id: "pb-1"\n[\s\S]*ce_timestamp \{\n\s+seconds: 1714972089\n\s+nanos: 123456789\n[\s\S]*binary_data: "\\000\\001\\002\\377"\n$/);
    assert.deepEqual(encodeNatsMessage(EV, "structured").headers, [["Content-Type", "application/cloudevents+json; charset=utf-8"]]);
  });

  it("mqtt 5 - Content Type +protobuf decodes; format protobuf encodes under that Content Type", () => {
    const out = encodeMqttMessage(EV, "structured", 5, "protobuf");
    assert.deepEqual(out.properties, { contentType: "application/cloudevents+protobuf" });
    assert.match(protocDecode("CloudEvent", out.payload), /^id: "pb-1"\n/);
    const back = decodeMqttMessage(
      { topic: "t", payload: out.payload, protocolVersion: 5, contentType: "application/cloudevents+protobuf" },
      { source: "mqtt://h:1883", now: () => new Date(0), newId: () => "n" },
    );
    assertSameEvent(back.event, EV);
    const avro = decodeMqttMessage(
      { topic: "t", payload: out.payload, protocolVersion: 5, contentType: "application/cloudevents+avro" },
      { source: "mqtt://h:1883", now: () => new Date(0), newId: () => "n" },
    );
    assert.equal(avro.invalid?.code, "CEB_UNSUPPORTED_MEDIA");
  });

  it("http - structured and batch Protobuf requests decode; other formats get 415", () => {
    const single = decodeRequest({ "content-type": ["application/cloudevents+protobuf"] }, Buffer.from(encodeProtobuf(EV)), { maxDepth: 64 });
    assert.equal(single.length, 1);
    assertSameEvent(single[0]!, EV);
    const second: CloudEvent = { attributes: { ...EV.attributes, id: "pb-2" } };
    const batch = decodeRequest({ "content-type": ["application/cloudevents-batch+protobuf"] }, Buffer.from(encodeProtobufBatch([EV, second])), { maxDepth: 64 });
    assert.deepEqual(batch.map((e) => e.attributes["id"]), ["pb-1", "pb-2"]);
    for (const ct of ["application/cloudevents+avro", "application/cloudevents", "application/cloudevents-batch+avro"]) {
      assert.throws(() => decodeRequest({ "content-type": [ct] }, Buffer.from("x"), { maxDepth: 64 }), UnsupportedMediaTypeError, ct);
    }
  });

  it("gcp_pubsub - a content-type attribute application/cloudevents+protobuf is a Protobuf structured event", () => {
    const out = decodePubSubMessage(
      { messageId: "m1", data: encodeProtobuf(EV), attributes: { "content-type": "application/cloudevents+protobuf" }, orderingKey: "", publishTime: "2024-01-01T00:00:00Z", deliveryAttempt: 0 },
      { topic: "projects/p/topics/t", subscription: "projects/p/subscriptions/s", mapping: "message_published", rawType: "x" },
    );
    assert.equal(out.invalid, undefined, out.invalid?.message);
    assertSameEvent(out.event, EV);
  });

  it("definitions - format defaults to json; protobuf needs a structured (or batch) mode", () => {
    assert.equal(componentConfig(httpSink, { url: "http://x/" })["format"], "json");
    assert.equal(componentConfig(natsSink, { subject: "a" })["format"], "json");
    assert.doesNotThrow(() => componentConfig(httpSink, { url: "http://x/", mode: "batch", format: "protobuf" }));
    assert.doesNotThrow(() => componentConfig(natsSink, { subject: "a", format: "protobuf" }), "NATS defaults to structured");
    assert.doesNotThrow(() => componentConfig(mqttSink, { topic: "a", mode: "structured", format: "protobuf" }));
    const refused: [string, typeof httpSink, Record<string, unknown>, RegExp][] = [
      ["http binary", httpSink, { url: "http://x/", format: "protobuf" }, /format: format applies to structured/],
      ["jetstream binary", jetstreamSink, { subject: "a", mode: "binary", format: "protobuf" }, /format applies/],
      ["mqtt 5 default binary", mqttSink, { topic: "a", format: "protobuf" }, /format applies/],
      ["mqtt 3.1.1", mqttSink, { topic: "a", protocol_version: 4, format: "protobuf" }, /3\.1\.1 has no Content Type/],
      ["unknown format", natsSink, { subject: "a", format: "avro" }, /format/],
    ];
    for (const [what, def, raw, re] of refused) assert.throws(() => componentConfig(def, raw), re, what);
  });
});
