/**
 * Fixture tables for the pure Event Grid mappings: real system events (Blob Storage BlobCreated in
 * both schemas, a Resource Manager ResourceWriteSuccess, the subscription validation event) from
 * test/fixtures/eventgrid/, push request decoding, the sink's CloudEvent → Event Grid mapping and the
 * namespace receive envelope.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { cloudEventToEventGrid, eventGridToCloudEvent } from "../../../connectors/azure-eventgrid/mapping.js";
import { batchBody, decodeReceive, decodeReceiveParsed } from "../../../connectors/azure-eventgrid/namespace-mapping.js";
import { decodePush, type DistinctHeaders } from "../../../connectors/azure-eventgrid/webhook-decode.js";
import { serializeStructured, toJsonObject, type AttributeValue, type CloudEvent } from "../../../src/cloudevents/index.js";
import { REPO_ROOT } from "../../support/daemon.js";

const fixture = (name: string): unknown => JSON.parse(readFileSync(join(REPO_ROOT, "test", "fixtures", "eventgrid", name), "utf8"));
const fixtureText = (name: string): Buffer => readFileSync(join(REPO_ROOT, "test", "fixtures", "eventgrid", name));
const SUB = "5f0f8a3c-1b2d-4e6f-8a9b-0c1d2e3f4a5b";
const STORAGE = `/subscriptions/${SUB}/resourceGroups/Storage/providers/Microsoft.Storage/storageAccounts/my-storage-account`;
const h = (o: Record<string, string>): DistinctHeaders => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, [v]]));

function dataOf(ev: CloudEvent): unknown {
  const o = toJsonObject(ev);
  return Object.hasOwn(o, "data") ? o["data"] : o["data_base64"];
}

describe("azure-eventgrid mapping - Event Grid schema → CloudEvent", () => {
  const blobData = (fixture("blob-created.eventgrid.json") as { data: unknown }[])[0]!.data;
  const cases: { name: string; input: unknown; attributes?: Record<string, AttributeValue>; data?: unknown; error?: RegExp }[] = [
    {
      name: "Blob Storage BlobCreated (Event Grid schema): topic → source, eventType → type, 7-digit eventTime kept, empty dataVersion kept",
      input: (fixture("blob-created.eventgrid.json") as unknown[])[0],
      attributes: {
        specversion: "1.0",
        id: "831e1650-001e-001b-66ab-eeb76e069631",
        source: STORAGE,
        type: "Microsoft.Storage.BlobCreated",
        subject: "/blobServices/default/containers/test-container/blobs/new-file.txt",
        time: "2017-06-26T18:41:00.9584103Z",
        datacontenttype: "application/json",
        dataversion: "",
        metadataversion: "1",
      },
      data: blobData,
    },
    {
      name: "Resource Manager ResourceWriteSuccess: the resource group topic is the source, the resource id the subject, dataVersion 2",
      input: (fixture("resource-write-success.eventgrid.json") as unknown[])[0],
      attributes: {
        specversion: "1.0",
        id: "4db48cba-50a2-455a-93b4-de41a3b5b7f6",
        source: `/subscriptions/${SUB}/resourceGroups/rg-orders`,
        type: "Microsoft.Resources.ResourceWriteSuccess",
        subject: `/subscriptions/${SUB}/resourcegroups/rg-orders/providers/Microsoft.Storage/storageAccounts/ordersstore`,
        time: "2018-07-19T18:38:04.6117357Z",
        datacontenttype: "application/json",
        dataversion: "2",
        metadataversion: "1",
      },
      data: (fixture("resource-write-success.eventgrid.json") as { data: unknown }[])[0]!.data,
    },
    {
      name: "custom event: empty subject is left out, time without offset is UTC, no data member → no data",
      input: { id: "c1", topic: "/subscriptions/x/resourceGroups/r/providers/Microsoft.EventGrid/topics/orders", subject: "", eventType: "com.example.ping", eventTime: "2024-05-06T07:08:09.5" },
      attributes: { specversion: "1.0", id: "c1", source: "/subscriptions/x/resourceGroups/r/providers/Microsoft.EventGrid/topics/orders", type: "com.example.ping", time: "2024-05-06T07:08:09.5Z" },
    },
    {
      name: "data that is a JSON string, number or null stays that JSON value",
      input: { id: "c2", topic: "/t", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z", data: null, dataVersion: "1.0" },
      attributes: { specversion: "1.0", id: "c2", source: "/t", type: "t", subject: "s", time: "2024-01-01T00:00:00Z", datacontenttype: "application/json", dataversion: "1.0" },
      data: null,
    },
    { name: "missing topic names the member", input: { id: "x", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z" }, error: /member "topic" is missing/ },
    { name: "eventType of the wrong type names the member", input: { id: "x", topic: "/t", subject: "s", eventType: 7, eventTime: "2024-01-01T00:00:00Z" }, error: /member "eventType" must be a string/ },
    { name: "an empty id is refused naming the Event Grid member", input: { id: "", topic: "/t", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z" }, error: /member "id"/ },
    { name: "an eventTime that is no timestamp is refused naming the member", input: { id: "x", topic: "/t", subject: "s", eventType: "t", eventTime: "yesterday" }, error: /member "eventTime"/ },
    { name: "not an object", input: [1], error: /must be a JSON object/ },
  ];
  for (const c of cases) {
    it(`azure-eventgrid mapping - ${c.name}`, () => {
      if (c.error) {
        assert.throws(() => eventGridToCloudEvent(c.input), c.error);
        return;
      }
      const ev = eventGridToCloudEvent(c.input);
      assert.deepEqual(ev.attributes, c.attributes);
      if ("data" in c) assert.deepEqual(dataOf(ev), c.data);
      else assert.equal(ev.data, undefined);
    });
  }
});

describe("azure-eventgrid mapping - push requests", () => {
  it("azure-eventgrid mapping - Blob Storage BlobCreated in the CloudEvents schema (single, structured) is the CloudEvent as delivered", () => {
    const r = decodePush(h({ "content-type": "application/cloudevents+json; charset=utf-8", "aeg-delivery-count": "0" }), fixtureText("blob-created.cloudevents.json"), { maxDepth: 64 });
    assert.equal(r.kind, "events");
    if (r.kind !== "events") return;
    assert.equal(r.deliveryCount, 1);
    assert.deepEqual(r.events[0]!.attributes, {
      source: STORAGE,
      subject: "/blobServices/default/containers/test-container/blobs/new-file.txt",
      type: "Microsoft.Storage.BlobCreated",
      time: "2017-06-26T18:41:00.9584103Z",
      id: "831e1650-001e-001b-66ab-eeb76e069631",
      specversion: "1.0",
    });
    assert.deepEqual(dataOf(r.events[0]!), (fixture("blob-created.cloudevents.json") as { data: unknown }).data);
  });

  it("azure-eventgrid mapping - the same BlobCreated in both schemas gives the same id, source, type, subject, time and data", () => {
    const ce = decodePush(h({ "content-type": "application/cloudevents-batch+json; charset=utf-8" }), Buffer.from(`[${fixtureText("blob-created.cloudevents.json").toString()}]`), { maxDepth: 64 });
    const eg = decodePush(h({ "content-type": "application/json; charset=utf-8", "aeg-event-type": "Notification", "aeg-delivery-count": "3" }), fixtureText("blob-created.eventgrid.json"), { maxDepth: 64 });
    assert.ok(ce.kind === "events" && eg.kind === "events");
    if (ce.kind !== "events" || eg.kind !== "events") return;
    assert.equal(eg.deliveryCount, 4);
    for (const k of ["id", "source", "type", "subject", "time", "specversion"]) assert.equal(eg.events[0]!.attributes[k], ce.events[0]!.attributes[k], k);
    assert.deepEqual(dataOf(eg.events[0]!), dataOf(ce.events[0]!));
  });

  it("azure-eventgrid mapping - the subscription validation event yields its code and URL, by header or by event type", () => {
    for (const headers of [{ "content-type": "application/json", "aeg-event-type": "SubscriptionValidation" }, { "content-type": "application/json" }] as Record<string, string>[]) {
      const r = decodePush(h(headers), fixtureText("subscription-validation.eventgrid.json"), { maxDepth: 64 });
      assert.deepEqual(r, {
        kind: "validation",
        code: "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
        url: "https://rp-eastus2.eventgrid.azure.net:553/eventsubscriptions/estest/validate?id=512d38b6-c7b8-40c8-89fe-f46f9e9622b6&t=2018-04-26T20:30:54.4538837Z&apiVersion=2018-05-01-preview&token=1A1A1A1A",
      });
    }
    assert.throws(() => decodePush(h({ "content-type": "application/json", "aeg-event-type": "SubscriptionValidation" }), Buffer.from('[{"data":{}}]'), { maxDepth: 64 }), /validationCode/);
  });

  it("azure-eventgrid mapping - SubscriptionDeletion, a single Event Grid object, binary mode, and refusals", () => {
    assert.deepEqual(decodePush(h({ "aeg-event-type": "SubscriptionDeletion" }), Buffer.from("[]"), { maxDepth: 64 }), { kind: "deletion" });
    const one = decodePush(h({ "content-type": "application/json" }), Buffer.from('{"id":"1","topic":"/t","subject":"s","eventType":"t","eventTime":"2024-01-01T00:00:00Z","data":{"k":1}}'), { maxDepth: 64 });
    assert.ok(one.kind === "events" && one.events.length === 1 && one.events[0]!.attributes["source"] === "/t");
    const bin = decodePush(h({ "content-type": "application/octet-stream", "ce-id": "b1", "ce-source": "urn:s", "ce-type": "t", "ce-specversion": "1.0", "ce-tenant": "acme" }), Buffer.from([0, 1, 255]), { maxDepth: 64 });
    assert.ok(bin.kind === "events");
    if (bin.kind === "events") {
      assert.equal(bin.events[0]!.attributes["tenant"], "acme");
      assert.deepEqual(dataOf(bin.events[0]!), "AAH/");
    }
    assert.throws(() => decodePush(h({ "content-type": "text/plain" }), Buffer.from("hi"), { maxDepth: 64 }), (e: Error & { code?: string }) => e.code === "CEB_UNSUPPORTED_MEDIA");
    assert.throws(() => decodePush(h({ "content-type": "application/json" }), Buffer.from('[{"id":"1","topic":"/t","subject":"s","eventType":"t","eventTime":"2024-01-01T00:00:00Z"},{"id":"2"}]'), { maxDepth: 64 }), /event\[1\]: member "topic" is missing/);
    assert.throws(() => decodePush(h({ "content-type": "application/json" }), Buffer.from("[" + "[".repeat(80) + "]".repeat(80) + "]"), { maxDepth: 64 }), (e: Error & { code?: string }) => e.code === "CEB_TOO_LARGE");
    assert.throws(() => decodePush(h({ "content-type": "application/json" }), Buffer.from([0x5b, 0xff, 0x5d]), { maxDepth: 64 }), /UTF-8/);
  });
});

describe("azure-eventgrid mapping - CloudEvent → Event Grid schema (sink)", () => {
  const now = () => "2025-01-02T03:04:05.000Z";
  const base = { specversion: "1.0", id: "o1", source: "urn:shop", type: "com.example.order" };
  const cases: { name: string; ev: CloudEvent; domainTopic?: string; out: Record<string, unknown> }[] = [
    {
      name: "JSON bytes become the JSON value; dataversion → dataVersion; source, datacontenttype and other extensions have no slot",
      ev: { attributes: { ...base, subject: "o/1", time: "2024-05-06T07:08:09.123456789Z", datacontenttype: "application/json", dataversion: "2.1", tenant: "acme" }, data: { kind: "bytes", bytes: Buffer.from('{"n": 1}') } },
      out: { id: "o1", subject: "o/1", eventType: "com.example.order", eventTime: "2024-05-06T07:08:09.123456789Z", data: { n: 1 }, dataVersion: "2.1" },
    },
    {
      name: "no subject → empty subject, no time → now, no data → no data member",
      ev: { attributes: base },
      out: { id: "o1", subject: "", eventType: "com.example.order", eventTime: "2025-01-02T03:04:05.000Z" },
    },
    {
      name: "text data is a JSON string; binary data is its base64 text",
      ev: { attributes: { ...base, datacontenttype: "text/plain" }, data: { kind: "bytes", bytes: Buffer.from("héllo") } },
      out: { id: "o1", subject: "", eventType: "com.example.order", eventTime: "2025-01-02T03:04:05.000Z", data: "héllo" },
    },
    {
      name: "binary data is base64 text",
      ev: { attributes: { ...base, datacontenttype: "application/octet-stream" }, data: { kind: "bytes", bytes: Buffer.from([0, 1, 2, 255]) } },
      out: { id: "o1", subject: "", eventType: "com.example.order", eventTime: "2025-01-02T03:04:05.000Z", data: "AAEC/w==" },
    },
    {
      name: "a domain topic is the topic member",
      ev: { attributes: base, data: { kind: "json", value: [1, 2] } },
      domainTopic: "tenant-a",
      out: { id: "o1", subject: "", eventType: "com.example.order", eventTime: "2025-01-02T03:04:05.000Z", data: [1, 2], topic: "tenant-a" },
    },
  ];
  for (const c of cases) {
    it(`azure-eventgrid mapping - ${c.name}`, () => {
      assert.deepEqual(cloudEventToEventGrid(c.ev, { now, ...(c.domainTopic !== undefined ? { domainTopic: c.domainTopic } : {}) }), c.out);
    });
  }

  it("azure-eventgrid mapping - CloudEvent → Event Grid → CloudEvent keeps id, type, subject, time, data and dataversion; source becomes the topic", () => {
    const ev: CloudEvent = { attributes: { ...base, subject: "o/1", time: "2024-05-06T07:08:09.5Z", datacontenttype: "application/json", dataversion: "3" }, data: { kind: "json", value: { a: [1, "é"] } } };
    const back = eventGridToCloudEvent({ ...cloudEventToEventGrid(ev, { now }), topic: "/subscriptions/s/resourceGroups/r/providers/Microsoft.EventGrid/topics/t", metadataVersion: "1" });
    assert.deepEqual(back.attributes, { ...ev.attributes, source: "/subscriptions/s/resourceGroups/r/providers/Microsoft.EventGrid/topics/t", metadataversion: "1" });
    assert.deepEqual(dataOf(back), { a: [1, "é"] });
  });
});

describe("azure-eventgrid mapping - namespace receive envelope", () => {
  const opts = { maxDepth: 64, invalidSource: "https://ns.example/topics/t/eventsubscriptions/s" };

  it("azure-eventgrid mapping - extensions with their JSON types, data_base64 bytes and a nanosecond time come through exactly", () => {
    const ev = { specversion: "1.0", id: "n1", source: "urn:s", type: "t", time: "2024-05-06T07:08:09.123456789+02:00", count: 42, flag: true, tenant: "acme", datacontenttype: "application/octet-stream", data_base64: "AAEC/w==" };
    const text = JSON.stringify({ value: [{ brokerProperties: { lockToken: "tok-1", deliveryCount: 2 }, event: ev }] });
    const [d] = decodeReceive(text, opts);
    assert.equal(d!.lockToken, "tok-1");
    assert.equal(d!.deliveryCount, 2);
    assert.equal(d!.decoded.invalid, undefined);
    const { data_base64, ...attrs } = ev;
    assert.deepEqual(d!.decoded.event.attributes, attrs);
    assert.deepEqual(dataOf(d!.decoded.event), data_base64);
    assert.equal(serializeStructured(d!.decoded.event), JSON.stringify(ev));
  });

  it("azure-eventgrid mapping - an invalid event becomes dev.cebridge.invalid with its raw JSON, keeping its lock token; a broken envelope throws", () => {
    const text = JSON.stringify({ value: [{ brokerProperties: { lockToken: "tok-2", deliveryCount: 1 }, event: { specversion: "1.0", id: "bad1", source: "urn:s", type: "t", "Bad-Name": 1 } }] });
    const [d] = decodeReceive(text, opts);
    assert.equal(d!.lockToken, "tok-2");
    assert.equal(d!.decoded.invalid?.code, "CEB_EVENT_INVALID");
    assert.equal(d!.decoded.event.attributes["type"], "dev.cebridge.invalid");
    assert.equal(d!.decoded.event.attributes["id"], "bad1");
    assert.equal(d!.decoded.event.attributes["source"], opts.invalidSource);
    const raw = (dataOf(d!.decoded.event) as { raw_base64: string }).raw_base64;
    assert.match(Buffer.from(raw, "base64").toString(), /"Bad-Name":1/);
    assert.throws(() => decodeReceive('{"value":[{"event":{}}]}', opts), /lockToken/);
    assert.throws(() => decodeReceive("{", opts), /not JSON/);
    assert.deepEqual(decodeReceive('{"value":[]}', opts), []);
  });

  it("azure-eventgrid mapping - a response the client already parsed decodes the same, and its text is still depth-checked", () => {
    const text = JSON.stringify({ value: [{ brokerProperties: { lockToken: "t", deliveryCount: 1 }, event: { specversion: "1.0", id: "p1", source: "urn:s", type: "t", ext: 1 } }] });
    assert.deepEqual(decodeReceiveParsed(JSON.parse(text), text, opts), decodeReceive(text, opts));
    const deep = JSON.stringify({ value: [{ brokerProperties: { lockToken: "t" }, event: { specversion: "1.0", id: "d", source: "s", type: "t", data: JSON.parse("[".repeat(70) + "]".repeat(70)) } }] });
    assert.throws(() => decodeReceiveParsed(JSON.parse(deep), deep, opts), (e: Error & { code?: string }) => e.code === "CEB_TOO_LARGE");
  });

  it("azure-eventgrid mapping - batch body joins event texts into a JSON array", () => {
    assert.equal(batchBody(['{"a":1}', '{"b":2}']), '[{"a":1},{"b":2}]');
    assert.equal(batchBody([]), "[]");
  });
});
