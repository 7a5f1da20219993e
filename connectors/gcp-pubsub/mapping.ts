/**
 * Pub/Sub message ⇔ CloudEvent. PURE: no SDK, no I/O, no clock or randomness, so the fixture tables
 * in `test/unit/connectors/gcp-pubsub-mapping.test.ts` pin every rule.
 *
 * Receiving (Google's Pub/Sub binding, docs/cloudevents.md §5; attribute names matched in any case):
 * 1. attribute `content-type` starting with `application/cloudevents` → structured JSON event in data.
 * 2. any `ce-` attribute → binary mode: one attribute per `ce-<name>`, values taken as they are (the
 *    binding defines no percent-encoding: attributes are UTF-8 strings); `datacontenttype` from the
 *    `content-type` attribute when present (the binding says it MUST be used), else `ce-datacontenttype`.
 * 3. no `content-type`, no `ce-` attribute, and data is a JSON object with `specversion` → structured
 *    (TriggerMesh's Pub/Sub target writes structured events without attributes).
 * 4. anything else is a plain message:
 *    - `message_published` (default): Google's `google.cloud.pubsub.topic.v1.messagePublished` event
 *      (Eventarc's shape): id = messageId, source = `//pubsub.googleapis.com/projects/P/topics/T`,
 *      time = publishTime, datacontenttype `application/json`, data = MessagePublishedData
 *      `{ subscription, message: { data (base64), attributes?, messageId, publishTime, orderingKey? },
 *      deliveryAttempt? }` (members with empty values left out, as proto3 JSON does).
 *    - `raw`: same id, source and time; type `com.google.cloud.pubsub.message` (configurable); data =
 *      the message bytes; `content-type` → datacontenttype; every other attribute becomes the extension
 *      `escapeExtensionName("pubsub", key)` (`X-Tenant` → `pubsubxz2dtenant`).
 *    In both, a non-empty orderingKey is also the `partitionkey` extension, so routes can order on it
 *    and a Pub/Sub sink with `ordering: true` publishes under the same key.
 * A message that claims to be a CloudEvent but is not a valid one becomes a `dev.cebridge.invalid`
 * event (raw bytes + attributes + message id) with `invalid` set, for the engine to dead-letter.
 * Whatever the message holds, its `googclient_traceparent` / `googclient_tracestate` attributes (the
 * Pub/Sub client library's own trace propagation) are the transport trace context, `Decoded.trace`.
 *
 * Sending: `binary` → one `ce-<attr>` attribute per event attribute (including `ce-datacontenttype`),
 * values as they are, plus `content-type` = datacontenttype unless that is itself a CloudEvents media
 * type (which would flip readers into structured mode), data bytes as data. When the attributes do not
 * fit Pub/Sub's limits (100 attributes, 256-byte keys, 1024-byte values) the event goes structured
 * instead — never truncated. `structured` → attribute `content-type: application/cloudevents+json;
 * charset=utf-8` and the JSON event as data. A message over 10 MB fails permanently (CEB_TOO_LARGE).
 * The write's hop context (see `Sink.write`) goes into the `googclient_` trace attributes in both
 * modes, beside the event's own `ce-traceparent` (or JSON `traceparent`); they count toward the 100
 * attributes, so a binary message that cannot hold them too goes structured.
 */
import { TooLargeError, asBridgeError } from "../../src/core/errors.js";
import {
  binaryBody,
  cloneAttributes,
  decodeCeHeaders,
  encodeCeHeaders,
  escapeExtensionName,
  eventFromBinary,
  invalidEvent,
  isStructuredMediaType,
  parseIfStructured,
  parseStructuredAs,
  serializeStructured,
  STRUCTURED_JSON_CONTENT_TYPE,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
} from "../../src/cloudevents/index.js";
import type { Decoded } from "../../src/core/source.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { PUBSUB_TRACE_ATTRIBUTES, traceAttributes, traceFromAttributes } from "../../src/cloudevents/trace-fields.js";

/** Pub/Sub's per-message limits (cloud.google.com/pubsub/quotas#resource_limits). */
export const PUBSUB_LIMITS = Object.freeze({
  attributes: 100,
  keyBytes: 256,
  valueBytes: 1024,
  orderingKeyBytes: 1024,
  /** Message data + attributes + ordering key. */
  messageBytes: 10_000_000,
});

export const MESSAGE_PUBLISHED_TYPE = "google.cloud.pubsub.topic.v1.messagePublished";
export const RAW_TYPE = "com.google.cloud.pubsub.message";
export const STRUCTURED_CONTENT_TYPE = STRUCTURED_JSON_CONTENT_TYPE;

/** What the mapping needs from a received Pub/Sub message. */
export interface PubSubInbound {
  readonly messageId: string;
  readonly data: Uint8Array;
  readonly attributes: Readonly<Record<string, string>>;
  /** "" when the message has none. */
  readonly orderingKey: string;
  /** RFC 3339 (see `nanosToRfc3339`). */
  readonly publishTime: string;
  /** 0 unless the subscription has a dead-letter policy. */
  readonly deliveryAttempt: number;
}

export type Mapping = "message_published" | "raw";

export interface InboundOptions {
  /** `projects/P/topics/T` of the subscription's topic; undefined when it could not be read. */
  readonly topic: string | undefined;
  /** `projects/P/subscriptions/S`. */
  readonly subscription: string;
  readonly mapping: Mapping;
  /** `type` of raw-mapped events. */
  readonly rawType: string;
  /** Larger data becomes an invalid event (`CEB_TOO_LARGE`). */
  readonly maxPayload?: number | undefined;
  readonly maxDepth?: number | undefined;
}

/** The `source` of mapped plain messages: the topic's resource URI (the subscription's when unknown). */
export function pubsubSource(opts: Pick<InboundOptions, "topic" | "subscription">): string {
  return `//pubsub.googleapis.com/${opts.topic ?? opts.subscription}`;
}

/** First value of an attribute, its name matched case-insensitively. */
export function attributeValue(attrs: Readonly<Record<string, string>>, name: string): string | undefined {
  const exact = attrs[name];
  if (exact !== undefined) return exact;
  for (const k in attrs) if (k.length === name.length && k.toLowerCase() === name) return attrs[k];
  return undefined;
}

function hasCeAttribute(attrs: Readonly<Record<string, string>>): boolean {
  for (const k in attrs) if (k.length > 3 && (k.charCodeAt(0) | 0x20) === 0x63 && (k.charCodeAt(1) | 0x20) === 0x65 && k[2] === "-") return true;
  return false;
}

function base64(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("base64");
}

function messagePublished(msg: PubSubInbound, opts: InboundOptions): CloudEvent {
  const message: Record<string, unknown> = {};
  if (msg.data.byteLength > 0) message["data"] = base64(msg.data);
  if (Object.keys(msg.attributes).length > 0) message["attributes"] = { ...msg.attributes };
  message["messageId"] = msg.messageId;
  message["publishTime"] = msg.publishTime;
  if (msg.orderingKey !== "") message["orderingKey"] = msg.orderingKey;
  const value: Record<string, unknown> = { subscription: opts.subscription, message };
  if (msg.deliveryAttempt > 0) value["deliveryAttempt"] = msg.deliveryAttempt;
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: msg.messageId,
    source: pubsubSource(opts),
    type: MESSAGE_PUBLISHED_TYPE,
    time: msg.publishTime,
    datacontenttype: "application/json",
  };
  if (msg.orderingKey !== "") attributes["partitionkey"] = msg.orderingKey;
  return validateEvent({ attributes, data: { kind: "json", value } });
}

function rawEvent(msg: PubSubInbound, opts: InboundOptions, contentType: string | undefined): CloudEvent {
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: msg.messageId,
    source: pubsubSource(opts),
    type: opts.rawType,
    time: msg.publishTime,
  };
  if (contentType !== undefined && contentType.trim() !== "") attributes["datacontenttype"] = contentType;
  if (msg.orderingKey !== "") attributes["partitionkey"] = msg.orderingKey;
  for (const k in msg.attributes) {
    if (k.toLowerCase() === "content-type") continue;
    attributes[escapeExtensionName("pubsub", k)] = msg.attributes[k]!;
  }
  const hasData = msg.data.byteLength > 0 || attributes["datacontenttype"] !== undefined;
  return validateEvent(hasData ? { attributes, data: { kind: "bytes", bytes: msg.data } } : { attributes });
}

function metadataOf(msg: PubSubInbound, opts: InboundOptions): Record<string, string> {
  const md: Record<string, string> = { messageId: msg.messageId, publishTime: msg.publishTime, subscription: opts.subscription };
  if (msg.orderingKey !== "") md["orderingKey"] = msg.orderingKey;
  if (msg.deliveryAttempt > 0) md["deliveryAttempt"] = String(msg.deliveryAttempt);
  for (const k in msg.attributes) md[`attribute:${k}`] = msg.attributes[k]!;
  return md;
}

/**
 * Decodes one received message, with its `googclient_` trace attributes as `trace`. Never throws:
 * failures come back as an invalid-message event.
 */
export function decodePubSubMessage(msg: PubSubInbound, opts: InboundOptions): Decoded {
  const decoded = decodeEvent(msg, opts);
  const trace = traceFromAttributes(msg.attributes, PUBSUB_TRACE_ATTRIBUTES);
  return trace === undefined ? decoded : { ...decoded, trace };
}

function decodeEvent(msg: PubSubInbound, opts: InboundOptions): Decoded {
  try {
    if (opts.maxPayload !== undefined && msg.data.byteLength > opts.maxPayload) {
      throw new TooLargeError(`message data of ${msg.data.byteLength} bytes is over max_payload ${opts.maxPayload}`);
    }
    const limits = opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : undefined;
    const ct = attributeValue(msg.attributes, "content-type");
    if (isStructuredMediaType(ct)) return { event: parseStructuredAs(ct, msg.data, limits) };
    if (hasCeAttribute(msg.attributes)) {
      const attrs = decodeCeHeaders(Object.entries(msg.attributes), "ce-", { percent: false });
      return { event: eventFromBinary(attrs, msg.data, ct) };
    }
    if (ct === undefined) {
      const structured = parseIfStructured(msg.data, limits);
      if (structured) return { event: structured };
    }
    return { event: opts.mapping === "raw" ? rawEvent(msg, opts, ct) : messagePublished(msg, opts) };
  } catch (err) {
    const error = asBridgeError(err);
    const e = { code: error.code, message: error.message };
    let event: CloudEvent;
    try {
      event = invalidEvent({ raw: msg.data, source: pubsubSource(opts), error: e, metadata: metadataOf(msg, opts), id: msg.messageId });
    } catch {
      event = invalidEvent({ raw: msg.data, source: "//pubsub.googleapis.com/invalid", error: e, metadata: metadataOf(msg, opts) });
    }
    return { event, invalid: error };
  }
}

export type PubSubMode = "binary" | "structured";

/** A message ready for `topic.publishMessage`. */
export interface PubSubOutbound {
  readonly data: Buffer;
  readonly attributes: Record<string, string>;
  /** Set only with `ordering` and a non-empty `partitionkey`. */
  readonly orderingKey?: string;
  /** The mode actually used: binary falls back to structured when the attributes do not fit. */
  readonly mode: PubSubMode;
  /** Why binary fell back to structured (for a debug log line). */
  readonly fallback?: string;
}

/**
 * Why `attributes` do not fit Pub/Sub's limits, or undefined when they do. `reserved` attributes
 * (the trace attributes, added afterwards) count toward the 100 as well.
 */
export function attributeLimitProblem(attributes: Readonly<Record<string, string>>, reserved = 0): string | undefined {
  let n = reserved;
  for (const k in attributes) {
    n++;
    const kb = Buffer.byteLength(k);
    if (kb > PUBSUB_LIMITS.keyBytes) return `attribute name ${k.slice(0, 40)}… is ${kb} bytes, over ${PUBSUB_LIMITS.keyBytes}`;
    const vb = Buffer.byteLength(attributes[k]!);
    if (vb > PUBSUB_LIMITS.valueBytes) return `attribute ${k} is ${vb} bytes, over ${PUBSUB_LIMITS.valueBytes}`;
    // `googclient_` is the client libraries' prefix (their trace propagation), which the service takes.
    if (k.startsWith("goog") && !k.startsWith("googclient_")) return `attribute ${k} starts with the reserved prefix goog`;
  }
  if (n > PUBSUB_LIMITS.attributes) return `${n} attributes${reserved > 0 ? ` (${reserved} of them for the trace context)` : ""}, over ${PUBSUB_LIMITS.attributes}`;
  return undefined;
}

function toBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function binaryMessage(ev: CloudEvent): { data: Buffer; attributes: Record<string, string> } {
  const { body, contentType } = binaryBody(ev);
  let withCt = ev;
  if (contentType !== undefined && ev.attributes["datacontenttype"] === undefined) {
    const attributes = cloneAttributes(ev.attributes);
    attributes["datacontenttype"] = contentType;
    withCt = { attributes, data: ev.data };
  }
  const attributes: Record<string, string> = {};
  for (const [k, v] of encodeCeHeaders(withCt, { prefix: "ce-", includeDatacontenttype: true, percent: false })) attributes[k] = v;
  if (contentType !== undefined && !isStructuredMediaType(contentType)) attributes["content-type"] = contentType;
  return { data: body === undefined ? Buffer.alloc(0) : toBuffer(body), attributes };
}

/**
 * Encodes an event for publishing, with the hop context `trace` in the `googclient_` trace
 * attributes. Throws `TooLargeError` (permanent) when the message or the ordering key is over
 * Pub/Sub's limits, `FormatError` when JSON data cannot be serialized.
 */
export function encodePubSubMessage(ev: CloudEvent, opts: { readonly mode: PubSubMode; readonly ordering: boolean }, trace?: TraceContext): PubSubOutbound {
  const traceAttrs = trace !== undefined ? traceAttributes(trace, PUBSUB_TRACE_ATTRIBUTES) : undefined;
  let out: { data: Buffer; attributes: Record<string, string> } | undefined;
  let fallback: string | undefined;
  if (opts.mode === "binary") {
    out = binaryMessage(ev);
    fallback = attributeLimitProblem(out.attributes, traceAttrs !== undefined ? Object.keys(traceAttrs).length : 0);
    if (fallback !== undefined) out = undefined;
  }
  const mode: PubSubMode = out ? "binary" : "structured";
  out ??= { data: Buffer.from(serializeStructured(ev), "utf8"), attributes: { "content-type": STRUCTURED_CONTENT_TYPE } };
  // The trace values are within the value limit (55 and at most 512 characters).
  if (traceAttrs !== undefined) Object.assign(out.attributes, traceAttrs);

  let orderingKey: string | undefined;
  const pk = ev.attributes["partitionkey"];
  if (opts.ordering && pk !== undefined && String(pk) !== "") {
    orderingKey = String(pk);
    const kb = Buffer.byteLength(orderingKey);
    if (kb > PUBSUB_LIMITS.orderingKeyBytes) {
      throw new TooLargeError(`partitionkey is ${kb} bytes; a Pub/Sub ordering key holds at most ${PUBSUB_LIMITS.orderingKeyBytes}`);
    }
  }
  let size = out.data.length + (orderingKey ? Buffer.byteLength(orderingKey) : 0);
  for (const k in out.attributes) size += Buffer.byteLength(k) + Buffer.byteLength(out.attributes[k]!);
  if (size > PUBSUB_LIMITS.messageBytes) {
    throw new TooLargeError(`the ${mode} message is ${size} bytes, over Pub/Sub's ${PUBSUB_LIMITS.messageBytes}-byte message limit`);
  }
  return { ...out, mode, ...(orderingKey !== undefined ? { orderingKey } : {}), ...(fallback !== undefined ? { fallback } : {}) };
}
