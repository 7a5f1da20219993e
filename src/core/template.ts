import { attributeString, type CloudEvent } from "../cloudevents/event.js";
import { TemplateError } from "./errors.js";

/**
 * `{attr}` / `{attr:-default}` templates over CloudEvent attributes, compiled once at start-up.
 * `sanitize` runs on each substituted value (not on the literal parts) so a value cannot inject
 * wildcards or separators into a subject or topic.
 */
export interface Template {
  readonly source: string;
  /** The attribute names the template reads. */
  readonly attributes: readonly string[];
  /** Fills the template. Throws `TemplateError` when an attribute is absent and has no default. */
  render(event: CloudEvent): string;
}

const PLACEHOLDER = /\{([a-z0-9]+)(?::-([^}]*))?\}/g;

export function compileTemplate(source: string, sanitize: (value: string) => string = (v) => v): Template {
  const parts: (string | { name: string; fallback: string | undefined })[] = [];
  const attributes: string[] = [];
  let last = 0;
  for (const m of source.matchAll(PLACEHOLDER)) {
    if (m.index! > last) parts.push(source.slice(last, m.index));
    parts.push({ name: m[1]!, fallback: m[2] });
    attributes.push(m[1]!);
    last = m.index! + m[0].length;
  }
  if (last < source.length) parts.push(source.slice(last));
  if (attributes.length === 0) {
    return { source, attributes, render: () => source };
  }
  return {
    source,
    attributes,
    render(event) {
      let out = "";
      for (const p of parts) {
        if (typeof p === "string") {
          out += p;
          continue;
        }
        const v = event.attributes[p.name];
        if (v === undefined || v === "") {
          if (p.fallback === undefined) {
            throw new TemplateError(`template "${source}" needs attribute "${p.name}", which the event lacks`);
          }
          out += sanitize(p.fallback);
        } else {
          out += sanitize(attributeString(v));
        }
      }
      return out;
    },
  };
}
