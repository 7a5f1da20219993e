/**
 * EventBridge event patterns, the part of the language tests use: nested objects, arrays of literal
 * values (any one matches; against an array value, any element), and the matchers `prefix`,
 * `suffix`, `anything-but` (value, list or `{prefix}`), `exists`, `numeric` and `equals-ignore-case`.
 * Every key of a pattern must match. An unknown matcher is refused when the rule is created, as
 * EventBridge does, so a test never silently matches nothing.
 */

type Json = unknown;

export class PatternError extends Error {}

/** Parses and checks a pattern (`EventPattern` is a JSON string in PutRule). */
export function parsePattern(text: string): Record<string, Json> {
  let p: unknown;
  try {
    p = JSON.parse(text);
  } catch {
    throw new PatternError("Event pattern is not valid JSON");
  }
  if (typeof p !== "object" || p === null || Array.isArray(p)) throw new PatternError("Event pattern must be a JSON object");
  check(p as Record<string, Json>, "");
  return p as Record<string, Json>;
}

const MATCHERS = new Set(["prefix", "suffix", "anything-but", "exists", "numeric", "equals-ignore-case"]);

function check(p: Record<string, Json>, at: string): void {
  for (const [k, v] of Object.entries(p)) {
    const path = at ? `${at}.${k}` : k;
    if (Array.isArray(v)) {
      if (v.length === 0) throw new PatternError(`Empty arrays are not allowed at ${path}`);
      for (const m of v) {
        if (typeof m === "object" && m !== null) {
          const keys = Object.keys(m);
          if (keys.length !== 1 || !MATCHERS.has(keys[0]!)) throw new PatternError(`Unrecognized match type ${keys.join(",")} at ${path}`);
        }
      }
    } else if (typeof v === "object" && v !== null) check(v as Record<string, Json>, path);
    else throw new PatternError(`Match value must be String, number, true, false, or null at ${path}`);
  }
}

/** Whether `event` (the envelope, with `detail` as an object) matches `pattern`. */
export function matches(pattern: Record<string, Json>, event: Record<string, Json>): boolean {
  for (const [k, want] of Object.entries(pattern)) {
    const has = Object.hasOwn(event, k);
    const value = has ? event[k] : undefined;
    if (Array.isArray(want)) {
      if (!want.some((m) => matchOne(m, has, value))) return false;
    } else {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
      if (!matches(want as Record<string, Json>, value as Record<string, Json>)) return false;
    }
  }
  return true;
}

function matchOne(m: Json, has: boolean, value: Json): boolean {
  if (typeof m === "object" && m !== null) {
    const [kind, arg] = Object.entries(m as Record<string, Json>)[0]!;
    if (kind === "exists") return arg === (has && value !== null);
    if (!has) return kind === "anything-but";
  } else if (!has) return false;
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => matchValue(m, v));
}

function matchValue(m: Json, v: Json): boolean {
  if (typeof m !== "object" || m === null) return m === v;
  const [kind, arg] = Object.entries(m as Record<string, Json>)[0]!;
  switch (kind) {
    case "prefix":
      return typeof v === "string" && typeof arg === "string" && v.startsWith(arg);
    case "suffix":
      return typeof v === "string" && typeof arg === "string" && v.endsWith(arg);
    case "equals-ignore-case":
      return typeof v === "string" && typeof arg === "string" && v.toLowerCase() === arg.toLowerCase();
    case "anything-but":
      if (Array.isArray(arg)) return !arg.includes(v);
      if (typeof arg === "object" && arg !== null && "prefix" in arg) return !(typeof v === "string" && v.startsWith(String((arg as { prefix: unknown }).prefix)));
      return v !== arg;
    case "numeric":
      return typeof v === "number" && numeric(arg as Json[], v);
    default:
      return false;
  }
}

function numeric(ops: Json[], v: number): boolean {
  for (let i = 0; i + 1 < ops.length; i += 2) {
    const op = ops[i];
    const n = Number(ops[i + 1]);
    const ok = op === ">" ? v > n : op === ">=" ? v >= n : op === "<" ? v < n : op === "<=" ? v <= n : op === "=" ? v === n : false;
    if (!ok) return false;
  }
  return true;
}
