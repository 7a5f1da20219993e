import { test } from "node:test";
import assert from "node:assert/strict";
import { FormatError } from "../../../src/core/errors.js";
import { jsonDataText, scanData, scanObject } from "../../../src/cloudevents/json-data.js";
import { parseBatch, parseStructured, serializeBatch, serializeStructured } from "../../../src/cloudevents/json-format.js";
import { binaryBody } from "../../../src/cloudevents/binary.js";
import { encodeProtobuf, decodeProtobuf } from "../../../src/cloudevents/protobuf-format.js";

const HEAD = '"specversion":"1.0","id":"1","source":"/s","type":"t"';

/** The data text the scanners find in `doc`, or undefined; the fast one and the full one must agree. */
function dataOf(doc: string): string | undefined {
  const at = doc.indexOf("{");
  const full = scanObject(doc, at);
  assert.deepEqual(scanData(doc, at), full, doc);
  return full === undefined || full.dataStart < 0 ? undefined : doc.slice(full.dataStart, full.dataEnd);
}

test("json data - the scanner finds the top-level data value, not one nested in another member or in data", () => {
  const table: [doc: string, data: string | undefined][] = [
    [`{${HEAD},"data":{"a":1}}`, '{"a":1}'],
    [`{"data" : [1, {"data": 2}] ,${HEAD}}`, '[1, {"data": 2}]'],
    [`{${HEAD},"x":{"data":"no"},"data":"yes"}`, '"yes"'],
    [`{${HEAD},"x":"\\"data\\":{","data":7}`, "7"],
    [`{"subject":"data","x":"\\\\","data":[1],${HEAD}}`, "[1]"],
    [`{${HEAD},"data":"a\\\\"}`, '"a\\\\"'],
    [`{${HEAD},"data":"}{]["}`, '"}{]["'],
    [`{${HEAD},"data":-1.5e3}`, "-1.5e3"],
    [`{${HEAD},"data":true}`, "true"],
    [`{${HEAD},"data":null}`, "null"],
    [`{${HEAD},"data":1,"data":{"last":true}}`, '{"last":true}'], // JSON.parse keeps the last too
    [`{${HEAD},"d\\u0061ta":[2]}`, "[2]"], // the name as JSON.parse decodes it
    [`{${HEAD},"datum":[2]}`, undefined],
    [`{${HEAD}}`, undefined],
    [`{}`, undefined],
    [`{\n\t"data"\r\n:\n{ "é": "\\ud83d\\ude00" }\n}`, '{ "é": "\\ud83d\\ude00" }'],
  ];
  for (const [doc, want] of table) {
    JSON.parse(doc); // every row is valid JSON: the scanner's contract
    assert.equal(dataOf(doc), want, doc);
    if (want !== undefined) assert.deepEqual(JSON.parse(want), (JSON.parse(doc) as { data: unknown }).data, doc);
  }
});

test("json data - the scanner gives up (undefined) on text that is not an object", () => {
  for (const doc of ["[1]", '"x"', "{", '{"a"', '{"a":}', '{"a":1 "b":2}']) assert.equal(scanObject(doc, 0), undefined, doc);
  assert.deepEqual(scanObject('{"a":1} ', 0), { dataStart: -1, dataEnd: -1, end: 7 });
});

test("json data - a parsed event writes its data text out as it came, in structured, binary and Protobuf form", () => {
  const data = '{ "b" : [1, 2.50, "x"], "n": 12345678901234567890 }';
  const ev = parseStructured(`{${HEAD},"datacontenttype":"application/json","data":${data}}`);
  assert.equal(ev.data?.kind === "json" ? ev.data.text : undefined, data);
  // 2.50 and the 20-digit number survive as written (JSON.stringify would print 2.5 and 12345678901234567000).
  assert.equal(serializeStructured(ev), `{${HEAD},"datacontenttype":"application/json","data":${data}}`);
  assert.equal(Buffer.from(binaryBody(ev).body!).toString("utf8"), data);
  const pb = decodeProtobuf(encodeProtobuf(ev));
  assert.equal(pb.data?.kind === "bytes" ? Buffer.from(pb.data.bytes).toString("utf8") : undefined, data);
});

test("json data - data text that spans lines keeps the structured event on one line (serialized from its value); binary mode sends it as it came", () => {
  const data = '{\n  "b": [1, 2.50],\r\n  "s": "a\\nb"\n}';
  const ev = parseStructured(`{\n${HEAD},\n"data": ${data}\n}\n`);
  assert.equal(ev.data?.kind === "json" ? ev.data.text : undefined, data);
  assert.equal(serializeStructured(ev), `{${HEAD},"data":{"b":[1,2.5],"s":"a\\nb"}}`);
  assert.equal(Buffer.from(binaryBody(ev).body!).toString("utf8"), data);
});

test("json data - an event whose data was replaced is serialized from its value, never from the old text", () => {
  const ev = parseStructured(`{${HEAD},"data":{"a":1}}`);
  const changed = { attributes: { ...ev.attributes, ext: "x" }, data: { kind: "json" as const, value: { a: 2 } } };
  assert.equal(serializeStructured(changed), `{${HEAD},"ext":"x","data":{"a":2}}`);
  assert.equal(jsonDataText({ value: [1] }), "[1]");
  assert.throws(() => jsonDataText({ value: 1n }), (e: unknown) => e instanceof FormatError && /not serializable/.test(e.message));
  assert.throws(() => jsonDataText({ value: undefined }), FormatError);
});

test("json data - every entry of a batch keeps its own data text", () => {
  const body = ` [ {${HEAD},"data": [1] } ,\n{"id":"2","specversion":"1.0","source":"/s","type":"t"},{${HEAD},"data":"two"}] `;
  const evs = parseBatch(body);
  assert.deepEqual(evs.map((e) => (e.data?.kind === "json" ? e.data.text : "-")), ["[1]", "-", '"two"']);
  assert.equal(serializeBatch(evs), `[{${HEAD},"data":[1]},{"id":"2","specversion":"1.0","source":"/s","type":"t"},{${HEAD},"data":"two"}]`);
});

test("json data - binary JSON bytes are checked by parsing and then written as they came; bytes that are not JSON go as base64", () => {
  const attrs = { specversion: "1.0", id: "1", source: "/s", type: "t", datacontenttype: "application/json" };
  const bytes = (s: string) => ({ attributes: attrs, data: { kind: "bytes" as const, bytes: Buffer.from(s, "utf8") } });
  const head = `{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json"`;
  // The line break that ends many bodies is dropped; one inside the text means serializing the value.
  assert.equal(serializeStructured(bytes('{ "n": 1.50 }\n')), `${head},"data":{ "n": 1.50 }}`);
  assert.equal(serializeStructured(bytes('{ "n":\n1.50 }')), `${head},"data":{"n":1.5}}`);
  assert.equal(serializeStructured(bytes("{not json")), `${head},"data_base64":"${Buffer.from("{not json").toString("base64")}"}`);
  assert.equal(serializeStructured(bytes("[".repeat(65) + "]".repeat(65))).includes('"data_base64"'), true); // too deep to pass on
  const text = { attributes: { ...attrs, datacontenttype: "text/plain" }, data: { kind: "bytes" as const, bytes: Buffer.from('say "hi"\n') } };
  assert.equal(JSON.parse(serializeStructured(text)).data, 'say "hi"\n');
});
