/**
 * Second opinion from the official JavaScript SDK (cloudevents v10): what we write it must read with
 * equal attributes, and what it writes we must read. Known SDK behaviours are compared around: it does
 * not percent-encode headers (so SDK → us uses Latin-1-safe values), it cuts `time` to milliseconds
 * and invents `time` when absent, and it sends `Content-Type: application/json` when an event has none.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { CloudEvent as SdkEvent, HTTP } from "cloudevents";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/event.js";
import { makeEvent } from "../../../src/cloudevents/event.js";
import { binaryBody, eventFromBinary } from "../../../src/cloudevents/binary.js";
import { decodeCeHeaders, encodeCeHeaders } from "../../../src/cloudevents/headers.js";
import { parseStructured, serializeStructured } from "../../../src/cloudevents/json-format.js";

const BASE = { specversion: "1.0", id: "id-1", source: "https://example.com/src", type: "com.example.t" };

const ours: CloudEvent[] = [
  makeEvent(BASE),
  makeEvent({ ...BASE, subject: "Euro € 😀", time: "2020-02-29T10:11:12.123456+02:00", count: 42, flag: true, dataschema: "https://x/s" }, { kind: "json", value: { a: [1, "b"] } }),
  makeEvent({ ...BASE, datacontenttype: "text/plain" }, { kind: "text", text: "hello" }),
  makeEvent({ ...BASE, datacontenttype: "application/octet-stream" }, { kind: "bytes", bytes: new Uint8Array([0, 1, 255]) }),
  makeEvent(BASE, { kind: "json", value: "I'm just a string" }),
];

/** The SDK event's attributes (every own property except data members; undefined dropped). */
function sdkAttributes(ev: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ev)) {
    if (k === "data" || k === "data_base64" || v === undefined) continue;
    out[k] = v;
  }
  return out;
}

/** Our attributes as the SDK would hold them: `time` normalised to ms in UTC, absent `time` ignored. */
function assertSameAttributes(sdk: Record<string, unknown>, attrs: Record<string, AttributeValue>, stringly = false): void {
  const expected: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) expected[k] = k === "time" ? new Date(String(v)).toISOString() : stringly ? String(v) : v;
  const actual = { ...sdk };
  if (attrs["time"] === undefined) delete actual["time"];
  else actual["time"] = new Date(String(actual["time"])).toISOString();
  assert.deepEqual(actual, expected);
}

test("sdk - the SDK reads our structured events with equal attributes and data", () => {
  for (const ev of ours) {
    const body = serializeStructured(ev);
    for (const sdk of [new SdkEvent(JSON.parse(body) as object), HTTP.toEvent({ headers: { "content-type": "application/cloudevents+json" }, body }) as SdkEvent]) {
      assertSameAttributes(sdkAttributes(sdk), ev.attributes as Record<string, AttributeValue>);
      const d = ev.data;
      if (d?.kind === "json") assert.deepEqual(sdk.data, d.value);
      if (d?.kind === "text") assert.equal(sdk.data, d.text);
      if (d?.kind === "bytes") assert.equal(sdk.data_base64, Buffer.from(d.bytes).toString("base64"));
    }
  }
});

test("sdk - the SDK reads our binary events (values needing no percent-encoding)", () => {
  const ev = makeEvent({ ...BASE, datacontenttype: "application/json", subject: "a/b", count: 7 }, { kind: "json", value: { k: "v" } });
  const { body, contentType } = binaryBody(ev);
  const headers: Record<string, string> = Object.fromEntries(encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: false }));
  headers["content-type"] = contentType!;
  const sdk = HTTP.toEvent({ headers, body: Buffer.from(body!).toString() }) as SdkEvent;
  assertSameAttributes(sdkAttributes(sdk), ev.attributes as Record<string, AttributeValue>, true);
  assert.deepEqual(sdk.data, { k: "v" });
});

const sdkEvents = (): SdkEvent<unknown>[] => [
  new SdkEvent({ ...BASE, subject: "café 100%", ext1: "Latin-1 ÿ", data: { a: 1 } }),
  new SdkEvent({ ...BASE, time: "2021-01-01T00:00:00.000Z", datacontenttype: "text/plain", data: "plain text", count: 5 }),
  new SdkEvent({ ...BASE, datacontenttype: "application/octet-stream", data: Buffer.from([9, 8, 255]) }),
];

test("sdk - we read what the SDK writes in structured mode", () => {
  for (const sdk of sdkEvents()) {
    const msg = HTTP.structured(sdk);
    const ev = parseStructured(String(msg.body));
    assert.deepEqual(ev.attributes, sdkAttributes(sdk));
    const d = ev.data;
    if (d?.kind === "bytes") assert.deepEqual([...d.bytes], [...(sdk.data as Uint8Array)]);
    else assert.deepEqual(d?.kind === "json" ? d.value : d?.kind === "text" ? d.text : undefined, sdk.data);
  }
});

test("sdk - we read what the SDK writes in binary mode", () => {
  for (const sdk of sdkEvents()) {
    const msg = HTTP.binary(sdk);
    // The SDK puts Integer extensions into headers as numbers; a real transport would stringify them.
    const entries: [string, string][] = Object.entries(msg.headers).map(([k, v]) => [k, String(v)]);
    const contentType = msg.headers["content-type"] as string | undefined;
    const body = typeof msg.body === "string" ? Buffer.from(msg.body) : (msg.body as Uint8Array);
    const ev = eventFromBinary(decodeCeHeaders(entries, "ce-"), new Uint8Array(body), contentType);
    const expected: Record<string, string> = {};
    for (const [k, v] of Object.entries(sdkAttributes(sdk))) expected[k] = String(v);
    expected["datacontenttype"] = contentType!; // the SDK sends application/json when none was set
    assert.deepEqual(ev.attributes, expected);
    assert.equal(ev.data?.kind, "bytes");
    assert.deepEqual(ev.data?.kind === "bytes" ? Buffer.from(ev.data.bytes) : undefined, Buffer.from(body));
  }
});
