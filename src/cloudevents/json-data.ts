/**
 * JSON data as text: the one place every writer (JSON format, binary mode, Protobuf, the disk buffer,
 * connectors) turns `{ kind: "json" }` data into JSON text, and the scanner that lets the JSON-format
 * parser keep the text of `data` as it arrived.
 *
 * Why: a structured event forwarded in structured or binary mode used to have its data serialized
 * again with `JSON.stringify`, which was most of `serializeStructured`'s cost on a 1 KiB event
 * (BENCHMARKS.md). Splicing the received text costs a scan of the member names at the top level.
 */
import { FormatError } from "../core/errors.js";

/** JSON data, as `EventData`'s `json` variant. */
export interface JsonData {
  readonly value: unknown;
  readonly text?: string | undefined;
}

/**
 * The JSON text of `data`: the text it was parsed from when kept, else `JSON.stringify(value)`.
 * Throws `FormatError` for a value that cannot be serialized (a cycle, a BigInt, `undefined`).
 */
export function jsonDataText(data: JsonData): string {
  return data.text ?? stringifyData(data.value);
}

/** `JSON.stringify(value)` for event data. Throws `FormatError` like `jsonDataText`. */
export function stringifyData(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    throw new FormatError(`data: not serializable as JSON: ${(err as Error).message}`, { cause: err });
  }
  if (text === undefined) throw new FormatError("data: not serializable as JSON");
  return text;
}

/**
 * JSON text for a member of a single-line document (the JSON format is written one event per line,
 * and the file and stdout sinks rely on it): `text` with the JSON whitespace at its ends dropped,
 * unless a line break is left inside it, which only JSON whitespace between tokens can be (a string
 * holds its line breaks escaped); then `undefined`, and the caller serializes the value.
 */
export function singleLine(text: string): string | undefined {
  const t = isJsonWs(text.charCodeAt(0)) || isJsonWs(text.charCodeAt(text.length - 1)) ? text.trim() : text;
  return t.indexOf("\n") < 0 && t.indexOf("\r") < 0 ? t : undefined;
}

function isJsonWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** Where an object's `data` member value is in the text, and where the object ends. */
export interface ObjectScan {
  /** Offset of the first character of the last top-level `data` member's value, or -1 without one. */
  readonly dataStart: number;
  /** Offset just after that value (-1 without one). */
  readonly dataEnd: number;
  /** Offset just after the object's closing `}`. */
  readonly end: number;
}

/**
 * Scans the JSON object that starts at `text[at]` (which must be `{`) for its `data` member.
 *
 * Contract: `text` has already been accepted by `JSON.parse`, so the scanner does not validate; on
 * anything it does not expect it returns `undefined` and the caller serializes the value instead.
 * Like `JSON.parse`, the last of duplicate `data` members wins, and a name written with escapes
 * (`"d\u0061ta"`) is compared after decoding.
 */
export function scanObject(text: string, at: number): ObjectScan | undefined {
  if (text.charCodeAt(at) !== 0x7b) return undefined;
  let dataStart = -1;
  let dataEnd = -1;
  let i = skipWs(text, at + 1);
  if (text.charCodeAt(i) === 0x7d) return { dataStart, dataEnd, end: i + 1 };
  for (;;) {
    if (text.charCodeAt(i) !== 0x22) return undefined;
    const nameEnd = stringEnd(text, i);
    if (nameEnd < 0) return undefined;
    const isData = isDataName(text, i, nameEnd);
    i = skipWs(text, nameEnd + 1);
    if (text.charCodeAt(i) !== 0x3a) return undefined;
    const valueStart = skipWs(text, i + 1);
    const valueEnd = valueEndAt(text, valueStart);
    if (valueEnd < 0) return undefined;
    if (isData) {
      dataStart = valueStart;
      dataEnd = valueEnd;
    }
    i = skipWs(text, valueEnd);
    const c = text.charCodeAt(i);
    if (c === 0x7d) return { dataStart, dataEnd, end: i + 1 };
    if (c !== 0x2c) return undefined;
    i = skipWs(text, i + 1);
  }
}

/**
 * `scanObject`, faster for the usual layout (attributes with plain values first, `data` last): the
 * first `"data"` name, found with a native `indexOf`, is a member of this object when no bracket
 * comes between the object's `{` and it, and it is the object's last member (so no later duplicate
 * can win) when its value is followed by the closing `}`. Only the data value itself is then walked;
 * the attributes before it are never tokenized. Anything else falls back to `scanObject`, under the
 * same contract (`text` already accepted by `JSON.parse`).
 */
export function scanData(text: string, at: number): ObjectScan | undefined {
  for (let q = text.indexOf('"data"', at); q > 0; q = text.indexOf('"data"', q + 1)) {
    if (isEscaped(text, q)) continue; // `\"data\"` inside a string
    const colon = skipWs(text, q + 6);
    if (text.charCodeAt(colon) !== 0x3a) continue; // a string value, not a member name
    if (hasBracket(text, at + 1, q)) break; // nested somewhere: only a full scan can tell
    const start = skipWs(text, colon + 1);
    const end = valueEndAt(text, start);
    if (end < 0) break;
    const close = skipWs(text, end);
    if (text.charCodeAt(close) === 0x7d) return { dataStart: start, dataEnd: end, end: close + 1 };
    break; // not the last member: a later duplicate could win
  }
  return scanObject(text, at);
}

/** True when one of `{`, `[`, `}`, `]` occurs in `text[from, to)`. */
function hasBracket(text: string, from: number, to: number): boolean {
  // On a slice, so that a bracket absent from the prefix does not make indexOf read the whole data.
  const prefix = text.slice(from, to);
  for (const b of BRACKETS) if (prefix.indexOf(b) >= 0) return true;
  return false;
}
const BRACKETS = ["{", "[", "}", "]"] as const;

/** The offset of the first non-whitespace character at or after `i` (JSON whitespace only). */
export function skipWs(text: string, i: number): number {
  while (isJsonWs(text.charCodeAt(i))) i++;
  return i;
}

/** The offset of the quote that closes the JSON string opening at `open`, or -1. */
export function stringEnd(text: string, open: number): number {
  let j = text.indexOf('"', open + 1);
  while (j > 0 && isEscaped(text, j)) j = text.indexOf('"', j + 1);
  return j;
}

/** True when the quote at `at` is preceded by an odd number of backslashes. */
function isEscaped(text: string, at: number): boolean {
  let n = 0;
  while (text.charCodeAt(at - 1 - n) === 0x5c) n++;
  return (n & 1) === 1;
}

function isDataName(text: string, open: number, close: number): boolean {
  if (close - open === 5) return text.startsWith("data", open + 1);
  // Only a name with escapes can decode to "data" from another length.
  return text.indexOf("\\", open) < close && JSON.parse(text.slice(open, close + 1)) === "data";
}

/** The offset just after the JSON value that starts at `i`, or -1. */
function valueEndAt(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) {
    const j = stringEnd(text, i);
    return j < 0 ? -1 : j + 1;
  }
  if (c === 0x7b || c === 0x5b) return containerEnd(text, i);
  // A number, true, false or null: runs to the next delimiter.
  let j = i;
  for (; j < text.length; j++) {
    const d = text.charCodeAt(j);
    if (d === 0x2c || d === 0x7d || d === 0x5d || isJsonWs(d)) break;
  }
  return j === i ? -1 : j;
}

/** The offset just after the object or array opening at `open`, strings jumped over natively. */
function containerEnd(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      i = stringEnd(text, i);
      if (i < 0) return -1;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
    } else if (c === 0x7d || c === 0x5d) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}
