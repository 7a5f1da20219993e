/**
 * AMQP 1.0 message ⇔ CloudEvent (docs/cloudevents.md §4.5, docs/amqp-protobuf.md §1). PURE: no
 * SDK, no I/O, clock and ids only through `opts`; the glue in `inbound.ts`/`outbound.ts` converts
 * rhea's shapes. Pinned by the fixture tables in `test/unit/connectors/amqp-mapping.test.ts`.
 *
 * Receiving, tolerant, in this order:
 * 1. `content-type` starting with `application/cloudevents` (any case) → structured mode in the
 *    format it names (JSON or Protobuf) from the body bytes. The batch types are refused: the AMQP
 *    binding has no batch mode.
 * 2. an application property `cloudEvents:specversion` or `cloudEvents_specversion` → binary mode.
 *    The prefix of that property is the message's (`:` wins when both appear, since a message uses
 *    one); only properties with it are attributes. Values may be native or the canonical string:
 *    string (and symbol) as is, a whole number within int32 → Integer, boolean → Boolean,
 *    timestamp → RFC 3339 in milliseconds, binary → base64; a list, map, array, a fraction or a
 *    number outside int32 is invalid. `datacontenttype` = `content-type`, else the prefixed property.
 * 3. a body holding a JSON object with a `specversion` member → structured JSON (Event Grid
 *    delivers CloudEvents to Service Bus and Event Hubs like this).
 * 4. otherwise a plain message: `id` = `message-id` (a UUID in its canonical form, a binary id as
 *    hex) or a new id; `source` = `amqp://host:port/<address>`; `type` `org.amqp.message`;
 *    `subject` = `subject`; `time` = `creation-time`, else the receive time; `datacontenttype` =
 *    `content-type`; data = the body; every application property → an extension named by
 *    `escapeExtensionName("amqp", name)`.
 * Body: data sections concatenated; an amqp-value that is binary or a string is tolerated as bytes,
 * an amqp-value null is no data; anything else (amqp-sequence, a described or structured value) is
 * invalid. A message that cannot become an event is a `dev.cebridge.invalid` event with `invalid`.
 *
 * Sending (`encodeAmqpMessage`): `message-id` = the event id, `durable` as configured, one data
 * section (none when the event has no data). Binary: `content-type` = datacontenttype (JSON made
 * explicit), every other attribute `prefix + name`: Integer as AMQP long, Boolean as boolean, `time`
 * as an AMQP timestamp only when that reads back as the exact string (`exactMillis`: UTC with three
 * fraction digits), every other value as its canonical string. Structured: `content-type` = the
 * format's media type, the body = the encoded event.
 *
 * Trace context: the AMQP binding defines no trace field; the W3C "Trace Context: AMQP protocol"
 * draft puts `traceparent` / `tracestate` in the application properties (readers look in the
 * message annotations first, where middleware may annotate). The sink writes the write's hop
 * context there in both modes, as strings (`traceApplicationProperties`), apart from binary mode's
 * `cloudEvents:traceparent`, which is the event's own extension; the source reads it
 * (`traceFromAmqp`) as `Decoded.trace`. A plain message keeps its application properties as
 * extensions, `traceparent` included (`amqptraceparent`), like any other.
 */
import {
  attributeString,
  binaryBody,
  escapeExtensionName,
  eventFromBinary,
  exactMillis,
  formatStructured,
  invalidEvent,
  isBatchMediaType,
  isStructuredMediaType,
  parseIfStructured,
  parseStructuredAs,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
  type EventFormat,
} from "../../src/cloudevents/index.js";
import { asBridgeError, FormatError, TooLargeError, UnsupportedMediaTypeError } from "../../src/core/errors.js";
import type { Decoded } from "../../src/core/source.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { traceApplicationProperties, traceFromAmqp } from "../../src/cloudevents/trace-fields.js";

/** The two binary-mode prefixes of the binding (spec main; 1.0.2 has only `cloudEvents:`). */
export const PREFIXES = ["cloudEvents:", "cloudEvents_"] as const;
export type AmqpPrefix = (typeof PREFIXES)[number];

/** The body of a received message, as the glue found it. */
export type AmqpBody =
  | { readonly kind: "data"; readonly bytes: Uint8Array }
  | { readonly kind: "value"; readonly value: unknown }
  | { readonly kind: "sequence" }
  | undefined;

/** What the mapping needs from a received AMQP message. */
export interface AmqpInbound {
  /** `properties.message-id`: string, number, or bytes (a UUID or binary id). */
  readonly messageId?: unknown;
  readonly contentType?: string | undefined;
  readonly subject?: string | undefined;
  readonly creationTime?: Date | undefined;
  readonly applicationProperties?: Readonly<Record<string, unknown>> | undefined;
  /** `message-annotations`, keyed by the annotation's symbol. */
  readonly messageAnnotations?: Readonly<Record<string, unknown>> | undefined;
  readonly body: AmqpBody;
}

export interface AmqpInboundOptions {
  /** `source` of plain and invalid events: `amqp://host:port/<address>`. */
  readonly source: string;
  /** Larger bodies become invalid events (`CEB_TOO_LARGE`). */
  readonly maxMessageSize?: number | undefined;
  readonly maxDepth?: number | undefined;
  readonly now: () => Date;
  readonly newId: () => string;
}

/** `amqp://host:port/<address>` for plain messages (the scheme's default port when absent). */
export function plainSourceFor(url: string, address: string): string {
  try {
    const u = new URL(url);
    const port = u.port || (u.protocol === "amqps:" ? "5671" : "5672");
    return `amqp://${u.hostname}:${port}/${address.replace(/^\/+/, "")}`;
  } catch {
    return `amqp://localhost:5672/${address.replace(/^\/+/, "")}`;
  }
}

const INT32_MIN = -2147483648;
const INT32_MAX = 2147483647;

function kindOf(v: unknown): string {
  if (Array.isArray(v)) return "a list";
  if (v === null) return "null";
  return typeof v === "object" ? "a map or described value" : `a ${typeof v}`;
}

/** One binary-mode property value as an attribute value (the binding's type system, tolerant). */
function attributeValue(property: string, v: unknown): AttributeValue {
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") {
    if (Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX) return v;
    throw new FormatError(`application property "${property}": ${v} is not a CloudEvents Integer (a whole number within int32)`);
  }
  if (v instanceof Date) {
    if (Number.isNaN(v.getTime())) throw new FormatError(`application property "${property}": invalid timestamp`);
    return v.toISOString();
  }
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  throw new FormatError(`application property "${property}": ${kindOf(v)} cannot be a CloudEvents attribute value`);
}

/** The binary-mode prefix of a message, or undefined when it carries no `specversion` property. */
export function binaryPrefixOf(props: Readonly<Record<string, unknown>> | undefined): AmqpPrefix | undefined {
  if (props === undefined) return undefined;
  for (const p of PREFIXES) if (Object.hasOwn(props, `${p}specversion`)) return p;
  return undefined;
}

function bodyBytes(body: AmqpBody): Uint8Array | undefined {
  if (body === undefined) return undefined;
  switch (body.kind) {
    case "data":
      return body.bytes;
    case "sequence":
      throw new FormatError("an amqp-sequence body cannot be event data");
    case "value": {
      const v = body.value;
      if (v === null || v === undefined) return undefined;
      if (v instanceof Uint8Array) return v;
      if (typeof v === "string") return Buffer.from(v, "utf8");
      throw new FormatError(`an amqp-value body holding ${kindOf(v)} cannot be event data (send a data section)`);
    }
  }
}

function binaryEvent(msg: AmqpInbound, prefix: AmqpPrefix, bytes: Uint8Array | undefined): CloudEvent {
  const props = msg.applicationProperties!;
  const attrs: Record<string, AttributeValue> = {};
  for (const key of Object.keys(props)) {
    if (!key.startsWith(prefix)) continue;
    const v = props[key];
    if (v === null || v === undefined) continue;
    attrs[key.slice(prefix.length)] = attributeValue(key, v);
  }
  const ct = msg.contentType !== undefined && msg.contentType.trim() !== "" ? msg.contentType : undefined;
  return eventFromBinary(attrs, bytes, ct);
}

function uuidOrHex(b: Uint8Array): string {
  const hex = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
  if (b.byteLength !== 16) return hex;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** `message-id` as an event id: a string as is, a number in decimal, bytes as a UUID (16) or hex. */
export function messageIdString(id: unknown): string | undefined {
  if (typeof id === "string") return id === "" ? undefined : id;
  if (typeof id === "number" || typeof id === "bigint") return String(id);
  if (id instanceof Uint8Array) return uuidOrHex(id);
  return undefined;
}

/** An application property of a plain message as an extension value: typed where CloudEvents can be. */
function extensionValue(v: unknown): AttributeValue | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (typeof v === "number") return Number.isInteger(v) && v >= INT32_MIN && v <= INT32_MAX ? v : String(v);
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? undefined : v.toISOString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64");
  // Lists and maps: their JSON text, so nothing is dropped without a trace.
  return JSON.stringify(v, (_k, x: unknown) => (x instanceof Uint8Array ? Buffer.from(x).toString("base64") : x));
}

function plainEvent(msg: AmqpInbound, bytes: Uint8Array | undefined, opts: AmqpInboundOptions): CloudEvent {
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: messageIdString(msg.messageId) ?? opts.newId(),
    source: opts.source,
    type: "org.amqp.message",
    time: (msg.creationTime !== undefined && !Number.isNaN(msg.creationTime.getTime()) ? msg.creationTime : opts.now()).toISOString(),
  };
  if (msg.subject !== undefined && msg.subject !== "") attributes["subject"] = msg.subject;
  if (msg.contentType !== undefined && msg.contentType.trim() !== "") attributes["datacontenttype"] = msg.contentType;
  const props = msg.applicationProperties ?? {};
  for (const key of Object.keys(props)) {
    const v = extensionValue(props[key]);
    if (v !== undefined) attributes[escapeExtensionName("amqp", key)] = v;
  }
  const hasData = bytes !== undefined && (bytes.byteLength > 0 || attributes["datacontenttype"] !== undefined);
  return validateEvent(hasData ? { attributes, data: { kind: "bytes", bytes: bytes! } } : { attributes });
}

function metadataOf(msg: AmqpInbound): Record<string, string> {
  const md: Record<string, string> = {};
  const id = messageIdString(msg.messageId);
  if (id !== undefined) md["message_id"] = id;
  if (msg.contentType !== undefined) md["content_type"] = msg.contentType;
  if (msg.subject !== undefined) md["subject"] = msg.subject;
  for (const [k, v] of Object.entries(msg.applicationProperties ?? {})) {
    const s = extensionValue(v);
    if (s !== undefined) md[`application_property:${k}`] = attributeString(s);
  }
  return md;
}

function rawOf(body: AmqpBody): Uint8Array {
  if (body?.kind === "data") return body.bytes;
  if (body?.kind === "value") {
    if (body.value instanceof Uint8Array) return body.value;
    if (typeof body.value === "string") return Buffer.from(body.value, "utf8");
  }
  return new Uint8Array(0);
}

/**
 * Decodes one received message, with its W3C trace context (`traceFromAmqp`) as `trace`. Never
 * throws: failures come back as an invalid-message event.
 */
export function decodeAmqpMessage(msg: AmqpInbound, opts: AmqpInboundOptions): Decoded {
  const decoded = decodeEvent(msg, opts);
  const trace = traceFromAmqp(msg.messageAnnotations, msg.applicationProperties);
  return trace === undefined ? decoded : { ...decoded, trace };
}

function decodeEvent(msg: AmqpInbound, opts: AmqpInboundOptions): Decoded {
  try {
    const bytes = bodyBytes(msg.body);
    if (opts.maxMessageSize !== undefined && bytes !== undefined && bytes.byteLength > opts.maxMessageSize) {
      throw new TooLargeError(`body of ${bytes.byteLength} bytes is over max_message_size ${opts.maxMessageSize}`);
    }
    const limits = opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : undefined;
    const ct = msg.contentType;
    if (isBatchMediaType(ct)) throw new UnsupportedMediaTypeError(`content type "${ct}": the AMQP binding has no batch mode`);
    if (isStructuredMediaType(ct)) return { event: parseStructuredAs(ct, bytes ?? new Uint8Array(0), limits) };
    const prefix = binaryPrefixOf(msg.applicationProperties);
    if (prefix !== undefined) return { event: binaryEvent(msg, prefix, bytes) };
    if (bytes !== undefined) {
      const structured = parseIfStructured(bytes, limits);
      if (structured) return { event: structured };
    }
    return { event: plainEvent(msg, bytes, opts) };
  } catch (err) {
    const error = asBridgeError(err);
    const raw = rawOf(msg.body);
    const id = messageIdString(msg.messageId);
    let event: CloudEvent;
    try {
      event = invalidEvent({ raw, source: opts.source, error: { code: error.code, message: error.message }, metadata: metadataOf(msg), ...(id ? { id } : {}) });
    } catch {
      // The native id or source is unusable as an attribute: fall back to safe values.
      event = invalidEvent({ raw, source: "amqp://invalid", error: { code: error.code, message: error.message }, metadata: metadataOf(msg) });
    }
    return { event, invalid: error };
  }
}

// ---- sending ---------------------------------------------------------------------------------

/** An application-property value to send: a string or boolean, or a tagged AMQP long or timestamp. */
export type AmqpOutValue = string | boolean | { readonly long: number } | { readonly timestamp: number };

/** A message ready to send; the glue turns it into rhea's shapes. */
export interface AmqpOutbound {
  readonly messageId: string;
  readonly durable: boolean;
  readonly contentType?: string;
  readonly applicationProperties?: Record<string, AmqpOutValue>;
  /** One data section; `undefined` = the event has no data. */
  readonly body?: Uint8Array;
}

export type AmqpMode = "binary" | "structured";

export interface AmqpOutboundOptions {
  readonly mode: AmqpMode;
  readonly prefix: AmqpPrefix;
  readonly format: EventFormat;
  readonly durable: boolean;
}

function propertyValue(name: string, v: AttributeValue): AmqpOutValue {
  if (typeof v === "number") return { long: v };
  if (typeof v === "boolean") return v;
  if (name === "time") {
    const ms = exactMillis(v);
    if (ms !== undefined) return { timestamp: ms };
  }
  return v;
}

/**
 * Encodes an event for sending, with the hop context `trace` in the `traceparent` / `tracestate`
 * application properties. Throws `FormatError` when JSON data cannot be serialized.
 */
export function encodeAmqpMessage(ev: CloudEvent, opts: AmqpOutboundOptions, trace?: TraceContext): AmqpOutbound {
  const messageId = attributeString(ev.attributes["id"] ?? "");
  const traceProps = trace !== undefined ? traceApplicationProperties(trace) : undefined;
  if (opts.mode === "structured") {
    const out = formatStructured(ev, opts.format);
    return { messageId, durable: opts.durable, contentType: out.contentType, body: out.body, ...(traceProps !== undefined ? { applicationProperties: traceProps } : {}) };
  }
  const { body, contentType } = binaryBody(ev);
  // Both prefixes of the binding contain a delimiter, so no attribute name lands on `traceparent`.
  const applicationProperties: Record<string, AmqpOutValue> = traceProps !== undefined ? { ...traceProps } : {};
  const attrs = ev.attributes;
  for (const name in attrs) {
    if (name === "datacontenttype") continue; // ⇔ content-type
    const v = attrs[name];
    if (v !== undefined) applicationProperties[opts.prefix + name] = propertyValue(name, v);
  }
  const out: { -readonly [K in keyof AmqpOutbound]: AmqpOutbound[K] } = { messageId, durable: opts.durable, applicationProperties };
  if (contentType !== undefined) out.contentType = contentType;
  if (body !== undefined) out.body = body;
  return out;
}
