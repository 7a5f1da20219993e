/**
 * JSON Schema validation with ajv, translated into config issues with clear messages.
 * Validators come precompiled or are compiled once per schema (see validators.ts).
 */
import type { ErrorObject } from "ajv";
import type { ConfigIssueCode } from "./issues.js";
import type { Path } from "./locate.js";
import { validatorFor } from "./validators.js";

/** An issue before it is given a file position. `key` means: point at the key, not the value. */
export interface RawIssue {
  readonly code: ConfigIssueCode;
  readonly path: Path;
  readonly message: string;
  readonly key?: boolean;
}

/** Validates `value` in place (defaults are filled in) and returns every problem, prefixed with `base`. */
export function validateAgainst(schema: object, value: unknown, base: Path): RawIssue[] {
  const validate = validatorFor(schema);
  if (validate(value)) return [];
  return translate(validate.errors ?? [], base);
}

function pointerToPath(pointer: string): (string | number)[] {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

function translate(all: ErrorObject[], base: Path): RawIssue[] {
  const errors = narrowDiscriminated(all);
  // An anyOf/oneOf failure explains itself; drop its branches' errors at the same place.
  const unions = errors.filter((e) => e.keyword === "anyOf" || e.keyword === "oneOf");
  const kept = errors.filter(
    (e) =>
      e.keyword === "anyOf" ||
      e.keyword === "oneOf" ||
      !unions.some((u) => e.schemaPath.startsWith(u.schemaPath + "/") && e.instancePath.startsWith(u.instancePath)),
  );
  const seen = new Set<string>();
  const out: RawIssue[] = [];
  for (const e of kept) {
    const issue = describe(e, [...base, ...pointerToPath(e.instancePath)]);
    const k = `${issue.path.join("\u0000")}|${issue.message}`;
    if (!seen.has(k)) {
      seen.add(k);
      out.push(issue);
    }
  }
  return out;
}

/**
 * A union of objects told apart by a constant `type` (the route `buffer`) is reported as the branch
 * the value names, so a typo inside it reads "unknown key" rather than "must be one of" the
 * branches. A `type` that names no branch is reported on `type` itself.
 */
function narrowDiscriminated(errors: ErrorObject[]): ErrorObject[] {
  let out = errors;
  for (const u of errors) {
    if (u.keyword !== "anyOf" || !Array.isArray(u.schema)) continue;
    const consts = (u.schema as Record<string, unknown>[]).map((b) => (b["properties"] as Record<string, { const?: unknown }> | undefined)?.["type"]?.const);
    if (consts.some((c) => typeof c !== "string")) continue;
    const data = u.data as Record<string, unknown> | null;
    if (data === null || typeof data !== "object" || Array.isArray(data)) continue;
    const inBranch = (e: ErrorObject) => e.schemaPath.startsWith(u.schemaPath + "/") && e.instancePath.startsWith(u.instancePath);
    const chosen = consts.indexOf(data["type"]);
    if (chosen < 0) {
      const typeError: ErrorObject = {
        ...u,
        keyword: "enum",
        instancePath: `${u.instancePath}/type`,
        params: { allowedValues: consts },
        message: "must be one of the types",
      };
      out = out.filter((e) => e !== u && !inBranch(e));
      if (data["type"] === undefined) out.push({ ...u, keyword: "required", params: { missingProperty: "type" } });
      else out.push(typeError);
      continue;
    }
    const prefix = `${u.schemaPath}/${chosen}/`;
    out = out.filter((e) => e !== u && (!inBranch(e) || e.schemaPath.startsWith(prefix)));
  }
  return out;
}

function describe(e: ErrorObject, path: Path): RawIssue {
  const p = e.params as Record<string, unknown>;
  const schema = e.parentSchema as Record<string, unknown> | undefined;
  switch (e.keyword) {
    case "additionalProperties": {
      const name = String(p["additionalProperty"]);
      if (schema?.["patternProperties"] !== undefined && schema["properties"] === undefined) {
        return { code: "CFG_VALUE", path: [...path, name], key: true, message: `"${name}" is not a valid id: use letters, digits, "_", "." and "-", not starting with "." or "-"` };
      }
      const known = Object.keys((schema?.["properties"] as object | undefined) ?? {});
      const hint = suggest(name, known);
      return {
        code: "CFG_UNKNOWN_KEY",
        path: [...path, name],
        key: true,
        message: `unknown key "${name}"${hint ? ` (did you mean "${hint}"?)` : ""}${known.length ? `; allowed: ${known.join(", ")}` : ""}`,
      };
    }
    case "required":
      return { code: "CFG_REQUIRED", path, message: `missing required key "${String(p["missingProperty"])}"` };
    case "type":
      return { code: "CFG_TYPE", path, message: `must be ${article(String(p["type"]))}` };
    case "enum":
      return { code: "CFG_VALUE", path, message: `must be one of: ${(p["allowedValues"] as unknown[]).map((v) => JSON.stringify(v)).join(", ")}` };
    case "const":
      return { code: "CFG_VALUE", path, message: `must be ${JSON.stringify(p["allowedValue"])}` };
    case "anyOf":
    case "oneOf":
      return { code: "CFG_VALUE", path, message: unionMessage(schema) };
    case "pattern":
      return { code: "CFG_VALUE", path, message: patternMessage(schema, String(p["pattern"])) };
    case "propertyNames":
      return { code: "CFG_VALUE", path, message: `has an invalid key: ${e.message ?? "bad name"}` };
    default:
      return { code: "CFG_VALUE", path, message: e.message ?? "is invalid" };
  }
}

function unionMessage(schema: Record<string, unknown> | undefined): string {
  const unit = schema?.["x-cebridge-unit"];
  if (unit === "duration") return "must be a duration such as 250ms, 30s, 5m, 1h (or integer milliseconds)";
  if (unit === "size") return "must be a size such as 512B, 64KiB, 1MiB (or integer bytes)";
  const branches = (schema?.["anyOf"] ?? schema?.["oneOf"]) as Record<string, unknown>[] | undefined;
  const consts = branches?.map((b) => b["const"]).filter((c) => c !== undefined);
  if (consts && consts.length === branches?.length) return `must be one of: ${consts.map((c) => JSON.stringify(c)).join(", ")}`;
  const kinds = branches?.map((b) => (b["const"] !== undefined ? JSON.stringify(b["const"]) : (b["description"] ?? b["type"] ?? "?")));
  return `must be one of: ${kinds?.join(" | ") ?? "the allowed forms"}`;
}

function patternMessage(schema: Record<string, unknown> | undefined, pattern: string): string {
  if (pattern === "^[a-z0-9]+$") return "must be a CloudEvents attribute name (lower-case letters and digits)";
  const desc = schema?.["description"];
  return typeof desc === "string" ? `must be ${desc}` : `must match ${pattern}`;
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

/** The known name closest to `name` by edit distance, if close enough to be a likely typo. */
function suggest(name: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best;
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}
