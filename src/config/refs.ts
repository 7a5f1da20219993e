/**
 * Phase 3: checks across components and routes, after every piece validated on its own.
 */
import { resolve as resolvePath } from "node:path";
import type { Registry } from "../core/connector.js";
import { compileFilter, FilterCompileError, type FilterSpec } from "../filter/index.js";
import type { RawIssue } from "./validate.js";

interface RawRoute {
  max_deliveries?: unknown;
  name?: unknown;
  from?: unknown;
  to?: unknown;
  dead_letter?: unknown;
  filter?: unknown;
  buffer?: unknown;
}

interface RawComponent {
  type: string;
  [k: string]: unknown;
}

/** Returns errors for dangling references and warnings for settings that can lose or drop events. */
export function checkReferences(
  rawSources: unknown,
  rawSinks: unknown,
  routes: RawRoute[],
  registry: Registry,
): { errors: RawIssue[]; warnings: RawIssue[]; filterPositions: Map<RawIssue, number> } {
  // Only well-formed components take part; the schema has already reported the others. A Map keeps
  // names like "constructor" or "__proto__" from resolving to Object.prototype members.
  const sources = components(rawSources);
  const sinks = components(rawSinks);
  const errors: RawIssue[] = [];
  const warnings: RawIssue[] = [];
  const filterPositions = new Map<RawIssue, number>();
  const usedSources = new Map<string, number>();
  const usedSinks = new Set<string>();
  const names = new Map<string, number>();
  const diskPaths = new Map<string, number>();

  routes.forEach((r, i) => {
    const at = ["routes", i];
    if (typeof r.name === "string") {
      if (names.has(r.name)) errors.push({ code: "CFG_REF", path: [...at, "name"], message: `route name "${r.name}" is already used by routes[${names.get(r.name)}]` });
      else names.set(r.name, i);
    }
    if (typeof r.from === "string") {
      if (!sources.has(r.from)) {
        errors.push({ code: "CFG_REF", path: [...at, "from"], message: `no source named "${r.from}"${listOf(sources)}` });
      } else if (usedSources.has(r.from)) {
        errors.push({
          code: "CFG_REF",
          path: [...at, "from"],
          message: `source "${r.from}" already feeds routes[${usedSources.get(r.from)}]; a source feeds one route (list several sinks in its "to", and use filters)`,
        });
      } else {
        usedSources.set(r.from, i);
        const src = sources.get(r.from)!;
        // JetStream drops a message past max_deliver with only an advisory: our dead letter must come first.
        if (typeof r.max_deliveries === "number" && typeof src["max_deliver"] === "number" && r.max_deliveries >= src["max_deliver"]) {
          errors.push({
            code: "CFG_DELIVERY",
            path: [...at, "max_deliveries"],
            message: `max_deliveries (${r.max_deliveries}) must be below source "${r.from}" max_deliver (${src["max_deliver"]}), or the broker drops the message before it is dead-lettered`,
          });
        }
        const def = registry.source(src.type);
        if (def && !def.pausable(src as never)) {
          const w = unpausedWarning(r.from, src.type, r.buffer);
          if (w) warnings.push({ code: "CFG_DELIVERY", path: r.buffer === undefined ? [...at, "from"] : [...at, "buffer"], message: w });
        }
      }
    }
    if (Array.isArray(r.to)) {
      r.to.forEach((s: unknown, j: number) => {
        if (typeof s !== "string") return;
        if (!sinks.has(s)) {
          errors.push({ code: "CFG_REF", path: [...at, "to", j], message: `no sink named "${s}"${listOf(sinks)}` });
          return;
        }
        if ((r.to as unknown[]).indexOf(s) !== j) errors.push({ code: "CFG_REF", path: [...at, "to", j], message: `sink "${s}" is listed twice` });
        usedSinks.add(s);
        const sink = sinks.get(s)!;
        const def = registry.sink(sink.type);
        if (def && def.guarantee(sink as never) === "best-effort") {
          warnings.push({
            code: "CFG_DELIVERY",
            path: [...at, "to", j],
            message: `sink "${s}" (${sink.type}) is best-effort: it cannot confirm delivery, so an event can be lost without a trace`,
          });
        }
      });
    }
    if (typeof r.dead_letter === "string") {
      if (!sinks.has(r.dead_letter)) errors.push({ code: "CFG_REF", path: [...at, "dead_letter"], message: `no sink named "${r.dead_letter}"${listOf(sinks)}` });
      else {
        usedSinks.add(r.dead_letter);
        if (Array.isArray(r.to) && r.to.includes(r.dead_letter)) {
          errors.push({ code: "CFG_REF", path: [...at, "dead_letter"], message: `sink "${r.dead_letter}" is both a target and the dead-letter sink of this route` });
        }
      }
    } else if (r.dead_letter === undefined) {
      warnings.push({
        code: "CFG_DELIVERY",
        path: at,
        message: "route has no dead_letter sink: events that fail permanently are logged, counted and rejected",
      });
    }
    const path = diskPath(r.buffer);
    if (path !== undefined) {
      const other = diskPaths.get(resolvePath(path));
      if (other !== undefined) {
        errors.push({ code: "CFG_BUFFER", path: [...at, "buffer", "path"], message: `disk buffer directory "${path}" is already used by routes[${other}]; each route needs its own` });
      } else diskPaths.set(resolvePath(path), i);
    }
    if (r.filter !== undefined) {
      try {
        compileFilter(r.filter as FilterSpec);
      } catch (err) {
        if (!(err instanceof FilterCompileError)) throw err;
        const issue: RawIssue = { code: "CFG_FILTER", path: [...at, "filter", ...err.path], message: err.message };
        if (err.position !== undefined) filterPositions.set(issue, err.position);
        errors.push(issue);
      }
    }
  });

  for (const [id, src] of sources) {
    // Connectors derive client ids and durable names from the component id (MQTT client ids, for one):
    // a source and a sink of one type with one id would take each other's session.
    if (sinks.get(id)?.type === src.type) {
      errors.push({ code: "CFG_REF", path: ["sinks", id], key: true, message: `source "${id}" and sink "${id}" are both ${src.type}: give them different ids, since client ids derive from them` });
    }
  }
  for (const id of sources.keys()) {
    if (!usedSources.has(id)) warnings.push({ code: "CFG_REF", path: ["sources", id], key: true, message: `source "${id}" is not used by any route` });
  }
  for (const id of sinks.keys()) {
    if (!usedSinks.has(id)) warnings.push({ code: "CFG_REF", path: ["sinks", id], key: true, message: `sink "${id}" is not used by any route` });
  }
  return { errors, warnings, filterPositions };
}

/**
 * The warning for a route whose source cannot pause, or undefined when its buffer keeps every event
 * (a disk buffer; a full one still refuses, as `when_full` says, but it rides out a sink outage).
 */
function unpausedWarning(id: string, type: string, buffer: unknown): string | undefined {
  const b = buffer !== null && typeof buffer === "object" ? (buffer as Record<string, unknown>) : undefined;
  if (b?.["type"] === "disk") return undefined;
  const size = b?.["max_bytes"] ?? "64MiB";
  if (b?.["when_full"] === "block") {
    return `source "${id}" (${type}) cannot pause: with when_full: block a full memory buffer (${String(size)}) holds it back only where it can stall its input (MQTT QoS 0 stops reading); core NATS still drops, counted in cebridge_events_dropped_total{reason="overflow"}`;
  }
  return `source "${id}" (${type}) cannot pause: when its memory buffer (${String(size)}) is full, events are dropped (counted in cebridge_events_dropped_total{reason="overflow"}); a disk buffer keeps them`;
}

function diskPath(buffer: unknown): string | undefined {
  if (buffer === null || typeof buffer !== "object") return undefined;
  const b = buffer as Record<string, unknown>;
  return b["type"] === "disk" && typeof b["path"] === "string" && b["path"] !== "" ? b["path"] : undefined;
}

function components(raw: unknown): Map<string, RawComponent> {
  const out = new Map<string, RawComponent>();
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return out;
  for (const [id, comp] of Object.entries(raw)) {
    if (comp !== null && typeof comp === "object" && typeof (comp as RawComponent).type === "string") out.set(id, comp as RawComponent);
  }
  return out;
}

function listOf(map: Map<string, unknown>): string {
  const ids = [...map.keys()];
  return ids.length ? ` (defined: ${ids.join(", ")})` : " (none are defined)";
}
