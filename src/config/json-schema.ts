/**
 * The published JSON Schema (`config/cebridge.schema.json`, `cebridge schema`), generated from the
 * same TypeBox definitions the validator uses, with one branch per connector type so that editors
 * complete each component's options.
 */
import type { TObject } from "@sinclair/typebox";
import type { Registry } from "../core/connector.js";
import { ConfigSchema } from "./schema.js";

function componentBranches(defs: { type: string; summary: string; schema: TObject }[]): object {
  return {
    oneOf: defs.map((d) => ({
      type: "object",
      description: d.summary,
      properties: { type: { const: d.type }, ...d.schema.properties },
      required: ["type", ...(d.schema.required ?? [])],
      additionalProperties: false,
    })),
  };
}

/** Builds the whole-file schema as a plain JSON value. Deterministic: stable key order. */
export function buildJsonSchema(registry: Registry): object {
  const base = JSON.parse(JSON.stringify(ConfigSchema)) as Record<string, unknown> & { properties: Record<string, Record<string, unknown>> };
  const sources = registry.sourceTypes().map((t) => registry.source(t)!);
  const sinks = registry.sinkTypes().map((t) => registry.sink(t)!);
  base.properties["sources"] = { type: "object", default: {}, description: "source components by id", additionalProperties: componentBranches(sources) };
  base.properties["sinks"] = { type: "object", default: {}, description: "sink components by id", additionalProperties: componentBranches(sinks) };
  return {
    $schema: "http://json-schema.org/draft-07/schema#",
    title: "cebridge configuration",
    ...base,
  };
}
