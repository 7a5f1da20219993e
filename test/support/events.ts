/**
 * Sample CloudEvents for connector tests, and exact comparison helpers.
 */
import assert from "node:assert/strict";
import { attributeString, binaryBody, type CloudEvent, type AttributeValue } from "../../src/cloudevents/index.js";

/** `n` small events with ids `${tag}-${i}`, compact JSON data `{"i":i}`. */
export function sampleEvents(n: number, tag: string): CloudEvent[] {
  return Array.from({ length: n }, (_, i) => ({
    attributes: {
      specversion: "1.0",
      id: `${tag}-${i}`,
      source: "urn:cebridge:test",
      type: "dev.cebridge.test.conformance",
      datacontenttype: "application/json",
      subject: `item-${i}`,
    },
    data: { kind: "bytes" as const, bytes: Buffer.from(JSON.stringify({ i, tag }), "utf8") },
  }));
}

function bytesOfLength(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/**
 * Events that stress a binding: extensions of every JSON type, non-ASCII and percent-sensitive values,
 * every byte value as data, a 64 KiB event, a `time` with nanoseconds and an offset, no data at all.
 */
export function richEvents(tag: string): CloudEvent[] {
  const all256 = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  return [
    {
      attributes: {
        specversion: "1.0",
        id: `${tag}-ext`,
        source: "https://example.com/orders?region=eu&x=1",
        type: "com.example.order.created",
        datacontenttype: "application/json",
        dataschema: "https://example.com/schemas/order.json",
        subject: "Grüße, 世界 🚀",
        time: "2024-05-06T07:08:09.123456789+02:00",
        note: 'naïve café — 100% "quoted" a+b=c',
        count: 42,
        flag: true,
        traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
      },
      data: { kind: "bytes", bytes: Buffer.from('{"order":{"id":7,"items":["é","😀"]}}', "utf8") },
    },
    {
      attributes: {
        specversion: "1.0",
        id: `${tag}-bin`,
        source: "urn:cebridge:test",
        type: "dev.cebridge.test.binary",
        datacontenttype: "application/octet-stream",
      },
      data: { kind: "bytes", bytes: all256 },
    },
    {
      attributes: {
        specversion: "1.0",
        id: `${tag}-big`,
        source: "urn:cebridge:test",
        type: "dev.cebridge.test.big",
        datacontenttype: "application/octet-stream",
      },
      data: { kind: "bytes", bytes: bytesOfLength(64 * 1024, 7) },
    },
    {
      attributes: {
        specversion: "1.0",
        id: `${tag}-text`,
        source: "urn:cebridge:test",
        type: "dev.cebridge.test.text",
        datacontenttype: "text/plain; charset=utf-8",
      },
      data: { kind: "bytes", bytes: Buffer.from("line one\nline two: ünïcödé ✓\n", "utf8") },
    },
    {
      attributes: {
        specversion: "1.0",
        id: `${tag}-nodata`,
        source: "urn:cebridge:test",
        type: "dev.cebridge.test.nodata",
      },
    },
  ];
}

/** The event's data as bytes (as binary mode would send them), or undefined. */
export function dataBytes(ev: CloudEvent): Buffer | undefined {
  const b = binaryBody(ev).body;
  return b === undefined ? undefined : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Asserts that `actual` carries exactly the attributes and data bytes of `expected`.
 * `stringly`: compare attribute values as canonical strings (binary modes carry no JSON types).
 */
export function assertSameEvent(actual: CloudEvent, expected: CloudEvent, opts: { stringly?: boolean; what?: string } = {}): void {
  const what = opts.what ?? `event ${String(expected.attributes["id"])}`;
  const norm = (a: Readonly<Record<string, AttributeValue>>) =>
    Object.fromEntries(Object.entries(a).map(([k, v]) => [k, opts.stringly ? attributeString(v) : v]));
  assert.deepEqual(norm(actual.attributes), norm(expected.attributes), `${what}: attributes differ`);
  const a = dataBytes(actual);
  const e = dataBytes(expected);
  if (e === undefined) assert.equal(a === undefined || a.byteLength === 0, true, `${what}: expected no data`);
  else {
    assert.ok(a !== undefined, `${what}: data missing`);
    assert.equal(a.byteLength, e.byteLength, `${what}: data length differs`);
    assert.ok(a.equals(e), `${what}: data bytes differ`);
  }
}

/** Index events by id. */
export function byId(evs: readonly CloudEvent[]): Map<string, CloudEvent> {
  return new Map(evs.map((e) => [String(e.attributes["id"]), e]));
}

/**
 * The event without the JSON text its data was parsed from (`EventData.text`), for comparing a parsed
 * event with one built in code, which has none.
 */
export function withoutText(ev: CloudEvent): CloudEvent {
  const d = ev.data;
  if (d?.kind !== "json" || d.text === undefined) return ev;
  return { attributes: ev.attributes, data: { kind: "json", value: d.value } };
}
