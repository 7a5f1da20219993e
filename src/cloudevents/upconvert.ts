/**
 * CloudEvents 0.3 → 1.0 upconversion (docs/cloudevents.md §2), shared by the binary and JSON paths.
 *
 * The rules, in order: `specversion` becomes "1.0"; `schemaurl` becomes `dataschema` when it is an
 * absolute URI, otherwise it stays as the extension `schemaurl` (a legal 1.0 extension name; an empty
 * value is dropped because it carries nothing); `datacontentencoding` is removed and, when it is
 * `base64`, the data is decoded to bytes by the caller; JSON extension values that 1.0 cannot express
 * (objects, arrays, non-integral numbers) become their JSON text.
 */
import { FormatError } from "../core/errors.js";
import type { AttributeValue } from "./event.js";
import { isAbsoluteUri, isBase64, showValue } from "./validate.js";

/** The `specversion` value of CloudEvents 0.3. */
export const SPEC_VERSION_03 = "0.3";

/** How the 0.3 data was encoded, from `datacontentencoding`. */
export type ContentEncoding = "base64" | "identity";

/**
 * Rewrites 0.3 attributes to 1.0 in place (the caller passes a fresh, owned object) and returns the
 * data's content encoding: `base64` when `datacontentencoding` was `base64` (case-insensitive),
 * `identity` when it was absent or an identity encoding (`7bit`, `8bit`, `binary`). Any other encoding
 * (e.g. `quoted-printable`) throws `FormatError`.
 */
export function upconvertAttributes(attrs: Record<string, AttributeValue>): ContentEncoding {
  attrs["specversion"] = "1.0";
  const schemaurl = attrs["schemaurl"];
  if (schemaurl !== undefined) {
    // `dataschema` already present wins (a producer that set both meant 1.0); otherwise rename.
    if (typeof schemaurl === "string" && isAbsoluteUri(schemaurl) && attrs["dataschema"] === undefined) {
      attrs["dataschema"] = schemaurl;
      delete attrs["schemaurl"];
    } else if (schemaurl === "") {
      delete attrs["schemaurl"];
    }
  }
  const enc = attrs["datacontentencoding"];
  if (enc === undefined) return "identity";
  delete attrs["datacontentencoding"];
  const e = String(enc).trim().toLowerCase();
  if (e === "base64") return "base64";
  if (e === "7bit" || e === "8bit" || e === "binary") return "identity";
  throw new FormatError(`attribute "datacontentencoding": unsupported encoding ${showValue(enc)} (only base64 is defined)`);
}

/**
 * A 0.3 JSON member value as a 1.0 attribute value: strings, booleans and int32 integers unchanged;
 * objects, arrays and other numbers become their JSON text (what the conformance suite does).
 */
export function attributeFrom03Json(value: unknown): AttributeValue {
  if (typeof value === "string" || typeof value === "boolean") return value;
  if (typeof value === "number" && Number.isInteger(value) && value >= -2147483648 && value <= 2147483647) return value;
  return JSON.stringify(value);
}

/**
 * Decodes strict RFC 4648 base64 text into bytes, or throws `FormatError` naming `what`. Node's own
 * decoder silently skips invalid characters, so the text is checked first.
 */
export function decodeBase64(text: string, what: string): Uint8Array {
  if (!isBase64(text)) throw new FormatError(`${what}: not valid base64`);
  return Buffer.from(text, "base64");
}

/**
 * A 0.3 binary-mode body under `datacontentencoding: base64`: the body is base64 text of the data.
 * Surrounding whitespace (a trailing newline from a shell or a MIME wrapper) is tolerated.
 */
export function decodeBase64Body(body: Uint8Array): Uint8Array {
  const text = Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("latin1").trim();
  return decodeBase64(text, "body (datacontentencoding: base64)");
}
