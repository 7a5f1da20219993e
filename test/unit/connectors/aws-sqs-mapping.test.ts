/**
 * Fixture tables for the pure SQS mapping: plain SQS bodies, an SNS notification (as AWS documents
 * it), an EventBridge envelope directly and inside SNS, CloudEvents as `ce-` message attributes and
 * as a structured body, invalid messages, and what the sink sends (binary within the 10-attribute
 * limit, structured otherwise, FIFO group and deduplication ids, the hop's trace header); the
 * `AWSTraceHeader` system attribute read as the transport trace context whatever the message holds.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { deduplicationId, encodeSqsMessage, isSqsText, sqsMessageSize } from "../../../connectors/aws/sqs-encode.js";
import { decodeSqsMessage, queueArnFromUrl, type SqsAttribute, type SqsDecodeOptions, type SqsInbound } from "../../../connectors/aws/sqs-mapping.js";
import { SinkError } from "../../../src/core/errors.js";
import { serializeStructured, type AttributeValue, type CloudEvent, type TraceContext } from "../../../src/cloudevents/index.js";
import { assertSameEvent, dataBytes, richEvents, sampleEvents } from "../../support/events.js";

const QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:orders";
const opts: SqsDecodeOptions = { queueArn: QUEUE_ARN, expect: "any" };

function msg(body: string, attributes: Record<string, string> = {}, messageAttributes: Record<string, SqsAttribute> = {}): SqsInbound {
  return { messageId: "059f36b4-87a3-44ab-83d2-661975830a7d", body, attributes: { SentTimestamp: "1704164645678", ApproximateReceiveCount: "1", ...attributes }, messageAttributes };
}

const str = (v: string): SqsAttribute => ({ DataType: "String", StringValue: v });
const num = (v: string): SqsAttribute => ({ DataType: "Number", StringValue: v });

/** AWS documentation: an SNS notification as an SQS subscriber receives it (raw delivery off). */
const SNS_NOTIFICATION = {
  Type: "Notification",
  MessageId: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
  TopicArn: "arn:aws:sns:us-west-2:123456789012:MyTopic",
  Subject: "My First Message",
  Message: "Hello world!",
  Timestamp: "2012-05-02T00:54:06.655Z",
  SignatureVersion: "1",
  Signature: "EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNdOJ+1fkIp9F2/LmNVKb5aFlYq+9rk9ZiPph5YlLmWsDcyC5T+Sy9/umic5S0UQc2PEtgdpVBahwNOdMW4JPwk0kAJJztnc=",
  SigningCertURL: "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
  UnsubscribeURL: "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96",
};

const EC2 = {
  version: "0",
  id: "7bf73129-1428-4cd3-a780-95db273d1602",
  "detail-type": "EC2 Instance State-change Notification",
  source: "aws.ec2",
  account: "123456789012",
  time: "2015-11-11T21:29:54Z",
  region: "us-east-1",
  resources: ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
  detail: { "instance-id": "i-abcd1111", state: "pending" },
};

const EC2_EVENT: Record<string, AttributeValue> = {
  specversion: "1.0",
  id: "7bf73129-1428-4cd3-a780-95db273d1602",
  source: "aws.ec2",
  type: "EC2 Instance State-change Notification",
  datacontenttype: "application/json",
  time: "2015-11-11T21:29:54Z",
  subject: "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111",
  awsresources: '["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"]',
  awsaccount: "123456789012",
  awsregion: "us-east-1",
};

interface Case {
  name: string;
  msg: SqsInbound;
  options?: Partial<SqsDecodeOptions>;
  attributes?: Record<string, AttributeValue>;
  /** Data as UTF-8 text, or a JSON value (compared as a value). */
  data?: string | { json: unknown } | null;
  invalid?: RegExp;
  /** The transport trace context the mapping reads (`AWSTraceHeader`); none when absent. */
  trace?: TraceContext;
}

const cases: Case[] = [
  {
    name: "plain text body",
    msg: msg("hello, world"),
    attributes: { specversion: "1.0", id: "059f36b4-87a3-44ab-83d2-661975830a7d", source: QUEUE_ARN, type: "com.amazonaws.sqs.message", datacontenttype: "text/plain; charset=utf-8", time: "2024-01-02T03:04:05.678Z" },
    data: "hello, world",
  },
  {
    name: "plain JSON body keeps its bytes (whitespace too)",
    msg: msg('{ "order": 7 }'),
    attributes: { specversion: "1.0", id: "059f36b4-87a3-44ab-83d2-661975830a7d", source: QUEUE_ARN, type: "com.amazonaws.sqs.message", datacontenttype: "application/json", time: "2024-01-02T03:04:05.678Z" },
    data: '{ "order": 7 }',
  },
  {
    name: "a JSON array or number body is JSON too",
    msg: msg("[1,2,3]"),
    attributes: { specversion: "1.0", id: "059f36b4-87a3-44ab-83d2-661975830a7d", source: QUEUE_ARN, type: "com.amazonaws.sqs.message", datacontenttype: "application/json", time: "2024-01-02T03:04:05.678Z" },
    data: "[1,2,3]",
  },
  {
    name: "plain message: attributes become escaped sqs extensions (Number → Integer when it is one, Binary → base64), FIFO group → partitionkey, AWSTraceHeader → the transport trace",
    msg: msg(
      "x",
      { MessageGroupId: "customer-42", SequenceNumber: "18849496460467696128", AWSTraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1" },
      { "X-Tenant": str("acme"), retries: num("3"), price: num("4.50"), huge: num("99999999999"), blob: { DataType: "Binary", BinaryValue: new Uint8Array([0, 1, 255]) }, zone: { DataType: "String.custom", StringValue: "z1" } },
    ),
    attributes: {
      specversion: "1.0",
      id: "059f36b4-87a3-44ab-83d2-661975830a7d",
      source: QUEUE_ARN,
      type: "com.amazonaws.sqs.message",
      datacontenttype: "text/plain; charset=utf-8",
      time: "2024-01-02T03:04:05.678Z",
      partitionkey: "customer-42",
      sqsxz2dtenant: "acme",
      sqsretries: 3,
      sqsprice: "4.50",
      sqshuge: "99999999999",
      sqsblob: "AAH/",
      sqsz7aone: "z1",
    },
    data: "x",
    // The engine adds the traceparent extension from it; the mapping leaves the event alone.
    trace: { traceparent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01" },
  },
  {
    name: "structured CloudEvent with AWSTraceHeader: the extension stays the event's, the header is the transport trace; a header that is no X-Ray header is ignored",
    msg: msg(
      '{"specversion":"1.0","id":"t1","source":"urn:s","type":"t","traceparent":"00-11111111111111111111111111111111-2222222222222222-01"}',
      { AWSTraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0;Lineage=a87bd80c:1" },
    ),
    attributes: { specversion: "1.0", id: "t1", source: "urn:s", type: "t", traceparent: "00-11111111111111111111111111111111-2222222222222222-01" },
    data: null,
    trace: { traceparent: "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00" },
  },
  {
    name: "plain message whose AWSTraceHeader has no Parent: no transport trace, no extension",
    msg: msg("y", { AWSTraceHeader: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1" }),
    attributes: { specversion: "1.0", id: "059f36b4-87a3-44ab-83d2-661975830a7d", source: QUEUE_ARN, type: "com.amazonaws.sqs.message", datacontenttype: "text/plain; charset=utf-8", time: "2024-01-02T03:04:05.678Z" },
    data: "y",
  },
  {
    name: "SNS notification (AWS documentation example)",
    msg: msg(JSON.stringify(SNS_NOTIFICATION, null, 2)),
    attributes: {
      specversion: "1.0",
      id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
      source: "arn:aws:sns:us-west-2:123456789012:MyTopic",
      type: "com.amazonaws.sns.notification",
      datacontenttype: "text/plain; charset=utf-8",
      subject: "My First Message",
      time: "2012-05-02T00:54:06.655Z",
    },
    data: "Hello world!",
  },
  {
    name: "SNS notification with a JSON message and message attributes (no Subject)",
    msg: msg(
      JSON.stringify({
        ...SNS_NOTIFICATION,
        Subject: undefined,
        Message: '{"hello":"sns"}',
        MessageAttributes: { k: { Type: "String", Value: "v" }, n: { Type: "Number", Value: "12" }, list: { Type: "String.Array", Value: '["a","b"]' } },
      }),
    ),
    attributes: {
      specversion: "1.0",
      id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
      source: "arn:aws:sns:us-west-2:123456789012:MyTopic",
      type: "com.amazonaws.sns.notification",
      datacontenttype: "application/json",
      time: "2012-05-02T00:54:06.655Z",
      snsk: "v",
      snsn: 12,
      snslist: '["a","b"]',
    },
    data: '{"hello":"sns"}',
  },
  {
    name: "EventBridge envelope inside an SNS notification",
    msg: msg(JSON.stringify({ ...SNS_NOTIFICATION, Message: JSON.stringify(EC2) })),
    attributes: EC2_EVENT,
    data: { json: EC2.detail },
  },
  {
    name: "EventBridge envelope written by a rule into its SQS target",
    msg: msg(JSON.stringify(EC2)),
    options: { expect: "eventbridge" },
    attributes: EC2_EVENT,
    data: { json: EC2.detail },
  },
  {
    name: "a CloudEvent in an EventBridge envelope's detail is restored",
    msg: msg(JSON.stringify({ ...EC2, detail: { specversion: "1.0", id: "ce-1", source: "urn:orders", type: "order.created", count: 2, data: { a: 1 } } })),
    options: { expect: "eventbridge" },
    attributes: { specversion: "1.0", id: "ce-1", source: "urn:orders", type: "order.created", count: 2 },
    data: { json: { a: 1 } },
  },
  {
    name: "a CloudEvent as the SNS message",
    msg: msg(JSON.stringify({ ...SNS_NOTIFICATION, Message: '{"specversion":"1.0","id":"s1","source":"urn:s","type":"t","data":"x"}' })),
    attributes: { specversion: "1.0", id: "s1", source: "urn:s", type: "t" },
    data: { json: "x" },
  },
  {
    name: "a CloudEvent as ce- SNS message attributes",
    msg: msg(
      JSON.stringify({
        ...SNS_NOTIFICATION,
        Message: "payload",
        MessageAttributes: { "ce-specversion": { Type: "String", Value: "1.0" }, "ce-id": { Type: "String", Value: "b1" }, "ce-source": { Type: "String", Value: "urn:b" }, "ce-type": { Type: "String", Value: "t" }, "content-type": { Type: "String", Value: "text/plain" } },
      }),
    ),
    attributes: { specversion: "1.0", id: "b1", source: "urn:b", type: "t", datacontenttype: "text/plain" },
    data: "payload",
  },
  {
    name: "binary mode: ce- message attributes (any case), content-type, a Number extension comes back an Integer",
    msg: msg("héllo", {}, { "ce-specversion": str("1.0"), "CE-ID": str("b2"), "ce-source": str("urn:b"), "ce-type": str("t.y"), "ce-count": num("42"), "ce-note": str("100% ✓"), "content-type": str("text/plain; charset=utf-8"), other: str("dropped") }),
    attributes: { specversion: "1.0", id: "b2", source: "urn:b", type: "t.y", count: 42, note: "100% ✓", datacontenttype: "text/plain; charset=utf-8" },
    data: "héllo",
  },
  {
    name: "binary mode: ce-datacontenttype wins over content-type",
    msg: msg("{}", {}, { "ce-specversion": str("1.0"), "ce-id": str("b3"), "ce-source": str("urn:b"), "ce-type": str("t"), "ce-datacontenttype": str("application/json"), "content-type": str("text/plain") }),
    attributes: { specversion: "1.0", id: "b3", source: "urn:b", type: "t", datacontenttype: "application/json" },
    data: "{}",
  },
  {
    name: "structured body recognised by its specversion member",
    msg: msg('{"specversion":"1.0","id":"s2","source":"urn:s","type":"t","flag":true,"data_base64":"AAEC"}'),
    attributes: { specversion: "1.0", id: "s2", source: "urn:s", type: "t", flag: true },
    data: "\u0000\u0001\u0002",
  },
  {
    name: "structured body named by the content-type attribute",
    msg: msg('{"specversion":"1.0","id":"s3","source":"urn:s","type":"t"}', {}, { "content-type": str("application/cloudevents+json; charset=utf-8") }),
    attributes: { specversion: "1.0", id: "s3", source: "urn:s", type: "t" },
    data: null,
  },
  {
    name: "ce- attributes without ce-id are an invalid event naming the attribute",
    msg: msg("x", {}, { "ce-specversion": str("1.0"), "ce-source": str("urn:b"), "ce-type": str("t") }),
    invalid: /CEB_EVENT_INVALID.*id/,
  },
  {
    name: "ce- attributes naming one attribute twice (names are case-sensitive in SQS) are an invalid event",
    msg: msg("x", {}, { "ce-specversion": str("1.0"), "ce-id": str("1"), "CE-ID": str("2"), "ce-source": str("urn:b"), "ce-type": str("t") }),
    invalid: /CEB_EVENT_INVALID.*"id" appears more than once/,
  },
  {
    name: "a ce- attribute whose name is no attribute name is an invalid event",
    msg: msg("x", {}, { "ce-specversion": str("1.0"), "ce-id": str("1"), "ce-source": str("urn:b"), "ce-type": str("t"), "ce-tenant_id": str("a") }),
    invalid: /CEB_EVENT_INVALID.*tenant_id/,
  },
  {
    name: "a structured body that is not a valid event",
    msg: msg('{"specversion":"1.0","id":"","source":"urn:s","type":"t"}'),
    invalid: /CEB_EVENT_INVALID.*id/,
  },
  {
    name: "a content-type attribute promising a structured event over a body that is not JSON",
    msg: msg("not json", {}, { "content-type": str("application/cloudevents+json") }),
    invalid: /CEB_FORMAT/,
  },
  {
    name: "JSON nested deeper than the limit",
    msg: msg(`{"a":${"[".repeat(70)}${"]".repeat(70)}}`),
    invalid: /CEB_TOO_LARGE/,
  },
  {
    name: "aws_eventbridge refuses a plain message",
    msg: msg("hello"),
    options: { expect: "eventbridge" },
    invalid: /CEB_FORMAT.*not an EventBridge event/,
  },
  {
    name: "aws_eventbridge refuses an SNS notification that carries no EventBridge event",
    msg: msg(JSON.stringify(SNS_NOTIFICATION)),
    options: { expect: "eventbridge" },
    invalid: /CEB_FORMAT.*SNS notification whose message is not an EventBridge event/,
  },
  {
    name: "aws_eventbridge still takes a CloudEvent body",
    msg: msg('{"specversion":"1.0","id":"s4","source":"urn:s","type":"t"}'),
    options: { expect: "eventbridge" },
    attributes: { specversion: "1.0", id: "s4", source: "urn:s", type: "t" },
    data: null,
  },
];

function textOf(ev: CloudEvent): string | undefined {
  return dataBytes(ev)?.toString("utf8");
}

describe("aws sqs mapping - received messages to CloudEvents", () => {
  for (const c of cases) {
    it(`aws sqs mapping - ${c.name}`, () => {
      const d = decodeSqsMessage(c.msg, { ...opts, ...c.options });
      if (c.invalid) {
        assert.ok(d.invalid, "expected an invalid message");
        assert.match(`${d.invalid.code} ${d.invalid.message}`, c.invalid);
        assert.equal(d.event.attributes["type"], "dev.cebridge.invalid");
        assert.equal(d.event.attributes["source"], QUEUE_ARN);
        assert.equal(d.event.attributes["id"], c.msg.messageId);
        const value = (d.event.data as { value: { raw_base64: string; metadata: Record<string, string> } }).value;
        assert.equal(Buffer.from(value.raw_base64, "base64").toString("utf8"), c.msg.body);
        assert.equal(value.metadata["message_id"], c.msg.messageId);
        return;
      }
      assert.equal(d.invalid, undefined, d.invalid?.message);
      assert.deepEqual(d.event.attributes, c.attributes);
      assert.deepEqual(d.trace, c.trace);
      if (c.data === null) assert.equal(d.event.data, undefined);
      else if (typeof c.data === "object") {
        assert.equal(d.event.data?.kind, "json");
        assert.deepEqual((d.event.data as { value: unknown }).value, c.data!.json);
      } else assert.equal(textOf(d.event), c.data);
    });
  }

  it("aws sqs mapping - queue ARN from the queue URL, with the partition of the region", () => {
    assert.equal(queueArnFromUrl("https://sqs.eu-west-1.amazonaws.com/123456789012/orders.fifo", "eu-west-1"), "arn:aws:sqs:eu-west-1:123456789012:orders.fifo");
    assert.equal(queueArnFromUrl("http://127.0.0.1:4566/000000000000/q1/", "us-east-1"), "arn:aws:sqs:us-east-1:000000000000:q1");
    assert.equal(queueArnFromUrl("https://sqs.cn-north-1.amazonaws.com.cn/1/q", "cn-north-1"), "arn:aws-cn:sqs:cn-north-1:1:q");
    assert.equal(queueArnFromUrl("https://sqs.us-gov-west-1.amazonaws.com/1/q", "us-gov-west-1"), "arn:aws-us-gov:sqs:us-gov-west-1:1:q");
  });
});

describe("aws sqs mapping - CloudEvents to messages", () => {
  const [rich, bin, big, text, nodata] = richEvents("sq") as [CloudEvent, CloudEvent, CloudEvent, CloudEvent, CloudEvent];

  it("aws sqs mapping - binary mode: data as the body, attributes as ce- message attributes, datacontenttype as content-type, Integer typed Number", () => {
    const out = encodeSqsMessage(text, { mode: "binary", fifo: false });
    assert.equal(out.MessageBody, "line one\nline two: ünïcödé ✓\n");
    assert.deepEqual(out.MessageAttributes, {
      "ce-specversion": { DataType: "String", StringValue: "1.0" },
      "ce-id": { DataType: "String", StringValue: "sq-text" },
      "ce-source": { DataType: "String", StringValue: "urn:cebridge:test" },
      "ce-type": { DataType: "String", StringValue: "dev.cebridge.test.text" },
      "content-type": { DataType: "String", StringValue: "text/plain; charset=utf-8" },
    });
    const withInt: CloudEvent = { attributes: { ...text.attributes, count: 7 }, data: text.data };
    assert.deepEqual(encodeSqsMessage(withInt, { mode: "binary", fifo: false }).MessageAttributes["ce-count"], { DataType: "Number", StringValue: "7" });
  });

  it("aws sqs mapping - binary mode falls back to structured (never cuts) over 10 attributes, for bytes that are not SQS text, for no data", () => {
    const eleven: CloudEvent = { attributes: { ...text.attributes, a1: "1", a2: "2", a3: "3", a4: "4", a5: "5", a6: "6" }, data: text.data };
    const ten: CloudEvent = { attributes: { ...text.attributes, a1: "1", a2: "2", a3: "3", a4: "4", a5: "5" }, data: text.data };
    assert.equal(Object.keys(encodeSqsMessage(ten, { mode: "binary", fifo: false }).MessageAttributes).length, 10);
    for (const [what, ev] of [["11 attributes", eleven], ["every byte value", bin], ["no data", nodata], ["the rich event (11 attributes)", rich]] as const) {
      const out = encodeSqsMessage(ev, { mode: "binary", fifo: false });
      assert.deepEqual(out.MessageAttributes, { "content-type": { DataType: "String", StringValue: "application/cloudevents+json; charset=utf-8" } }, what);
      assert.equal(out.MessageBody, serializeStructured(ev), what);
      assert.ok(isSqsText(out.MessageBody), what);
    }
  });

  it("aws sqs mapping - every event survives encode → SQS → decode, in both modes", () => {
    for (const mode of ["binary", "structured"] as const) {
      for (const ev of [...richEvents("rt"), ...sampleEvents(2, "s")]) {
        const out = encodeSqsMessage(ev, { mode, fifo: false });
        const attrs: Record<string, SqsAttribute> = out.MessageAttributes;
        const d = decodeSqsMessage({ messageId: "m", body: out.MessageBody, attributes: {}, messageAttributes: attrs }, opts);
        assert.equal(d.invalid, undefined, d.invalid?.message);
        assertSameEvent(d.event, ev, { what: `${mode} ${String(ev.attributes["id"])}` });
      }
    }
    assert.ok(sqsMessageSize(encodeSqsMessage(big, { mode: "binary", fifo: false })) > 87_000, "64 KiB of random bytes travel base64-encoded");
  });

  it("aws sqs mapping - FIFO: MessageGroupId from partitionkey (its digest when SQS cannot take it) or the default; deduplication id from source + id", () => {
    const ev = (extra: Record<string, AttributeValue>): CloudEvent => ({ attributes: { specversion: "1.0", id: "o-1", source: "urn:orders", type: "t", ...extra }, data: { kind: "json", value: 1 } });
    const dedup = createHash("sha256").update("urn:orders\u0000o-1").digest("hex");
    const keyed = encodeSqsMessage(ev({ partitionkey: "customer-7" }), { mode: "binary", fifo: true, messageGroupId: "dflt" });
    assert.equal(keyed.MessageGroupId, "customer-7");
    assert.equal(keyed.MessageDeduplicationId, dedup);
    assert.equal(deduplicationId(ev({})), dedup);
    assert.equal(encodeSqsMessage(ev({}), { mode: "binary", fifo: true, messageGroupId: "dflt" }).MessageGroupId, "dflt");
    const odd = encodeSqsMessage(ev({ partitionkey: "kunde mit leerzeichen" }), { mode: "binary", fifo: true });
    assert.equal(odd.MessageGroupId, createHash("sha256").update("kunde mit leerzeichen").digest("hex"));
    assert.throws(() => encodeSqsMessage(ev({}), { mode: "binary", fifo: true }), (e: unknown) => e instanceof SinkError && !e.retryable && /MessageGroupId/.test(e.message));
    assert.equal(encodeSqsMessage(ev({ partitionkey: "k" }), { mode: "binary", fifo: false }).MessageGroupId, undefined, "standard queues get no group");
  });

  it("aws sqs mapping - the write's hop context becomes AWSTraceHeader, the extension stays in the event; message size counts body and attribute names, types and values", () => {
    const hop = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "x=1" };
    for (const mode of ["structured", "binary"] as const) {
      const out = encodeSqsMessage(rich, { mode, fifo: false }, hop);
      assert.deepEqual(out.MessageSystemAttributes, { AWSTraceHeader: { DataType: "String", StringValue: "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1" } }, mode);
      const decoded = decodeSqsMessage({ messageId: "m", body: out.MessageBody, attributes: { AWSTraceHeader: out.MessageSystemAttributes!.AWSTraceHeader.StringValue }, messageAttributes: out.MessageAttributes }, opts);
      assert.equal(decoded.event.attributes["traceparent"], rich.attributes["traceparent"], `${mode}: the event's own extension, unchanged`);
      assert.deepEqual(decoded.trace, { traceparent: hop.traceparent }, `${mode}: the hop, without tracestate (X-Ray has none)`);
    }
    assert.equal(encodeSqsMessage(rich, { mode: "structured", fifo: false }).MessageSystemAttributes, undefined, "no hop context, no header: the extension is not copied into it");
    assert.equal(sqsMessageSize(encodeSqsMessage(rich, { mode: "structured", fifo: false }, hop)), sqsMessageSize(encodeSqsMessage(rich, { mode: "structured", fifo: false })), "AWSTraceHeader does not count toward the size");
    assert.equal(sqsMessageSize({ MessageBody: "ab", MessageAttributes: { n: { DataType: "String", StringValue: "é" } } }), 2 + 1 + 6 + 2);
  });

  it("aws sqs mapping - SQS text rules", () => {
    assert.ok(isSqsText("tab\tnewline\n😀 \uE000"));
    for (const bad of ["\u0000", "\u001f", "\uFFFE", "\uD800", "a\uDC00"]) assert.equal(isSqsText(bad), false, JSON.stringify(bad));
  });
});
