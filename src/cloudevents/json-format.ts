/**
 * The JSON event format (structured mode, `application/cloudevents+json`) and the JSON batch format
 * (`application/cloudevents-batch+json`), docs/cloudevents.md §3.
 *
 * Reading: the text is checked for nesting depth before `JSON.parse` (so a hostile body cannot make the
 * parser or a later `JSON.stringify` recurse deeply), attributes are taken with their JSON types,
 * `null` members are absent, and data is kept in the form it arrived in (`json`, `text` or `bytes`).
 * Writing: attributes as top-level members; bytes become `data` when the content type says JSON or
 * text and the bytes are readable as such, else `data_base64` (DESIGN §5).
 */
import { EventValidationError, FormatError, TooLargeError } from "../core/errors.js";
import { cloneAttributes, type AttributeValue, type CloudEvent, type EventData } from "./event.js";
import { scanData, singleLine, skipWs, stringEnd, stringifyData, type ObjectScan } from "./json-data.js";
import { charsetOf, isJsonMediaType, isTextMediaType } from "./media.js";
import { attributeFrom03Json, decodeBase64, SPEC_VERSION_03, upconvertAttributes } from "./upconvert.js";
import { isValidAttributeName, showValue, validateEvent } from "./validate.js";

/** Limits applied while parsing. */
export interface JsonLimits {
  /** Maximum nesting of objects and arrays (the event object itself is level 1). Default 64. */
  readonly maxDepth?: number;
}

/** The default JSON nesting limit (DESIGN §3). */
export const DEFAULT_MAX_DEPTH = 64;

// Fatal: invalid UTF-8 is an error, never silently replaced. A leading BOM is dropped (RFC 8259 lets
// parsers ignore it, and JSON.parse would reject it).
const UTF8 = new TextDecoder("utf-8", { fatal: true });

function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return UTF8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Throws `TooLargeError` when `text` nests objects/arrays deeper than `maxDepth`. One O(n) pass that
 * jumps over string literals with `indexOf`, so brackets inside strings do not count. Malformed text is
 * left for `JSON.parse` to report.
 */
export function checkJsonDepth(text: string, maxDepth: number = DEFAULT_MAX_DEPTH): void {
  if (countOpeners(text, maxDepth) <= maxDepth) return;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const j = stringEnd(text, i);
      if (j < 0) return;
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) throw new TooLargeError(`JSON nesting deeper than ${maxDepth} levels`);
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
}

/**
 * Fast path: nesting can never exceed the number of `{` and `[` in the text, which native `indexOf`
 * counts much faster than a character loop. Stops counting once over `limit`.
 */
function countOpeners(text: string, limit: number): number {
  let n = 0;
  for (let i = text.indexOf("{"); i >= 0 && n <= limit; i = text.indexOf("{", i + 1)) n++;
  for (let i = text.indexOf("["); i >= 0 && n <= limit; i = text.indexOf("[", i + 1)) n++;
  return n;
}

function bodyText(body: Uint8Array | string): string {
  const text = typeof body === "string" ? body : utf8Text(body);
  if (text === undefined) throw new FormatError("body is not valid UTF-8");
  return text;
}

function parseJson(text: string, limits: JsonLimits | undefined): unknown {
  checkJsonDepth(text, limits?.maxDepth ?? DEFAULT_MAX_DEPTH);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FormatError(`malformed JSON: ${(err as Error).message}`, { cause: err });
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The text `o` was parsed from, when the caller has it: the document and the offset of `o`'s `{`,
 * or a scan of `o` already made (batches scan to find where each entry ends).
 */
interface Source {
  readonly text: string;
  readonly at: number;
  readonly scan?: ObjectScan | undefined;
}

/** The text of `data` in `src`, or undefined when the scanner gives up (the value is serialized then). */
function dataText(src: Source | undefined): string | undefined {
  if (src === undefined) return undefined;
  const scan = src.scan ?? scanData(src.text, src.at);
  return scan === undefined || scan.dataStart < 0 ? undefined : src.text.slice(scan.dataStart, scan.dataEnd);
}

/** Builds and validates one event from a parsed JSON-format object (parsed from `src`, if given). */
function eventFromObject(o: Record<string, unknown>, src?: Source): CloudEvent {
  const v03 = o["specversion"] === SPEC_VERSION_03;
  const attributes: Record<string, AttributeValue> = {};
  let hasData = false;
  let dataValue: unknown;
  let base64: unknown = null;
  for (const key of Object.keys(o)) {
    const v = o[key];
    if (key === "data") {
      hasData = true;
      dataValue = v;
      continue;
    }
    if (key === "data_base64") {
      base64 = v;
      continue;
    }
    if (v === null) continue; // null = unset (JSON format 1.0.1)
    // Checked here, not only in validateEvent: assigning a key like `__proto__` would be lost silently.
    if (!isValidAttributeName(key)) {
      throw new EventValidationError(`attribute ${showValue(key)}: name must consist of lower-case letters a-z and digits 0-9`, key);
    }
    if (v03) attributes[key] = attributeFrom03Json(v);
    else if (typeof v === "string" || typeof v === "boolean" || typeof v === "number") attributes[key] = v;
    else throw new EventValidationError(`attribute "${key}": must be a string, boolean or integer, got ${Array.isArray(v) ? "an array" : "an object"}`, key);
  }
  if (v03 && upconvertAttributes(attributes) === "base64" && hasData && dataValue !== null) {
    // 0.3 carried binary data as a base64 string in `data`; 1.0 calls that member `data_base64`.
    if (typeof dataValue !== "string") throw new FormatError('member "data": must be a base64 string under datacontentencoding base64');
    base64 = dataValue;
    hasData = false;
  }
  let data: EventData | undefined;
  if (base64 !== null && base64 !== undefined) {
    if (hasData && dataValue !== null) throw new FormatError('members "data" and "data_base64" must not both be present');
    if (typeof base64 !== "string") throw new FormatError('member "data_base64": must be a base64 string');
    data = { kind: "bytes", bytes: decodeBase64(base64, 'member "data_base64"') };
  } else if (hasData) {
    const ct = attributes["datacontenttype"];
    if (typeof ct !== "string" || isJsonMediaType(ct)) {
      // A JSON string stays a string: never parsed again. The text is kept to be written out as it came.
      const text = dataText(src);
      data = text === undefined ? { kind: "json", value: dataValue } : { kind: "json", value: dataValue, text };
    } else if (typeof dataValue === "string") {
      data = { kind: "text", text: dataValue };
    } else {
      throw new FormatError(`member "data": must be a string when datacontenttype ${showValue(ct)} is not JSON`);
    }
  }
  return validateEvent(data === undefined ? { attributes } : { attributes, data });
}

/**
 * Builds and validates one event from a JSON-format object that was already parsed as part of a larger
 * document (an envelope that nests events, such as an Event Grid namespace receive response). The caller
 * is responsible for the depth check of the text it parsed (`checkJsonDepth`). Throws like
 * `parseStructured`.
 */
export function eventFromJson(doc: unknown): CloudEvent {
  if (!isObject(doc)) throw new FormatError("a structured event must be a JSON object");
  return eventFromObject(doc);
}

/**
 * Parses one JSON-format event (structured mode) and validates it. Throws `FormatError` (invalid UTF-8,
 * malformed JSON, not an object, bad `data`/`data_base64`), `TooLargeError` (nesting over
 * `limits.maxDepth`) or `EventValidationError` (naming the attribute). A 0.3 event is upconverted.
 */
export function parseStructured(body: Uint8Array | string, limits?: JsonLimits): CloudEvent {
  const text = bodyText(body);
  const doc = parseJson(text, limits);
  if (!isObject(doc)) throw new FormatError("a structured event must be a JSON object");
  return eventFromObject(doc, { text, at: skipWs(text, 0) });
}

/**
 * Builds and validates one event from a JSON-format object that is already parsed, for a CloudEvent
 * nested inside another JSON document (an EventBridge envelope's `detail`, an SNS `Message` is text
 * and goes through `parseStructured`). The caller has checked the nesting depth of the text it
 * parsed. Throws like `parseStructured`.
 */
export function parseStructuredObject(doc: unknown): CloudEvent {
  if (!isObject(doc)) throw new FormatError("a structured event must be a JSON object");
  return eventFromObject(doc);
}

/**
 * For receivers that have no content type to go by (MQTT 3.1.1, NATS without headers): parses `body`
 * as a structured event when it is a JSON object with a `specversion` member, with a single
 * JSON.parse. Returns undefined for anything else — a plain payload, malformed JSON or invalid UTF-8.
 * Throws like `parseStructured` when it is such an object but not a valid event, or too deep.
 */
export function parseIfStructured(body: Uint8Array, limits?: JsonLimits): CloudEvent | undefined {
  if (!startsWithBrace(body)) return undefined;
  let doc: unknown;
  let text: string;
  try {
    text = bodyText(body);
    doc = parseJson(text, limits);
  } catch (err) {
    if (err instanceof FormatError) return undefined;
    throw err;
  }
  if (!isObject(doc) || !Object.hasOwn(doc, "specversion")) return undefined;
  return eventFromObject(doc, { text, at: skipWs(text, 0) });
}

/** Cheap check before JSON.parse: does the payload start with `{` after whitespace (and a BOM)? */
function startsWithBrace(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!;
    if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) continue;
    if (c === 0xef && b[i + 1] === 0xbb && b[i + 2] === 0xbf) {
      i += 2;
      continue;
    }
    return c === 0x7b;
  }
  return false;
}

function withPrefix(err: unknown, prefix: string): unknown {
  if (err instanceof EventValidationError) return new EventValidationError(prefix + err.message, err.attribute);
  if (err instanceof FormatError) return new FormatError(prefix + err.message, { cause: err });
  return err;
}

/**
 * Parses a JSON batch: an array (possibly empty) of JSON-format events that all share one
 * `specversion`. Errors of an entry are prefixed with its index (`event[3]: ...`).
 */
export function parseBatch(body: Uint8Array | string, limits?: JsonLimits): CloudEvent[] {
  const text = bodyText(body);
  const doc = parseJson(text, limits);
  if (!Array.isArray(doc)) throw new FormatError("a batch must be a JSON array of events");
  const out: CloudEvent[] = new Array<CloudEvent>(doc.length);
  let first: unknown;
  // Where the next entry starts in the text; -1 once the scan gave up (the rest is serialized then).
  let at = skipWs(text, skipWs(text, 0) + 1);
  for (let i = 0; i < doc.length; i++) {
    const entry: unknown = doc[i];
    let src: Source | undefined;
    if (at >= 0) {
      const scan = scanData(text, at);
      src = scan === undefined ? undefined : { text, at, scan };
      at = scan === undefined ? -1 : nextEntry(text, scan.end);
    }
    try {
      if (!isObject(entry)) throw new FormatError("an event must be a JSON object");
      const sv = entry["specversion"];
      if (i === 0) first = sv;
      else if (sv !== first) {
        throw new EventValidationError(
          `attribute "specversion": ${showValue(sv)} differs from ${showValue(first)} of event[0]; a batch must share one specversion`,
          "specversion",
        );
      }
      out[i] = eventFromObject(entry, src);
    } catch (err) {
      throw withPrefix(err, `event[${i}]: `);
    }
  }
  return out;
}

/** The offset of the entry after the one that ends at `end` in a JSON array, or -1 after the last. */
function nextEntry(text: string, end: number): number {
  const i = skipWs(text, end);
  return text.charCodeAt(i) === 0x2c ? skipWs(text, i + 1) : -1;
}

/** Charsets under which valid UTF-8 bytes mean the same text (so `data` as a string is lossless). */
function isUtf8Charset(ct: string): boolean {
  const cs = charsetOf(ct);
  return cs === undefined || cs === "utf-8" || cs === "utf8" || cs === "us-ascii";
}

/** How the JSON format writes binary data: as JSON (its text and value), as a string, or as base64. */
type BytesForm = { readonly as: "json"; readonly text: string; readonly value: unknown } | { readonly as: "text"; readonly text: string } | { readonly as: "base64" };

function bytesForm(bytes: Uint8Array, ct: AttributeValue | undefined): BytesForm {
  if (typeof ct === "string") {
    if (isJsonMediaType(ct)) {
      const text = utf8Text(bytes);
      if (text !== undefined) {
        try {
          checkJsonDepth(text);
          return { as: "json", text, value: JSON.parse(text) as unknown };
        } catch {
          // not JSON after all (or too deep to re-serialize safely): fall through to data_base64
        }
      }
    } else if (isTextMediaType(ct) && isUtf8Charset(ct)) {
      const text = utf8Text(bytes);
      if (text !== undefined) return { as: "text", text };
    }
  }
  return BASE64;
}
const BASE64: BytesForm = { as: "base64" };

function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
}

/**
 * The JSON-format member object of an event: every attribute as a top-level member with its JSON
 * type, then the data: `json` → `data` value; `text` → `data` string; `bytes` → `data` JSON value when
 * the content type is `*\/json` or `*\/*+json` and the bytes parse, `data` string when the content type
 * is textual (`text/*`, XML, or a charset) and the bytes are UTF-8 under a UTF-8-compatible charset,
 * otherwise `data_base64`. No data → neither member.
 */
export function toJsonObject(ev: CloudEvent): Record<string, unknown> {
  const out: Record<string, unknown> = cloneAttributes(ev.attributes);
  const data = ev.data;
  if (data === undefined) return out;
  if (data.kind === "json") out["data"] = data.value;
  else if (data.kind === "text") out["data"] = data.text;
  else {
    const form = bytesForm(data.bytes, ev.attributes["datacontenttype"]);
    if (form.as === "json") out["data"] = form.value;
    else if (form.as === "text") out["data"] = form.text;
    else out["data_base64"] = base64Of(data.bytes);
  }
  return out;
}

/**
 * The event in the JSON format (`toJsonObject`'s members), as one line of JSON text (no trailing
 * newline). JSON data is written as the text it came in when it has one (`json` data parsed from
 * the wire, or `bytes` under a JSON content type, which are parsed only to check them), its spaces
 * and number spelling included, instead of serializing its value again; text that spans lines is
 * serialized from its value, so the event stays on one line.
 */
export function serializeStructured(ev: CloudEvent): string {
  const data = ev.data;
  const head = JSON.stringify(ev.attributes);
  if (data === undefined) return head;
  let member: string;
  if (data.kind === "json") {
    const kept = data.text !== undefined ? singleLine(data.text) : undefined;
    member = '"data":' + (kept ?? stringifyData(data.value));
  } else if (data.kind === "text") {
    member = '"data":' + JSON.stringify(data.text);
  } else {
    const form = bytesForm(data.bytes, ev.attributes["datacontenttype"]);
    if (form.as === "json") member = '"data":' + (singleLine(form.text) ?? stringifyData(form.value));
    else if (form.as === "text") member = '"data":' + JSON.stringify(form.text);
    else member = '"data_base64":"' + base64Of(data.bytes) + '"';
  }
  return (head.length > 2 ? head.slice(0, -1) + "," : "{") + member + "}";
}

/** Events in the JSON batch format (a JSON array; `[]` for none). */
export function serializeBatch(evs: readonly CloudEvent[]): string {
  let out = "[";
  for (let i = 0; i < evs.length; i++) out += (i === 0 ? "" : ",") + serializeStructured(evs[i]!);
  return out + "]";
}
