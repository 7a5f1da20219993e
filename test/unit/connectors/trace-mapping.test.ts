/**
 * The native trace fields of the connector mappings (HTTP, NATS, MQTT, AWS SQS and EventBridge,
 * Pub/Sub, Event Grid's webhook, AMQP): what each source reads as the transport context, and where
 * each sink writes the hop context beside the event's own encoding.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import rhea from "rhea";
import { decodeAmqpMessage, encodeAmqpMessage, type AmqpInboundOptions } from "../../../connectors/amqp/mapping.js";
import { encodeOutbound, inboundOf, type RheaMessage } from "../../../connectors/amqp/wire.js";
import { encodePutEventsEntry } from "../../../connectors/aws/eventbridge-mapping.js";
import { encodeSqsMessage } from "../../../connectors/aws/sqs-encode.js";
import { decodeSqsMessage } from "../../../connectors/aws/sqs-mapping.js";
import { decodePush } from "../../../connectors/azure-eventgrid/webhook-decode.js";
import { decodePubSubMessage, encodePubSubMessage, RAW_TYPE } from "../../../connectors/gcp-pubsub/mapping.js";
import { requestTrace } from "../../../src/core/webhook-server.js";
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

describe("AWS: X-Ray AWSTraceHeader (SQS) and TraceHeader (EventBridge)", () => {
  const XRAY = "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=bbbbbbbbbbbbbbbb;Sampled=1";
  it("the SQS sink writes the hop as AWSTraceHeader in both modes; the source reads it back as the transport context", () => {
    for (const mode of ["binary", "structured"] as const) {
      const out = encodeSqsMessage(event, { mode, fifo: false }, HOP);
      assert.equal(out.MessageSystemAttributes?.AWSTraceHeader.StringValue, XRAY, mode);
      const d = decodeSqsMessage({ messageId: "m", body: out.MessageBody, attributes: { AWSTraceHeader: XRAY }, messageAttributes: out.MessageAttributes }, { queueArn: "arn:aws:sqs:r:1:q", expect: "any" });
      assert.equal(d.event.attributes["traceparent"], STARTING, `${mode}: the extension passes unchanged`);
      assert.deepEqual(d.trace, { traceparent: HOP.traceparent }, `${mode}: X-Ray has no tracestate`);
    }
    assert.equal(encodeSqsMessage(event, { mode: "binary", fifo: false }).MessageSystemAttributes, undefined);
  });
  it("the EventBridge sink writes the hop as each entry's TraceHeader, the extension stays in Detail", () => {
    const e = encodePutEventsEntry(event, { eventBus: "b", detail: "event" }, HOP);
    assert.equal(e.TraceHeader, XRAY);
    assert.equal(JSON.parse(e.Detail).traceparent, STARTING);
  });
});

describe("Pub/Sub: googclient_ attributes", () => {
  const opts = { topic: "projects/p/topics/t", subscription: "projects/p/subscriptions/s", mapping: "message_published" as const, rawType: RAW_TYPE };
  const inbound = (attributes: Record<string, string>, data: Buffer) => ({ messageId: "1", data, attributes, orderingKey: "", publishTime: "2024-01-01T00:00:00Z", deliveryAttempt: 0 });
  it("the sink writes the hop next to the event's own encoding in both modes; the source reads it back", () => {
    for (const mode of ["binary", "structured"] as const) {
      const out = encodePubSubMessage(event, { mode, ordering: false }, HOP);
      assert.equal(out.attributes["googclient_traceparent"], HOP.traceparent, mode);
      assert.equal(out.attributes["googclient_tracestate"], "a=1", mode);
      const d = decodePubSubMessage(inbound(out.attributes, out.data), opts);
      assert.equal(d.invalid, undefined);
      assert.equal(d.event.attributes["traceparent"], STARTING, `${mode}: the extension passes unchanged`);
      assert.deepEqual(d.trace, HOP, mode);
    }
    assert.equal(encodePubSubMessage(event, { mode: "binary", ordering: false }).attributes["googclient_traceparent"], undefined);
  });
  it("a plain message: the trace attributes are the transport context (the event keeps every attribute in its data)", () => {
    const d = decodePubSubMessage(inbound({ googclient_traceparent: TP, other: "x" }, Buffer.from("hi")), opts);
    assert.deepEqual(d.trace, { traceparent: TP });
    assert.equal(d.event.attributes["traceparent"], undefined, "the engine, not the mapping, adds the extension");
    assert.equal(decodePubSubMessage(inbound({ traceparent: TP }, Buffer.from("hi")), opts).trace, undefined, "only the client library's names");
  });
});

describe("Event Grid webhook: the request's W3C headers; events carry the extension", () => {
  it("the webhook reads the request headers as the http source does; the pushed events keep their own extension", () => {
    const headers = { "content-type": ["application/cloudevents-batch+json"], traceparent: [HOP.traceparent], tracestate: ["a=1"] };
    const push = decodePush(headers, Buffer.from(JSON.stringify([{ specversion: "1.0", id: "1", source: "/s", type: "t", traceparent: STARTING }])), { maxDepth: 64 });
    assert.equal(push.kind, "events");
    assert.equal(push.kind === "events" && push.events[0]!.attributes["traceparent"], STARTING);
    assert.deepEqual(requestTrace(headers), HOP);
  });
});

describe("AMQP 1.0: application properties traceparent / tracestate", () => {
  const opts: AmqpInboundOptions = { source: "amqp://h:5672/q", now: () => new Date(0), newId: () => "n" };
  const base = { format: "json" as const, durable: true };
  it("the sink writes the hop in both modes, apart from binary mode's cloudEvents: extension; through rhea's codec the source reads it back", () => {
    for (const [mode, prefix] of [["binary", "cloudEvents:"], ["binary", "cloudEvents_"], ["structured", "cloudEvents:"]] as const) {
      const out = encodeAmqpMessage(event, { ...base, mode, prefix }, HOP);
      assert.equal(out.applicationProperties?.["traceparent"], HOP.traceparent, mode);
      assert.equal(out.applicationProperties?.["tracestate"], "a=1", mode);
      if (mode === "binary") assert.equal(out.applicationProperties?.[`${prefix}traceparent`], STARTING, "the extension, unchanged");
      const d = decodeAmqpMessage(inboundOf(rhea.message.decode(encodeOutbound(out)) as unknown as RheaMessage), opts);
      assert.equal(d.invalid, undefined, d.invalid?.message);
      assert.equal(d.event.attributes["traceparent"], STARTING, `${mode} ${prefix}: the extension passes unchanged`);
      assert.deepEqual(d.trace, HOP, `${mode} ${prefix}`);
    }
    assert.equal(encodeAmqpMessage(event, { ...base, mode: "structured", prefix: "cloudEvents:" }).applicationProperties, undefined);
    assert.equal(encodeAmqpMessage(event, { ...base, mode: "binary", prefix: "cloudEvents:" }).applicationProperties?.["traceparent"], undefined);
  });
  it("a message annotation set by middleware wins over the publisher's application property", () => {
    const m = rhea.message.decode(
      rhea.message.encode({ message_annotations: { traceparent: TP }, application_properties: { traceparent: HOP.traceparent, tracestate: "a=1" }, body: rhea.message.data_section(STRUCTURED) }),
    ) as unknown as RheaMessage;
    const d = decodeAmqpMessage({ ...inboundOf(m), contentType: "application/cloudevents+json" }, opts);
    assert.deepEqual(d.trace, { traceparent: TP });
  });
});

