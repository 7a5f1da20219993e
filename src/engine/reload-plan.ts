/**
 * What a hot reload must do, as a pure function of the running config and the new one.
 *
 * The unit of change is a pipeline: a source and the one route it feeds (a source feeds exactly one
 * route), keyed by the source id. Sinks are shared between routes and are diffed on their own.
 * - A component (source or sink) is the same when its `type` and typed options are deeply equal.
 *   Changing `engine.instance_id` changes every component (client ids and loop markers derive from it).
 * - A pipeline is `keep` when its source, its route definition and every sink it writes to (`to` and
 *   `dead_letter`) are the same: it is not touched at all, so no event is lost or duplicated.
 * - `switch`: the source is the same, the route changed, and every sink it now uses is kept or new.
 *   The source keeps running; new messages go to the new route while the old one drains.
 * - `restart`: the source changed, the route now writes to a sink whose options changed, or the route
 *   changed and has a disk buffer (in either config: one directory has one owner at a time, so the
 *   old buffer closes before the new one opens and replays what is left). The old
 *   route drains (and a changed source closes) before the new one starts; a same source stays
 *   open and holds new messages back in the meantime (a window that has no room).
 * - `add` / `remove`: the source feeds a route only in the new / only in the old config.
 * Only components that some route uses are ever created (an unused source would never become ready).
 */
import type { BridgeConfig, ComponentConfig, RouteConfig } from "../config/schema.js";

export type PipelineChange = "keep" | "switch" | "restart" | "add" | "remove";
export type ComponentChange = "keep" | "replace" | "add" | "remove";

export interface PipelinePlan {
  /** The source id: a source feeds exactly one route. */
  readonly sourceId: string;
  readonly change: PipelineChange;
  /** The route's name in the running config (absent for `add`). */
  readonly oldRoute?: string;
  /** The route's name in the new config (absent for `remove`). */
  readonly newRoute?: string;
  /** For `restart`: whether the source itself changed (it is closed and created again). */
  readonly sourceChanged?: boolean;
}

export interface ReloadPlan {
  readonly pipelines: readonly PipelinePlan[];
  /** Sink ids by what happens to them; only sinks that some route uses in either config. */
  readonly sinks: Readonly<Record<ComponentChange, readonly string[]>>;
  /** Engine settings that differ but only take effect after a restart of the daemon (dotted paths). */
  readonly needsRestart: readonly string[];
  /** True when nothing in the running pipelines or sinks changes. */
  readonly unchanged: boolean;
}

export function planReload(prev: BridgeConfig, next: BridgeConfig): ReloadPlan {
  const everything = prev.engine.instance_id !== next.engine.instance_id;
  const sameSink = (id: string) => !everything && sameComponent(prev.sinks[id], next.sinks[id]);
  const sameSource = (id: string) => !everything && sameComponent(prev.sources[id], next.sources[id]);

  const oldSinks = usedSinks(prev.routes);
  const newSinks = usedSinks(next.routes);
  const sinks: Record<ComponentChange, string[]> = { keep: [], replace: [], add: [], remove: [] };
  for (const id of [...new Set([...oldSinks, ...newSinks])].sort()) {
    if (!newSinks.has(id)) sinks.remove.push(id);
    else if (!oldSinks.has(id)) sinks.add.push(id);
    else sinks[sameSink(id) ? "keep" : "replace"].push(id);
  }
  const kept = new Set(sinks.keep);
  const added = new Set(sinks.add);

  const oldBySource = new Map(prev.routes.map((r) => [r.from, r]));
  const newBySource = new Map(next.routes.map((r) => [r.from, r]));
  const pipelines: PipelinePlan[] = [];
  for (const sourceId of [...new Set([...oldBySource.keys(), ...newBySource.keys()])].sort()) {
    const o = oldBySource.get(sourceId);
    const n = newBySource.get(sourceId);
    if (!n) {
      pipelines.push({ sourceId, change: "remove", oldRoute: o!.name });
      continue;
    }
    if (!o) {
      pipelines.push({ sourceId, change: "add", newRoute: n.name });
      continue;
    }
    const names = { oldRoute: o.name, newRoute: n.name };
    const writesTo = routeSinks(n);
    if (!sameSource(sourceId)) pipelines.push({ sourceId, change: "restart", ...names, sourceChanged: true });
    else if (deepEqual(o, n) && writesTo.every((s) => kept.has(s))) pipelines.push({ sourceId, change: "keep", ...names });
    else if (writesTo.every((s) => kept.has(s) || added.has(s)) && !hasDiskBuffer(o) && !hasDiskBuffer(n)) pipelines.push({ sourceId, change: "switch", ...names });
    else pipelines.push({ sourceId, change: "restart", ...names, sourceChanged: false });
  }

  const needsRestart: string[] = [];
  if (prev.engine.admin.listen !== next.engine.admin.listen) needsRestart.push("engine.admin.listen");
  if (prev.engine.log.format !== next.engine.log.format) needsRestart.push("engine.log.format");
  // The OpenTelemetry SDK starts once, with the daemon.
  if (prev.engine.tracing.enabled !== next.engine.tracing.enabled) needsRestart.push("engine.tracing.enabled");

  const unchanged = pipelines.every((p) => p.change === "keep") && sinks.replace.length + sinks.add.length + sinks.remove.length === 0;
  return { pipelines, sinks, needsRestart, unchanged };
}

function hasDiskBuffer(r: RouteConfig): boolean {
  return r.buffer?.type === "disk";
}

/** The sinks a route writes to: its `to` and its `dead_letter`. */
export function routeSinks(r: RouteConfig): string[] {
  return r.dead_letter !== undefined && !r.to.includes(r.dead_letter) ? [...r.to, r.dead_letter] : [...r.to];
}

function usedSinks(routes: readonly RouteConfig[]): Set<string> {
  return new Set(routes.flatMap(routeSinks));
}

function sameComponent(a: ComponentConfig | undefined, b: ComponentConfig | undefined): boolean {
  return a !== undefined && b !== undefined && a.type === b.type && deepEqual(a.options, b.options);
}

/** Structural equality of config values (plain objects, arrays, strings, numbers, booleans). Key order does not matter. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ak = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const bk = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}
