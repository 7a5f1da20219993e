/**
 * The native trace fields of the HTTP, NATS and MQTT mappings: what each source reads as the
 * transport context, and where each sink writes the hop context beside the event's own encoding.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { requestTrace } from "../../../connectors/http/decode.js";
import { decodeMqttMessage, encodeMqttMessage, type MqttInboundOptions } from "../../../connectors/mqtt/mapping.js";
import { decodeNatsMessage, encodeNatsMessage, natsTrace, type InboundOptions } from "../../../connectors/nats/mapping.js";
import type { CloudEvent } from "../../../src/cloudevents/index.js";

const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const HOP = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-bbbbbbbbbbbbbbbb-01", tracestate: "a=1" };
const STARTING = "00-11111111111111111111111111111111-2222222222222222-01";
const event: CloudEvent = {
  attributes: { specversion: "1.0", id: "1", source: "/s", type: "t", traceparent: STARTING, datacontenttype: "application/json" },
  data: { kind: "json", value: { a: 1 } },
};
const STRUCTURED = Buffer.from('{"specversion":"1.0","id":"s1","source":"urn:a","type":"t"}');

describe("HTTP source: request headers", () => {
  it("reads traceparent and tracestate; repeated tracestate headers are one list", () => {
    assert.deepEqual(requestTrace({ traceparent: [TP], tracestate: ["a=1", "b=2"] }), { traceparent: TP, tracestate: "a=1,b=2" });
  });
  it("a repeated or invalid traceparent is ignored", () => {
    assert.equal(requestTrace({ traceparent: [TP, TP] }), undefined);
    assert.equal(requestTrace({ traceparent: ["00-nope"] }), undefined);
    assert.equal(requestTrace({ "ce-traceparent": [TP] }), undefined, "the extension header is not the transport field");
  });
});

describe("NATS: message headers", () => {
  const opts: InboundOptions = { plainSource: "nats://{server}/{subject}", plainType: "io.nats.message", server: "h:4222", now: () => new Date(0), newId: () => "n" };
  it("any case; a repeated traceparent is ignored", () => {
    assert.deepEqual(natsTrace([["Traceparent", TP], ["TRACESTATE", "a=1"]]), { traceparent: TP, tracestate: "a=1" });
    assert.equal(natsTrace([["traceparent", TP], ["traceparent", TP]]), undefined);
    assert.equal(natsTrace([]), undefined);
  });
  it("decode returns the transport context in every mode, and only then", () => {
    const structured = decodeNatsMessage({ subject: "s", headers: [["Content-Type", "application/cloudevents+json"], ["traceparent", TP]], payload: STRUCTURED }, opts);
    assert.deepEqual(structured.trace, { traceparent: TP });
    assert.equal(structured.event.attributes["traceparent"], undefined, "the mapping itself does not touch the event");
    const binary = decodeNatsMessage({ subject: "s", headers: [["ce-specversion", "1.0"], ["ce-id", "1"], ["ce-source", "/s"], ["ce-type", "t"], ["ce-traceparent", STARTING], ["traceparent", TP]], payload: new Uint8Array() }, opts);
    assert.equal(binary.event.attributes["traceparent"], STARTING);
    assert.deepEqual(binary.trace, { traceparent: TP });
    assert.equal(Object.hasOwn(decodeNatsMessage({ subject: "s", headers: [], payload: STRUCTURED }, opts), "trace"), false);
  });
  it("encode adds the W3C headers in both modes, next to the event's own encoding", () => {
    const s = encodeNatsMessage(event, "structured", "json", HOP);
    assert.deepEqual(s.headers, [["Content-Type", "application/cloudevents+json; charset=utf-8"], ["traceparent", HOP.traceparent], ["tracestate", "a=1"]]);
    assert.equal(JSON.parse(Buffer.from(s.payload).toString()).traceparent, STARTING);
    const b = encodeNatsMessage(event, "binary", "json", HOP);
    assert.deepEqual(b.headers.filter(([k]) => k.includes("trace")), [["ce-traceparent", STARTING], ["traceparent", HOP.traceparent], ["tracestate", "a=1"]]);
    assert.equal(encodeNatsMessage(event, "binary").headers.some(([k]) => k === "traceparent"), false);
  });
});

describe("MQTT 5: user properties", () => {
  const opts: MqttInboundOptions = { source: "mqtt://h:1883", now: () => new Date(0), newId: () => "n" };
  it("structured: the user properties are the transport context, apart from the event", () => {
    const d = decodeMqttMessage({ topic: "t", payload: STRUCTURED, protocolVersion: 5, contentType: "application/cloudevents+json", userProperties: { traceparent: TP } }, opts);
    assert.deepEqual(d.trace, { traceparent: TP });
    assert.equal(d.event.attributes["traceparent"], undefined);
  });
  it("binary: the traceparent user property is the extension and the transport context at once", () => {
    const d = decodeMqttMessage(
      { topic: "t", payload: Buffer.from("{}"), protocolVersion: 5, contentType: "application/json", userProperties: { specversion: "1.0", id: "1", source: "/s", type: "t", traceparent: STARTING } },
      opts,
    );
    assert.equal(d.event.attributes["traceparent"], STARTING);
    assert.deepEqual(d.trace, { traceparent: STARTING });
  });
  it("MQTT 3.1.1 has no properties, so no transport context", () => {
    assert.equal(decodeMqttMessage({ topic: "t", payload: STRUCTURED, protocolVersion: 4, userProperties: { traceparent: TP } }, opts).trace, undefined);
  });
  it("encode: the hop goes into the user properties in structured mode only", () => {
    assert.deepEqual(encodeMqttMessage(event, "structured", 5, "json", HOP).properties, {
      contentType: "application/cloudevents+json; charset=utf-8",
      userProperties: { traceparent: HOP.traceparent, tracestate: "a=1" },
    });
    // Binary: the user property traceparent is the event's own extension, unchanged.
    assert.equal(encodeMqttMessage(event, "binary", 5, "json", HOP).properties!.userProperties!["traceparent"], STARTING);
    assert.equal(encodeMqttMessage(event, "binary", 5, "json", HOP).properties!.userProperties!["tracestate"], undefined);
    assert.equal(encodeMqttMessage(event, "structured", 4, "json", HOP).properties, undefined);
  });
});
