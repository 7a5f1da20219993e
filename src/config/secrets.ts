/**
 * The secret values in a loaded config: every string found under a schema node marked `writeOnly`
 * (see `core/schema-types.ts` `Secret`), after interpolation, so `${file:...}` and `${ENV}` secrets
 * are included. The observability layer hides these values wherever free text is kept for `/status`.
 */
import type { Registry } from "../core/connector.js";
import type { BridgeConfig } from "./schema.js";

type JsonSchema = Record<string, unknown>;

export function secretValues(config: BridgeConfig, registry: Registry): string[] {
  const out = new Set<string>();
  for (const [kind, comps] of [["source", config.sources], ["sink", config.sinks]] as const) {
    for (const comp of Object.values(comps)) {
      const def = kind === "source" ? registry.source(comp.type) : registry.sink(comp.type);
      if (def) collect(def.schema as unknown as JsonSchema, comp.options, false, out);
    }
  }
  return [...out];
}

function collect(schema: JsonSchema | undefined, value: unknown, secret: boolean, out: Set<string>): void {
  const isSecret = secret || schema?.["writeOnly"] === true;
  if (typeof value === "string") {
    if (isSecret) out.add(value);
    return;
  }
  if (value === null || typeof value !== "object") return;
  // A value may match any branch of a union; a secret in any of them counts.
  const branches = [...((schema?.["anyOf"] as JsonSchema[]) ?? []), ...((schema?.["oneOf"] as JsonSchema[]) ?? []), ...((schema?.["allOf"] as JsonSchema[]) ?? [])];
  for (const b of branches) collect(b, value, isSecret, out);
  if (Array.isArray(value)) {
    for (const v of value) collect(schema?.["items"] as JsonSchema | undefined, v, isSecret, out);
    return;
  }
  const props = (schema?.["properties"] ?? {}) as Record<string, JsonSchema>;
  const patterns = (schema?.["patternProperties"] ?? {}) as Record<string, JsonSchema>;
  const additional = schema?.["additionalProperties"];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    const sub =
      props[k] ??
      Object.entries(patterns).find(([p]) => new RegExp(p).test(k))?.[1] ??
      (typeof additional === "object" ? (additional as JsonSchema) : undefined);
    collect(sub, v, isSecret, out);
  }
}
