/**
 * Binary mode, independent of the protocol: attributes come from metadata (already decoded to strings,
 * see `headers.ts`), data is the body bytes as they are. Used by HTTP, NATS, Pub/Sub and the others.
 */
import { cloneAttributes, type AttributeValue, type CloudEvent, type EventData } from "./event.js";
import { decodeBase64Body, SPEC_VERSION_03, upconvertAttributes } from "./upconvert.js";
import { jsonDataText } from "./json-data.js";
import { validateEvent } from "./validate.js";

/**
 * Builds and validates an event from binary-mode parts.
 *
 * - `attrs`: attribute values keyed by attribute name: strings from text metadata (extensions stay
 *   strings), or typed values where the protocol carries types (AMQP application properties).
 * - `contentType`: the protocol's content type; when given (non-blank) it becomes `datacontenttype`
 *   and wins over a `datacontenttype` entry in `attrs` (HTTP maps `Content-Type` ⇔ `datacontenttype`;
 *   a NATS caller that prefers `ce-datacontenttype` passes `undefined`).
 * - `body`: kept as `{ kind: "bytes" }` without copying (the caller must not reuse the buffer). An
 *   absent or empty body without a content type means the event has no data.
 *
 * A 0.3 attribute set (`specversion: "0.3"`) is upconverted first: `schemaurl` → `dataschema`,
 * `datacontentencoding: base64` → the body is base64-decoded. Throws `EventValidationError` or
 * `FormatError`.
 */
export function eventFromBinary(
  attrs: Readonly<Record<string, AttributeValue>>,
  body: Uint8Array | undefined,
  contentType: string | undefined,
): CloudEvent {
  const attributes: Record<string, AttributeValue> = cloneAttributes(attrs);
  if (contentType !== undefined && contentType.trim() !== "") attributes["datacontenttype"] = contentType;
  let bytes = body;
  if (attributes["specversion"] === SPEC_VERSION_03) {
    if (upconvertAttributes(attributes) === "base64" && bytes !== undefined) bytes = decodeBase64Body(bytes);
  }
  const hasData = bytes !== undefined && (bytes.byteLength > 0 || attributes["datacontenttype"] !== undefined);
  const ev: CloudEvent = hasData ? { attributes, data: { kind: "bytes", bytes: bytes! } } : { attributes };
  return validateEvent(ev);
}

/** The body and content type of an event in binary mode. */
export interface BinaryBody {
  /** The data bytes; `undefined` when the event has no data. */
  readonly body: Uint8Array | undefined;
  /** The `datacontenttype` to send as the protocol's content type, if any. */
  readonly contentType: string | undefined;
}

/**
 * The binary-mode body of an event. Bytes go as they are; a JSON value goes as the text it arrived
 * in, or serialized with `JSON.stringify`, and, when the event had no `datacontenttype` (implied JSON in the JSON format),
 * gets `application/json` made explicit as the spec asks; text is sent as UTF-8 bytes under its
 * `datacontenttype`. Throws `FormatError` for a JSON value that cannot be serialized.
 */
export function binaryBody(ev: CloudEvent): BinaryBody {
  const ct = ev.attributes["datacontenttype"];
  const contentType = typeof ct === "string" ? ct : undefined;
  const data: EventData | undefined = ev.data;
  if (data === undefined) return { body: undefined, contentType };
  switch (data.kind) {
    case "bytes":
      return { body: data.bytes, contentType };
    case "text":
      return { body: Buffer.from(data.text, "utf8"), contentType };
    case "json":
      return { body: Buffer.from(jsonDataText(data), "utf8"), contentType: contentType ?? "application/json" };
  }
}
