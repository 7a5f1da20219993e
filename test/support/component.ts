/**
 * Builds connector instances the way the daemon does: the raw options are validated against the
 * definition's schema (defaults filled in), durations and sizes converted to numbers, the
 * definition's own `lint` must find no error, and the implementation is loaded lazily.
 */
import type { ConnectorContext, SinkDefinition, SourceDefinition } from "../../src/core/connector.js";
import type { Sink } from "../../src/core/sink.js";
import type { Source } from "../../src/core/source.js";
import { validateAgainst } from "../../src/config/validate.js";
import { convertUnits } from "../../src/config/units.js";

type AnyDef = SourceDefinition | SinkDefinition;

/** The typed config a connector receives for `raw` (throws listing every schema or lint error). */
export function componentConfig(def: AnyDef, raw: Record<string, unknown>): Record<string, unknown> {
  const value = structuredClone(raw);
  const issues = validateAgainst(def.schema, value, []);
  if (issues.length > 0) throw new Error(`invalid ${def.type} options: ${issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`);
  const cfg = convertUnits(def.schema as never, value) as Record<string, unknown>;
  const errors = (def.lint?.(cfg as never) ?? []).filter((l) => l.level === "error");
  if (errors.length > 0) throw new Error(`${def.type} lint: ${errors.map((l) => `${l.path.join(".")}: ${l.message}`).join("; ")}`);
  return cfg;
}

export async function loadSource(def: SourceDefinition, raw: Record<string, unknown>, ctx: ConnectorContext): Promise<Source> {
  const factory = await def.load();
  return factory(componentConfig(def, raw) as never, ctx);
}

export async function loadSink(def: SinkDefinition, raw: Record<string, unknown>, ctx: ConnectorContext): Promise<Sink> {
  const factory = await def.load();
  return factory(componentConfig(def, raw) as never, ctx);
}

/** Synchronous variant for harnesses: load the factory once, then build many instances. */
export async function sourceFactory(def: SourceDefinition): Promise<(raw: Record<string, unknown>, ctx: ConnectorContext) => Source> {
  const factory = await def.load();
  return (raw, ctx) => factory(componentConfig(def, raw) as never, ctx);
}

export async function sinkFactory(def: SinkDefinition): Promise<(raw: Record<string, unknown>, ctx: ConnectorContext) => Sink> {
  const factory = await def.load();
  return (raw, ctx) => factory(componentConfig(def, raw) as never, ctx);
}
