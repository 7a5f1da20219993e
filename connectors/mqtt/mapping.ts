/**
 * MQTT PUBLISH ⇔ CloudEvent. PURE: no SDK, no I/O, clock and ids only through `opts`, pinned by the
 * fixture tables in `test/unit/connectors/mqtt-mapping.test.ts`.
 *
 * Receiving (DESIGN §5, docs/cloudevents.md §4.3), tolerant:
 * 1. MQTT 5, Content Type starting with `application/cloudevents` (any case) → structured event in
 *    the format it names (JSON, Protobuf; another format is invalid).
 * 2. MQTT 5 with a `specversion` user property → binary mode: every user property whose name is a
 *    valid attribute name is an attribute (others are ignored), `datacontenttype` = the Content Type
 *    property, else a `datacontenttype` user property (the JavaScript SDK writes both); values are used
 *    as they are (the MQTT binding does not percent-encode).
 * 3. Anything else (and every MQTT 3.1.1 message): a JSON object with a `specversion` member is a
 *    structured event;
 * 4. otherwise a plain message: id = a new id (MQTT has no stable one), source = `mqtt://{host}:{port}`,
 *    type `org.mqtt.message`, subject = the topic, time = the receive time, data = the payload bytes
 *    with `datacontenttype` from the Content Type property (MQTT 5). User properties become extensions
 *    named by `userPropertyExtensionName`.
 * A message that claims to be a CloudEvent but is invalid becomes a `dev.cebridge.invalid` event with
 * `invalid` set.
 *
 * Sending: MQTT 5 `binary` → payload = data, Content Type = datacontenttype, one user property per
 * other attribute (canonical string); `structured` (MQTT 5 and the only mode on 3.1.1) → the JSON
 * event, with Content Type `application/cloudevents+json; charset=utf-8` on MQTT 5, or with
 * `format: protobuf` (MQTT 5 only: 3.1.1 has no Content Type to name it) the Protobuf event under
 * `application/cloudevents+protobuf`.
 */
import { TooLargeError, EventValidationError, asBridgeError, type BridgeError } from "../../src/core/errors.js";
import {
  attributeString,
  binaryBody,
  eventFromBinary,
  formatStructured,
  invalidEvent,
  isStructuredMediaType,
  isValidAttributeName,
  parseIfStructured,
  parseStructuredAs,
  serializeStructured,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
  type EventFormat,
  escapeExtensionName,
  STRUCTURED_JSON_CONTENT_TYPE,
} from "../../src/cloudevents/index.js";
import type { Decoded } from "../../src/core/source.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { traceFromUserProperties, traceUserProperties } from "../../src/cloudevents/trace-fields.js";

export type UserProperties = Readonly<Record<string, string | readonly string[]>>;

export interface MqttInbound {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly protocolVersion: 4 | 5;
  /** MQTT 5 Content Type property. */
  readonly contentType?: string | undefined;
  /** MQTT 5 user properties (mqtt.js gives an array for a repeated name). */
  readonly userProperties?: UserProperties | undefined;
}

export interface MqttInboundOptions {
  /** `source` of plain messages: `mqtt://{host}:{port}` of the configured broker. */
  readonly source: string;
  readonly maxPayload?: number | undefined;
  readonly maxDepth?: number | undefined;
  readonly now: () => Date;
  readonly newId: () => string;
}

export const STRUCTURED_CONTENT_TYPE = STRUCTURED_JSON_CONTENT_TYPE;

/** `mqtt://host:port` of a broker URL (the default port of the scheme when absent). */
export function plainSourceFor(url: string): string {
  try {
    const u = new URL(url);
    const secure = /^(mqtts|ssl|tls|wss):$/.test(u.protocol);
    const port = u.port || (u.protocol.startsWith("ws") ? (secure ? "443" : "80") : secure ? "8883" : "1883");
    return `mqtt://${u.hostname}:${port}`;
  } catch {
    return "mqtt://localhost:1883";
  }
}

/**
 * Extension name for a plain message's user property: `mqtt` + the kit's collision-free escaping
 * (`Tenant-Id` → `mqtttenantz2did`). Two properties differing only in case share a name; their
 * values are joined with `,`.
 */
export function userPropertyExtensionName(name: string): string {
  return escapeExtensionName("mqtt", name);
}

function binaryAttributes(props: UserProperties): Record<string, string> {
  const attrs: Record<string, string> = {};
  for (const name of Object.keys(props)) {
    if (!isValidAttributeName(name)) continue;
    const v = props[name]!;
    if (typeof v !== "string") {
      if (v.length !== 1) throw new EventValidationError(`user property "${name}" appears ${v.length} times`, name);
      attrs[name] = v[0]!;
    } else attrs[name] = v;
  }
  return attrs;
}

function plainEvent(msg: MqttInbound, opts: MqttInboundOptions): CloudEvent {
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: opts.newId(),
    source: opts.source,
    type: "org.mqtt.message",
    subject: msg.topic,
    time: opts.now().toISOString(),
  };
  if (msg.contentType !== undefined && msg.contentType.trim() !== "") attributes["datacontenttype"] = msg.contentType;
  for (const [k, v] of Object.entries(msg.userProperties ?? {})) {
    const name = userPropertyExtensionName(k);
    const value = typeof v === "string" ? v : v.join(",");
    const prev = attributes[name];
    attributes[name] = prev === undefined ? value : `${attributeString(prev)},${value}`;
  }
  const hasData = msg.payload.byteLength > 0 || attributes["datacontenttype"] !== undefined;
  return validateEvent(hasData ? { attributes, data: { kind: "bytes", bytes: msg.payload } } : { attributes });
}

function metadataOf(msg: MqttInbound): Record<string, string> {
  const md: Record<string, string> = { topic: msg.topic, protocol_version: String(msg.protocolVersion) };
  if (msg.contentType !== undefined) md["content_type"] = msg.contentType;
  for (const [k, v] of Object.entries(msg.userProperties ?? {})) md[`user_property:${k}`] = typeof v === "string" ? v : v.join(",");
  return md;
}

/**
 * Decodes one PUBLISH, with the trace context of its `traceparent` / `tracestate` user properties
 * (MQTT 5) as `trace`. In binary mode that property is also the event's extension, so both are
 * the same value (see `cloudevents/trace-fields.ts`). Never throws: failures come back as an
 * invalid-message event.
 */
export function decodeMqttMessage(msg: MqttInbound, opts: MqttInboundOptions): Decoded {
  const decoded = decodeEvent(msg, opts);
  const trace = msg.protocolVersion === 5 ? traceFromUserProperties(msg.userProperties) : undefined;
  return trace === undefined ? decoded : { ...decoded, trace };
}

function decodeEvent(msg: MqttInbound, opts: MqttInboundOptions): Decoded {
  try {
    if (opts.maxPayload !== undefined && msg.payload.byteLength > opts.maxPayload) {
      throw new TooLargeError(`payload of ${msg.payload.byteLength} bytes is over max_payload ${opts.maxPayload}`);
    }
    const limits = opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : undefined;
    if (msg.protocolVersion === 5) {
      if (isStructuredMediaType(msg.contentType)) return { event: parseStructuredAs(msg.contentType, msg.payload, limits) };
      const props = msg.userProperties;
      if (props !== undefined && Object.hasOwn(props, "specversion")) {
        const attrs = binaryAttributes(props);
        const ct = msg.contentType !== undefined && msg.contentType.trim() !== "" ? msg.contentType : undefined;
        return { event: eventFromBinary(attrs, msg.payload, ct) };
      }
    }
    const structured = parseIfStructured(msg.payload, limits);
    if (structured) return { event: structured };
    return { event: plainEvent(msg, opts) };
  } catch (err) {
    const error = asBridgeError(err);
    return {
      event: invalidEvent({ raw: msg.payload, source: opts.source, error: { code: error.code, message: error.message }, metadata: metadataOf(msg) }),
      invalid: error,
    };
  }
}

export type MqttMode = "binary" | "structured";

export interface MqttOutbound {
  readonly payload: Buffer;
  /** MQTT 5 properties; absent on 3.1.1. */
  readonly properties?: { contentType?: string; userProperties?: Record<string, string> };
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/**
 * Encodes an event for publishing. Protocol 4 always uses structured mode in JSON (a reader has no
 * Content Type to tell formats apart). The hop context `trace` goes into the `traceparent` /
 * `tracestate` user properties in MQTT 5 structured mode only: in binary mode those properties are
 * the event's own extension attributes, which pass unchanged, and 3.1.1 has no properties.
 * Throws `FormatError`.
 */
export function encodeMqttMessage(ev: CloudEvent, mode: MqttMode, protocolVersion: 4 | 5, format: EventFormat = "json", trace?: TraceContext): MqttOutbound {
  if (protocolVersion === 4) return { payload: Buffer.from(serializeStructured(ev), "utf8") };
  if (mode === "structured") {
    const out = format === "json" ? { body: Buffer.from(serializeStructured(ev), "utf8"), contentType: STRUCTURED_CONTENT_TYPE } : formatStructured(ev, format);
    const properties: NonNullable<MqttOutbound["properties"]> = { contentType: out.contentType };
    if (trace !== undefined) properties.userProperties = traceUserProperties(trace);
    return { payload: asBuffer(out.body), properties };
  }
  const { body, contentType } = binaryBody(ev);
  const userProperties: Record<string, string> = {};
  // Every attribute, datacontenttype included: the binding's own example and the JavaScript SDK do
  // so, and the SDK's reader ignores the Content Type property.
  for (const name of Object.keys(ev.attributes)) {
    const v = ev.attributes[name];
    if (v !== undefined) userProperties[name] = attributeString(v);
  }
  return {
    payload: body === undefined ? Buffer.alloc(0) : asBuffer(body),
    properties: contentType !== undefined ? { contentType, userProperties } : { userProperties },
  };
}
