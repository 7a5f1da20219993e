/**
 * LIKE pattern compilation (CESQL v1 §3.4.3).
 *
 * `%` matches any run of characters (including none), `_` exactly one character, `\%` and `\_` match the
 * literal character. Every other character, a backslash included, matches itself, case-sensitively: the spec only
 * names `%` and `_` as escapable, and treating `\x` as a literal backslash is what makes the TCK's
 * `'ab\c' LIKE 'ab\c'` true.
 *
 * Why not a RegExp: `%a%a%a%b`-style patterns backtrack polynomially in a regex engine, and the expression
 * comes from config while the value comes from the network. The matcher below splits the pattern at `%` into
 * fixed-length segments and places each middle segment at its leftmost match, which is exact for this pattern
 * language and costs at most O(value × pattern). Common shapes (`abc%`, `%abc`, `%abc%`, exact) become one
 * `startsWith`/`endsWith`/`includes`/`===`.
 *
 * "Character" means Unicode code point, so `_` consumes a whole surrogate pair.
 */

/** A compiled pattern: tests one value. */
export type LikeMatcher = (value: string) => boolean;

/** Marker for `_` inside a segment. A symbol cannot collide with a one-character string. */
const ONE = Symbol("one");
type Unit = string | typeof ONE;

const SURROGATE = /[\uD800-\uDFFF]/;

/** Parses the pattern into segments separated by unescaped `%`; each segment is a list of code points or ONE. */
function segmentsOf(pattern: string): Unit[][] {
  const cps = Array.from(pattern);
  const segments: Unit[][] = [[]];
  for (let i = 0; i < cps.length; i++) {
    const c = cps[i] as string;
    const current = segments[segments.length - 1] as Unit[];
    if (c === "\\" && (cps[i + 1] === "%" || cps[i + 1] === "_")) {
      current.push(cps[i + 1] as string);
      i++;
    } else if (c === "%") {
      segments.push([]);
    } else if (c === "_") {
      current.push(ONE);
    } else {
      current.push(c);
    }
  }
  return segments;
}

/** Does `seg` match `s` at `at`? `s` is a string (code units) or an array of code points. */
function matchAt(s: ArrayLike<string>, at: number, seg: readonly Unit[]): boolean {
  for (let k = 0; k < seg.length; k++) {
    const u = seg[k];
    if (u !== ONE && s[at + k] !== u) return false;
  }
  return true;
}

/** General matcher over segments (see file comment). */
function matchSegments(s: ArrayLike<string>, segs: readonly (readonly Unit[])[]): boolean {
  const first = segs[0] as readonly Unit[];
  if (segs.length === 1) return s.length === first.length && matchAt(s, 0, first);
  const last = segs[segs.length - 1] as readonly Unit[];
  let start = first.length;
  const end = s.length - last.length;
  if (end < start || !matchAt(s, 0, first) || !matchAt(s, end, last)) return false;
  for (let i = 1; i < segs.length - 1; i++) {
    const seg = segs[i] as readonly Unit[];
    let p = start;
    const lastStart = end - seg.length;
    while (p <= lastStart && !matchAt(s, p, seg)) p++;
    if (p > lastStart) return false;
    start = p + seg.length;
  }
  return true;
}

/** Compiles a LIKE pattern (the raw string-literal value, escapes still in it). */
export function compileLike(pattern: string): LikeMatcher {
  const segs = segmentsOf(pattern).filter((seg, i, all) => seg.length > 0 || i === 0 || i === all.length - 1);
  // Consecutive `%` produce empty middle segments; dropping them is harmless (`%%` ≡ `%`).
  const hasOne = segs.some((seg) => seg.includes(ONE));
  if (!hasOne) {
    // Only literals and `%`: code-unit string operations give the same answer as code-point matching.
    const lits = segs.map((seg) => (seg as string[]).join(""));
    if (lits.length === 1) {
      const lit = lits[0] as string;
      return (v) => v === lit;
    }
    if (lits.length === 2) {
      const [a, b] = lits as [string, string];
      if (b === "") return a === "" ? () => true : (v) => v.startsWith(a);
      if (a === "") return (v) => v.endsWith(b);
      const min = a.length + b.length;
      return (v) => v.length >= min && v.startsWith(a) && v.endsWith(b);
    }
    if (lits.length === 3 && lits[0] === "" && lits[2] === "") {
      const mid = lits[1] as string;
      return (v) => v.includes(mid);
    }
  }
  // Code-unit segments for values without surrogates (the usual case), code-point ones for the rest.
  const unitSegs: Unit[][] = segs.map((seg) => seg.flatMap((u): Unit[] => (u === ONE ? [ONE] : u.split(""))));
  if (!hasOne) return (v) => matchSegments(v, unitSegs);
  return (v) => (SURROGATE.test(v) ? matchSegments(Array.from(v), segs) : matchSegments(v, unitSegs));
}
