/**
 * Property-based and fuzz tests for every CloudEvents parser that sees outside bytes: header
 * percent-encoding, the JSON format (single and batch), the ce- header codec with binary mode, and the
 * HTTP source's request decoder. Parsers may only ever return or throw a BridgeError.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  attributeString,
  binaryBody,
  decodeCeHeaders,
  encodeCeHeaders,
  eventFromBinary,
  parseBatch,
  parseStructured,
  percentDecode,
  percentEncode,
  serializeBatch,
  serializeStructured,
  toJsonObject,
  type CloudEvent,
} from "../../src/cloudevents/index.js";
import { decodeRequest, type DistinctHeaders } from "../../connectors/http/decode.js";
import { scanData, scanObject } from "../../src/cloudevents/json-data.js";
import { EventValidationError, FormatError, TooLargeError, UnsupportedMediaTypeError } from "../../src/core/errors.js";
import { anyString, codeUnitString, mutatedEventObject, mutateText, onlyBridgeErrors, validEvent } from "./arbitraries.js";

/** The JSON-visible form of an event, with -0/undefined normalised the way JSON text does. */
const jsonForm = (ev: CloudEvent): unknown => JSON.parse(JSON.stringify(toJsonObject(ev)));

/** Fails a property that takes longer than `ms` on one input (a hang shows up as a slow case). */
/**
 * A hang guard, not a speed assertion (speed is measured by `npm run bench`): a regex that backtracks
 * exponentially on a 60 KB value takes minutes, a linear parser milliseconds, so a generous bound
 * separates them without failing on a busy machine.
 */
const HANG_MS = 5_000;

function fast<T>(ms: number, fn: () => T, input: unknown): T {
  const t0 = performance.now();
  const out = fn();
  const took = performance.now() - t0;
  assert.ok(took < ms, `took ${took.toFixed(1)} ms on ${JSON.stringify(String(input).slice(0, 200))}`);
  return out;
}

// ------------------------------------------------------------------------------------------------
// Percent-encoding

const wellFormed = fc.oneof(fc.string({ unit: "grapheme", maxLength: 40 }), fc.string({ unit: "binary", maxLength: 40 }), fc.string({ maxLength: 40 }));

test("fuzz - percent round-trips every well-formed string", () => {
  fc.assert(
    fc.property(wellFormed, (s) => {
      assert.equal(percentDecode(percentEncode(s)), s);
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - percent encodes lone surrogates as U+FFFD (round trip equals toWellFormed)", () => {
  const toWellFormed = (s: string): string => (s as string & { toWellFormed(): string }).toWellFormed();
  fc.assert(
    fc.property(codeUnitString(), (s) => {
      assert.equal(percentDecode(percentEncode(s)), toWellFormed(s));
    }),
    { numRuns: 2000 },
  );
});

test("fuzz - percent output is printable ASCII without '\"', and every '%' starts an upper-case %XX escape", () => {
  fc.assert(
    fc.property(anyString(), (s) => {
      const enc = percentEncode(s);
      for (let i = 0; i < enc.length; i++) {
        const u = enc.charCodeAt(i);
        assert.ok(u >= 0x21 && u <= 0x7e && u !== 0x22, `char U+${u.toString(16)} in ${enc}`);
      }
      assert.doesNotMatch(enc, /%(?![0-9A-F]{2})/, enc);
      // Minimal: characters that need no escaping are passed through.
      const plain = [...s].filter((c) => /^[\x21-\x7e]$/.test(c) && c !== '"' && c !== "%").join("");
      assert.equal(enc.replace(/%[0-9A-F]{2}/g, ""), plain);
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - percent decoding accepts lower-case hex, unnecessary escapes and quoted-strings", () => {
  fc.assert(
    fc.property(wellFormed, (s) => {
      const enc = percentEncode(s);
      assert.equal(percentDecode(enc.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())), s, "lower-case hex");
      const everything = [...Buffer.from(s, "utf8")].map((b) => "%" + b.toString(16).padStart(2, "0")).join("");
      assert.equal(percentDecode(everything), s, "every byte escaped");
      assert.equal(percentDecode(encodeURIComponent(s)), s, "encodeURIComponent output");
      assert.equal(percentDecode('"' + enc.replace(/["\\]/g, "\\$&") + '"'), s, "RFC 7230 quoted-string");
    }),
    { numRuns: 2000 },
  );
});

const percentSoup = fc
  .array(fc.constantFrom("%", "%C0", "%A0", "%E2", "%82", "%AC", "%zz", "%4", "%%", "%F0", "%9F", "%98", "%80", "%ED", "%a0", '"', "\\", "a", " ", "€", "\ud800", "%41"), {
    maxLength: 20,
  })
  .map((parts) => parts.join(""));

test("fuzz - percentDecode on arbitrary strings returns or throws a BridgeError (never TypeError/URIError)", () => {
  fc.assert(
    fc.property(fc.oneof(anyString(60), percentSoup), (s) => {
      const out = onlyBridgeErrors(() => percentDecode(s), s);
      if (out === undefined) return;
      // Without `%` and quotes the value is returned unchanged.
      if (!s.includes("%") && !s.startsWith('"')) assert.equal(out, s);
    }),
    { numRuns: 5000 },
  );
});

test("fuzz - percentDecode rejects escapes that decode to invalid UTF-8", () => {
  for (const bad of ["%C0%A0", "%E2%82", "%FF", "%80", "%ED%A0%80", "%F4%90%80%80", "a%E2%82x%AC"]) {
    assert.throws(() => percentDecode(bad), FormatError, bad);
  }
});

// ------------------------------------------------------------------------------------------------
// JSON format

test("fuzz - JSON format round-trips arbitrary valid events", () => {
  fc.assert(
    fc.property(validEvent, (ev) => {
      const text = serializeStructured(ev);
      const back = parseStructured(text);
      assert.deepStrictEqual(back.attributes, ev.attributes);
      assert.deepStrictEqual(jsonForm(back), jsonForm(ev));
      // And the bytes form parses the same.
      assert.deepStrictEqual(jsonForm(parseStructured(Buffer.from(text, "utf8"))), jsonForm(ev));
      // Serializing again is stable.
      assert.equal(serializeStructured(back), text);
    }),
    { numRuns: 1500 },
  );
});

/** JSON text of `v` with random JSON whitespace around every token (what another writer might send). */
function spaced(v: unknown, ws: () => string): string {
  if (Array.isArray(v)) return `[${ws()}${v.map((x) => spaced(x, ws)).join(`${ws()},${ws()}`)}${ws()}]`;
  if (typeof v === "object" && v !== null) {
    const members = Object.keys(v).map((k) => `${JSON.stringify(k)}${ws()}:${ws()}${spaced((v as Record<string, unknown>)[k], ws)}`);
    return `{${ws()}${members.join(`${ws()},${ws()}`)}${ws()}}`;
  }
  return JSON.stringify(v);
}

test("fuzz - JSON data keeps the text it came in, whitespace included, and an event written out is one line that parses to the same value", () => {
  const whitespace = fc.array(fc.constantFrom("", "", " ", "\n", "\t", "\r\n  "), { minLength: 64, maxLength: 64 });
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 4 }), whitespace, fc.boolean(), (value, spaces, dataFirst) => {
      let k = 0;
      const ws = () => spaces[k++ % spaces.length]!;
      const dataText = spaced(value, ws);
      const attrs = `"specversion"${ws()}:${ws()}"1.0",${ws()}"id":"1","source":"/s","type":"t"`;
      const text = dataFirst ? `${ws()}{${ws()}"data"${ws()}:${ws()}${dataText}${ws()},${attrs}}${ws()}` : `{${attrs},${ws()}"data":${dataText}${ws()}}`;
      const ev = parseStructured(text);
      assert.equal(ev.data?.kind, "json");
      if (ev.data?.kind !== "json") return;
      assert.equal(ev.data.text, dataText);
      assert.deepStrictEqual(JSON.parse(serializeStructured(ev)), JSON.parse(JSON.stringify(toJsonObject(ev))));
      assert.deepStrictEqual(JSON.parse(serializeStructured(ev)).data, JSON.parse(text).data);
      assert.ok(!/[\r\n]/.test(serializeStructured(ev)), "one event, one line");
      assert.equal(Buffer.from(binaryBody(ev).body!).toString("utf8"), dataText);
    }),
    { numRuns: 1500 },
  );
});

test("fuzz - the fast data scanner agrees with the full one whatever the attribute strings hold", () => {
  const tricky = fc.string({ unit: fc.constantFrom('"', "\\", "data", ":", "{", "}", "[", "]", ",", " ", "a"), maxLength: 12 });
  fc.assert(
    fc.property(tricky, tricky, fc.jsonValue({ maxDepth: 2 }), fc.nat(3), (a, b, value, where) => {
      const members = [`"specversion":"1.0"`, `"id":"1"`, `"source":"/s"`, `"type":"t"`, `"exta":${JSON.stringify(a)}`, `"extb":${JSON.stringify(b)}`];
      members.splice(members.length - where, 0, `"data":${JSON.stringify(value)}`);
      const text = `{${members.join(",")}}`;
      assert.deepStrictEqual(scanData(text, 0), scanObject(text, 0), text);
      const ev = parseStructured(text);
      assert.deepStrictEqual(JSON.parse(serializeStructured(ev)).data, JSON.parse(text).data, text);
    }),
    { numRuns: 2000 },
  );
});

test("fuzz - JSON batch format round-trips arrays of valid events", () => {
  fc.assert(
    fc.property(fc.array(validEvent, { maxLength: 6 }), (evs) => {
      const back = parseBatch(serializeBatch(evs));
      assert.equal(back.length, evs.length);
      back.forEach((b, i) => assert.deepStrictEqual(jsonForm(b), jsonForm(evs[i]!)));
    }),
    { numRuns: 300 },
  );
});

test("fuzz - parseStructured and parseBatch on arbitrary strings only throw BridgeError", () => {
  fc.assert(
    fc.property(fc.oneof(anyString(200), fc.json({ maxDepth: 5 }), fc.string({ unit: fc.constantFrom("{", "}", "[", "]", '"', "\\", ",", ":", "1", "a", " ") , maxLength: 100 })), (s) => {
      fast(HANG_MS, () => onlyBridgeErrors(() => parseStructured(s), s), s);
      fast(HANG_MS, () => onlyBridgeErrors(() => parseBatch(s), s), s);
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - parseStructured and parseBatch on arbitrary bytes only throw BridgeError", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
      onlyBridgeErrors(() => parseStructured(bytes), Buffer.from(bytes).toString("hex"));
      onlyBridgeErrors(() => parseBatch(bytes), Buffer.from(bytes).toString("hex"));
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - mutated valid events (dropped, retyped, added members) only throw BridgeError", () => {
  fc.assert(
    fc.property(mutatedEventObject, fc.integer({ min: 1, max: 70 }), (o, maxDepth) => {
      const text = JSON.stringify(o);
      const ev = onlyBridgeErrors(() => parseStructured(text, { maxDepth }), text);
      // Whatever parses must be serializable and parse back to the same thing.
      if (ev !== undefined) assert.deepStrictEqual(jsonForm(parseStructured(serializeStructured(ev))), jsonForm(ev));
      onlyBridgeErrors(() => parseBatch(`[${text},${text}]`, { maxDepth }), text);
    }),
    { numRuns: 2000 },
  );
});

test("fuzz - text-mutated valid events (garbage inserted, truncated) only throw BridgeError", () => {
  const texts = mutateText(validEvent.map((ev) => serializeStructured(ev)));
  fc.assert(
    fc.property(texts, (text) => {
      onlyBridgeErrors(() => parseStructured(text), text);
      onlyBridgeErrors(() => parseBatch("[" + text + "]"), text);
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - JSON nesting limit holds for any depth and never recurses past it", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5000 }), fc.constantFrom("[", '{"a":'), fc.integer({ min: 1, max: 100 }), (depth, opener, limit) => {
      const close = opener === "[" ? "]" : "}";
      const data = opener.repeat(depth) + "1" + close.repeat(depth);
      const text = `{"specversion":"1.0","id":"1","source":"/s","type":"t","data":${data}}`;
      if (depth + 1 > limit) assert.throws(() => parseStructured(text, { maxDepth: limit }), TooLargeError);
      else parseStructured(text, { maxDepth: limit });
      // Brackets inside strings never count.
      const inString = `{"specversion":"1.0","id":"1","source":"/s","type":"t","x":${JSON.stringify(opener.repeat(depth) + '\\"')}}`;
      parseStructured(inString, { maxDepth: 1 });
    }),
    { numRuns: 500 },
  );
});

test("fuzz - parsers stay linear on large hostile values (no regex blow-up)", () => {
  const big = 60_000;
  const attrs = ["source", "dataschema", "time", "datacontenttype", "id", "myext"];
  const fillers = ["a", "a:", "/", "%", "%4", "%41", "@", "[", "a/", "?", "\\", "a%", ":0", "0", "-", "//a", "a;b=", '"', "\u00e9"];
  fc.assert(
    fc.property(fc.constantFrom(...attrs), fc.constantFrom(...fillers), fc.constantFrom("", "http://", "//", "/", "a:"), fc.constantFrom("", "!", " ", "<", "#%"), (name, fill, head, tail) => {
      const value = head + fill.repeat(Math.ceil(big / fill.length)) + tail;
      const text = JSON.stringify({ specversion: "1.0", id: "1", source: "/s", type: "t", [name]: value });
      fast(HANG_MS, () => onlyBridgeErrors(() => parseStructured(text), `${name}=${head}${fill}…${tail}`), `${name}=${head}${fill}…${tail}`);
      fast(HANG_MS, () => onlyBridgeErrors(() => percentDecode(value), value), `percent ${fill}`);
    }),
    { numRuns: 300 },
  );
});

// ------------------------------------------------------------------------------------------------
// ce- headers and binary mode

test("fuzz - ce- headers round-trip every attribute as its canonical string", () => {
  fc.assert(
    fc.property(validEvent, fc.boolean(), (ev, includeCt) => {
      const headers = encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: includeCt });
      for (const [name, value] of headers) {
        assert.match(name, /^ce-[a-z0-9]+$/);
        assert.match(value, /^[\x21-\x7e]*$/, `header ${name} is not printable ASCII`);
      }
      const attrs = decodeCeHeaders(headers, "ce-");
      const { body, contentType } = binaryBody(ev);
      const back = eventFromBinary(attrs, body, includeCt ? undefined : contentType);
      const want: Record<string, string> = {};
      for (const [k, v] of Object.entries(ev.attributes)) want[k] = attributeString(v);
      if (!includeCt && contentType !== undefined) want["datacontenttype"] = contentType;
      if (includeCt && ev.attributes["datacontenttype"] === undefined) delete want["datacontenttype"];
      assert.deepStrictEqual(back.attributes, want);
      if (body !== undefined && (body.byteLength > 0 || back.attributes["datacontenttype"] !== undefined)) {
        assert.equal(back.data?.kind, "bytes");
        assert.deepEqual(Buffer.from((back.data as { bytes: Uint8Array }).bytes), Buffer.from(body));
      }
    }),
    { numRuns: 1500 },
  );
});

test("fuzz - header names match the prefix case-insensitively", () => {
  fc.assert(
    fc.property(validEvent, fc.constantFrom("CE-", "Ce-", "cE-"), (ev, prefix) => {
      const headers = encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: true }).map(([n, v]): [string, string] => [prefix + n.slice(3).toUpperCase(), v]);
      const attrs = decodeCeHeaders(headers, "ce-");
      assert.deepStrictEqual(Object.keys(attrs).sort(), Object.keys(ev.attributes).sort());
    }),
    { numRuns: 300 },
  );
});

const headerName = fc.oneof(
  fc.constantFrom("ce-id", "ce-specversion", "ce-source", "ce-type", "ce-time", "ce-dataschema", "ce-subject", "ce-datacontenttype", "ce-data", "ce-", "CE-ID", "ce-constructor", "ce-__proto__", "content-type", "host"),
  fc.string({ maxLength: 12 }).map((s) => "ce-" + s),
  anyString(12),
);

const headerValue = fc.oneof(
  anyString(30),
  percentSoup,
  fc.constantFrom("1.0", "0.3", "", "/s", "https://x/y", "2020-01-01T00:00:00Z", "text/plain", "base64", '"quoted"', '"unterminated'),
);

test("fuzz - decodeCeHeaders and eventFromBinary on arbitrary header entries only throw BridgeError", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(headerName, headerValue), { maxLength: 10 }),
      fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
      fc.option(headerValue, { nil: undefined }),
      (entries, body, ct) => {
        const attrs = onlyBridgeErrors(() => decodeCeHeaders(entries, "ce-"), JSON.stringify(entries));
        if (attrs === undefined) return;
        for (const name of Object.keys(attrs)) assert.match(name, /^[a-z0-9]+$/);
        onlyBridgeErrors(() => eventFromBinary(attrs, body, ct), JSON.stringify([attrs, ct]));
      },
    ),
    { numRuns: 3000 },
  );
});

test("fuzz - eventFromBinary on arbitrary attribute records only throws BridgeError", () => {
  const attrs = fc.oneof(
    fc.dictionary(anyString(10), anyString(20), { maxKeys: 8 }),
    fc
      .record({
        specversion: fc.constantFrom("1.0", "0.3", "0.2", ""),
        id: anyString(10),
        source: anyString(20),
        type: anyString(10),
        datacontentencoding: fc.constantFrom("base64", "BASE64", "7bit", "gzip", " base64 "),
        schemaurl: fc.constantFrom("", "/rel", "https://x/s", "::"),
      }, { requiredKeys: ["specversion", "id", "source", "type"] }),
  );
  fc.assert(
    fc.property(attrs, fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }), fc.option(headerValue, { nil: undefined }), (a, body, ct) => {
      onlyBridgeErrors(() => eventFromBinary(a, body, ct), JSON.stringify([a, ct]));
    }),
    { numRuns: 3000 },
  );
});

// ------------------------------------------------------------------------------------------------
// HTTP request decoding

/** Header maps as node builds `headersDistinct`: lower-case names, one or more values each. */
const headerMap: fc.Arbitrary<DistinctHeaders> = fc
  .array(
    fc.tuple(
      fc.oneof(
        headerName.map((n) => n.toLowerCase()),
        fc.constantFrom("content-type", "content-type", "ce-id", "ce-specversion"),
      ),
      fc.array(
        fc.oneof(
          headerValue,
          fc.constantFrom(
            "application/cloudevents+json",
            "application/cloudevents-batch+json",
            "application/cloudevents+avro",
            "APPLICATION/CLOUDEVENTS+JSON; charset=utf-8",
            "application/cloudevents-batch+json;x",
            "  application/cloudevents+json",
            "application/json",
          ),
        ),
        { minLength: 1, maxLength: 2 },
      ),
    ),
    { maxLength: 8 },
  )
  .map((pairs) => {
    const h: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
    for (const [k, vs] of pairs) h[k] = vs;
    return h;
  });

const requestBody: fc.Arbitrary<Buffer> = fc
  .oneof(
    fc.uint8Array({ maxLength: 200 }),
    anyString(100).map((s) => Buffer.from(s, "utf8")),
    validEvent.map((ev) => Buffer.from(serializeStructured(ev), "utf8")),
    fc.array(validEvent, { maxLength: 3 }).map((evs) => Buffer.from(serializeBatch(evs), "utf8")),
    mutatedEventObject.map((o) => Buffer.from(JSON.stringify(o), "utf8")),
    mutateText(validEvent.map((ev) => serializeStructured(ev))).map((s) => Buffer.from(s, "utf8")),
  )
  .map((b) => Buffer.from(b));

const plainOpts = fc.option(
  fc.record(
    { type: anyString(10), source: fc.oneof(anyString(10), fc.constant("/plain")), id_header: fc.constantFrom("x-id", "X-Request-Id", "ce-id", "content-type") },
    { requiredKeys: ["type", "source"] },
  ),
  { nil: undefined },
);

test("fuzz - decodeRequest on arbitrary header maps and bodies only throws BridgeError", () => {
  fc.assert(
    fc.property(headerMap, requestBody, fc.integer({ min: 1, max: 100 }), plainOpts, (headers, body, maxDepth, plain) => {
      const opts = plain === undefined ? { maxDepth } : { maxDepth, plain };
      const evs = onlyBridgeErrors(() => decodeRequest(headers, body, opts), JSON.stringify(headers) + " " + body.toString("hex").slice(0, 200));
      if (evs === undefined) return;
      // What the decoder returns is always serializable as JSON format and parses back the same.
      for (const ev of evs) assert.deepStrictEqual(jsonForm(parseStructured(serializeStructured(ev))), jsonForm(ev));
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - decodeRequest accepts what a binary, structured or batch sender produces", () => {
  fc.assert(
    fc.property(validEvent, fc.constantFrom("binary", "structured", "batch"), (ev, mode) => {
      const headers: Record<string, string[]> = {};
      let body: Buffer;
      if (mode === "binary") {
        for (const [n, v] of encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: false })) headers[n] = [v];
        const b = binaryBody(ev);
        if (b.contentType !== undefined) headers["content-type"] = [b.contentType];
        body = Buffer.from(b.body ?? new Uint8Array());
      } else {
        headers["content-type"] = [mode === "batch" ? "application/cloudevents-batch+json; charset=UTF-8" : "application/cloudevents+json; charset=UTF-8"];
        body = Buffer.from(mode === "batch" ? serializeBatch([ev, ev]) : serializeStructured(ev), "utf8");
      }
      const evs = decodeRequest(headers, body, { maxDepth: 64 });
      assert.equal(evs.length, mode === "batch" ? 2 : 1);
      if (mode !== "binary") assert.deepStrictEqual(jsonForm(evs[0]!), jsonForm(ev));
      else assert.equal(evs[0]!.attributes["id"], ev.attributes["id"]);
    }),
    { numRuns: 1000 },
  );
});

test("fuzz - decodeRequest maps each failure class to its error type", () => {
  const body = Buffer.from("{}");
  assert.throws(() => decodeRequest({ "content-type": ["text/plain"] }, body, { maxDepth: 64 }), UnsupportedMediaTypeError);
  assert.throws(() => decodeRequest({ "content-type": ["application/cloudevents+avro"] }, body, { maxDepth: 64 }), UnsupportedMediaTypeError);
  assert.throws(() => decodeRequest({ "content-type": ["application/cloudevents+json"] }, Buffer.from("{"), { maxDepth: 64 }), FormatError);
  assert.throws(() => decodeRequest({ "content-type": ["application/cloudevents+json"] }, Buffer.from("[[[1]]]"), { maxDepth: 2 }), TooLargeError);
  assert.throws(() => decodeRequest({ "ce-id": ["1", "2"] }, body, { maxDepth: 64 }), FormatError);
  assert.throws(() => decodeRequest({ "ce-id": ["1"] }, body, { maxDepth: 64 }), EventValidationError);
});

// Node's `headersDistinct` never holds an empty list, but the `DistinctHeaders` type allows one and the
// decoder then passes `undefined` on as a header value (TypeError in percentDecode).
test("fuzz - decodeRequest with an empty value list for a ce- header", () => {
  onlyBridgeErrors(() => decodeRequest({ "ce-id": [] }, Buffer.alloc(0), { maxDepth: 64 }), '{"ce-id":[]}');
});
