/**
 * Route transforms (rename, then the map_type / map_source tables, then set, then remove), compiled once. The result is validated: a
 * transform that would produce an invalid CloudEvent throws `TransformError`, and the route
 * dead-letters the original event with that reason.
 */
import { cloneAttributes, type CloudEvent } from "../cloudevents/event.js";
import { validateEvent } from "../cloudevents/validate.js";
import { BridgeError, TransformError } from "../core/errors.js";
import { compileTemplate, type Template } from "../core/template.js";

export interface TransformSpec {
  readonly set?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
  readonly rename?: Readonly<Record<string, string>>;
  /** Replaces a `type` found in the table; other types pass unchanged. */
  readonly map_type?: Readonly<Record<string, string>>;
  /** Replaces a `source` found in the table; other sources pass unchanged. */
  readonly map_source?: Readonly<Record<string, string>>;
}

export type Transform = (event: CloudEvent) => CloudEvent;

export function compileTransform(spec: TransformSpec): Transform {
  const rename = Object.entries(spec.rename ?? {});
  const set: [string, Template][] = Object.entries(spec.set ?? {}).map(([k, v]) => [k, compileTemplate(v)]);
  const remove = spec.remove ?? [];
  const mapType = new Map(Object.entries(spec.map_type ?? {}));
  const mapSource = new Map(Object.entries(spec.map_source ?? {}));
  return (event) => {
    const attrs = cloneAttributes(event.attributes);
    try {
      for (const [from, to] of rename) {
        if (from in attrs) {
          attrs[to] = attrs[from]!;
          delete attrs[from];
        }
      }
      const type = mapType.get(String(attrs["type"]));
      if (type !== undefined) attrs["type"] = type;
      const source = mapSource.get(String(attrs["source"]));
      if (source !== undefined) attrs["source"] = source;
      if (set.length > 0) {
        // Templates read the attributes as they are after rename and the maps but before any `set`,
        // so the order of the `set` keys never matters.
        const before: CloudEvent = { attributes: set.length > 1 ? cloneAttributes(attrs) : attrs };
        for (const [name, template] of set) attrs[name] = template.render(before);
      }
      for (const name of remove) delete attrs[name];
      return validateEvent({ attributes: attrs, data: event.data });
    } catch (err) {
      const reason = err instanceof BridgeError ? err.message : String(err);
      throw new TransformError(`transform made the event invalid: ${reason}`, { cause: err });
    }
  };
}
