/**
 * NATS message ⇔ CloudEvent. PURE: no SDK, no I/O, no clock or randomness except through `opts`,
 * so the fixture tables in `test/unit/connectors/nats-mapping.test.ts` pin every rule.
 *
 * Receiving is tolerant (DESIGN §5, docs/cloudevents.md §4.4):
 * 1. `Content-Type` starting with `application/cloudevents` (any case) → structured event in the
 *    format it names (JSON, Protobuf; another format is invalid).
 * 2. any `ce-` header (any case) → binary mode: attributes from the percent-decoded `ce-` headers,
 *    `datacontenttype` from `ce-datacontenttype`, else from `Content-Type` (sdk-go writes the latter).
 * 3. no `ce-` header and the payload is a JSON object with a `specversion` member → structured.
 * 4. anything else is a plain message, mapped per the DESIGN §5 table:
 *    id = `Nats-Msg-Id`, else `{stream}-{seq}` (JetStream), else a new id; `source` from the `plain.source`
 *    template (`nats://{server}/{subject}` by default); type `io.nats.message` (configurable); subject =
 *    the NATS subject; time = the JetStream timestamp or the receive time; data = the payload bytes,
 *    with `datacontenttype` from `Content-Type` when present. Every other header becomes an extension
 *    named by `headerExtensionName` (values of repeated headers joined with `,`).
 * A message that claims to be a CloudEvent but is not a valid one becomes a `dev.cebridge.invalid` event
 * (raw bytes + subject + headers) with `invalid` set, for the engine to dead-letter.
 *
 * Sending: `structured` → `Content-Type: application/cloudevents+json; charset=utf-8` and the JSON
 * event (or `application/cloudevents+protobuf` and the Protobuf event with `format: protobuf`); `binary` → one lower-case `ce-<attr>` header per attribute (percent-encoded, including
 * `ce-datacontenttype`), plus `Content-Type` = datacontenttype as an interop aid for readers that
 * take the content type from there (sdk-go), and the data bytes as payload.
 */
import { BridgeError, TooLargeError, asBridgeError } from "../../src/core/errors.js";
import { eventIdDigest } from "../../src/cloudevents/id-digest.js";
import {
  binaryBody,
  cloneAttributes,
  decodeCeHeaders,
  encodeCeHeaders,
  eventFromBinary,
  invalidEvent,
  formatStructured,
  isStructuredMediaType,
  nanosToRfc3339,
  parseIfStructured,
  parseStructuredAs,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
  type EventFormat,
  escapeExtensionName,
  STRUCTURED_JSON_CONTENT_TYPE,
} from "../../src/cloudevents/index.js";
import type { Decoded } from "../../src/core/source.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { traceFromHeaders, traceHeaders } from "../../src/cloudevents/trace-fields.js";

/** One header value per entry; a header with several values appears several times. */
export type HeaderEntries = readonly (readonly [name: string, value: string])[];

/** What the mapping needs from a received NATS (or JetStream) message. */
export interface NatsInbound {
  readonly subject: string;
  readonly headers: HeaderEntries;
  readonly payload: Uint8Array;
  /** Present for JetStream messages. */
  readonly jetstream?: {
    readonly stream: string;
    readonly seq: number;
    /** Stream timestamp in nanoseconds since the epoch. */
    readonly timestampNanos?: bigint;
  };
}

export interface InboundOptions {
  /** `plain.source` template: `{server}`, `{subject}`, `{stream}`. */
  readonly plainSource: string;
  readonly plainType: string;
  /** host:port of the first configured server (stable across reconnects, unlike the current server). */
  readonly server: string;
  /** Larger payloads become invalid events (`CEB_TOO_LARGE`). */
  readonly maxPayload?: number | undefined;
  readonly maxDepth?: number | undefined;
  /** Receive time, used for plain core-NATS messages. */
  readonly now: () => Date;
  /** A fresh unique id, used for plain core-NATS messages without `Nats-Msg-Id`. */
  readonly newId: () => string;
}

export const STRUCTURED_CONTENT_TYPE = STRUCTURED_JSON_CONTENT_TYPE;
const MSG_ID_HEADER = "nats-msg-id";

function lc(s: string): string {
  return s.toLowerCase();
}

/** First value of a header, matched case-insensitively. */
export function headerValue(headers: HeaderEntries, name: string): string | undefined {
  const want = lc(name);
  for (const [k, v] of headers) if (lc(k) === want) return v;
  return undefined;
}

function hasCeHeader(headers: HeaderEntries): boolean {
  for (const [k] of headers) if (k.length > 3 && lc(k.slice(0, 3)) === "ce-") return true;
  return false;
}

/** Renders the `plain.source` template. Unknown placeholders are kept as written. */
export function renderPlainSource(template: string, vars: { server: string; subject: string; stream?: string | undefined }): string {
  return template.replace(/\{(server|subject|stream)\}/g, (m, name: string) => {
    const v = name === "server" ? vars.server : name === "subject" ? vars.subject : vars.stream;
    return v === undefined ? m : v;
  });
}

/**
 * Extension name for a plain message's header: `nats` + the kit's collision-free escaping
 * (`X-Tenant` → `natsxz2dtenant`, `zone` → `natsz7aone`).
 */
export function headerExtensionName(header: string): string {
  return escapeExtensionName("nats", header);
}

/** Headers consumed by the plain mapping itself, never copied into extensions. */
const CONSUMED = new Set(["nats-msg-id", "content-type"]);

export { nanosToRfc3339 };

function metadataOf(msg: NatsInbound): Record<string, string> {
  const md: Record<string, string> = { subject: msg.subject };
  for (const [k, v] of msg.headers) {
    const key = `header:${k}`;
    md[key] = md[key] === undefined ? v : `${md[key]},${v}`;
  }
  if (msg.jetstream) {
    md["stream"] = msg.jetstream.stream;
    md["seq"] = String(msg.jetstream.seq);
  }
  return md;
}

function plainId(msg: NatsInbound, opts: InboundOptions): string {
  const msgId = headerValue(msg.headers, MSG_ID_HEADER);
  if (msgId !== undefined && msgId !== "") return msgId;
  if (msg.jetstream) return `${msg.jetstream.stream}-${msg.jetstream.seq}`;
  return opts.newId();
}

function plainEvent(msg: NatsInbound, opts: InboundOptions, source: string): CloudEvent {
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: plainId(msg, opts),
    source,
    type: opts.plainType,
    subject: msg.subject,
    time:
      msg.jetstream?.timestampNanos !== undefined ? nanosToRfc3339(msg.jetstream.timestampNanos) : opts.now().toISOString(),
  };
  const ct = headerValue(msg.headers, "content-type");
  if (ct !== undefined && ct.trim() !== "") attributes["datacontenttype"] = ct;
  for (const [k, v] of msg.headers) {
    if (CONSUMED.has(lc(k))) continue;
    const name = headerExtensionName(k);
    const prev = attributes[name];
    attributes[name] = prev === undefined ? v : `${String(prev)},${v}`;
  }
  const hasData = msg.payload.byteLength > 0 || attributes["datacontenttype"] !== undefined;
  return validateEvent(hasData ? { attributes, data: { kind: "bytes", bytes: msg.payload } } : { attributes });
}

/**
 * The W3C trace context in the message's `traceparent` / `tracestate` headers (any case): the
 * previous hop. A repeated `traceparent` is ignored.
 */
export function natsTrace(headers: HeaderEntries): TraceContext | undefined {
  if (headers.length === 0) return undefined;
  return traceFromHeaders((name) => {
    let found: string | undefined;
    for (const [k, v] of headers) {
      if (k.length !== name.length || lc(k) !== name) continue;
      if (found !== undefined) return name === "traceparent" ? undefined : `${found},${v}`;
      found = v;
    }
    return found;
  });
}

/**
 * Decodes one received message, with the transport trace context (`natsTrace`) as `trace`.
 * Never throws: failures come back as an invalid-message event.
 */
export function decodeNatsMessage(msg: NatsInbound, opts: InboundOptions): Decoded {
  const decoded = decodeEvent(msg, opts);
  const trace = natsTrace(msg.headers);
  return trace === undefined ? decoded : { ...decoded, trace };
}

function decodeEvent(msg: NatsInbound, opts: InboundOptions): Decoded {
  // Rendered only for plain messages and failures: a CloudEvent brings its own source (this was
  // 1-1.5 % of the daemon's CPU when rendered for every message).
  const source = () => renderPlainSource(opts.plainSource, { server: opts.server, subject: msg.subject, stream: msg.jetstream?.stream });
  try {
    if (opts.maxPayload !== undefined && msg.payload.byteLength > opts.maxPayload) {
      throw new TooLargeError(`payload of ${msg.payload.byteLength} bytes is over max_payload ${opts.maxPayload}`);
    }
    const ct = headerValue(msg.headers, "content-type");
    const limits = opts.maxDepth !== undefined ? { maxDepth: opts.maxDepth } : undefined;
    if (isStructuredMediaType(ct)) return { event: parseStructuredAs(ct, msg.payload, limits) };
    if (hasCeHeader(msg.headers)) {
      const attrs = decodeCeHeaders(msg.headers as Iterable<[string, string]>, "ce-");
      // ce-datacontenttype wins; Content-Type is the fallback some SDKs write instead.
      return { event: eventFromBinary(attrs, msg.payload, attrs["datacontenttype"] !== undefined ? undefined : ct) };
    }
    const structured = parseIfStructured(msg.payload, limits);
    if (structured) return { event: structured };
    return { event: plainEvent(msg, opts, source()) };
  } catch (err) {
    const error = asBridgeError(err);
    const id = headerValue(msg.headers, MSG_ID_HEADER) || (msg.jetstream ? `${msg.jetstream.stream}-${msg.jetstream.seq}` : undefined);
    let event: CloudEvent;
    try {
      event = invalidEvent({ raw: msg.payload, source: source(), error: { code: error.code, message: error.message }, metadata: metadataOf(msg), ...(id ? { id } : {}) });
    } catch {
      // The configured source or the native id is unusable as an attribute: fall back to safe values.
      event = invalidEvent({ raw: msg.payload, source: "nats://invalid", error: { code: error.code, message: error.message }, metadata: metadataOf(msg) });
    }
    return { event, invalid: error };
  }
}

/** A message ready to publish. */
export interface NatsOutbound {
  readonly headers: [name: string, value: string][];
  readonly payload: Uint8Array;
}

export type NatsMode = "structured" | "binary";

/**
 * Encodes an event for publishing; `format` is the event format of structured mode. The hop
 * context `trace` (when given) goes in the W3C `traceparent` / `tracestate` headers, in both modes
 * (binary mode's `ce-traceparent` is the event's own extension). Throws `FormatError` when JSON data
 * cannot be serialized.
 */
export function encodeNatsMessage(ev: CloudEvent, mode: NatsMode, format: EventFormat = "json", trace?: TraceContext): NatsOutbound {
  const out = encodeEvent(ev, mode, format);
  if (trace !== undefined) out.headers.push(...traceHeaders(trace));
  return out;
}

function encodeEvent(ev: CloudEvent, mode: NatsMode, format: EventFormat): NatsOutbound {
  if (mode === "structured") {
    const out = formatStructured(ev, format);
    return { headers: [["Content-Type", out.contentType]], payload: out.body };
  }
  const { body, contentType } = binaryBody(ev);
  const attrs = ev.attributes;
  // binaryBody makes an implied JSON content type explicit; carry it as datacontenttype too.
  let withCt = ev;
  if (contentType !== undefined && attrs["datacontenttype"] === undefined) {
    const attributes = cloneAttributes(attrs);
    attributes["datacontenttype"] = contentType;
    withCt = { attributes, data: ev.data };
  }
  const headers = encodeCeHeaders(withCt, { prefix: "ce-", includeDatacontenttype: true });
  if (contentType !== undefined) headers.push(["Content-Type", contentType]);
  return { headers, payload: body ?? new Uint8Array(0) };
}

/**
 * The JetStream `Nats-Msg-Id` for an event: `eventIdDigest`, the lower-case hex SHA-256 of `source` +
 * U+0000 + `id`, so a retried publish of the same event is deduplicated by the stream.
 */
export function msgIdFor(ev: CloudEvent): string {
  return eventIdDigest(ev);
}
