/**
 * The Protobuf event format, checked against two implementations that share no code with ours:
 * Google's `protoc` (decoding our bytes, encoding messages we decode) and @bufbuild/protobuf.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, test } from "node:test";
import protobuf from "protobufjs";
import {
  decodeProtobuf,
  decodeProtobufBatch,
  encodeProtobuf,
  encodeProtobufBatch,
  formatBatch,
  formatStructured,
  joinProtobufBatch,
  protobufBatchEntrySize,
  parseBatchAs,
  parseStructuredAs,
  serializeStructured,
  type CloudEvent,
} from "../../../src/cloudevents/index.js";
import { CLOUDEVENTS_PROTO_DESCRIPTOR } from "../../../src/cloudevents/protobuf-schema.js";
import { EventValidationError, FormatError, UnsupportedMediaTypeError } from "../../../src/core/errors.js";
import { REPO_ROOT } from "../../support/daemon.js";
import { assertSameEvent, richEvents } from "../../support/events.js";
import { bufDecode, protocDecode, protocEncode } from "../../support/protoc.js";

const b = (s: string) => Buffer.from(s, "utf8");
const BASE = { specversion: "1.0", id: "e1", source: "urn:src", type: "t.x" } as const;

/** Rich events with `time` in the spelling Timestamp reproduces, plus the ones the format treats specially. */
function fixtures(): CloudEvent[] {
  const rich = richEvents("pb");
  return [
    ...rich,
    { attributes: { ...rich[0]!.attributes, id: "pb-utc", time: "2024-05-06T05:08:09.123456789Z" }, data: rich[0]!.data },
    { attributes: { ...BASE, id: "empty-data", datacontenttype: "application/octet-stream" }, data: { kind: "bytes", bytes: new Uint8Array(0) } },
    { attributes: { ...BASE, id: "not-utf8-json", datacontenttype: "application/json" }, data: { kind: "bytes", bytes: Buffer.from([0x7b, 0xff, 0x7d]) } },
    { attributes: { ...BASE, id: "latin1", datacontenttype: "text/plain; charset=iso-8859-1" }, data: { kind: "bytes", bytes: Buffer.from([0x63, 0x61, 0x66, 0xe9]) } },
    {
      attributes: { ...BASE, id: "proto", datacontenttype: "application/protobuf", dataschema: "https://types.example.com/acme.Order" },
      data: { kind: "bytes", bytes: Buffer.from([0x08, 0x96, 0x01]) },
    },
    { attributes: { ...BASE, id: "neg", big: -2147483648, max: 2147483647, off: false } },
  ];
}

describe("protobuf format", () => {
  test("protobuf - the committed descriptor is what cloudevents.proto compiles to (npm run proto)", () => {
    const root = new protobuf.Root().loadSync(join(REPO_ROOT, "src", "cloudevents", "cloudevents.proto"), { keepCase: true });
    assert.deepEqual(JSON.parse(JSON.stringify(CLOUDEVENTS_PROTO_DESCRIPTOR)), root.toJSON({ keepComments: false }));
  });

  test("protobuf - round trip keeps every attribute, extension type and data byte", () => {
    for (const ev of fixtures()) {
      const bytes = encodeProtobuf(ev);
      assertSameEvent(decodeProtobuf(bytes), ev, { what: String(ev.attributes["id"]) });
    }
  });

  test("protobuf - JSON and text data from the JSON format come back as the same JSON event", () => {
    const json: CloudEvent = { attributes: { ...BASE }, data: { kind: "json", value: { a: [1, "é"] } } };
    const back = decodeProtobuf(encodeProtobuf(json));
    assert.equal(back.attributes["datacontenttype"], "application/json", "implied JSON made explicit");
    assert.deepEqual(JSON.parse(serializeStructured(back)).data, { a: [1, "é"] });
    const text: CloudEvent = { attributes: { ...BASE, datacontenttype: "text/csv" }, data: { kind: "text", text: "a,b\n1,2" } };
    assert.deepEqual(decodeProtobuf(encodeProtobuf(text)), text);
    const none: CloudEvent = { attributes: { ...BASE } };
    assert.deepEqual(decodeProtobuf(encodeProtobuf(none)), none);
  });

  test("protobuf - protoc --decode reads our event: fields, typed attributes, nanosecond timestamp, text data", () => {
    const [ext] = richEvents("pb");
    const ev: CloudEvent = { attributes: { ...ext!.attributes, time: "2024-05-06T05:08:09.123456789Z" }, data: ext!.data };
    const text = protocDecode("CloudEvent", encodeProtobuf(ev));
    const entries = new Map<string, string>();
    for (const m of text.matchAll(/attributes \{\n {2}key: "([a-z0-9]+)"\n {2}value \{\n([\s\S]*?)\n {2}\}\n\}/g)) {
      entries.set(m[1]!, m[2]!.replace(/\s+/g, " ").trim());
    }
    assert.match(text, /^id: "pb-ext"\nsource: "https:\/\/example.com\/orders\?region=eu&x=1"\nspec_version: "1.0"\ntype: "com.example.order.created"\n/);
    assert.deepEqual(Object.fromEntries(entries), {
      count: "ce_integer: 42",
      datacontenttype: 'ce_string: "application/json"',
      dataschema: 'ce_uri: "https://example.com/schemas/order.json"',
      flag: "ce_boolean: true",
      note: String.raw`ce_string: "na\303\257ve caf\303\251 \342\200\224 100% \"quoted\" a+b=c"`,
      subject: String.raw`ce_string: "Gr\303\274\303\237e, \344\270\226\347\225\214 \360\237\232\200"`,
      time: "ce_timestamp { seconds: 1714972089 nanos: 123456789 }",
      traceparent: 'ce_string: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"',
    });
    assert.match(text, /\ntext_data: "\{\\"order\\":\{\\"id\\":7,\\"items\\":\[\\"\\303\\251\\",\\"\\360\\237\\230\\200\\"\]\}\}"\n$/);
  });

  test("protobuf - @bufbuild/protobuf decodes our events to the same values", () => {
    for (const ev of fixtures()) {
      const json = bufDecode("CloudEvent", encodeProtobuf(ev));
      const a = ev.attributes;
      const id = String(a["id"]);
      assert.equal(json["id"], a["id"], id);
      assert.equal(json["source"], a["source"], id);
      assert.equal(json["specVersion"], "1.0", id);
      assert.equal(json["type"], a["type"], id);
      const attrs = (json["attributes"] ?? {}) as Record<string, Record<string, unknown>>;
      for (const [name, v] of Object.entries(a)) {
        if (["id", "source", "specversion", "type"].includes(name)) continue;
        const got = attrs[name];
        assert.ok(got, `${id}: attribute ${name}`);
        if (typeof v === "number") assert.deepEqual(got, { ceInteger: v }, `${id} ${name}`);
        else if (typeof v === "boolean") assert.deepEqual(got, { ceBoolean: v }, `${id} ${name}`);
        else if (name === "dataschema") assert.deepEqual(got, { ceUri: v }, `${id} ${name}`);
        else if (name === "time" && v.endsWith("Z")) assert.deepEqual(got, { ceTimestamp: { seconds: "1714972089", nanos: 123456789 } }, `${id} ${name}`);
        else assert.deepEqual(got, { ceString: v }, `${id} ${name}`);
      }
      const data = ev.data;
      if (data === undefined) {
        assert.ok(!("binaryData" in json || "textData" in json || "protoData" in json), `${id}: no data member`);
        continue;
      }
      assert.equal(data.kind, "bytes");
      const bytes = Buffer.from(data.bytes);
      if (id === "proto") {
        assert.deepEqual(json["protoData"], { typeUrl: "https://types.example.com/acme.Order", value: bytes.toString("base64") }, id);
        continue;
      }
      const ct = String(a["datacontenttype"] ?? "");
      const textual = /json|^text\/plain; charset=utf-8$/.test(ct) && id !== "not-utf8-json";
      if (textual) assert.equal(json["textData"], bytes.toString("utf8"), `${id}: text_data`);
      else assert.equal(json["binaryData"], bytes.toString("base64"), `${id}: binary_data`);
    }
  });

  test("protobuf - a time that Timestamp cannot spell exactly goes as ce_string, so nothing is lost", () => {
    const ev: CloudEvent = { attributes: { ...BASE, time: "2024-05-06T07:08:09.123456789+02:00" } };
    const json = bufDecode("CloudEvent", encodeProtobuf(ev)) as { attributes: Record<string, unknown> };
    assert.deepEqual(json.attributes["time"], { ceString: "2024-05-06T07:08:09.123456789+02:00" });
    const utc = bufDecode("CloudEvent", encodeProtobuf({ attributes: { ...BASE, time: "2024-05-06T05:08:09.000000001Z" } })) as { attributes: Record<string, unknown> };
    assert.deepEqual(utc.attributes["time"], { ceTimestamp: { seconds: "1714972089", nanos: 1 } });
    assert.equal(decodeProtobuf(encodeProtobuf(ev)).attributes["time"], "2024-05-06T07:08:09.123456789+02:00");
  });

  test("protobuf - we decode what protoc encodes: every attribute member, proto_data and text_data", () => {
    const bytes = protocEncode(
      "CloudEvent",
      `id: "p1" source: "/orders" spec_version: "1.0" type: "com.example.x"
       attributes { key: "time" value { ce_timestamp { seconds: 1714972089 nanos: 120000000 } } }
       attributes { key: "dataschema" value { ce_uri: "https://types.example.com/acme.Order" } }
       attributes { key: "blob" value { ce_bytes: "\\001\\002\\377" } }
       attributes { key: "ref" value { ce_uri_ref: "../x?y" } }
       attributes { key: "n" value { ce_integer: -7 } }
       attributes { key: "ok" value { ce_boolean: false } }
       proto_data { type_url: "https://types.example.com/acme.Order" value: "\\010\\226\\001" }`,
    );
    assert.deepEqual(decodeProtobuf(bytes), {
      attributes: {
        specversion: "1.0",
        id: "p1",
        source: "/orders",
        type: "com.example.x",
        time: "2024-05-06T05:08:09.120Z",
        dataschema: "https://types.example.com/acme.Order",
        blob: "AQL/",
        ref: "../x?y",
        n: -7,
        ok: false,
        datacontenttype: "application/protobuf",
      },
      data: { kind: "bytes", bytes: Buffer.from([0x08, 0x96, 0x01]) },
    });
    const anyOnly = decodeProtobuf(
      protocEncode("CloudEvent", `id: "p2" source: "/o" spec_version: "1.0" type: "t" proto_data { type_url: "type.googleapis.com/acme.Order" value: "\\010" }`),
    );
    assert.equal(anyOnly.attributes["datacontenttype"], "application/protobuf");
    assert.equal(anyOnly.attributes["dataschema"], undefined, "a type URL without a scheme is not a valid dataschema");
    const text = decodeProtobuf(
      protocEncode("CloudEvent", `id: "p3" source: "/o" spec_version: "1.0" type: "t" attributes { key: "datacontenttype" value { ce_string: "text/plain" } } text_data: "héllo"`),
    );
    assert.deepEqual(text.data, { kind: "text", text: "héllo" });
    const json = decodeProtobuf(
      protocEncode("CloudEvent", `id: "p4" source: "/o" spec_version: "1.0" type: "t" attributes { key: "datacontenttype" value { ce_string: "application/json" } } text_data: "{ \\"a\\": 1 }"`),
    );
    assert.deepEqual(json.data, { kind: "bytes", bytes: b('{ "a": 1 }') }, "JSON text is forwarded as the producer spelled it");
    const empty = decodeProtobuf(protocEncode("CloudEvent", `id: "p5" source: "/o" spec_version: "1.0" type: "t" binary_data: ""`));
    assert.deepEqual(empty.data, { kind: "bytes", bytes: Buffer.alloc(0) }, "an empty binary_data is data");
  });

  test("protobuf - batch: round trip, protoc reads it, empty batch, entry errors carry the index", () => {
    const evs = fixtures();
    const bytes = encodeProtobufBatch(evs);
    const back = decodeProtobufBatch(bytes);
    assert.equal(back.length, evs.length);
    evs.forEach((e, i) => assertSameEvent(back[i]!, e));
    const text = protocDecode("CloudEventBatch", bytes);
    assert.equal(text.match(/^events \{$/gm)?.length, evs.length);
    assert.equal(((bufDecode("CloudEventBatch", bytes) as { events: unknown[] }).events).length, evs.length);
    assert.deepEqual(decodeProtobufBatch(encodeProtobufBatch([])), []);
    const big: CloudEvent = { attributes: { ...BASE, id: "big" }, data: { kind: "bytes", bytes: Buffer.alloc(300_000, 7) } };
    for (const set of [evs, [], [big, evs[0]!]]) {
      const encoded = set.map((e) => encodeProtobuf(e));
      const joined = joinProtobufBatch(encoded);
      assert.deepEqual(Buffer.from(joined), Buffer.from(encodeProtobufBatch(set)), "joining encoded events is the batch encoding");
      assert.equal(joined.byteLength, encoded.reduce((n, e) => n + protobufBatchEntrySize(e), 0));
    }
    const bad = protocEncode("CloudEventBatch", `events { id: "1" source: "/s" spec_version: "1.0" type: "t" } events { id: "2" source: "/s" spec_version: "1.0" }`);
    assert.throws(() => decodeProtobufBatch(bad), (e: unknown) => e instanceof EventValidationError && /^event\[1\]: attribute "type": required attribute is missing/.test(e.message));
  });

  test("protobuf - bad input is refused with the reason", () => {
    const cases: [string, Uint8Array, new (...a: never[]) => Error, RegExp][] = [
      ["truncated", encodeProtobuf({ attributes: { ...BASE } }).subarray(0, 5), FormatError, /malformed Protobuf CloudEvent/],
      ["garbage", Buffer.from([0xff, 0xff, 0xff, 0xff]), FormatError, /malformed Protobuf/],
      ["no specversion", protocEncode("CloudEvent", `id: "1" source: "/s" type: "t"`), EventValidationError, /"specversion": required attribute is missing/],
      ["wrong specversion", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "0.3" type: "t"`), EventValidationError, /"specversion": must be "1.0"/],
      ["value with no member", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "x" value { } }`), FormatError, /"x": the CloudEventAttributeValue has no value set/],
      ["required in the map", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "id" value { ce_string: "2" } }`), FormatError, /"id": must be the CloudEvent field id/],
      ["bad name", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "Bad-Name" value { ce_string: "2" } }`), EventValidationError, /"Bad-Name": name must consist/],
      ["__proto__ key", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "__proto__" value { ce_string: "2" } }`), EventValidationError, /__proto__/],
      ["time not a timestamp", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "time" value { ce_string: "yesterday" } }`), EventValidationError, /"time": must be an RFC 3339 timestamp/],
      ["timestamp out of range", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "time" value { ce_timestamp { seconds: 253402300800 } } }`), FormatError, /outside 0001-01-01/],
      ["text_data not UTF-8", Buffer.concat([encodeProtobuf({ attributes: { ...BASE } }), Buffer.from([0x3a, 0x02, 0xff, 0xfe])]), FormatError, /text_data is not valid UTF-8/],
      ["integer subject", protocEncode("CloudEvent", `id: "1" source: "/s" spec_version: "1.0" type: "t" attributes { key: "subject" value { ce_integer: 3 } }`), EventValidationError, /"subject": must be a string/],
    ];
    for (const [name, bytes, cls, re] of cases) {
      assert.throws(() => decodeProtobuf(bytes), (e: unknown) => e instanceof cls && re.test((e as Error).message), name);
    }
  });

  test("protobuf - content-type dispatch: +json, +protobuf, batch, and unknown formats", () => {
    const ev: CloudEvent = { attributes: { ...BASE, n: 1 }, data: { kind: "bytes", bytes: b("hi") } };
    const pb = formatStructured(ev, "protobuf");
    assert.equal(pb.contentType, "application/cloudevents+protobuf");
    assertSameEvent(parseStructuredAs("Application/CloudEvents+Protobuf; x=1", pb.body), ev);
    const js = formatStructured(ev, "json");
    assert.equal(js.contentType, "application/cloudevents+json; charset=utf-8");
    assertSameEvent(parseStructuredAs(js.contentType, js.body), ev);
    assertSameEvent(parseStructuredAs("application/cloudevents", js.body), ev);
    const batch = formatBatch([ev, ev], "protobuf");
    assert.equal(batch.contentType, "application/cloudevents-batch+protobuf");
    assert.equal(parseBatchAs(batch.contentType, batch.body).length, 2);
    assert.equal(parseBatchAs(formatBatch([ev], "json").contentType, formatBatch([ev], "json").body).length, 1);
    assert.throws(() => parseStructuredAs("application/cloudevents+avro", b("x")), (e: unknown) => e instanceof UnsupportedMediaTypeError && /cloudevents\+avro/.test((e as Error).message));
  });

  test("protobuf - protobufjs loads only when a Protobuf event is first encoded or decoded", () => {
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(${JSON.stringify(join(REPO_ROOT, "package.json"))});
      const loaded = () => Object.keys(require.cache).some((k) => k.includes("/protobufjs/"));
      const ce = await import(${JSON.stringify(join(REPO_ROOT, "dist", "src", "cloudevents", "index.js"))});
      const before = loaded();
      ce.encodeProtobuf({ attributes: { specversion: "1.0", id: "1", source: "/s", type: "t" } });
      console.log(JSON.stringify({ before, after: loaded() }));`;
    const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.deepEqual(JSON.parse(out), { before: false, after: true });
  });
});
