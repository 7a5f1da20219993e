/**
 * CESQL v1 built-in functions (CESQL v1 §3.5; docs/cloudevents.md §8.5).
 *
 * Each overload declares its parameter types; the evaluator casts arguments to them before calling `impl`
 * (CESQL v1 §3.7 rule 3), so `impl` receives values of the declared types. `Any` parameters are passed as is:
 * the explicit casts INT/BOOL/STRING do their own casting so that a failure is a CastError, not a
 * FunctionEvaluationError.
 *
 * Overloads are resolved by name (case-insensitive, stored upper-case) and arity only, as the spec requires.
 * A call that matches no overload is not a compile error: the TCK (`CONCAT_WS()`) expects evaluation to return
 * `false` with a MissingFunctionError, so the compiler only records a diagnostic.
 *
 * "Character" is a Unicode code point throughout (LENGTH, LEFT, RIGHT, SUBSTRING), so an emoji counts as one.
 */
import { type CesqlType, type CesqlValue, INT_MIN, INT_MAX, castToBoolean, castToInteger, castToString, showValue } from "./casts.js";
import { type ErrorSink, evalError } from "./errors.js";

/** Parameter type: a CESQL type the argument is cast to, or `Any` (no implicit cast). */
export type ParamType = CesqlType | "Any";

/**
 * Implementation of one overload. `args` holds the already-cast arguments (reused between calls: read it, never
 * keep it). On failure the function records an error in `sink` (only if none is recorded yet) and still returns a
 * value of its return type, as CESQL v1 §3.5.3 requires.
 */
export type FunctionImpl = (sink: ErrorSink, pos: number, args: readonly CesqlValue[]) => CesqlValue;

/** One overload of a function. */
export interface FunctionOverload {
  /** Upper-case name. */
  readonly name: string;
  /** Types of the fixed parameters. */
  readonly params: readonly ParamType[];
  /** Type of the extra arguments when variadic (any count ≥ 0 after the fixed ones). */
  readonly variadic?: ParamType;
  readonly returns: CesqlType;
  readonly impl: FunctionImpl;
}

const SURROGATE = /[\uD800-\uDFFF]/;

/** Number of code points. */
function cpLength(s: string): number {
  if (!SURROGATE.test(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** Code-point slice `[start, end)`; both within `[0, cpLength(s)]`. */
function cpSlice(s: string, start: number, end: number): string {
  if (!SURROGATE.test(s)) return s.slice(start, end);
  return Array.from(s).slice(start, end).join("");
}

/** Records a FunctionEvaluationError unless an earlier error is already recorded (fail-fast keeps the first). */
function fail(sink: ErrorSink, pos: number, name: string, message: string): void {
  sink.err ??= evalError("functionEvaluation", `${name}: ${message}`, pos);
}

/**
 * Unicode White_Space (the property TRIM must use, CESQL v1 §3.5.1). Differs from JS `trim()`, which also strips
 * U+FEFF (not white space) and keeps U+0085 (white space).
 */
function isWhiteSpace(c: number): boolean {
  return (
    (c >= 0x09 && c <= 0x0d) ||
    c === 0x20 ||
    c === 0x85 ||
    c === 0xa0 ||
    c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 ||
    c === 0x2029 ||
    c === 0x202f ||
    c === 0x205f ||
    c === 0x3000
  );
}

function trim(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWhiteSpace(s.charCodeAt(a))) a++;
  while (b > a && isWhiteSpace(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function leftOrRight(name: "LEFT" | "RIGHT"): FunctionImpl {
  return (sink, pos, args) => {
    const s = args[0] as string;
    const n = args[1] as number;
    if (n < 0) {
      fail(sink, pos, name, `negative length ${n}`);
      return s; // CESQL v1 §3.5.1: returns x and raises an error
    }
    const len = cpLength(s);
    if (n >= len) return s;
    return name === "LEFT" ? cpSlice(s, 0, n) : cpSlice(s, len - n, len);
  };
}

const substring: FunctionImpl = (sink, pos, args) => {
  const s = args[0] as string;
  const p = args[1] as number;
  const count = args.length > 2 ? (args[2] as number) : undefined;
  const len = cpLength(s);
  if (p > len || p < -len) {
    fail(sink, pos, "SUBSTRING", `position ${p} is outside a string of length ${len}`);
    return "";
  }
  if (count !== undefined && count < 0) {
    fail(sink, pos, "SUBSTRING", `negative length ${count}`);
    return "";
  }
  if (p === 0) return "";
  const start = p > 0 ? p - 1 : len + p;
  const end = count === undefined ? len : Math.min(start + count, len);
  return cpSlice(s, start, end);
};

function overload(
  name: string,
  params: readonly ParamType[],
  returns: CesqlType,
  impl: FunctionImpl,
  variadic?: ParamType,
): FunctionOverload {
  return variadic === undefined ? { name, params, returns, impl } : { name, params, returns, impl, variadic };
}

/** Every built-in overload. */
export const BUILTIN_FUNCTIONS: readonly FunctionOverload[] = [
  // String manipulation, CESQL v1 §3.5.1
  overload("LENGTH", ["String"], "Integer", (_s, _p, a) => cpLength(a[0] as string)),
  overload("CONCAT", [], "String", (_s, _p, a) => (a as string[]).join(""), "String"),
  overload("CONCAT_WS", ["String"], "String", (_s, _p, a) => (a as string[]).slice(1).join(a[0] as string), "String"),
  overload("LOWER", ["String"], "String", (_s, _p, a) => (a[0] as string).toLowerCase()),
  overload("UPPER", ["String"], "String", (_s, _p, a) => (a[0] as string).toUpperCase()),
  overload("TRIM", ["String"], "String", (_s, _p, a) => trim(a[0] as string)),
  overload("LEFT", ["String", "Integer"], "String", leftOrRight("LEFT")),
  overload("RIGHT", ["String", "Integer"], "String", leftOrRight("RIGHT")),
  overload("SUBSTRING", ["String", "Integer"], "String", substring),
  overload("SUBSTRING", ["String", "Integer", "Integer"], "String", substring),
  // Math, CESQL v1 §3.5.2
  overload("ABS", ["Integer"], "Integer", (sink, pos, a) => {
    const n = a[0] as number;
    if (n === INT_MIN) {
      sink.err ??= evalError("math", "ABS(-2147483648) overflows a 32-bit Integer", pos);
      return INT_MAX; // the value the spec prescribes alongside the MathError
    }
    return Math.abs(n);
  }),
  // Explicit casts, CESQL v1 §3.7 (not in the function tables, but used by the spec examples and the TCK).
  overload("INT", ["Any"], "Integer", (sink, pos, a) => {
    const v = a[0] as CesqlValue;
    const n = castToInteger(v);
    if (n !== undefined) return n;
    sink.err ??= evalError("cast", `cannot cast ${showValue(v)} to Integer`, pos);
    return 0;
  }),
  overload("BOOL", ["Any"], "Boolean", (sink, pos, a) => {
    const v = a[0] as CesqlValue;
    const b = castToBoolean(v);
    if (b !== undefined) return b;
    sink.err ??= evalError("cast", `cannot cast ${showValue(v)} to Boolean`, pos);
    return false;
  }),
  overload("STRING", ["Any"], "String", (_s, _p, a) => castToString(a[0] as CesqlValue)),
  // Type tests from CESQL drafts (removed from the v1 TCK, kept as extensions because config authors ask for
  // them): true when the explicit cast would succeed.
  overload("IS_INT", ["Any"], "Boolean", (_s, _p, a) => castToInteger(a[0] as CesqlValue) !== undefined),
  overload("IS_BOOL", ["Any"], "Boolean", (_s, _p, a) => castToBoolean(a[0] as CesqlValue) !== undefined),
];

const BY_NAME: ReadonlyMap<string, readonly FunctionOverload[]> = (() => {
  const m = new Map<string, FunctionOverload[]>();
  for (const f of BUILTIN_FUNCTIONS) {
    const list = m.get(f.name) ?? [];
    list.push(f);
    m.set(f.name, list);
  }
  return m;
})();

/** Finds the overload of `name` (upper-case) that accepts `arity` arguments, if any. */
export function resolveFunction(name: string, arity: number): FunctionOverload | undefined {
  const list = BY_NAME.get(name);
  if (list === undefined) return undefined;
  // Exact arity first: the spec only allows a variadic overload whose fixed part is longer than every other one.
  const exact = list.find((f) => f.variadic === undefined && f.params.length === arity);
  return exact ?? list.find((f) => f.variadic !== undefined && arity >= f.params.length);
}

/** Describes the arities `name` accepts (for diagnostics), or `undefined` when no such function exists. */
export function describeArities(name: string): string | undefined {
  const list = BY_NAME.get(name);
  if (list === undefined) return undefined;
  return list.map((f) => (f.variadic === undefined ? `${f.params.length}` : `${f.params.length} or more`)).join(", ");
}
