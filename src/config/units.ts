/**
 * Durations and sizes: parsing and the post-validation pass that turns them into numbers.
 * Schemas mark such fields with `x-cebridge-unit` (see `src/core/schema-types.ts`).
 */
const DURATION = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/;
const SIZE = /^\s*(\d+)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
const SIZE_BYTES: Record<string, number> = {
  B: 1,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  KB: 1000,
  MB: 1000 ** 2,
  GB: 1000 ** 3,
};

/** `"250ms"` → 250, `"1.5s"` → 1500, `42` → 42 (already ms). Returns undefined when it is not a duration. */
export function parseDuration(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = DURATION.exec(value);
  return m ? Math.round(Number(m[1]) * DURATION_MS[m[2]!]!) : undefined;
}

/** `"1MiB"` → 1048576, `"512"` → 512, `2048` → 2048. Returns undefined when it is not a size. */
export function parseSize(value: unknown): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value >= 0 ? value : undefined;
  if (typeof value !== "string") return undefined;
  const m = SIZE.exec(value);
  return m ? Number(m[1]) * SIZE_BYTES[m[2] ?? "B"]! : undefined;
}

type JsonSchema = Record<string, unknown>;

/**
 * Walks a validated value alongside its schema and replaces every duration/size with its number.
 * Runs once at load time, after validation succeeded, so every unit string is well-formed.
 */
export function convertUnits(schema: JsonSchema, value: unknown): unknown {
  const unit = schema["x-cebridge-unit"];
  if (unit === "duration") return parseDuration(value) ?? value;
  if (unit === "size") return parseSize(value) ?? value;
  const branch = discriminatedBranch(schema, value);
  if (branch) return convertUnits(branch, value);
  if (Array.isArray(value)) {
    const items = schema["items"] as JsonSchema | undefined;
    return items ? value.map((v) => convertUnits(items, v)) : value;
  }
  if (value !== null && typeof value === "object") {
    const props = (schema["properties"] ?? {}) as Record<string, JsonSchema>;
    const patterns = (schema["patternProperties"] ?? {}) as Record<string, JsonSchema>;
    const additional = schema["additionalProperties"];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const sub =
        props[k] ??
        Object.entries(patterns).find(([p]) => new RegExp(p).test(k))?.[1] ??
        (typeof additional === "object" ? (additional as JsonSchema) : undefined);
      out[k] = sub ? convertUnits(sub, v) : v;
    }
    return out;
  }
  return value;
}

/**
 * For a union of objects told apart by a constant `type` (the route `buffer`), the branch that
 * `value` chose, so that its sizes and durations convert too.
 */
export function discriminatedBranch(schema: JsonSchema, value: unknown): JsonSchema | undefined {
  const branches = schema["anyOf"] as JsonSchema[] | undefined;
  if (!Array.isArray(branches) || value === null || typeof value !== "object" || Array.isArray(value)) return undefined;
  const type = (value as Record<string, unknown>)["type"];
  return branches.find((b) => ((b["properties"] as Record<string, JsonSchema> | undefined)?.["type"]?.["const"] ?? undefined) === type && type !== undefined);
}

/** Deep-freezes a plain config object so nothing downstream can change it. */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
