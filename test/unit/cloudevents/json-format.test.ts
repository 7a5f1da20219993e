import { test } from "node:test";
import assert from "node:assert/strict";
import { EventValidationError, FormatError, TooLargeError } from "../../../src/core/errors.js";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { makeEvent } from "../../../src/cloudevents/event.js";
import { withoutText } from "../../support/events.js";
import {
  parseBatch,
  parseStructured,
  parseStructuredObject,
  serializeBatch,
  serializeStructured,
  toJsonObject,
} from "../../../src/cloudevents/json-format.js";

const BASE = { specversion: "1.0", id: "1", source: "/s", type: "t" };
const json = (o: Record<string, unknown>) => JSON.stringify({ ...BASE, ...o });
const parse = (o: Record<string, unknown>) => parseStructured(json(o));

test("json - attributes keep their JSON types; null members are absent", () => {
  const ev = parse({ subject: null, time: "2020-01-01T00:00:00Z", count: 7, flag: false, ext: "x" });
  assert.deepEqual(ev.attributes, { ...BASE, time: "2020-01-01T00:00:00Z", count: 7, flag: false, ext: "x" });
  assert.equal(ev.data, undefined);
});

test("json - floats, objects and arrays in attribute members are rejected naming the member", () => {
  for (const [k, v] of [["ext", 1.5], ["ext", { a: 1 }], ["ext", [1]], ["ext", 2147483648]] as const) {
    assert.throws(() => parse({ [k]: v }), (e: unknown) => e instanceof EventValidationError && e.attribute === k, JSON.stringify(v));
  }
  assert.throws(() => parseStructured('{"specversion":"1.0","id":"1","source":"/s","type":"t","__proto__":"x"}'), EventValidationError);
});

test("json - data object, array, string, number, boolean and null are JSON values", () => {
  for (const value of [{ a: { b: [1, 2] } }, [1, "2"], "I'm just a string", 3.25, true, null]) {
    const ev = parse({ data: value });
    assert.deepEqual(ev.data, { kind: "json", value, text: JSON.stringify(value) }, JSON.stringify(value));
  }
  const s = parse({ data: '{"a":1}', datacontenttype: "application/json" });
  assert.deepEqual(s.data, { kind: "json", value: '{"a":1}', text: '"{\\"a\\":1}"' }); // a JSON string is never parsed again
});

test("json - data with a +json content type is a JSON value", () => {
  assert.deepEqual(parse({ datacontenttype: "application/vnd.x+json; charset=utf-8", data: [1] }).data, { kind: "json", value: [1], text: "[1]" });
});

test("json - data with a non-JSON content type must be a string", () => {
  assert.deepEqual(parse({ datacontenttype: "text/xml", data: "<a/>" }).data, { kind: "text", text: "<a/>" });
  assert.throws(() => parse({ datacontenttype: "text/xml", data: { a: 1 } }), FormatError);
  assert.throws(() => parse({ datacontenttype: "text/plain", data: 5 }), FormatError);
});

test("json - data_base64 becomes bytes; must be valid base64", () => {
  const ev = parse({ datacontenttype: "image/png", data_base64: "AAH/" });
  assert.equal(ev.data?.kind, "bytes");
  assert.deepEqual(ev.data?.kind === "bytes" ? [...ev.data.bytes] : [], [0, 1, 255]);
  assert.equal(parse({ data_base64: null }).data, undefined);
  assert.throws(() => parse({ data_base64: "!!!!" }), /data_base64/);
  assert.throws(() => parse({ data_base64: 5 }), FormatError);
});

test("json - data and data_base64 together are a FormatError", () => {
  assert.throws(() => parse({ data: "x", data_base64: "AAH/" }), (e: unknown) => e instanceof FormatError && /both/.test(e.message));
  assert.equal(parse({ data: null, data_base64: "AAH/" }).data?.kind, "bytes"); // null data = unset
});

test("json - absent data stays absent and round-trips", () => {
  const ev = parse({});
  assert.equal(ev.data, undefined);
  assert.deepEqual(JSON.parse(serializeStructured(ev)), BASE);
});

test("json - malformed JSON, non-object bodies and invalid UTF-8 are FormatErrors", () => {
  assert.throws(() => parseStructured("{"), (e: unknown) => e instanceof FormatError && /malformed JSON/.test(e.message));
  assert.throws(() => parseStructured("[]"), FormatError);
  assert.throws(() => parseStructured("null"), FormatError);
  const bad = new Uint8Array([...Buffer.from('{"specversion":"1.0","id":"'), 0xff, ...Buffer.from('","source":"/s","type":"t"}')]);
  assert.throws(() => parseStructured(bad), (e: unknown) => e instanceof FormatError && /UTF-8/.test(e.message));
});

test("json - parses UTF-8 bytes, with or without a BOM", () => {
  const ev = parseStructured(new Uint8Array(Buffer.from(json({ subject: "é😀" }))));
  assert.equal(ev.attributes["subject"], "é😀");
  const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(json({}))]);
  assert.equal(parseStructured(bom).attributes["id"], "1");
});

test("json - nesting deeper than maxDepth is TooLargeError before parsing; brackets in strings do not count", () => {
  const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
  assert.throws(() => parseStructured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":${deep(64)}}`), TooLargeError);
  assert.ok(parseStructured(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":${deep(63)}}`));
  assert.throws(() => parseStructured(`{"data":${deep(3)}`, { maxDepth: 3 }), TooLargeError);
  const ev = parseStructured(json({ data: "[[[[[[\\\"[[[[" }), { maxDepth: 1 });
  assert.equal(ev.data?.kind === "json" && ev.data.value, '[[[[[[\\"[[[[');
  assert.throws(() => parseStructured("[".repeat(100000)), TooLargeError);
});

test("json - serialize writes attributes as members and json/text data as data", () => {
  assert.deepEqual(JSON.parse(serializeStructured(makeEvent({ ...BASE, count: 1 }, { kind: "json", value: { a: 1 } }))), { ...BASE, count: 1, data: { a: 1 } });
  assert.deepEqual(toJsonObject(makeEvent({ ...BASE, datacontenttype: "text/plain" }, { kind: "text", text: "hi" })), { ...BASE, datacontenttype: "text/plain", data: "hi" });
});

test("json - bytes with a JSON content type become a data value when they parse, else data_base64", () => {
  const b = (s: string) => new Uint8Array(Buffer.from(s));
  assert.deepEqual(toJsonObject(makeEvent({ ...BASE, datacontenttype: "application/json" }, { kind: "bytes", bytes: b('{"a":[1]}') })).data, { a: [1] });
  assert.deepEqual(toJsonObject(makeEvent({ ...BASE, datacontenttype: "application/cloudevents+json" }, { kind: "bytes", bytes: b("1") })).data, 1);
  const notJson = toJsonObject(makeEvent({ ...BASE, datacontenttype: "application/json" }, { kind: "bytes", bytes: b("{nope") }));
  assert.equal(notJson["data_base64"], Buffer.from("{nope").toString("base64"));
  assert.equal("data" in notJson, false);
});

test("json - bytes with text content type or charset become a string when UTF-8, else data_base64", () => {
  const b = (s: string) => new Uint8Array(Buffer.from(s));
  assert.equal(toJsonObject(makeEvent({ ...BASE, datacontenttype: "text/plain" }, { kind: "bytes", bytes: b("é") })).data, "é");
  assert.equal(toJsonObject(makeEvent({ ...BASE, datacontenttype: "application/xml" }, { kind: "bytes", bytes: b("<a/>") })).data, "<a/>");
  assert.equal(toJsonObject(makeEvent({ ...BASE, datacontenttype: "application/x-foo; charset=utf-8" }, { kind: "bytes", bytes: b("x") })).data, "x");
  const bad = toJsonObject(makeEvent({ ...BASE, datacontenttype: "text/plain" }, { kind: "bytes", bytes: new Uint8Array([0xff]) }));
  assert.equal(bad["data_base64"], "/w==");
  const latin1 = toJsonObject(makeEvent({ ...BASE, datacontenttype: "text/plain; charset=iso-8859-1" }, { kind: "bytes", bytes: b("x") }));
  assert.equal(latin1["data_base64"], "eA==");
});

test("json - other bytes (or no content type) become data_base64 and round-trip", () => {
  const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
  for (const attrs of [{ ...BASE }, { ...BASE, datacontenttype: "application/octet-stream" }]) {
    const text = serializeStructured(makeEvent(attrs, { kind: "bytes", bytes }));
    assert.equal(JSON.parse(text).data_base64, "AAEC/f7/");
    const back = parseStructured(text);
    assert.deepEqual(back.attributes, attrs);
    assert.deepEqual(back.data?.kind === "bytes" ? [...back.data.bytes] : [], [...bytes]);
  }
});

test("json - structured round trip is stable", () => {
  const events: CloudEvent[] = [
    makeEvent({ ...BASE, time: "2020-01-01T00:00:00.123456Z", n: -5 }, { kind: "json", value: { deep: ["é", null] } }),
    makeEvent({ ...BASE, datacontenttype: "text/csv" }, { kind: "text", text: "a,b\n" }),
  ];
  for (const ev of events) {
    const back = parseStructured(serializeStructured(ev));
    assert.deepEqual(withoutText(back), ev);
    assert.equal(serializeStructured(back), serializeStructured(ev));
  }
});

test("batch - an empty array is valid; events round-trip", () => {
  assert.deepEqual(parseBatch("[]"), []);
  assert.equal(serializeBatch([]), "[]");
  const evs = [makeEvent(BASE, { kind: "json", value: 1 }), makeEvent({ ...BASE, id: "2" })];
  const back = parseBatch(serializeBatch(evs));
  assert.deepEqual(back.map(withoutText), evs);
  assert.equal(serializeBatch(back), serializeBatch(evs));
});

test("batch - a non-array body is a FormatError", () => {
  assert.throws(() => parseBatch(json({})), (e: unknown) => e instanceof FormatError && /array/.test(e.message));
});

test("batch - a bad entry's error names its index", () => {
  const body = `[${json({})},${json({ id: "" })}]`;
  assert.throws(() => parseBatch(body), (e: unknown) => e instanceof EventValidationError && e.message.startsWith('event[1]: attribute "id"') && e.attribute === "id");
  assert.throws(() => parseBatch(`[${json({})},5]`), (e: unknown) => e instanceof FormatError && e.message.startsWith("event[1]: "));
  assert.throws(() => parseBatch(`[${json({ data: 1, data_base64: "AA==" })}]`), /^FormatError: event\[0\]/);
});

test("batch - mixed specversions are rejected", () => {
  const v03 = JSON.stringify({ ...BASE, specversion: "0.3" });
  assert.throws(() => parseBatch(`[${json({})},${v03}]`), (e: unknown) => e instanceof EventValidationError && /event\[1\].*specversion/.test(e.message));
  assert.equal(parseBatch(`[${v03},${v03}]`).length, 2);
});

test("json - an already parsed object (an event nested in another document) reads as its text does", () => {
  const text = json({ count: 3, flag: true, datacontenttype: "text/plain", data: "hi" });
  assert.deepEqual(parseStructuredObject(JSON.parse(text)), parseStructured(text));
  const b64 = json({ data_base64: "AAEC" });
  assert.deepEqual(parseStructuredObject(JSON.parse(b64)), parseStructured(b64));
  for (const bad of [[BASE], "text", null, 3]) assert.throws(() => parseStructuredObject(bad), FormatError);
  assert.throws(() => parseStructuredObject({ ...BASE, id: "" }), (e: unknown) => e instanceof EventValidationError && e.attribute === "id");
});
