/**
 * Fixture tables for the pure EventBridge mapping: real AWS events (EC2 state change, S3 Object
 * Created through EventBridge, as AWS documents them) to the documented CloudEvents, a CloudEvent in
 * `detail` restored exactly, PutEvents entries built from CloudEvents, entry sizes, the hop's X-Ray
 * `TraceHeader` (the X-Ray conversion itself is tested with the shared trace module).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  encodePutEventsEntry,
  eventFromEnvelope,
  isEventBridgeEnvelope,
  putEventsEntrySize,
  type EventBridgeEnvelope,
} from "../../../connectors/aws/eventbridge-mapping.js";
import { SinkError } from "../../../src/core/errors.js";
import { parseStructured, serializeStructured, type AttributeValue, type CloudEvent } from "../../../src/cloudevents/index.js";
import { assertSameEvent, richEvents } from "../../support/events.js";

/** AWS documentation: "Amazon EC2 Instance State-change Notification". */
const EC2_STATE_CHANGE = {
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

/** AWS documentation: S3 "Object Created" delivered through EventBridge. */
const S3_OBJECT_CREATED = {
  version: "0",
  id: "17793124-05d4-b198-2fde-7ededc63b103",
  "detail-type": "Object Created",
  source: "aws.s3",
  account: "111122223333",
  time: "2021-11-12T00:00:00Z",
  region: "ca-central-1",
  resources: ["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
  detail: {
    version: "0",
    bucket: { name: "DOC-EXAMPLE-BUCKET1" },
    object: { key: "example-key", size: 5, etag: "b1946ac92492d2347c6235b4d2611184", "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mppz.", sequencer: "00617F08299329D189" },
    "request-id": "N4N7GDK58NMKJ12R",
    requester: "123456789012",
    "source-ip-address": "1.2.3.4",
    reason: "PutObject",
  },
};

/** A replayed custom event with no resources. */
const REPLAYED = {
  version: "0",
  id: "a1b2",
  "detail-type": "OrderPlaced",
  source: "com.example.orders",
  account: "123456789012",
  time: "2024-01-02T03:04:05Z",
  region: "eu-west-1",
  resources: [],
  detail: {},
  "replay-name": "replay-2024",
};

interface Case {
  name: string;
  envelope: Record<string, unknown>;
  attributes: Record<string, AttributeValue>;
  data: unknown;
}

const cases: Case[] = [
  {
    name: "EC2 instance state change",
    envelope: EC2_STATE_CHANGE,
    attributes: {
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
    },
    data: { "instance-id": "i-abcd1111", state: "pending" },
  },
  {
    name: "S3 Object Created through EventBridge",
    envelope: S3_OBJECT_CREATED,
    attributes: {
      specversion: "1.0",
      id: "17793124-05d4-b198-2fde-7ededc63b103",
      source: "aws.s3",
      type: "Object Created",
      datacontenttype: "application/json",
      time: "2021-11-12T00:00:00Z",
      subject: "arn:aws:s3:::DOC-EXAMPLE-BUCKET1",
      awsresources: '["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"]',
      awsaccount: "111122223333",
      awsregion: "ca-central-1",
    },
    data: S3_OBJECT_CREATED.detail,
  },
  {
    name: "a replayed event without resources: no subject, no awsresources, awsreplayname",
    envelope: REPLAYED,
    attributes: {
      specversion: "1.0",
      id: "a1b2",
      source: "com.example.orders",
      type: "OrderPlaced",
      datacontenttype: "application/json",
      time: "2024-01-02T03:04:05Z",
      awsaccount: "123456789012",
      awsregion: "eu-west-1",
      awsreplayname: "replay-2024",
    },
    data: {},
  },
];

describe("aws eventbridge mapping - envelopes to CloudEvents", () => {
  for (const c of cases) {
    it(`aws eventbridge mapping - ${c.name}`, () => {
      assert.ok(isEventBridgeEnvelope(c.envelope));
      const ev = eventFromEnvelope(c.envelope as unknown as EventBridgeEnvelope);
      assert.deepEqual(ev.attributes, c.attributes);
      assert.equal(ev.data?.kind, "json");
      assert.deepEqual((ev.data as { value: unknown }).value, c.data);
    });
  }

  it("aws eventbridge mapping - what is not an envelope", () => {
    assert.equal(isEventBridgeEnvelope({ ...EC2_STATE_CHANGE, detail: "text" }), false);
    assert.equal(isEventBridgeEnvelope({ ...EC2_STATE_CHANGE, detail: [1] }), false);
    const { version: _v, ...noVersion } = EC2_STATE_CHANGE;
    assert.equal(isEventBridgeEnvelope(noVersion), false);
    assert.equal(isEventBridgeEnvelope([EC2_STATE_CHANGE]), false);
    assert.equal(isEventBridgeEnvelope(null), false);
  });

  it("aws eventbridge mapping - an envelope whose source is not a URI-reference is refused, naming the attribute", () => {
    assert.throws(() => eventFromEnvelope({ ...EC2_STATE_CHANGE, source: "has space" } as unknown as EventBridgeEnvelope), /source/);
    assert.throws(() => eventFromEnvelope({ ...EC2_STATE_CHANGE, time: "yesterday" } as unknown as EventBridgeEnvelope), /time/);
  });
});

describe("aws eventbridge mapping - CloudEvents to PutEvents entries and back", () => {
  const ev: CloudEvent = richEvents("eb")[0]!;

  it("aws eventbridge mapping - detail: event puts the structured event in Detail, Source/DetailType/Time from its attributes, TraceHeader from the hop context", () => {
    const hop = { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", tracestate: "x=1" };
    const e = encodePutEventsEntry(ev, { eventBus: "orders", detail: "event" }, hop);
    assert.equal(e.Source, "https://example.com/orders?region=eu&x=1");
    assert.equal(e.DetailType, "com.example.order.created");
    assert.equal(e.EventBusName, "orders");
    assert.equal(e.Time?.toISOString(), "2024-05-06T05:08:09.123Z");
    assert.equal(e.TraceHeader, "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0");
    assert.equal(e.Resources, undefined);
    assert.equal(e.Detail, serializeStructured(ev), "the event's own traceparent extension travels in Detail, unchanged");
    assert.equal(putEventsEntrySize(e), putEventsEntrySize(encodePutEventsEntry(ev, { eventBus: "orders", detail: "event" })), "TraceHeader does not count toward the entry size");
  });

  it("aws eventbridge mapping - without a hop context there is no TraceHeader (the extension is not copied into it)", () => {
    assert.equal(encodePutEventsEntry(ev, { eventBus: "orders", detail: "event" }).TraceHeader, undefined);
    assert.equal(encodePutEventsEntry(ev, { eventBus: "orders", detail: "event" }, { traceparent: "00-nope" }).TraceHeader, undefined, "an invalid context writes none");
  });

  it("aws eventbridge mapping - a CloudEvent survives entry → envelope (EventBridge parses Detail) → CloudEvent", () => {
    for (const original of richEvents("rt")) {
      const e = encodePutEventsEntry(original, { eventBus: "default", detail: "event" });
      // What the bus writes to an SQS target: Detail parsed into an object, the bus's own id and time.
      const envelope = { version: "0", id: "bus-id", "detail-type": e.DetailType, source: e.Source, account: "1", time: "2024-01-01T00:00:00Z", region: "r", resources: [], detail: JSON.parse(e.Detail) };
      const back = eventFromEnvelope(envelope);
      assertSameEvent(back, original);
      assert.deepEqual(back.attributes, original.attributes, "attribute JSON types kept");
    }
  });

  it("aws eventbridge mapping - awsresources (the JSON list the source writes, or one ARN) become Resources", () => {
    const withList: CloudEvent = { attributes: { ...ev.attributes, awsresources: '["arn:aws:s3:::a","arn:aws:s3:::b"]' } };
    assert.deepEqual(encodePutEventsEntry(withList, { eventBus: "default", detail: "event" }).Resources, ["arn:aws:s3:::a", "arn:aws:s3:::b"]);
    const single: CloudEvent = { attributes: { ...ev.attributes, awsresources: "arn:aws:s3:::a" } };
    assert.deepEqual(encodePutEventsEntry(single, { eventBus: "default", detail: "event" }).Resources, ["arn:aws:s3:::a"]);
    const empty: CloudEvent = { attributes: { ...ev.attributes, awsresources: "[]" } };
    assert.equal(encodePutEventsEntry(empty, { eventBus: "default", detail: "event" }).Resources, undefined);
    const bad: CloudEvent = { attributes: { ...ev.attributes, awsresources: "[1,2]" } };
    assert.throws(() => encodePutEventsEntry(bad, { eventBus: "default", detail: "event" }), (e: unknown) => e instanceof SinkError && !e.retryable && /awsresources/.test(e.message));
  });

  it("aws eventbridge mapping - the source's EC2 event goes back out as the same Source, DetailType, Resources and detail", () => {
    const back = eventFromEnvelope(EC2_STATE_CHANGE);
    const e = encodePutEventsEntry(back, { eventBus: "default", detail: "data" });
    assert.deepEqual(
      { Source: e.Source, DetailType: e.DetailType, Resources: e.Resources, Detail: JSON.parse(e.Detail), Time: e.Time?.toISOString() },
      { Source: "aws.ec2", DetailType: "EC2 Instance State-change Notification", Resources: EC2_STATE_CHANGE.resources, Detail: EC2_STATE_CHANGE.detail, Time: "2015-11-11T21:29:54.000Z" },
    );
  });

  it("aws eventbridge mapping - detail: data takes JSON object data as it is and refuses anything else, saying why", () => {
    const bytes: CloudEvent = { attributes: { specversion: "1.0", id: "1", source: "s", type: "t", datacontenttype: "application/json" }, data: { kind: "bytes", bytes: Buffer.from('{ "a" : 1 }') } };
    assert.equal(encodePutEventsEntry(bytes, { eventBus: "b", detail: "data" }).Detail, '{ "a" : 1 }');
    const value: CloudEvent = { attributes: { specversion: "1.0", id: "1", source: "s", type: "t" }, data: { kind: "json", value: { b: [1, 2] } } };
    assert.equal(encodePutEventsEntry(value, { eventBus: "b", detail: "data" }).Detail, '{"b":[1,2]}');
    const refusals: [CloudEvent, RegExp][] = [
      [{ attributes: { specversion: "1.0", id: "1", source: "s", type: "t" } }, /absent/],
      [{ attributes: { specversion: "1.0", id: "1", source: "s", type: "t" }, data: { kind: "json", value: [1] } }, /JSON array/],
      [{ attributes: { specversion: "1.0", id: "1", source: "s", type: "t" }, data: { kind: "json", value: "x" } }, /JSON string/],
      [{ attributes: { specversion: "1.0", id: "1", source: "s", type: "t", datacontenttype: "text/plain" }, data: { kind: "text", text: "x" } }, /not JSON \(datacontenttype text\/plain\)/],
      [{ attributes: { specversion: "1.0", id: "1", source: "s", type: "t", datacontenttype: "application/json" }, data: { kind: "bytes", bytes: Buffer.from("{oops") } }, /not valid JSON/],
    ];
    for (const [e, why] of refusals) {
      assert.throws(() => encodePutEventsEntry(e, { eventBus: "b", detail: "data" }), (err: unknown) => err instanceof SinkError && !err.retryable && why.test(err.message));
    }
  });

  it("aws eventbridge mapping - a type longer than DetailType's 128 characters is a permanent failure naming the limit", () => {
    const long: CloudEvent = { attributes: { specversion: "1.0", id: "1", source: "s", type: "t".repeat(129) } };
    assert.throws(() => encodePutEventsEntry(long, { eventBus: "b", detail: "event" }), (e: unknown) => e instanceof SinkError && !e.retryable && /129 characters.*128/.test(e.message));
  });

  it("aws eventbridge mapping - entry size follows AWS's formula (Time 14 bytes, UTF-8 of Source, DetailType, Detail, Resources)", () => {
    assert.equal(putEventsEntrySize({ Source: "é", DetailType: "ab", Detail: "{}", EventBusName: "ignored-bus-name" }), 2 + 2 + 2);
    assert.equal(putEventsEntrySize({ Source: "s", DetailType: "d", Detail: "{}", EventBusName: "b", Time: new Date(0), Resources: ["arn:1", "ü"] }), 14 + 1 + 1 + 2 + 5 + 2);
  });

  it("aws eventbridge mapping - a structured event parsed from text and one restored from detail are the same event", () => {
    const text = '{"specversion":"1.0","id":"x","source":"urn:s","type":"t","n":1,"b":false,"data_base64":"AAEC"}';
    const fromText = parseStructured(text);
    const fromDetail = eventFromEnvelope({ version: "0", id: "bus", "detail-type": "t", source: "urn:s", detail: JSON.parse(text) });
    assertSameEvent(fromDetail, fromText);
  });
});
