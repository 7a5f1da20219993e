/**
 * The `ce-` header codec of binary mode, shared by the HTTP binding, the NATS binding (1.0.3 draft) and
 * the Pub/Sub binding: one header per attribute, name = prefix + attribute name, value = canonical
 * string, percent-encoded (except where a binding defines no encoding: `percent: false`).
 */
import { EventValidationError, FormatError } from "../core/errors.js";
import { attributeString } from "./event.js";
import type { CloudEvent } from "./event.js";
import { percentDecode, percentEncode } from "./percent.js";
import { isValidAttributeName, showValue } from "./validate.js";

/** Options of `encodeCeHeaders`. */
export interface CeHeaderOptions {
  /** Header name prefix, used as given (`ce-` for HTTP and NATS). */
  readonly prefix: string;
  /**
   * Whether `datacontenttype` becomes a header too. HTTP maps it to `Content-Type` instead (a
   * `ce-datacontenttype` header MUST NOT be sent); NATS binary mode sends it as `ce-datacontenttype`.
   */
  readonly includeDatacontenttype: boolean;
  /**
   * Percent-encode values (default true). False for bindings whose metadata values are UTF-8
   * strings with no encoding defined (Google Pub/Sub attributes): values then go as they are.
   */
  readonly percent?: boolean;
}

/**
 * Encodes every attribute as a `[name, value]` header pair: name = `prefix` + attribute name (attribute
 * names are lower-case by validation), value = the canonical string, percent-encoded per 1.0.2.
 * `datacontenttype` is skipped unless `includeDatacontenttype`. Order follows the attribute order.
 */
export function encodeCeHeaders(ev: CloudEvent, opts: CeHeaderOptions): [name: string, value: string][] {
  const out: [string, string][] = [];
  const attrs = ev.attributes;
  for (const name in attrs) {
    if (name === "datacontenttype" && !opts.includeDatacontenttype) continue;
    const value = attrs[name];
    if (value === undefined) continue;
    const text = attributeString(value);
    out.push([opts.prefix + name, opts.percent === false ? text : percentEncode(text)]);
  }
  return out;
}

/**
 * Decodes the prefixed headers of a binary-mode message into attribute strings. Header names match
 * `prefix` case-insensitively; the attribute name is the lower-cased rest. Values are percent-decoded
 * tolerantly (see `percentDecode`). Headers without the prefix are ignored. Values stay strings
 * (an extension `ce-count: 3` is the String "3"); the caller validates the resulting event.
 *
 * With `opts.percent` false, values are taken as they are (Pub/Sub attributes: no encoding defined).
 *
 * CloudEvents 0.3 had map-typed attributes, sent flattened as one header per entry
 * (`ce-attrib-key: value`, 0.3 HTTP binding §3.1.3.1). In a 0.3 message those become the attribute's
 * JSON text (`attrib` = `{"key":"value"}`), the same value the 0.3 structured path gives a JSON
 * object, so both modes upconvert a 0.3 map alike. In a 1.0 message such a header is an error.
 *
 * Throws `EventValidationError` when the rest of a prefixed header is not a valid attribute name, or
 * when two headers carry the same attribute; `FormatError` naming the header when its value holds
 * escapes that decode to invalid UTF-8.
 */
export function decodeCeHeaders(
  entries: Iterable<[string, string]>,
  prefix: string,
  opts?: { readonly percent?: boolean },
): Record<string, string> {
  const decode = opts?.percent !== false;
  const out: Record<string, string> = {};
  const plen = prefix.length;
  const lowerPrefix = prefix.toLowerCase();
  let maps: { header: string; name: string; key: string; value: string }[] | undefined;
  for (const [header, raw] of entries) {
    if (header.length < plen || header.slice(0, plen).toLowerCase() !== lowerPrefix) continue;
    const name = header.slice(plen).toLowerCase();
    if (!isValidAttributeName(name)) {
      const dash = name.indexOf("-");
      if (dash > 0 && dash < name.length - 1 && isValidAttributeName(name.slice(0, dash))) {
        (maps ??= []).push({ header, name: name.slice(0, dash), key: name.slice(dash + 1), value: decode ? decodeValue(header, raw) : raw });
        continue;
      }
      throw invalidName(header, name);
    }
    // `hasOwn`, not `in`: names like `constructor` are legal attributes.
    if (Object.hasOwn(out, name)) {
      throw new EventValidationError(`header ${showValue(header)}: attribute "${name}" appears more than once`, name);
    }
    out[name] = decode ? decodeValue(header, raw) : raw;
  }
  if (maps) foldMaps(out, maps);
  return out;
}

function decodeValue(header: string, raw: string): string {
  try {
    return percentDecode(raw);
  } catch (err) {
    if (err instanceof FormatError) throw new FormatError(`header ${showValue(header)}: ${err.message}`, { cause: err });
    throw err;
  }
}

function invalidName(header: string, name: string): EventValidationError {
  return new EventValidationError(`header ${showValue(header)}: ${showValue(name)} is not a valid attribute name (lower-case a-z, 0-9)`, name);
}

/** Folds 0.3 flattened map headers into JSON-text attributes (see `decodeCeHeaders`). */
function foldMaps(out: Record<string, string>, maps: readonly { header: string; name: string; key: string; value: string }[]): void {
  if (out["specversion"] !== "0.3") throw invalidName(maps[0]!.header, `${maps[0]!.name}-${maps[0]!.key}`);
  const objects = new Map<string, Record<string, string>>();
  for (const m of maps) {
    if (Object.hasOwn(out, m.name)) throw new EventValidationError(`header ${showValue(m.header)}: attribute "${m.name}" is both a value and a map`, m.name);
    let obj = objects.get(m.name);
    if (!obj) objects.set(m.name, (obj = {}));
    if (Object.hasOwn(obj, m.key)) throw new EventValidationError(`header ${showValue(m.header)}: map entry "${m.name}-${m.key}" appears more than once`, m.name);
    obj[m.key] = m.value;
  }
  for (const [name, obj] of objects) out[name] = JSON.stringify(obj);
}
