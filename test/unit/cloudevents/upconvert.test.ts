import { test } from "node:test";
import assert from "node:assert/strict";
import { EventValidationError, FormatError } from "../../../src/core/errors.js";
import { decodeCeHeaders, eventFromBinary } from "../../../src/cloudevents/index.js";
import { parseStructured } from "../../../src/cloudevents/json-format.js";
import { upconvertAttributes } from "../../../src/cloudevents/upconvert.js";
import type { AttributeValue } from "../../../src/cloudevents/event.js";

const V03 = { specversion: "0.3", id: "1", source: "/s", type: "t" };

test("upconvert - structured 0.3 becomes 1.0 with schemaurl renamed to dataschema", () => {
  const ev = parseStructured(JSON.stringify({ ...V03, schemaurl: "https://x/s.json", data: { a: 1 } }));
  assert.deepEqual(ev.attributes, { specversion: "1.0", id: "1", source: "/s", type: "t", dataschema: "https://x/s.json" });
  assert.deepEqual(ev.data, { kind: "json", value: { a: 1 }, text: '{"a":1}' });
});

test("upconvert - a relative schemaurl stays as the extension schemaurl; an empty one is dropped", () => {
  assert.equal(parseStructured(JSON.stringify({ ...V03, schemaurl: "s.json" })).attributes["schemaurl"], "s.json");
  assert.equal("schemaurl" in parseStructured(JSON.stringify({ ...V03, schemaurl: "" })).attributes, false);
});

test("upconvert - structured datacontentencoding base64 turns data into bytes", () => {
  const ev = parseStructured(JSON.stringify({ ...V03, datacontenttype: "application/octet-stream", datacontentencoding: "Base64", data: "AAH/" }));
  assert.equal(ev.attributes["datacontentencoding"], undefined);
  assert.deepEqual(ev.data?.kind === "bytes" ? [...ev.data.bytes] : [], [0, 1, 255]);
  assert.throws(() => parseStructured(JSON.stringify({ ...V03, datacontentencoding: "base64", data: { a: 1 } })), FormatError);
  assert.throws(() => parseStructured(JSON.stringify({ ...V03, datacontentencoding: "base64", data: "*" })), FormatError);
});

test("upconvert - 0.3 object, array and float extensions become JSON strings", () => {
  const ev = parseStructured(JSON.stringify({ ...V03, ext1: { a: [1] }, ext2: [1, 2], ext3: 1.5, ext4: 3, ext5: true }));
  assert.deepEqual(ev.attributes, { specversion: "1.0", id: "1", source: "/s", type: "t", ext1: '{"a":[1]}', ext2: "[1,2]", ext3: "1.5", ext4: 3, ext5: true });
});

test("upconvert - 1.0 events are not upconverted (floats stay invalid)", () => {
  assert.throws(() => parseStructured(JSON.stringify({ ...V03, specversion: "1.0", ext: 1.5 })), /ext/);
});

test("upconvert - unknown content encodings are refused; identity encodings are accepted", () => {
  const a: Record<string, AttributeValue> = { ...V03, datacontentencoding: "8bit" };
  assert.equal(upconvertAttributes(a), "identity");
  assert.equal(a["datacontentencoding"], undefined);
  assert.throws(() => upconvertAttributes({ ...V03, datacontentencoding: "quoted-printable" }), FormatError);
});

test("upconvert - a 0.3 map attribute becomes the same JSON text in binary mode (flattened headers) and structured mode", () => {
  const binary = eventFromBinary(
    decodeCeHeaders(
      [
        ["ce-specversion", "0.3"],
        ["ce-id", "1"],
        ["ce-source", "/s"],
        ["ce-type", "t"],
        ["ce-attrib-first", "one"],
        ["ce-attrib-second", "two%20words"],
      ],
      "ce-",
    ),
    new Uint8Array(),
    undefined,
  );
  const structured = parseStructured(JSON.stringify({ ...V03, attrib: { first: "one", second: "two words" } }));
  assert.equal(binary.attributes["attrib"], '{"first":"one","second":"two words"}');
  assert.equal(binary.attributes["attrib"], structured.attributes["attrib"]);
});

test("upconvert - a flattened map header in a 1.0 message, or a map clashing with a value, is refused naming the header", () => {
  const base: [string, string][] = [["ce-id", "1"], ["ce-source", "/s"], ["ce-type", "t"]];
  assert.throws(() => decodeCeHeaders([["ce-specversion", "1.0"], ...base, ["ce-attrib-k", "v"]], "ce-"), (e: EventValidationError) => e.attribute === "attrib-k");
  assert.throws(() => decodeCeHeaders([["ce-specversion", "0.3"], ...base, ["ce-attrib", "x"], ["ce-attrib-k", "v"]], "ce-"), /both a value and a map/);
});
