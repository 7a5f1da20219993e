/**
 * CESQL v1 value types and the casts between them (CESQL v1 §3.1, §3.7; docs/cloudevents.md §8.3, §8.6).
 *
 * These are pure functions: a failed cast returns `undefined` and the caller (evaluate.ts) decides which
 * error to record and which zero value to return. Keeping them pure lets the compiler pre-cast literal
 * operands (e.g. the elements of an `IN` set) once, at compile time.
 */

/** A CESQL runtime value: String, Integer (a 32-bit signed integer stored in a JS number) or Boolean. */
export type CesqlValue = boolean | number | string;

/** CESQL primitive type names as used in messages and signatures. */
export type CesqlType = "Boolean" | "Integer" | "String";

/** Static type of an expression: a primitive type, or `Any` when only known at run time (attribute access). */
export type StaticType = CesqlType | "Any";

/** Smallest CESQL Integer (-2^31). */
export const INT_MIN = -2147483648;
/** Largest CESQL Integer (2^31 - 1). */
export const INT_MAX = 2147483647;

/** The zero value of each type (CESQL v1 §3.1). `Any` uses Boolean, as §3.2 says for unknowable return types. */
export function zeroValue(type: StaticType): CesqlValue {
  return type === "Integer" ? 0 : type === "String" ? "" : false;
}

/** The CESQL type of a runtime value. */
export function typeOf(value: CesqlValue): CesqlType {
  return typeof value === "string" ? "String" : typeof value === "number" ? "Integer" : "Boolean";
}

const INT_PATTERN = /^[+-]?[0-9]+$/;

/**
 * String → Integer: optional sign, base-10 digits, must fit in 32 bits. Anything else (blank, spaces, `1.0`,
 * `0x10`, overflow) fails. Stricter than JS `Number()` on purpose: `Number("")` is 0 and `Number(" 1 ")` is 1.
 */
export function stringToInteger(s: string): number | undefined {
  if (!INT_PATTERN.test(s)) return undefined;
  const n = Number(s); // exact for anything up to 2^53, and longer digit strings land far outside int32 anyway
  return n >= INT_MIN && n <= INT_MAX ? n + 0 /* turns -0 ("-0") into 0 */ : undefined;
}

/** String → Boolean: the lower-cased string must be exactly `true` or `false` (so `'TRUE'` is true). */
export function stringToBoolean(s: string): boolean | undefined {
  // Short strings only: avoid lower-casing a 64 KiB attribute just to learn it is not a boolean.
  if (s.length !== 4 && s.length !== 5) return undefined;
  const lower = s.toLowerCase();
  return lower === "true" ? true : lower === "false" ? false : undefined;
}

/** Any value → Integer, or `undefined` when the cast fails (only String → Integer can fail). */
export function castToInteger(v: CesqlValue): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  return stringToInteger(v);
}

/** Any value → Boolean, or `undefined` when the cast fails (only String → Boolean can fail). */
export function castToBoolean(v: CesqlValue): boolean | undefined {
  if (typeof v === "boolean") return v;
  if (typeof v === "number") return v !== 0;
  return stringToBoolean(v);
}

/** Any value → String. Never fails: Integer is base 10 without leading zeros, Boolean is `true`/`false`. */
export function castToString(v: CesqlValue): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  return v ? "true" : "false";
}

/** Casts to the named type; `undefined` when the cast fails. */
export function castTo(type: CesqlType, v: CesqlValue): CesqlValue | undefined {
  return type === "Integer" ? castToInteger(v) : type === "Boolean" ? castToBoolean(v) : castToString(v);
}

/** Shows a value in a message, quoting strings and cutting long ones so a message never carries a whole payload. */
export function showValue(v: CesqlValue): string {
  if (typeof v !== "string") return String(v);
  return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
}
