/**
 * CloudEvents 1.0 validation: attribute names, required attributes and the type system (§1.2–1.5).
 *
 * Runs once per event on the hot path, so every regex is compiled at module load, timestamps are
 * parsed by hand without allocating, and strings are scanned character by character only when a
 * native regex test has already found a suspicious code unit.
 */
import { EventValidationError } from "../core/errors.js";
import type { AttributeValue, CloudEvent } from "./event.js";
import { REQUIRED_ATTRIBUTES } from "./event.js";

// Any code unit that may break the String rules: C0/C1 controls, surrogates (paired ones are fine,
// checked in the slow path), U+FDD0–U+FDEF and U+FFFE/U+FFFF. Plane 1–16 noncharacters are encoded as
// surrogate pairs, so they are caught by the surrogate range too.
const SUSPICIOUS_RE = /[\u0000-\u001f\u007f-\u009f\ud800-\udfff\ufdd0-\ufdef\ufffe\uffff]/;

// RFC 3986 URI (scheme required, fragment allowed) and relative-ref. Built twice: the usual value has no
// `%`, and without the `%XX` alternative every repetition is a plain character class, which is several
// times faster; values with `%` use the full grammar.
function uriRegexes(withEscapes: boolean): [uri: RegExp, relative: RegExp] {
  const HEX = "%[0-9A-Fa-f]{2}";
  const SUB = "A-Za-z0-9\\-._~!$&'()*+,;=";
  const alt = (cls: string) => (withEscapes ? `(?:[${cls}]|${HEX})` : `[${cls}]`);
  const PCHAR = alt(`${SUB}:@`);
  const PCHAR_NC = alt(`${SUB}@`);
  const QUERY = withEscapes ? `(?:${PCHAR}|[/?])*` : `[${SUB}:@/?]*`;
  const AUTHORITY = `(?:${alt(`${SUB}:`)}*@)?(?:\\[[0-9A-Za-z:.\\-_~!$&'()*+,;=]+\\]|${alt(SUB)}*)(?::[0-9]*)?`;
  const PATH_ABEMPTY = `(?:/${PCHAR}*)*`;
  const TAIL = `(?:\\?${QUERY})?(?:#${QUERY})?`;
  const HIER = `(?://${AUTHORITY}${PATH_ABEMPTY}|/(?:${PCHAR}+${PATH_ABEMPTY})?|${PCHAR}+${PATH_ABEMPTY}|)`;
  const REL = `(?://${AUTHORITY}${PATH_ABEMPTY}|/(?:${PCHAR}+${PATH_ABEMPTY})?|${PCHAR_NC}+${PATH_ABEMPTY}|)`;
  return [new RegExp(`^[A-Za-z][A-Za-z0-9+.\\-]*:${HIER}${TAIL}$`), new RegExp(`^${REL}${TAIL}$`)];
}
const [URI_RE, RELATIVE_REF_RE] = uriRegexes(true);
const [URI_PLAIN_RE, RELATIVE_REF_PLAIN_RE] = uriRegexes(false);
// A scheme followed by `:` — decides which of the two grammars to try, so only one regex runs.
const SCHEME_RE = /^[A-Za-z][A-Za-z0-9+.\-]*:/;

// RFC 2046 / RFC 2045 media type: token "/" token *(OWS ";" OWS token "=" (token / quoted-string)).
const TOKEN = "[!#$%&'*+\\-.^_`{|}~0-9A-Za-z]+";
const QUOTED = '"(?:[^"\\\\]|\\\\.)*"';
const MEDIA_TYPE_RE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED}))*[ \\t]*$`);

// RFC 4648 base64 (standard alphabet); padding may be omitted, but a lone trailing sextet never is valid.
const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;
const DAYS_IN_MONTH = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** True when `name` is a legal attribute name: `[a-z0-9]+`, and not `data` (reserved by the formats). */
export function isValidAttributeName(name: string): boolean {
  // A char-code loop beats a regex call on names this short (it runs once per attribute per event).
  const n = name.length;
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const u = name.charCodeAt(i);
    if (!((u >= 0x61 && u <= 0x7a) || (u >= 0x30 && u <= 0x39))) return false;
  }
  return name !== "data";
}

/** True when `s` is an RFC 3986 URI-reference (absolute or relative). */
export function isUriReference(s: string): boolean {
  if (SCHEME_RE.test(s)) return isAbsoluteUri(s);
  return s.indexOf("%") < 0 ? RELATIVE_REF_PLAIN_RE.test(s) : RELATIVE_REF_RE.test(s);
}

/** True when `s` is an absolute RFC 3986 URI (a scheme is required; a fragment is tolerated). */
export function isAbsoluteUri(s: string): boolean {
  return s.indexOf("%") < 0 ? URI_PLAIN_RE.test(s) : URI_RE.test(s);
}

/** True when `s` is syntactically an RFC 2046 media type (parameters allowed). */
export function isMediaType(s: string): boolean {
  return MEDIA_TYPE_RE.test(s);
}

/** True when `s` is RFC 4648 base64 in the standard alphabet (missing padding tolerated, no whitespace). */
export function isBase64(s: string): boolean {
  return s.length % 4 !== 1 && BASE64_RE.test(s);
}

function c(s: string, i: number): number {
  return s.charCodeAt(i);
}

function digits(s: string, at: number, n: number): number {
  let v = 0;
  for (let i = at; i < at + n; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * True when `s` is an RFC 3339 date-time with a valid calendar date: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±hh:mm)`,
 * `T`/`t` and `Z`/`z` accepted, second 60 allowed (leap second), days checked per month and leap year.
 */
export function isRfc3339(s: string): boolean {
  if (s.length < 20) return false;
  if (c(s, 4) !== 45 || c(s, 7) !== 45 || (c(s, 10) !== 84 && c(s, 10) !== 116) || c(s, 13) !== 58 || c(s, 16) !== 58) return false;
  const year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
  const hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  if (year < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23) return false;
  if (minute < 0 || minute > 59 || second < 0 || second > 60) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month]!)) return false;
  let i = 19;
  if (c(s, i) === 46) {
    const start = ++i;
    while (i < s.length && c(s, i) >= 48 && c(s, i) <= 57) i++;
    if (i === start) return false;
  }
  const z = c(s, i);
  if (z === 90 || z === 122) return i + 1 === s.length;
  if ((z !== 43 && z !== 45) || s.length !== i + 6 || c(s, i + 3) !== 58) return false;
  const oh = digits(s, i + 1, 2), om = digits(s, i + 4, 2);
  return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

/**
 * Why `s` breaks the String rules (controls U+0000–U+001F and U+007F–U+009F, noncharacters,
 * unpaired surrogates), or `undefined` when it does not.
 */
export function stringProblem(s: string): string | undefined {
  if (!SUSPICIOUS_RE.test(s)) return undefined;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u <= 0x1f || (u >= 0x7f && u <= 0x9f)) return `must not contain control character ${hexCp(u)}`;
    if ((u >= 0xfdd0 && u <= 0xfdef) || u === 0xfffe || u === 0xffff) return `must not contain noncharacter ${hexCp(u)}`;
    if (u >= 0xd800 && u <= 0xdbff) {
      const l = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (l < 0xdc00 || l > 0xdfff) return `must not contain unpaired surrogate ${hexCp(u)}`;
      const cp = ((u - 0xd800) << 10) + (l - 0xdc00) + 0x10000;
      if ((cp & 0xfffe) === 0xfffe) return `must not contain noncharacter ${hexCp(cp)}`;
      i++;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      return `must not contain unpaired surrogate ${hexCp(u)}`;
    }
  }
  return undefined;
}

function hexCp(cp: number): string {
  return "U+" + cp.toString(16).toUpperCase().padStart(4, "0");
}

/** A value for an error message: JSON-quoted (so controls are visible) and cut to a readable length. */
export function showValue(value: unknown): string {
  const s = typeof value === "string" && value.length > 80 ? value.slice(0, 80) + "…" : value;
  return JSON.stringify(s) ?? String(s);
}

function typeRule(name: string, s: string): string | undefined {
  switch (name) {
    case "specversion":
      return s === "1.0" ? undefined : "must be \"1.0\"";
    case "id":
    case "type":
      return s === "" ? "must be a non-empty string" : undefined;
    case "source":
      if (s === "") return "must be a non-empty URI-reference";
      return isUriReference(s) ? undefined : "must be a URI-reference (RFC 3986)";
    case "dataschema":
      return isAbsoluteUri(s) ? undefined : "must be a non-empty absolute URI (RFC 3986)";
    case "subject":
      return s === "" ? "must be a non-empty string" : undefined;
    case "time":
      return isRfc3339(s) ? undefined : "must be an RFC 3339 timestamp";
    case "datacontenttype":
      return isMediaType(s) ? undefined : "must be an RFC 2046 media type";
    default:
      return undefined;
  }
}

function isCore(name: string): boolean {
  switch (name) {
    case "specversion": case "id": case "source": case "type":
    case "datacontenttype": case "dataschema": case "subject": case "time":
      return true;
    default:
      return false;
  }
}

/**
 * Checks one attribute (name and value) against the 1.0 rules. Returns the complete error message
 * (`attribute "time": must be an RFC 3339 timestamp, got "2020-13-01"`) or `undefined` when valid.
 * Does not check presence of required attributes (see `validateEvent`).
 */
export function checkAttribute(name: string, value: unknown): string | undefined {
  if (!isValidAttributeName(name)) {
    return name === "data"
      ? `attribute "data": the name is reserved for event data`
      : `attribute ${showValue(name)}: name must consist of lower-case letters a-z and digits 0-9`;
  }
  if (typeof value === "string") {
    const problem = stringProblem(value) ?? typeRule(name, value);
    return problem === undefined ? undefined : `attribute "${name}": ${problem}, got ${showValue(value)}`;
  }
  if (isCore(name)) return `attribute "${name}": must be a string, got ${showValue(value)}`;
  if (typeof value === "boolean") return undefined;
  if (typeof value === "number") {
    if (Number.isInteger(value) && value >= INT32_MIN && value <= INT32_MAX) return undefined;
    return `attribute "${name}": an Integer must be a whole number within -2147483648..2147483647, got ${value}`;
  }
  return `attribute "${name}": must be a string, boolean or integer, got ${showValue(value)}`;
}

/**
 * Validates an event against CloudEvents 1.0 and returns the same object, or throws
 * `EventValidationError` naming the attribute and the rule it breaks. Data is not inspected.
 */
export function validateEvent(ev: CloudEvent): CloudEvent {
  const attrs = ev.attributes as Record<string, AttributeValue | undefined>;
  for (const name of REQUIRED_ATTRIBUTES) {
    if (attrs[name] === undefined) throw new EventValidationError(`attribute "${name}": required attribute is missing`, name);
  }
  for (const name in attrs) {
    const value = attrs[name];
    if (value === undefined) continue;
    const message = checkAttribute(name, value);
    if (message !== undefined) throw new EventValidationError(message, name);
  }
  return ev;
}
