/**
 * The CloudEvents distributed-tracing extension (`traceparent`, `tracestate`) and W3C Trace Context
 * values, as pure functions. Native trace fields of each transport are in `trace-fields.ts`.
 *
 * Two traces travel with an event, and they are kept apart (DESIGN §7, docs/cloudevents.md §7):
 *
 * - **The extension** names the trace that *started* the event. The bridge passes it through
 *   unchanged on every hop, in every mode. Where an event arrives without it and its transport
 *   carried a trace context, the bridge adds it from that context (the extension allows middleware
 *   to add it when missing; Azure's Event Grid SDK does the same): that is how a trace begun by an
 *   HTTP client becomes the event's starting trace. It is never replaced or invented.
 * - **The transport field** (the W3C `traceparent` header on HTTP and NATS, MQTT 5 user properties,
 *   X-Ray `AWSTraceHeader`/`TraceHeader`, Pub/Sub `googclient_` attributes) carries *the bridge's own
 *   hop*: with OpenTelemetry on, the context of the span that wrote the message, so the next reader's
 *   spans hang under it; with it off, the bridge records no span of its own and forwards the transport
 *   context it received, unchanged, as a W3C intermediary that does not participate does. A message
 *   that arrived without a transport context leaves without one when tracing is off.
 *
 * `hopParent` states which context a delivery's spans (and, with tracing off, its outgoing transport
 * field) derive from: the transport context the message arrived with, else the extension.
 */
import type { CloudEvent } from "./event.js";
import { cloneAttributes } from "./event.js";

/** A W3C trace context as carried by headers or the extension: `traceparent` plus optional `tracestate`. */
export interface TraceContext {
  /** `version-traceid-parentid-flags`, valid per `parseTraceparent`. */
  readonly traceparent: string;
  /** Vendor list, forwarded as received when it is well-formed (see `validTracestate`). */
  readonly tracestate?: string;
}

/** The fields of a valid `traceparent`. */
export interface Traceparent {
  readonly version: string;
  /** 32 lower-case hex digits, not all zero. */
  readonly traceId: string;
  /** 16 lower-case hex digits, not all zero: the span that sent the message. */
  readonly spanId: string;
  /** The trace-flags byte; bit 0 is `sampled`. */
  readonly flags: number;
}

/** The extension attribute names, which are also the W3C header names. */
export const TRACEPARENT = "traceparent";
export const TRACESTATE = "tracestate";

const HEX = /^[0-9a-f]+$/;
const ZERO_TRACE = "00000000000000000000000000000000";
const ZERO_SPAN = "0000000000000000";
/** W3C: a tracestate of more than 512 characters may be dropped; we forward none longer. */
const MAX_TRACESTATE = 512;

/**
 * Parses a `traceparent` per W3C Trace Context level 1: version `00` is exactly 55 characters;
 * a higher version (not `ff`) may be longer, with a `-` after the flags, and is read by its first
 * four fields. Hex must be lower case; an all-zero trace or parent id is invalid. Returns
 * `undefined` for anything invalid (the caller then ignores the value and its `tracestate`).
 */
export function parseTraceparent(value: string | undefined): Traceparent | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === "ff") return undefined;
  if (version === "00" ? v.length !== 55 : v.length > 55 && v[55] !== "-") return undefined;
  if (v[2] !== "-" || v[35] !== "-" || v[52] !== "-") return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(spanId) || !HEX.test(flags)) return undefined;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return undefined;
  return { version, traceId, spanId, flags: parseInt(flags, 16) };
}

/** A version-00 `traceparent` (the only version this bridge writes). */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return `00-${traceId}-${spanId}-${(flags & 0xff).toString(16).padStart(2, "0")}`;
}

/**
 * Whether a `tracestate` is one this bridge forwards: at most 512 characters of printable ASCII
 * (U+0020–U+007E), members separated by `,`, each non-blank member `key=value`, at most 32 members.
 * The key and value grammars are the vendors' business; a malformed list is dropped, not repaired.
 */
export function validTracestate(value: string): boolean {
  if (value.length > MAX_TRACESTATE) return false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return false;
  }
  let members = 0;
  for (const raw of value.split(",")) {
    const m = raw.trim();
    if (m === "") continue;
    const eq = m.indexOf("=");
    if (eq <= 0 || eq === m.length - 1) return false;
    if (++members > 32) return false;
  }
  return true;
}

/**
 * A trace context from raw `traceparent` / `tracestate` values, or `undefined` when `traceparent`
 * is absent or invalid. An invalid or empty `tracestate` is left out; a valid one is kept as written.
 */
export function traceContextOf(traceparent: string | undefined, tracestate: string | undefined): TraceContext | undefined {
  if (parseTraceparent(traceparent) === undefined) return undefined;
  const tp = traceparent!.trim();
  if (tracestate === undefined || tracestate.trim() === "" || !validTracestate(tracestate)) return { traceparent: tp };
  return { traceparent: tp, tracestate };
}

/** The event's distributed-tracing extension as a trace context, when present and valid. */
export function eventTraceContext(ev: CloudEvent): TraceContext | undefined {
  const tp = ev.attributes[TRACEPARENT];
  if (typeof tp !== "string") return undefined;
  const ts = ev.attributes[TRACESTATE];
  return traceContextOf(tp, typeof ts === "string" ? ts : undefined);
}

/**
 * The event with the distributed-tracing extension taken from `ctx` when the event has no
 * `traceparent` of its own (a `tracestate` without `traceparent` is left alone too: the extension
 * requires `traceparent`). An event that has one, or an absent `ctx`, is returned as it is.
 */
export function withTraceExtension(ev: CloudEvent, ctx: TraceContext | undefined): CloudEvent {
  if (ctx === undefined || ev.attributes[TRACEPARENT] !== undefined) return ev;
  const attributes = cloneAttributes(ev.attributes);
  attributes[TRACEPARENT] = ctx.traceparent;
  if (ctx.tracestate !== undefined && attributes[TRACESTATE] === undefined) attributes[TRACESTATE] = ctx.tracestate;
  return ev.data === undefined ? { attributes } : { attributes, data: ev.data };
}

/**
 * The context a delivery derives from: the transport context the message arrived with (the previous
 * hop), else the event's extension (the starting trace), else none. Spans of the delivery are its
 * children; with tracing off it is what the sinks forward natively.
 */
export function hopParent(transport: TraceContext | undefined, ev: CloudEvent): TraceContext | undefined {
  return transport ?? eventTraceContext(ev);
}

/**
 * The context of the bridge's own hop, for the transport field: the ids and trace flags of the span
 * that writes the message (a child of `parent`, so the same trace id, or a new trace when there is no
 * parent), and the parent's `tracestate`, forwarded unchanged.
 */
export function ownHop(parent: TraceContext | undefined, span: { readonly traceId: string; readonly spanId: string; readonly traceFlags: number }): TraceContext {
  const traceparent = formatTraceparent(span.traceId, span.spanId, span.traceFlags);
  return parent?.tracestate !== undefined ? { traceparent, tracestate: parent.tracestate } : { traceparent };
}
