/**
 * Loads a config file: YAML → interpolation → top-level schema → each component against its
 * connector's schema → cross-references → units to numbers → deep freeze.
 * Every problem is collected before anything fails; nothing else in the daemon sees raw YAML.
 */
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { LineCounter, parseDocument, type Document } from "yaml";
import type { Registry } from "../core/connector.js";
import { ConfigError, type ConfigIssue } from "./issues.js";
import { interpolate } from "./interpolate.js";
import { locate, valueOffsetInSource } from "./locate.js";
import { checkReferences } from "./refs.js";
import { ConfigSchema, type BridgeConfig, type ComponentConfig, type RouteConfig } from "./schema.js";
import { checkSubscriptions, wireStreams, type SubscriptionsConfig } from "./subscriptions.js";
import { convertUnits, deepFreeze } from "./units.js";
import { validateAgainst, type RawIssue } from "./validate.js";

export interface LoadResult {
  /** Present only when there is no error. */
  readonly config?: BridgeConfig;
  /** Errors and warnings, in file order. */
  readonly issues: readonly ConfigIssue[];
}

/** Reads and checks `file`. Never throws for a bad config: look at `issues`. */
export function checkConfigFile(file: string, registry: Registry, env: NodeJS.ProcessEnv = process.env): LoadResult {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "error";
    return { issues: [{ level: "error", code: "CFG_FILE", path: [], message: `cannot read config file (${code})`, file, line: 0, col: 0 }] };
  }
  return checkConfigText(text, file, registry, env);
}

/** As `checkConfigFile`, for text already in memory (`file` is used in messages only). */
export function checkConfigText(text: string, file: string, registry: Registry, env: NodeJS.ProcessEnv = process.env): LoadResult {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const issues: ConfigIssue[] = [];
  const at = (level: ConfigIssue["level"], raw: RawIssue, offset?: number): ConfigIssue => {
    const pos = locate(doc, lines, raw.path, { key: raw.key === true, ...(offset !== undefined ? { offset } : {}) });
    return { level, code: raw.code, path: raw.path, message: raw.message, file, line: pos.line, col: pos.col };
  };

  if (doc.errors.length > 0) {
    // Only the first syntax error: the parser's later ones are mostly consequences of it.
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    const more = doc.errors.length > 1 ? ` (and ${doc.errors.length - 1} more after it)` : "";
    issues.push({ level: "error", code: "CFG_YAML", path: [], message: e.message.split("\n")[0]! + more, file, line: pos.line, col: pos.col });
    return { issues };
  }
  const interpolated = interpolate(doc, env);
  for (const p of interpolated) issues.push(at("error", { code: p.code, path: p.path, message: p.message }));
  // A value whose placeholder failed is empty; its type error would only repeat the cause.
  const failedPaths = new Set(interpolated.map((p) => p.path.join("\u0000")));

  let raw: unknown;
  try {
    // A small alias budget stops "billion laughs" documents; a config never needs many aliases.
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    issues.push(at("error", { code: "CFG_YAML", path: [], message: (err as Error).message }));
    return { issues };
  }
  const cycle = findCycle(raw, []);
  if (cycle) {
    issues.push(at("error", { code: "CFG_YAML", path: cycle, message: "an alias refers to a node that contains it; the config would be infinite" }));
    return { issues };
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    issues.push(at("error", { code: "CFG_TYPE", path: [], message: "the config must be a mapping with sources, sinks and routes" }));
    return { issues };
  }
  const top = raw as Record<string, unknown>;
  const errors: RawIssue[] = validateAgainst(ConfigSchema, top, []);

  const warnings: RawIssue[] = [];
  const sources = validateComponents(top["sources"], "sources", registry, errors, warnings);
  const sinks = validateComponents(top["sinks"], "sinks", registry, errors, warnings);
  const routes = Array.isArray(top["routes"]) ? (top["routes"] as Record<string, unknown>[]) : [];
  const refs = checkReferences(
    top["sources"],
    top["sinks"],
    routes.filter((r) => r !== null && typeof r === "object"),
    registry,
  );
  errors.push(...refs.errors);
  const subs = top["subscriptions"];
  if (subs !== null && typeof subs === "object" && !Array.isArray(subs)) {
    const engineRaw = top["engine"] as { admin?: { listen?: unknown } } | undefined;
    const checked = checkSubscriptions(subs as Record<string, unknown>, routes.filter((r) => r !== null && typeof r === "object"), top["sinks"], engineRaw?.admin?.listen);
    errors.push(...checked.errors);
    warnings.push(...checked.warnings);
    // A sink that only takes a stream's dead letters is used.
    refs.warnings = refs.warnings.filter((w) => !(w.code === "CFG_REF" && w.path[0] === "sinks" && checked.usedSinks.has(String(w.path[1]))));
  }

  for (const e of errors) {
    if (!failedPaths.has(e.path.join("\u0000"))) issues.push(at("error", e, filterOffset(doc, text, e, refs.filterPositions)));
  }
  for (const w of [...warnings, ...refs.warnings]) issues.push(at("warning", w));
  issues.sort((a, b) => a.line - b.line || a.col - b.col);
  if (issues.some((i) => i.level === "error")) return { issues };

  const engine = convertUnits(ConfigSchema.properties.engine, top["engine"]) as BridgeConfig["engine"];
  const config: BridgeConfig = {
    file,
    engine: { ...engine, instance_id: engine.instance_id ?? hostname() },
    sources,
    sinks,
    routes: routes.map((r) => convertUnits(ConfigSchema.properties.routes.items, r) as RouteConfig),
  };
  const subscriptions = top["subscriptions"] === undefined ? undefined : (convertUnits(ConfigSchema.properties.subscriptions, top["subscriptions"]) as SubscriptionsConfig);
  return { config: deepFreeze(subscriptions ? wireStreams(config, subscriptions) : config), issues };
}

/** Loads `file` or throws a `ConfigError` listing every problem. Returns warnings alongside. */
export function loadConfig(file: string, registry: Registry, env: NodeJS.ProcessEnv = process.env): { config: BridgeConfig; issues: readonly ConfigIssue[] } {
  const result = checkConfigFile(file, registry, env);
  if (!result.config) throw new ConfigError(result.issues);
  return { config: result.config, issues: result.issues };
}

function validateComponents(
  value: unknown,
  kind: "sources" | "sinks",
  registry: Registry,
  errors: RawIssue[],
  warnings: RawIssue[],
): Record<string, ComponentConfig> {
  const out: Record<string, ComponentConfig> = {};
  if (value === null || typeof value !== "object") return out;
  for (const [id, comp] of Object.entries(value as Record<string, unknown>)) {
    if (comp === null || typeof comp !== "object" || typeof (comp as { type?: unknown }).type !== "string") continue;
    const { type, ...options } = comp as { type: string } & Record<string, unknown>;
    const def = kind === "sources" ? registry.source(type) : registry.sink(type);
    if (!def) {
      const known = kind === "sources" ? registry.sourceTypes() : registry.sinkTypes();
      errors.push({ code: "CFG_UNKNOWN_CONNECTOR", path: [kind, id, "type"], message: `unknown ${kind === "sources" ? "source" : "sink"} type "${type}"; known: ${known.join(", ")}` });
      continue;
    }
    const problems = validateAgainst(def.schema, options, [kind, id]);
    errors.push(...problems);
    if (problems.length > 0) continue;
    // Defaults were written into `options` by the validator; the original object gets them too so
    // that cross-reference checks see the same values.
    Object.assign(comp, options);
    const typed = convertUnits(def.schema, options) as Record<string, unknown>;
    for (const l of def.lint?.(typed as never) ?? []) {
      (l.level === "error" ? errors : warnings).push({ code: "CFG_CONNECTOR", path: [kind, id, ...l.path], message: l.message });
    }
    out[id] = { type, options: typed };
  }
  return out;
}

/** For a CESQL error, where the failing character stands inside its scalar in the file, if known. */
function filterOffset(doc: Document, text: string, issue: RawIssue, positions: Map<RawIssue, number>): number | undefined {
  const pos = positions.get(issue);
  return pos === undefined ? undefined : valueOffsetInSource(doc, issue.path, text, pos);
}

/** The path to the first object that contains itself (recursive YAML aliases), if any. */
function findCycle(value: unknown, path: (string | number)[], ancestors = new Set<unknown>()): (string | number)[] | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (ancestors.has(value)) return path;
  ancestors.add(value);
  for (const [k, v] of Object.entries(value)) {
    const found = findCycle(v, [...path, Array.isArray(value) ? Number(k) : k], ancestors);
    if (found) return found;
  }
  ancestors.delete(value);
  return undefined;
}
