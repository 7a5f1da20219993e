/**
 * Header value percent-encoding of the CloudEvents HTTP binding 1.0.2 (§3.1.3.2), also used by NATS.
 *
 * Senders are strict and minimal: only space, `"`, `%` and code points outside U+0021–U+007E are
 * encoded, so `https://x/y` stays readable for the many receivers that never decode. Receivers are
 * tolerant: quoted-strings from older senders are undone, a `%` that does not start a `%XX` escape is
 * kept as is (SDKs that do not encode send literal `100%`), but a well-formed escape sequence that
 * decodes to invalid UTF-8 is refused, as the spec requires.
 */
import { FormatError } from "../core/errors.js";

/** `%00` … `%FF`, upper-case, built once. */
const ESCAPES: readonly string[] = Array.from({ length: 256 }, (_, b) => "%" + b.toString(16).toUpperCase().padStart(2, "0"));

// `ignoreBOM` keeps an encoded U+FEFF as a character instead of silently dropping it.
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function needsEncoding(u: number): boolean {
  return u < 0x21 || u > 0x7e || u === 0x22 || u === 0x25;
}

/**
 * Percent-encodes a header value per CloudEvents 1.0.2: code point-wise (a surrogate pair is one
 * character), each encoded code point as its UTF-8 bytes in upper-case `%XX`. Returns the input
 * itself when nothing needs encoding. An unpaired surrogate (never present in a validated event) is
 * encoded as U+FFFD, like `TextEncoder` does.
 */
export function percentEncode(value: string): string {
  let i = 0;
  while (i < value.length && !needsEncoding(value.charCodeAt(i))) i++;
  if (i === value.length) return value;
  let out = value.slice(0, i);
  for (; i < value.length; i++) {
    const u = value.charCodeAt(i);
    if (!needsEncoding(u)) {
      out += value[i];
      continue;
    }
    let cp = u;
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < value.length) {
      const l = value.charCodeAt(i + 1);
      if (l >= 0xdc00 && l <= 0xdfff) {
        cp = ((u - 0xd800) << 10) + (l - 0xdc00) + 0x10000;
        i++;
      }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) {
      out += ESCAPES[cp];
    } else if (cp < 0x800) {
      out += ESCAPES[0xc0 | (cp >> 6)]! + ESCAPES[0x80 | (cp & 0x3f)]!;
    } else if (cp < 0x10000) {
      out += ESCAPES[0xe0 | (cp >> 12)]! + ESCAPES[0x80 | ((cp >> 6) & 0x3f)]! + ESCAPES[0x80 | (cp & 0x3f)]!;
    } else {
      out +=
        ESCAPES[0xf0 | (cp >> 18)]! +
        ESCAPES[0x80 | ((cp >> 12) & 0x3f)]! +
        ESCAPES[0x80 | ((cp >> 6) & 0x3f)]! +
        ESCAPES[0x80 | (cp & 0x3f)]!;
    }
  }
  return out;
}

function hexVal(u: number): number {
  if (u >= 0x30 && u <= 0x39) return u - 0x30;
  const l = u | 0x20;
  return l >= 0x61 && l <= 0x66 ? l - 0x57 : -1;
}

/** Undoes an RFC 7230 quoted-string (`"a\"b"` → `a"b`); an unterminated quote is kept raw. */
function unquote(value: string): string {
  if (value.length < 2 || value.charCodeAt(value.length - 1) !== 0x22) return value;
  let out = "";
  for (let i = 1; i < value.length - 1; i++) {
    let ch = value[i]!;
    if (ch === "\\" && i + 1 < value.length - 1) ch = value[++i]!;
    else if (ch === '"') return value; // an inner unescaped quote: not a quoted-string after all
    out += ch;
  }
  return out;
}

/**
 * Decodes a received header value: first undoes an RFC 7230 quoted-string when the value is wrapped
 * in `"`, then applies exactly one round of percent-decoding. Lower-case hex and unnecessary escapes
 * (`%41`) are accepted; a `%` not followed by two hex digits is kept raw. Throws `FormatError`
 * naming the value when well-formed escapes decode to invalid UTF-8 (`%C0%A0`, a lone `%E2`).
 */
export function percentDecode(value: string): string {
  const v = value.charCodeAt(0) === 0x22 ? unquote(value) : value;
  let pct = v.indexOf("%");
  if (pct < 0) return v;
  let out = v.slice(0, pct);
  let i = pct;
  let bytes: number[] | undefined;
  while (i < v.length) {
    const u = v.charCodeAt(i);
    const hi = u === 0x25 && i + 2 < v.length ? hexVal(v.charCodeAt(i + 1)) : -1;
    const lo = hi >= 0 ? hexVal(v.charCodeAt(i + 2)) : -1;
    if (lo >= 0) {
      // Collect a run of escapes and decode it as one UTF-8 sequence.
      (bytes ??= []).length = 0;
      while (i + 2 < v.length && v.charCodeAt(i) === 0x25) {
        const h = hexVal(v.charCodeAt(i + 1));
        const l = h >= 0 ? hexVal(v.charCodeAt(i + 2)) : -1;
        if (l < 0) break;
        bytes.push((h << 4) | l);
        i += 3;
      }
      out += decodeRun(bytes, value);
      continue;
    }
    // Copy a literal run up to the next `%` (which may or may not start an escape).
    pct = v.indexOf("%", i + 1);
    const end = pct < 0 ? v.length : pct;
    out += v.slice(i, end);
    i = end;
  }
  return out;
}

function decodeRun(bytes: number[], original: string): string {
  let ascii = "";
  for (const b of bytes) {
    if (b >= 0x80) return decodeUtf8(bytes, original);
    ascii += String.fromCharCode(b);
  }
  return ascii;
}

function decodeUtf8(bytes: number[], original: string): string {
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    const shown = original.length > 80 ? original.slice(0, 80) + "…" : original;
    throw new FormatError(`header value ${JSON.stringify(shown)}: percent-escapes decode to invalid UTF-8`);
  }
}
