/**
 * Subscriptions API filter dialects (docs/cloudevents.md §8.9; DESIGN.md §6), compiled once into a predicate.
 *
 * - `exact` / `prefix` / `suffix`: every listed attribute must be present and its canonical string form
 *   (Integer `10` ⇒ `"10"`, Boolean ⇒ `"true"`/`"false"`) must equal / start with / end with the value,
 *   case-sensitively. A missing attribute is a non-match (the spec leaves it open; this matches the CESQL
 *   recreations in the TCK, where `myext = 'x'` on an event without `myext` is false).
 * - `all` / `any` / `not`: conjunction, disjunction, negation of nested filters. `not` negates the nested
 *   *result*, so `not: { sql }` is true when the expression errors (the nested filter was false).
 * - `sql` (alias `cesql`, the key Knative's trigger filters use): CESQL v1; true only for a Boolean `true` with no error. An error makes it false and is passed to
 *   `onEvalError` so the engine can count it.
 *
 * Invalid specs fail at compile time (config load) with {@link FilterCompileError}, whose `path` points inside
 * the spec so the config loader can map it to a YAML line and column.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../core/type.js";
import type { CloudEvent } from "../cloudevents/event.js";
import { BridgeError } from "../core/errors.js";
import { attributeReader } from "./attribute.js";
import { type CesqlEvalError, CesqlParseError, type CompiledCesql, compileCesql } from "./cesql/index.js";

/** A filter as written in config (Subscriptions API JSON encoding: one dialect key per object). */
export type FilterSpec =
  | { exact: Record<string, string> }
  | { prefix: Record<string, string> }
  | { suffix: Record<string, string> }
  | { all: FilterSpec[] }
  | { any: FilterSpec[] }
  | { not: FilterSpec }
  | { sql: string }
  | { cesql: string };

/** A compiled filter. */
export type FilterPredicate = (event: CloudEvent) => boolean;

/** Location inside a filter spec: object keys and array indexes from the root, e.g. `["all", 1, "sql"]`. */
export type FilterPath = (string | number)[];

/** A filter spec is invalid. Carries where (`path`) and, for `sql`, the offset in the expression (`position`). */
export class FilterCompileError extends BridgeError {
  /** Path inside the spec to the offending value. */
  readonly path: FilterPath;
  /** For CESQL problems: 0-based offset inside the `sql` string. */
  readonly position: number | undefined;
  constructor(message: string, path: FilterPath, position?: number, options?: ErrorOptions) {
    super("CEB_CONFIG", message, false, options);
    this.path = path;
    this.position = position;
  }
}

/** Attribute names as the CloudEvents spec allows them (v1.0.2 naming rules). */
const ATTRIBUTE_NAME = "^[a-z0-9]+$";
const ATTRIBUTE_NAME_RE = new RegExp(ATTRIBUTE_NAME);

/** Nesting cap: guards the recursive compiler against cyclic YAML aliases and absurd specs. */
const MAX_FILTER_DEPTH = 64;

const DIALECTS = ["exact", "prefix", "suffix", "all", "any", "not", "sql", "cesql"] as const;

function attributeMap(dialect: string) {
  return Type.Record(Type.String({ pattern: ATTRIBUTE_NAME }), Type.String({ minLength: 1 }), {
    additionalProperties: false,
    minProperties: 1,
    description: `${dialect} match on the canonical string form of each listed attribute (all must match)`,
  });
}

/** JSON Schema (TypeBox) of {@link FilterSpec}, for the config schema. */
export const FilterSpecSchema = Type.Recursive(
  (Self) =>
    Type.Union(
      [
        Type.Object({ exact: attributeMap("Exact") }, { additionalProperties: false }),
        Type.Object({ prefix: attributeMap("Prefix") }, { additionalProperties: false }),
        Type.Object({ suffix: attributeMap("Suffix") }, { additionalProperties: false }),
        Type.Object(
          { all: Type.Array(Self, { minItems: 1, description: "true when every nested filter is true" }) },
          { additionalProperties: false },
        ),
        Type.Object(
          { any: Type.Array(Self, { minItems: 1, description: "true when at least one nested filter is true" }) },
          { additionalProperties: false },
        ),
        Type.Object({ not: Self }, { additionalProperties: false }),
        Type.Object(
          { sql: Type.String({ minLength: 1, description: "CloudEvents SQL v1 expression; must evaluate to TRUE" }) },
          { additionalProperties: false },
        ),
        Type.Object(
          { cesql: Type.String({ minLength: 1, description: "the same as sql (the key Knative uses)" }) },
          { additionalProperties: false },
        ),
      ],
      { description: "Subscriptions API filter: exactly one of exact, prefix, suffix, all, any, not, sql (or its alias cesql)" },
    ),
  { $id: "CebridgeFilter", title: "Filter" },
);

// Compile-time proof that the schema and the hand-written type describe the same shapes (both directions).
type Assignable<A extends B, B> = A;
type _FilterSchemaMatchesType = Assignable<Static<typeof FilterSpecSchema>, FilterSpec>;
type _FilterTypeMatchesSchema = Assignable<FilterSpec, Static<typeof FilterSpecSchema>>;

/**
 * Compiles a filter spec into a predicate.
 * @param onEvalError called with every CESQL evaluation error (the event is then filtered out).
 * @throws FilterCompileError when the spec is malformed or a `sql` expression does not compile.
 */
export function compileFilter(spec: FilterSpec, onEvalError?: (err: CesqlEvalError) => void): FilterPredicate {
  return compileAt(spec as unknown, [], 0, onEvalError);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function compileAt(
  spec: unknown,
  path: FilterPath,
  depth: number,
  onEvalError: ((err: CesqlEvalError) => void) | undefined,
): FilterPredicate {
  if (depth > MAX_FILTER_DEPTH) throw new FilterCompileError(`filter nested deeper than ${MAX_FILTER_DEPTH} levels`, path);
  if (!isPlainObject(spec)) {
    throw new FilterCompileError(`a filter must be an object with one of: ${DIALECTS.join(", ")}`, path);
  }
  const keys = Object.keys(spec);
  if (keys.length !== 1) {
    throw new FilterCompileError(
      keys.length === 0
        ? `empty filter: give one of ${DIALECTS.join(", ")}`
        : `a filter has exactly one dialect, found ${keys.map((k) => `"${k}"`).join(", ")}`,
      path,
    );
  }
  const dialect = keys[0] as string;
  const value = spec[dialect];
  const at = [...path, dialect];
  switch (dialect) {
    case "exact":
      return compileAttributeMatch(value, at, (s, want) => s === want);
    case "prefix":
      return compileAttributeMatch(value, at, (s, want) => s.startsWith(want));
    case "suffix":
      return compileAttributeMatch(value, at, (s, want) => s.endsWith(want));
    case "all":
    case "any": {
      if (!Array.isArray(value) || value.length === 0) {
        throw new FilterCompileError(`"${dialect}" needs a non-empty list of filters`, at);
      }
      const parts = value.map((v, i) => compileAt(v, [...at, i], depth + 1, onEvalError));
      if (parts.length === 1) return parts[0] as FilterPredicate;
      return dialect === "all"
        ? (e) => {
            for (let i = 0; i < parts.length; i++) if (!(parts[i] as FilterPredicate)(e)) return false;
            return true;
          }
        : (e) => {
            for (let i = 0; i < parts.length; i++) if ((parts[i] as FilterPredicate)(e)) return true;
            return false;
          };
    }
    case "not": {
      const inner = compileAt(value, at, depth + 1, onEvalError);
      return (e) => !inner(e);
    }
    case "sql":
    case "cesql":
      return compileSql(value, at, onEvalError);
    default:
      throw new FilterCompileError(`unsupported filter dialect "${dialect}" (supported: ${DIALECTS.join(", ")})`, at);
  }
}

/** exact / prefix / suffix: every entry must hold on the attribute's canonical string. */
function compileAttributeMatch(value: unknown, at: FilterPath, test: (s: string, want: string) => boolean): FilterPredicate {
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    throw new FilterCompileError(`"${at[at.length - 1]}" needs a map of attribute name to non-empty string`, at);
  }
  const checks: Array<(e: CloudEvent) => boolean> = Object.entries(value).map(([name, want]) => {
    if (!ATTRIBUTE_NAME_RE.test(name)) {
      throw new FilterCompileError(`"${name}" is not a CloudEvents attribute name (lower-case a-z and 0-9 only)`, [...at, name]);
    }
    if (typeof want !== "string" || want.length === 0) {
      throw new FilterCompileError(`the value for "${name}" must be a non-empty string`, [...at, name]);
    }
    const read = attributeReader(name);
    return (e) => {
      const v = read(e.attributes);
      if (v == null) return false; // missing attribute: no match (see file comment)
      return test(typeof v === "string" ? v : String(v), want);
    };
  });
  if (checks.length === 1) return checks[0] as FilterPredicate;
  return (e) => {
    for (let i = 0; i < checks.length; i++) if (!(checks[i] as FilterPredicate)(e)) return false;
    return true;
  };
}

/** sql: compile once; reject what can never be a useful filter (parse errors, unknown functions, non-Boolean results). */
function compileSql(value: unknown, at: FilterPath, onEvalError: ((err: CesqlEvalError) => void) | undefined): FilterPredicate {
  if (typeof value !== "string" || value.trim().length === 0) {
    throw new FilterCompileError(`"${at[at.length - 1]}" needs a non-empty CESQL expression string`, at);
  }
  let compiled: CompiledCesql;
  try {
    compiled = compileCesql(value);
  } catch (err) {
    if (err instanceof CesqlParseError) {
      throw new FilterCompileError(`invalid CESQL expression: ${err.message}`, at, err.position, { cause: err });
    }
    throw err;
  }
  const problem = compiled.diagnostics[0];
  if (problem !== undefined) {
    // Legal CESQL, but the call always fails at run time, so the filter could never pass.
    throw new FilterCompileError(`invalid CESQL expression: ${problem.message} at ${problem.position}`, at, problem.position);
  }
  if (compiled.resultType !== "Boolean" && compiled.resultType !== "Any") {
    throw new FilterCompileError(
      `a sql filter must produce a Boolean, this expression produces ${compiled.resultType} (an event would never pass)`,
      at,
      0,
    );
  }
  return (e) => compiled.matches(e, onEvalError);
}
