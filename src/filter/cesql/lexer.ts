/**
 * CESQL v1 lexer: turns an expression into tokens with their source offsets.
 *
 * Hand-written rather than generated from `CESQLLexer.g4` because the ANTLR lexer only knows upper-case keywords
 * (the spec makes keywords case-insensitive) and because the bridge wants exact error positions.
 *
 * Choices, all following the ANTLR lexer of cesql@v1.0.0 unless noted:
 * - Whitespace is `[ \t\r\n]`.
 * - A word is a run of `[A-Za-z0-9_]`; all digits ⇒ integer literal, else a keyword (case-insensitive) or a word
 *   the parser reads as an identifier or a function name depending on whether `(` follows.
 * - Signs are separate tokens; the parser folds `-` + integer into one literal so `-2147483648` is valid
 *   (the ANTLR lexer glues the sign on, which makes `4 -1` a syntax error there; we do not copy that).
 * - String literals: `'…'` or `"…"`. `\<delimiter>` and a doubled delimiter both stand for the delimiter (the
 *   spec EBNF has the first, the ANTLR lexer also accepts the second). Every other backslash pair is kept
 *   verbatim: a LIKE pattern needs to see `\%` and `\_`, and the TCK expects `'ab\c' LIKE 'ab\c'` to hold.
 */
import { CesqlParseError } from "./errors.js";

/** Keywords of the language, upper-cased. */
export type Keyword = "AND" | "OR" | "XOR" | "NOT" | "LIKE" | "EXISTS" | "IN" | "TRUE" | "FALSE";

/** Punctuation and operator symbols. */
export type Punct = "(" | ")" | "," | "+" | "-" | "*" | "/" | "%" | "=" | "!=" | "<>" | "<" | "<=" | ">" | ">=";

/** One token. `pos`/`end` are 0-based UTF-16 offsets into the expression, `end` exclusive. */
export type Token =
  | { readonly type: "int"; readonly digits: string; readonly pos: number; readonly end: number }
  | { readonly type: "string"; readonly value: string; readonly pos: number; readonly end: number }
  | { readonly type: "word"; readonly text: string; readonly pos: number; readonly end: number }
  | { readonly type: "keyword"; readonly keyword: Keyword; readonly pos: number; readonly end: number }
  | { readonly type: "symbol"; readonly symbol: Punct; readonly pos: number; readonly end: number }
  | { readonly type: "eof"; readonly pos: number; readonly end: number };

const KEYWORDS: ReadonlySet<string> = new Set<Keyword>(["AND", "OR", "XOR", "NOT", "LIKE", "EXISTS", "IN", "TRUE", "FALSE"]);

const SINGLE_SYMBOLS: ReadonlySet<string> = new Set(["(", ")", ",", "+", "-", "*", "/", "%", "="]);

function isWordChar(c: number): boolean {
  return (
    (c >= 0x30 && c <= 0x39) || // 0-9
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    c === 0x5f // _
  );
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}

/** Shows a token the way a user typed it, for error messages. */
export function describeToken(token: Token, source: string): string {
  return token.type === "eof" ? "end of expression" : `"${source.slice(token.pos, token.end)}"`;
}

/**
 * Splits `source` into tokens, ending with one `eof` token.
 * @throws CesqlParseError on a character that starts no token or an unterminated string literal.
 */
export function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  const n = source.length;
  let i = 0;
  while (i < n) {
    const c = source.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    const start = i;
    if (isWordChar(c)) {
      while (i < n && isWordChar(source.charCodeAt(i))) i++;
      const text = source.slice(start, i);
      if (/^[0-9]+$/.test(text)) {
        tokens.push({ type: "int", digits: text, pos: start, end: i });
      } else {
        const upper = text.toUpperCase();
        if (KEYWORDS.has(upper)) tokens.push({ type: "keyword", keyword: upper as Keyword, pos: start, end: i });
        else tokens.push({ type: "word", text, pos: start, end: i });
      }
      continue;
    }
    if (c === 0x27 || c === 0x22) {
      const { value, end } = readString(source, start);
      tokens.push({ type: "string", value, pos: start, end });
      i = end;
      continue;
    }
    const two = source.slice(i, i + 2);
    if (two === "!=" || two === "<>" || two === "<=" || two === ">=") {
      tokens.push({ type: "symbol", symbol: two, pos: start, end: i + 2 });
      i += 2;
      continue;
    }
    const one = source[i] as string;
    if (SINGLE_SYMBOLS.has(one) || one === "<" || one === ">") {
      tokens.push({ type: "symbol", symbol: one as Punct, pos: start, end: i + 1 });
      i++;
      continue;
    }
    const shown = String.fromCodePoint(source.codePointAt(i) ?? c);
    throw new CesqlParseError(`unexpected character ${JSON.stringify(shown)}`, start);
  }
  tokens.push({ type: "eof", pos: n, end: n });
  return tokens;
}

/** Reads the string literal whose opening quote is at `start`; returns its value and the offset after it. */
function readString(source: string, start: number): { value: string; end: number } {
  const quote = source[start] as string;
  const n = source.length;
  let value = "";
  let chunk = start + 1; // start of the run of plain characters not yet copied into `value`
  let i = start + 1;
  while (i < n) {
    const ch = source[i];
    if (ch === "\\") {
      if (i + 1 >= n) break; // a trailing backslash escapes the end of input: unterminated
      if (source[i + 1] === quote) {
        value += source.slice(chunk, i) + quote;
        i += 2;
        chunk = i;
      } else {
        i += 2; // kept verbatim, see the file comment
      }
      continue;
    }
    if (ch === quote) {
      if (source[i + 1] === quote) {
        value += source.slice(chunk, i) + quote;
        i += 2;
        chunk = i;
        continue;
      }
      return { value: value + source.slice(chunk, i), end: i + 1 };
    }
    i++;
  }
  throw new CesqlParseError("unterminated string literal", start);
}
