/**
 * A trace context ⇔ each transport's native trace fields. PURE; the rule of which context goes
 * where is in `trace-context.ts` (the extension passes through; the native field carries the
 * bridge's own hop).
 *
 * How a connector uses it:
 * - **Source**: read the native field of the received message with the matching `…From…` function
 *   in its pure mapping and return it as `Decoded.trace` (spread into `Received`). The engine adds
 *   the extension from it when the event lacks one, parents the delivery's spans on it, and hands
 *   the sinks the hop context. A source whose transport has no per-message trace field leaves
 *   `trace` unset; the event's own extension is then the parent.
 * - **Sink**: `Sink.write(event, signal, trace)` receives the hop context (or `undefined`). Write
 *   it with the matching `…For…`/`to…` function into the message's native field, next to (never
 *   instead of) the binding's own encoding of the event, which already carries the extension.
 *   Sinks that send many events in one request (HTTP batch mode, EventBridge PutEvents entries
 *   excepted: each entry has its own `TraceHeader`) leave the request-level field unset.
 *
 * | transport | native field | functions |
 * |---|---|---|
 * | HTTP (request headers; also the Event Grid webhook source's requests), NATS and JetStream (message headers) | `traceparent`, `tracestate` | `traceFromHeaders`, `traceHeaders` |
 * | MQTT 5 | user properties `traceparent`, `tracestate` | `traceFromUserProperties`, `traceUserProperties` |
 * | AWS SQS `AWSTraceHeader` system attribute, EventBridge `TraceHeader` | X-Ray `Root=1-…;Parent=…;Sampled=…` | `traceFromXRay`, `toXRay` |
 * | Google Pub/Sub | attributes `googclient_traceparent`, `googclient_tracestate` (what the Pub/Sub client library's OpenTelemetry integration reads and writes) | `traceFromAttributes`, `traceAttributes` with `PUBSUB_TRACE_ATTRIBUTES` |
 * | AMQP 1.0 | application properties `traceparent`, `tracestate` (strings); read from the message annotations first (W3C "Trace Context: AMQP protocol" draft) | `traceFromAmqp`, `traceApplicationProperties` |
 * | Azure Event Grid events (publish, and both deliveries' events) | the CloudEvent's own `traceparent` / `tracestate` extension; no separate per-event field (a publish request carries a batch) | — |
 *
 * Two transports make the native field and the event's own encoding the same thing, and there the
 * binding wins, so that a reader rebuilds the event exactly:
 * - MQTT 5 **binary** mode maps every attribute to a user property named like it, so the user
 *   property `traceparent` *is* the extension. The sink writes no separate hop value there; the
 *   source reads that property as the transport context (it equals the extension). Spans of the
 *   next hop then hang under the starting trace rather than under the bridge's send span: same
 *   trace id, flatter tree. MQTT 5 structured mode keeps the two apart; MQTT 3.1.1 has no
 *   properties, so no transport field at all.
 * - Event Grid events carry only the extension (as above).
 * X-Ray has no `tracestate`: it is dropped on the way into X-Ray and absent on the way out.
 */
import { formatTraceparent, parseTraceparent, traceContextOf, TRACEPARENT, TRACESTATE, type TraceContext } from "./trace-context.js";

/** Header names of W3C Trace Context (lower case, as HTTP/2 and our senders write them). */
export const TRACEPARENT_HEADER = TRACEPARENT;
export const TRACESTATE_HEADER = TRACESTATE;

/**
 * The trace context in a set of headers. `get` returns the value of a header matched
 * case-insensitively (or `undefined`); `traceparent` must appear once (a caller seeing it repeated
 * passes `undefined`: W3C says to ignore a repeated `traceparent`). Invalid values give `undefined`.
 */
export function traceFromHeaders(get: (lowerCaseName: string) => string | undefined): TraceContext | undefined {
  const tp = get(TRACEPARENT_HEADER);
  if (tp === undefined) return undefined;
  return traceContextOf(tp, get(TRACESTATE_HEADER));
}

/** The headers that carry `ctx`: `traceparent`, and `tracestate` when it has one. */
export function traceHeaders(ctx: TraceContext): [name: string, value: string][] {
  const out: [string, string][] = [[TRACEPARENT_HEADER, ctx.traceparent]];
  if (ctx.tracestate !== undefined) out.push([TRACESTATE_HEADER, ctx.tracestate]);
  return out;
}

/** MQTT 5 user properties as mqtt.js gives them: a string, or an array for a repeated name. */
export type UserPropertyMap = Readonly<Record<string, string | readonly string[]>>;

/** The trace context in MQTT 5 user properties (names exact: user properties are case-sensitive). */
export function traceFromUserProperties(props: UserPropertyMap | undefined): TraceContext | undefined {
  if (props === undefined) return undefined;
  const tp = props[TRACEPARENT];
  if (typeof tp !== "string") return undefined; // absent, or repeated
  const ts = props[TRACESTATE];
  return traceContextOf(tp, typeof ts === "string" ? ts : undefined);
}

/** User properties that carry `ctx`, to merge into a PUBLISH's properties. */
export function traceUserProperties(ctx: TraceContext): Record<string, string> {
  return ctx.tracestate !== undefined ? { [TRACEPARENT]: ctx.traceparent, [TRACESTATE]: ctx.tracestate } : { [TRACEPARENT]: ctx.traceparent };
}

/** Attribute names a message-attribute transport uses for the two values. */
export interface TraceAttributeNames {
  readonly traceparent: string;
  readonly tracestate: string;
}

/** Google Pub/Sub: the names the client library's OpenTelemetry propagation uses. */
export const PUBSUB_TRACE_ATTRIBUTES: TraceAttributeNames = { traceparent: "googclient_traceparent", tracestate: "googclient_tracestate" };

/** The trace context in a string map of message attributes. */
export function traceFromAttributes(attributes: Readonly<Record<string, string>> | undefined, names: TraceAttributeNames): TraceContext | undefined {
  if (attributes === undefined) return undefined;
  return traceContextOf(attributes[names.traceparent], attributes[names.tracestate]);
}

/** The message attributes that carry `ctx`. */
export function traceAttributes(ctx: TraceContext, names: TraceAttributeNames): Record<string, string> {
  return ctx.tracestate !== undefined ? { [names.traceparent]: ctx.traceparent, [names.tracestate]: ctx.tracestate } : { [names.traceparent]: ctx.traceparent };
}

/**
 * The X-Ray trace header for `ctx`: `Root=1-{first 8 hex of the trace id}-{other 24};Parent={span
 * id};Sampled={0|1}`. Lossless for the ids (the split is where X-Ray puts its epoch field); X-Ray
 * itself may refuse a root whose first 8 digits are not a recent epoch second, which matters only
 * to the X-Ray service, not to carrying the context across SQS or EventBridge. `undefined` when
 * `ctx.traceparent` is not a valid one (a sink then writes no header rather than a broken one).
 */
export function toXRay(ctx: TraceContext): string | undefined {
  const p = parseTraceparent(ctx.traceparent);
  if (p === undefined) return undefined;
  return `Root=1-${p.traceId.slice(0, 8)}-${p.traceId.slice(8)};Parent=${p.spanId};Sampled=${p.flags & 1}`;
}

/**
 * The trace context in an X-Ray trace header (`Root=…;Parent=…;Sampled=…`, keys in any order and
 * case, other keys such as `Lineage` ignored). Without `Parent` there is no span to hang under, so
 * the result is `undefined`; `Sampled=?` or absent counts as not sampled.
 */
export function traceFromXRay(header: string | undefined): TraceContext | undefined {
  if (header === undefined) return undefined;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled = 0;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim().toLowerCase();
    const value = part.slice(eq + 1).trim().toLowerCase();
    if (key === "root") root = value;
    else if (key === "parent") parent = value;
    else if (key === "sampled") sampled = value === "1" ? 1 : 0;
  }
  const m = root !== undefined ? /^1-([0-9a-f]{8})-([0-9a-f]{24})$/.exec(root) : null;
  if (!m || parent === undefined || !/^[0-9a-f]{16}$/.test(parent)) return undefined;
  return traceContextOf(formatTraceparent(m[1]! + m[2]!, parent, sampled), undefined);
}

/**
 * The trace context of an AMQP 1.0 message. The W3C "Trace Context: AMQP protocol" draft has the
 * publisher put `traceparent` / `tracestate` in the application properties and lets middleware
 * annotate in the message annotations, which a reader consults first: so the annotations win when
 * they hold a valid `traceparent`. A `traceparent` may be the usual string or the draft's binary
 * form (`traceparentFromBinary`); `tracestate` is a string. Anything else gives `undefined`.
 */
export function traceFromAmqp(
  annotations: Readonly<Record<string, unknown>> | undefined,
  applicationProperties: Readonly<Record<string, unknown>> | undefined,
): TraceContext | undefined {
  return amqpSection(annotations) ?? amqpSection(applicationProperties);
}

function amqpSection(section: Readonly<Record<string, unknown>> | undefined): TraceContext | undefined {
  if (section === undefined) return undefined;
  const tp = section[TRACEPARENT];
  if (tp === undefined || tp === null) return undefined;
  const text = typeof tp === "string" ? tp : tp instanceof Uint8Array ? traceparentFromBinary(tp) : undefined;
  const ts = section[TRACESTATE];
  return traceContextOf(text, typeof ts === "string" ? ts : undefined);
}

/**
 * A `traceparent` from W3C Trace Context's binary format (the AMQP draft's encoding): version byte
 * 0, then field 0 with the 16-byte trace id, field 1 with the 8-byte span id, field 2 with the flags
 * byte (29 bytes in all; a later field is ignored). `undefined` for anything else.
 */
export function traceparentFromBinary(b: Uint8Array): string | undefined {
  if (b.byteLength < 29 || b[0] !== 0 || b[1] !== 0 || b[18] !== 1 || b[27] !== 2) return undefined;
  const hex = Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
  return formatTraceparent(hex.slice(4, 36), hex.slice(38, 54), b[28]!);
}

/**
 * The AMQP application properties that carry `ctx`, as strings: what AMQP clients with W3C
 * propagation (the Azure messaging SDKs, OpenTelemetry's text-map propagators) write and read, rather
 * than the draft's binary `traceparent`, which few readers decode.
 */
export function traceApplicationProperties(ctx: TraceContext): Record<string, string> {
  return traceUserProperties(ctx);
}
