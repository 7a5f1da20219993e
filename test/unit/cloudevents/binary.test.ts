import { test } from "node:test";
import assert from "node:assert/strict";
import { EventValidationError, FormatError } from "../../../src/core/errors.js";
import { binaryBody, eventFromBinary } from "../../../src/cloudevents/binary.js";
import { decodeCeHeaders } from "../../../src/cloudevents/headers.js";
import { makeEvent } from "../../../src/cloudevents/event.js";

const ATTRS = { specversion: "1.0", id: "1", source: "/s", type: "t" };
const bytes = (s: string) => new Uint8Array(Buffer.from(s));

test("binary - builds a validated event with bytes data and content type", () => {
  const body = bytes('{"a":1}');
  const ev = eventFromBinary({ ...ATTRS, ext: "42" }, body, "application/json");
  assert.deepEqual(ev.attributes, { ...ATTRS, ext: "42", datacontenttype: "application/json" });
  assert.equal(ev.data?.kind, "bytes");
  assert.equal(ev.data?.kind === "bytes" && ev.data.bytes, body); // not copied
});

test("binary - an empty body without content type means no data", () => {
  assert.equal(eventFromBinary(ATTRS, new Uint8Array(0), undefined).data, undefined);
  assert.equal(eventFromBinary(ATTRS, undefined, undefined).data, undefined);
  const withCt = eventFromBinary(ATTRS, new Uint8Array(0), "text/plain");
  assert.equal(withCt.data?.kind, "bytes");
});

test("binary - the content type wins over a datacontenttype attribute", () => {
  const ev = eventFromBinary({ ...ATTRS, datacontenttype: "text/plain" }, bytes("x"), "application/xml");
  assert.equal(ev.attributes["datacontenttype"], "application/xml");
  const nats = eventFromBinary({ ...ATTRS, datacontenttype: "text/plain" }, bytes("x"), undefined);
  assert.equal(nats.attributes["datacontenttype"], "text/plain");
});

test("binary - invalid attribute sets are rejected", () => {
  assert.throws(() => eventFromBinary({ ...ATTRS, id: "" }, undefined, undefined), EventValidationError);
  assert.throws(() => eventFromBinary({ specversion: "1.0", id: "1", type: "t" }, undefined, undefined), /"source"/);
  assert.throws(() => eventFromBinary(ATTRS, bytes("x"), "not a type"), /datacontenttype/);
});

test("binary - 0.3 headers are upconverted: specversion, schemaurl, base64 body", () => {
  const attrs = decodeCeHeaders(
    [["ce-specversion", "0.3"], ["ce-id", "1"], ["ce-source", "/s"], ["ce-type", "t"],
      ["ce-schemaurl", "https://x/schema"], ["ce-datacontentencoding", "base64"]],
    "ce-",
  );
  const ev = eventFromBinary(attrs, bytes(Buffer.from([0, 1, 255]).toString("base64") + "\n"), "application/octet-stream");
  assert.deepEqual(ev.attributes, { specversion: "1.0", id: "1", source: "/s", type: "t", dataschema: "https://x/schema", datacontenttype: "application/octet-stream" });
  assert.equal(ev.data?.kind, "bytes");
  assert.deepEqual(ev.data?.kind === "bytes" ? [...ev.data.bytes] : undefined, [0, 1, 255]);
});

test("binary - 0.3 relative schemaurl stays an extension; bad base64 body is a FormatError", () => {
  const ev = eventFromBinary({ ...ATTRS, specversion: "0.3", schemaurl: "schemas/a" }, undefined, undefined);
  assert.equal(ev.attributes["schemaurl"], "schemas/a");
  assert.equal(ev.attributes["dataschema"], undefined);
  assert.throws(() => eventFromBinary({ ...ATTRS, specversion: "0.3", datacontentencoding: "base64" }, bytes("not base64!"), "x/y"), FormatError);
  assert.throws(() => eventFromBinary({ ...ATTRS, specversion: "0.3", datacontentencoding: "quoted-printable" }, bytes("a"), "x/y"), FormatError);
});

test("binary - body of bytes data is as-is with datacontenttype", () => {
  const b = bytes("\u00ff");
  assert.deepEqual(binaryBody(makeEvent({ ...ATTRS, datacontenttype: "image/png" }, { kind: "bytes", bytes: b })), { body: b, contentType: "image/png" });
  assert.deepEqual(binaryBody(makeEvent(ATTRS, { kind: "bytes", bytes: b })), { body: b, contentType: undefined });
});

test("binary - body of JSON data is JSON text, implied application/json made explicit", () => {
  const r = binaryBody(makeEvent(ATTRS, { kind: "json", value: "I'm just a string" }));
  assert.equal(Buffer.from(r.body!).toString(), '"I\'m just a string"');
  assert.equal(r.contentType, "application/json");
  const r2 = binaryBody(makeEvent({ ...ATTRS, datacontenttype: "application/vnd.x+json" }, { kind: "json", value: { a: [1] } }));
  assert.equal(Buffer.from(r2.body!).toString(), '{"a":[1]}');
  assert.equal(r2.contentType, "application/vnd.x+json");
  assert.throws(() => binaryBody(makeEvent(ATTRS, { kind: "json", value: 1n })), FormatError);
});

test("binary - body of text data is UTF-8; no data is no body", () => {
  const r = binaryBody(makeEvent({ ...ATTRS, datacontenttype: "text/plain" }, { kind: "text", text: "é" }));
  assert.deepEqual([...r.body!], [0xc3, 0xa9]);
  assert.equal(r.contentType, "text/plain");
  assert.deepEqual(binaryBody(makeEvent(ATTRS)), { body: undefined, contentType: undefined });
});
