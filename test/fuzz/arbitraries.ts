/**
 * fast-check arbitraries shared by the fuzz tests: valid CloudEvents (by construction, not by
 * filtering through the validator under test), hostile strings, and a BridgeError-only assertion.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { AttributeValue, CloudEvent, EventData } from "../../src/cloudevents/index.js";
import { BridgeError } from "../../src/core/errors.js";

export const INT32_MIN = -2147483648;
export const INT32_MAX = 2147483647;

/** Runs `fn`; passes when it returns or throws a BridgeError, fails (with the input) on anything else. */
export function onlyBridgeErrors<T>(fn: () => T, input: unknown): T | undefined {
  try {
    return fn();
  } catch (err) {
    if (err instanceof BridgeError) {
      assert.match(err.code, /^CEB_[A-Z_]+$/);
      assert.ok(err.message.length > 0, "empty error message");
      return undefined;
    }
    const shown = typeof input === "string" ? JSON.stringify(input.slice(0, 300)) : String(input);
    assert.fail(`threw ${(err as Error)?.constructor?.name ?? typeof err} (${(err as Error)?.message}) instead of a BridgeError for ${shown}`);
  }
}

/** True for a code point the CloudEvents String type forbids (controls, noncharacters, surrogates). */
export function forbiddenCodePoint(cp: number): boolean {
  return (
    cp <= 0x1f ||
    (cp >= 0x7f && cp <= 0x9f) ||
    (cp >= 0xd800 && cp <= 0xdfff) ||
    (cp >= 0xfdd0 && cp <= 0xfdef) ||
    (cp & 0xfffe) === 0xfffe
  );
}

/** Drops every code point the String type forbids. */
export function cleanString(s: string): string {
  let out = "";
  for (const ch of s) if (!forbiddenCodePoint(ch.codePointAt(0)!)) out += ch;
  return out;
}

/** Any UTF-16 code unit sequence, lone surrogates included. */
export const codeUnitString = (maxLength = 40): fc.Arbitrary<string> =>
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((u) => String.fromCharCode(u)), maxLength });

/** Mixed hostile strings: full code points, raw code units, graphemes, ASCII. */
export const anyString = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: "binary", maxLength }),
    codeUnitString(maxLength),
    fc.string({ unit: "grapheme", maxLength }),
    fc.string({ unit: "binary-ascii", maxLength }),
  );

/** A string that is a valid CloudEvents String (possibly empty). */
export const ceString = (maxLength = 20): fc.Arbitrary<string> =>
  fc.oneof(fc.string({ unit: "grapheme", maxLength }), fc.string({ unit: "binary", maxLength }), fc.string({ maxLength })).map(cleanString);

export const nonEmptyCeString = (maxLength = 20): fc.Arbitrary<string> =>
  fc.oneof(ceString(maxLength).filter((s) => s.length > 0), fc.constantFrom("1", "a", "com.example.x", "Euro € 😀", "100%", 'a "q" b'));

const CORE = new Set(["specversion", "id", "source", "type", "datacontenttype", "dataschema", "subject", "time"]);

/** Extension names: `[a-z0-9]{1,20}`, never a core attribute or `data`. */
export const extensionName: fc.Arbitrary<string> = fc
  .oneof(fc.stringMatching(/^[a-z0-9]{1,20}$/), fc.constantFrom("constructor", "tostring", "valueof", "proto", "0", "123", "x"))
  .filter((n) => n !== "data" && !CORE.has(n));

export const extensionValue: fc.Arbitrary<AttributeValue> = fc.oneof(
  ceString(),
  fc.integer({ min: INT32_MIN, max: INT32_MAX }),
  fc.constantFrom(INT32_MIN, INT32_MAX, 0, -1),
  fc.boolean(),
);

/** Absolute URIs built independently of the validator under test. */
export const absoluteUri: fc.Arbitrary<string> = fc.oneof(
  fc.webUrl({ withQueryParameters: true, withFragments: true }),
  fc.constantFrom(
    "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    "mailto:cncf-wg-serverless@lists.cncf.io",
    "https://github.com/cloudevents/spec/pull/123",
    "http://[::1]:8080/x?y=1#z",
    "tag:example.com,2024:x",
    "https://example.com/%E2%82%AC",
  ),
);

/** URI-references: absolute URIs and relative references. */
export const uriReference: fc.Arbitrary<string> = fc.oneof(
  absoluteUri,
  fc.stringMatching(/^\/[a-z0-9._~-]{0,10}(\/[a-z0-9._~-]{1,10}){0,3}$/),
  fc.constantFrom("/cloudevents/spec/pull/123", "1-555-123-4567", "relative/path", "//host/x", "?q=1", "#frag", "."),
);

const pad = (n: number, w: number) => String(n).padStart(w, "0");

/** RFC 3339 timestamps (years 0001–9999, optional fraction, Z or an offset). */
export const timestamp: fc.Arbitrary<string> = fc
  .tuple(
    fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }),
    fc.option(fc.stringMatching(/^[0-9]{1,9}$/), { nil: undefined }),
    fc.oneof(fc.constantFrom("Z", "z", "+00:00", "-00:00"), fc.tuple(fc.constantFrom("+", "-"), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 })).map(([s, h, m]) => `${s}${pad(h, 2)}:${pad(m, 2)}`)),
  )
  .map(([d, frac, zone]) => {
    const iso = d.toISOString(); // YYYY-MM-DDTHH:MM:SS.sssZ
    return iso.slice(0, 19) + (frac === undefined ? "" : "." + frac) + zone;
  });

const jsonCt = fc.constantFrom(undefined, "application/json", "text/json", "application/vnd.example+json; charset=utf-8", "APPLICATION/JSON");
const textCt = fc.constantFrom("text/plain", "text/html; charset=utf-8", "application/xml", "text/csv;charset=UTF-8", "application/foo+xml");
const bytesCt = fc.constantFrom(undefined, "application/octet-stream", "image/png", "text/plain", "application/json", "text/plain; charset=iso-8859-1");

/** Data with a datacontenttype that fits it (`undefined` = attribute absent). */
const dataWithCt: fc.Arbitrary<{ ct: string | undefined; data: EventData | undefined }> = fc.oneof(
  fc.record({ ct: fc.option(fc.oneof(jsonCt, textCt, bytesCt), { nil: undefined }), data: fc.constant(undefined) }),
  fc.record({ ct: jsonCt, data: fc.jsonValue({ maxDepth: 4 }).map((value): EventData => ({ kind: "json", value })) }),
  fc.record({ ct: textCt, data: fc.string({ unit: "grapheme", maxLength: 40 }).map((text): EventData => ({ kind: "text", text })) }),
  fc.record({
    ct: bytesCt,
    data: fc
      .oneof(
        fc.uint8Array({ maxLength: 64 }),
        fc.jsonValue({ maxDepth: 3 }).map((v) => new Uint8Array(Buffer.from(JSON.stringify(v) ?? "null", "utf8"))),
        fc.string({ unit: "grapheme", maxLength: 30 }).map((s) => new Uint8Array(Buffer.from(s, "utf8"))),
      )
      .map((bytes): EventData => ({ kind: "bytes", bytes })),
  }),
);

/** A valid CloudEvent, built by construction. */
export const validEvent: fc.Arbitrary<CloudEvent> = fc
  .record(
    {
      id: nonEmptyCeString(),
      source: uriReference,
      type: nonEmptyCeString(),
      subject: fc.option(nonEmptyCeString(), { nil: undefined }),
      time: fc.option(timestamp, { nil: undefined }),
      dataschema: fc.option(absoluteUri, { nil: undefined }),
      extensions: fc.dictionary(extensionName, extensionValue, { maxKeys: 5 }),
      payload: dataWithCt,
    },
  )
  .map(({ id, source, type, subject, time, dataschema, extensions, payload }) => {
    const attributes: Record<string, AttributeValue> = { specversion: "1.0", id, source, type };
    if (payload.ct !== undefined) attributes["datacontenttype"] = payload.ct;
    if (subject !== undefined) attributes["subject"] = subject;
    if (time !== undefined) attributes["time"] = time;
    if (dataschema !== undefined) attributes["dataschema"] = dataschema;
    for (const [k, v] of Object.entries(extensions)) attributes[k] = v;
    return payload.data === undefined ? { attributes } : { attributes, data: payload.data };
  });

/** Values of every JSON type, for replacing members. */
export const anyJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(1.5, -0.5, 2147483648, -2147483649, 1e300, "", "\u0000", "\ud800", "\ufffe", [], {}, null, true),
);

/** A JSON-format member object of a valid event, then mutated: members dropped, retyped or added. */
export const mutatedEventObject: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    validEvent,
    fc.array(
      fc.oneof(
        fc.record({ op: fc.constant("drop" as const), key: fc.constantFrom("specversion", "id", "source", "type", "data", "time", "datacontenttype") }),
        fc.record({
          op: fc.constant("set" as const),
          key: fc.oneof(
            fc.constantFrom("specversion", "id", "source", "type", "subject", "time", "dataschema", "datacontenttype", "data", "data_base64", "myext"),
            fc.string({ maxLength: 8 }),
          ),
          value: anyJsonValue,
        }),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  )
  .map(([ev, ops]) => {
    const o: Record<string, unknown> = JSON.parse(JSON.stringify(toPlain(ev))) as Record<string, unknown>;
    for (const m of ops) {
      if (m.op === "drop") delete o[m.key];
      else Object.defineProperty(o, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
    }
    return o;
  });

/** Member object without importing the format under test (data_base64 for bytes, data otherwise). */
function toPlain(ev: CloudEvent): Record<string, unknown> {
  const o: Record<string, unknown> = { ...ev.attributes };
  const d = ev.data;
  if (d?.kind === "json") o["data"] = d.value;
  else if (d?.kind === "text") o["data"] = d.text;
  else if (d?.kind === "bytes") o["data_base64"] = Buffer.from(d.bytes).toString("base64");
  return o;
}

/** Text-level mutations of a JSON document: insert garbage, delete a slice, truncate, duplicate a slice. */
export function mutateText(text: fc.Arbitrary<string>): fc.Arbitrary<string> {
  const garbage = fc.oneof(
    fc.constantFrom("{", "}", "[", "]", ",", ":", '"', "\\", "\\u", "\\ud800", "null", "1e999", "-", "\u0000", "\ufeff", "[".repeat(80)),
    fc.string({ maxLength: 6 }),
  );
  return fc
    .tuple(
      text,
      fc.array(fc.tuple(fc.constantFrom("insert", "delete", "truncate", "dup"), fc.nat(), fc.nat({ max: 20 }), garbage), { minLength: 1, maxLength: 3 }),
    )
    .map(([t, ops]) => {
      let s = t;
      for (const [op, at0, len, g] of ops) {
        const at = s.length === 0 ? 0 : at0 % (s.length + 1);
        if (op === "insert") s = s.slice(0, at) + g + s.slice(at);
        else if (op === "delete") s = s.slice(0, at) + s.slice(at + len);
        else if (op === "truncate") s = s.slice(0, at);
        else s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at);
      }
      return s;
    });
}
