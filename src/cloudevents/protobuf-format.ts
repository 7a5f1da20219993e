/**
 * The Protobuf event format (`application/cloudevents+protobuf`) and its batch format
 * (`application/cloudevents-batch+protobuf`), with the specification's `cloudevents.proto`
 * (package `io.cloudevents.v1`; docs/amqp-protobuf.md §7).
 *
 * The schema lives once, in `protobuf-schema.ts` (generated from `cloudevents.proto`); protobufjs
 * reflects it into encoders on first use, so a daemon that never sees Protobuf never loads the
 * library (it is required lazily, synchronously, because the binding decoders are synchronous).
 *
 * Attributes: `id`, `source`, `specversion`, `type` are the message's own fields; every other one is
 * an `attributes` entry. Writing: Integer → `ce_integer`, Boolean → `ce_boolean`, `dataschema` →
 * `ce_uri`, `time` → `ce_timestamp` with nanoseconds when that reads back as the exact string (UTC
 * `Z`, 0/3/6/9 fraction digits; otherwise `ce_string`, since cebridge never rewrites a `time`),
 * every other String → `ce_string`. Reading: `ce_bytes` → base64, `ce_timestamp` → RFC 3339 as
 * above, `ce_uri`/`ce_uri_ref`/`ce_string` → the string.
 *
 * Data (format §3): text MUST go in `text_data`, so JSON and text data, and bytes whose content
 * type is textual or JSON and that are valid UTF-8, are written as `text_data`; bytes under
 * `application/protobuf` with a `dataschema` as `proto_data` (the schema is the `Any` type URL);
 * other bytes as `binary_data`. No data → no member (an empty `binary_data` is data). Reading:
 * `binary_data` and `proto_data` → bytes (`proto_data` defaults `datacontenttype` to
 * `application/protobuf` and `dataschema` to the type URL when that is an absolute URI), `text_data`
 * → text under a non-JSON textual content type, else its UTF-8 bytes (so JSON is forwarded as the
 * producer spelled it).
 */
import { isUtf8 } from "node:buffer";
import { createRequire } from "node:module";
import type * as Protobuf from "protobufjs/light.js";
import { EventValidationError, FormatError } from "../core/errors.js";
import type { AttributeValue, CloudEvent, EventData } from "./event.js";
import { jsonDataText } from "./json-data.js";
import { charsetOf, isJsonMediaType, isTextMediaType, mediaEssence } from "./media.js";
import { CLOUDEVENTS_PROTO_DESCRIPTOR } from "./protobuf-schema.js";
import { exactInstant, formatInstant, MAX_TIMESTAMP_SECONDS, MIN_TIMESTAMP_SECONDS } from "./timestamp.js";
import { checkAttribute, isAbsoluteUri, isValidAttributeName, validateEvent } from "./validate.js";

/** The Protobuf format's media type. */
export const PROTOBUF_MEDIA_TYPE = "application/cloudevents+protobuf";
/** The Protobuf batch format's media type. */
export const PROTOBUF_BATCH_MEDIA_TYPE = "application/cloudevents-batch+protobuf";
/** The content type the format uses for data that is itself a Protobuf message (format §1.2). */
export const PROTOBUF_DATA_MEDIA_TYPE = "application/protobuf";

interface Codec {
  readonly event: Protobuf.Type;
  readonly batch: Protobuf.Type;
}

let codec: Codec | undefined;

/**
 * The schema as the codec uses it: `text_data` read and written as `bytes`. A proto3 `string` is
 * wire-identical to `bytes` holding UTF-8 (same field number, same length-delimited encoding), so
 * the messages are exactly the schema's; what changes is that data bytes never become a JS string
 * and back on the way through (measured: that round trip cost more than the rest of the encoding
 * for 1 KiB of JSON data). The encoder only puts UTF-8 there; the decoder checks it.
 */
function wireView(descriptor: object): Protobuf.INamespace {
  const copy = JSON.parse(JSON.stringify(descriptor)) as {
    nested: { io: { nested: { cloudevents: { nested: { v1: { nested: { CloudEvent: { fields: Record<string, { type: string }> } } } } } } } };
  };
  const fields = copy.nested.io.nested.cloudevents.nested.v1.nested.CloudEvent.fields;
  if (fields["text_data"]?.type !== "string") throw new Error("cloudevents.proto: text_data is not a string field");
  fields["text_data"] = { ...fields["text_data"], type: "bytes" };
  return copy as unknown as Protobuf.INamespace;
}

/** Loads protobufjs and reflects the schema, once. */
function load(): Codec {
  if (codec !== undefined) return codec;
  const require = createRequire(import.meta.url);
  const pb = require("protobufjs/light") as typeof Protobuf;
  const root = pb.Root.fromJSON(wireView(CLOUDEVENTS_PROTO_DESCRIPTOR));
  codec = { event: root.lookupType("io.cloudevents.v1.CloudEvent"), batch: root.lookupType("io.cloudevents.v1.CloudEventBatch") };
  return codec;
}

// ---- writing ---------------------------------------------------------------------------------

/** One `CloudEventAttributeValue` as the encoder takes it: exactly one member set. */
type AttrOut =
  | { ce_boolean: boolean }
  | { ce_integer: number }
  | { ce_string: string }
  | { ce_uri: string }
  | { ce_timestamp: { seconds: number; nanos: number } };

interface EventOut {
  id?: string;
  source?: string;
  spec_version?: string;
  type?: string;
  attributes?: Record<string, AttrOut>;
  binary_data?: Uint8Array;
  /** UTF-8 (see `wireView`). */
  text_data?: Uint8Array;
  proto_data?: { type_url: string; value: Uint8Array };
}

function attrOut(name: string, v: AttributeValue): AttrOut {
  if (typeof v === "number") return { ce_integer: v };
  if (typeof v === "boolean") return { ce_boolean: v };
  if (name === "time") {
    const t = exactInstant(v);
    if (t !== undefined) return { ce_timestamp: { seconds: t.seconds, nanos: t.nanos } };
  } else if (name === "dataschema") return { ce_uri: v };
  return { ce_string: v };
}

function isUtf8Charset(ct: string): boolean {
  const cs = charsetOf(ct);
  return cs === undefined || cs === "utf-8" || cs === "utf8" || cs === "us-ascii";
}

function isProtobufData(ct: string): boolean {
  const e = mediaEssence(ct);
  return e === PROTOBUF_DATA_MEDIA_TYPE || e === "application/x-protobuf";
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function putData(out: EventOut, ev: CloudEvent, attrs: Record<string, AttrOut>): void {
  const data = ev.data;
  if (data === undefined) return;
  const ct = ev.attributes["datacontenttype"];
  switch (data.kind) {
    case "text":
      out.text_data = Buffer.from(data.text, "utf8");
      return;
    case "json": {
      out.text_data = Buffer.from(jsonDataText(data), "utf8");
      // The JSON format implies application/json; the Protobuf format implies nothing.
      if (ct === undefined) attrs["datacontenttype"] = { ce_string: "application/json" };
      return;
    }
    case "bytes": {
      const bytes = data.bytes;
      if (typeof ct === "string") {
        const schema = ev.attributes["dataschema"];
        if (isProtobufData(ct) && typeof schema === "string") {
          out.proto_data = { type_url: schema, value: bytes };
          return;
        }
        if ((isJsonMediaType(ct) || isTextMediaType(ct)) && isUtf8Charset(ct)) {
          if (isUtf8(bytes)) {
            out.text_data = bytes;
            return;
          }
        }
      }
      out.binary_data = bytes;
      return;
    }
  }
}

function eventOut(ev: CloudEvent): EventOut {
  const a = ev.attributes;
  const out: EventOut = {};
  const attrs: Record<string, AttrOut> = {};
  for (const name in a) {
    const v = a[name];
    if (v === undefined) continue;
    switch (name) {
      case "id":
        out.id = String(v);
        break;
      case "source":
        out.source = String(v);
        break;
      case "specversion":
        out.spec_version = String(v);
        break;
      case "type":
        out.type = String(v);
        break;
      default:
        attrs[name] = attrOut(name, v);
    }
  }
  putData(out, ev, attrs);
  out.attributes = attrs;
  return out;
}

/** The event in the Protobuf format. Throws `FormatError` for JSON data that cannot be serialized. */
export function encodeProtobuf(ev: CloudEvent): Uint8Array {
  return load().event.encode(eventOut(ev)).finish();
}

/** Events in the Protobuf batch format (`CloudEventBatch`; empty for none). */
export function encodeProtobufBatch(evs: readonly CloudEvent[]): Uint8Array {
  const events = new Array<EventOut>(evs.length);
  for (let i = 0; i < evs.length; i++) events[i] = eventOut(evs[i]!);
  return load().batch.encode({ events }).finish();
}

/** Bytes of a varint holding `n` (n ≥ 0, below 2^53). */
function varintSize(n: number): number {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * What one already encoded event adds to a `CloudEventBatch`: the field tag, the length and the
 * bytes. Lets batching sinks count `max_bytes` exactly while encoding each event only once.
 */
export function protobufBatchEntrySize(encoded: Uint8Array): number {
  return 1 + varintSize(encoded.byteLength) + encoded.byteLength;
}

/**
 * A `CloudEventBatch` from events already encoded by `encodeProtobuf`. Identical to
 * `encodeProtobufBatch` of the events: a repeated message field is each message framed as field 1,
 * wire type 2 (tag 0x0a), then its length as a varint.
 */
export function joinProtobufBatch(encoded: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const e of encoded) total += protobufBatchEntrySize(e);
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const e of encoded) {
    out[at++] = 0x0a;
    let n = e.byteLength;
    while (n >= 128) {
      out[at++] = (n % 128) | 0x80;
      n = Math.floor(n / 128);
    }
    out[at++] = n;
    out.set(e, at);
    at += e.byteLength;
  }
  return out;
}

// ---- reading ---------------------------------------------------------------------------------

/** The shape protobufjs decodes into (unset fields read their proto3 defaults from the prototype). */
interface LongLike {
  toNumber(): number;
}
interface AttrIn {
  readonly attr?: string;
  readonly ce_boolean: boolean;
  readonly ce_integer: number;
  readonly ce_string: string;
  readonly ce_bytes: Uint8Array;
  readonly ce_uri: string;
  readonly ce_uri_ref: string;
  readonly ce_timestamp: { readonly seconds: number | LongLike; readonly nanos: number } | null;
}
interface EventIn {
  readonly id: string;
  readonly source: string;
  readonly spec_version: string;
  readonly type: string;
  readonly attributes: Record<string, AttrIn>;
  readonly data?: string;
  readonly binary_data: Uint8Array;
  /** UTF-8 bytes (see `wireView`). */
  readonly text_data: Uint8Array;
  readonly proto_data: { readonly type_url: string; readonly value: Uint8Array } | null;
}

const TOP_LEVEL: Record<string, string> = { id: "id", source: "source", specversion: "spec_version", type: "type" };

function timestampIn(name: string, t: AttrIn["ce_timestamp"]): string {
  const s = t?.seconds ?? 0;
  const seconds = typeof s === "number" ? s : s.toNumber();
  const nanos = t?.nanos ?? 0;
  if (seconds < MIN_TIMESTAMP_SECONDS || seconds > MAX_TIMESTAMP_SECONDS || nanos < 0 || nanos > 999_999_999) {
    throw new FormatError(`attribute "${name}": ce_timestamp ${seconds}s ${nanos}ns is outside 0001-01-01..9999-12-31`);
  }
  return formatInstant({ seconds, nanos });
}

function attrIn(name: string, v: AttrIn): AttributeValue {
  switch (v.attr) {
    case "ce_boolean":
      return v.ce_boolean;
    case "ce_integer":
      return v.ce_integer;
    case "ce_string":
      return v.ce_string;
    case "ce_uri":
      return v.ce_uri;
    case "ce_uri_ref":
      return v.ce_uri_ref;
    case "ce_bytes":
      return asBuffer(v.ce_bytes).toString("base64");
    case "ce_timestamp":
      return timestampIn(name, v.ce_timestamp);
    default:
      throw new FormatError(`attribute "${name}": the CloudEventAttributeValue has no value set`);
  }
}

function dataIn(m: EventIn, attributes: Record<string, AttributeValue>): EventData | undefined {
  switch (m.data) {
    case "binary_data":
      return { kind: "bytes", bytes: m.binary_data };
    case "text_data": {
      const bytes = m.text_data;
      if (!isUtf8(bytes)) throw new FormatError("text_data is not valid UTF-8");
      const ct = attributes["datacontenttype"];
      if (typeof ct === "string" && isTextMediaType(ct) && !isJsonMediaType(ct)) return { kind: "text", text: asBuffer(bytes).toString("utf8") };
      return { kind: "bytes", bytes };
    }
    case "proto_data": {
      const any = m.proto_data;
      if (attributes["datacontenttype"] === undefined) attributes["datacontenttype"] = PROTOBUF_DATA_MEDIA_TYPE;
      const url = any?.type_url ?? "";
      if (attributes["dataschema"] === undefined && url !== "" && isAbsoluteUri(url)) attributes["dataschema"] = url;
      return { kind: "bytes", bytes: any?.value ?? new Uint8Array(0) };
    }
    default:
      return undefined;
  }
}

function eventIn(m: EventIn): CloudEvent {
  const attributes: Record<string, AttributeValue> = {};
  // proto3 cannot tell an empty string from an absent one: an empty required field is missing.
  if (m.spec_version !== "") attributes["specversion"] = m.spec_version;
  if (m.id !== "") attributes["id"] = m.id;
  if (m.source !== "") attributes["source"] = m.source;
  if (m.type !== "") attributes["type"] = m.type;
  const map = m.attributes;
  for (const name of Object.keys(map)) {
    // Checked here, not only in validateEvent: assigning a key like `__proto__` would be lost silently.
    if (!isValidAttributeName(name)) {
      throw new EventValidationError(checkAttribute(name, "")!, name);
    }
    if (Object.hasOwn(TOP_LEVEL, name)) {
      throw new FormatError(`attribute "${name}": must be the CloudEvent field ${TOP_LEVEL[name]}, not an attributes entry`);
    }
    attributes[name] = attrIn(name, map[name]!);
  }
  const data = dataIn(m, attributes);
  return validateEvent(data === undefined ? { attributes } : { attributes, data });
}

function decodeWith(type: Protobuf.Type, body: Uint8Array): unknown {
  try {
    return type.decode(body);
  } catch (err) {
    throw new FormatError(`malformed Protobuf ${type.name}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Parses one Protobuf-format event and validates it. Throws `FormatError` (malformed message, an
 * attribute value without a member, a required attribute in the map, a timestamp out of range) or
 * `EventValidationError` naming the attribute. Data bytes may share `body`'s memory.
 */
export function decodeProtobuf(body: Uint8Array): CloudEvent {
  return eventIn(decodeWith(load().event, body) as EventIn);
}

/**
 * Parses a Protobuf batch (`CloudEventBatch`, possibly empty). Errors of an entry are prefixed with
 * its index (`event[3]: ...`).
 */
export function decodeProtobufBatch(body: Uint8Array): CloudEvent[] {
  const batch = decodeWith(load().batch, body) as { readonly events: readonly EventIn[] };
  const out = new Array<CloudEvent>(batch.events.length);
  for (let i = 0; i < batch.events.length; i++) {
    try {
      out[i] = eventIn(batch.events[i]!);
    } catch (err) {
      if (err instanceof EventValidationError) throw new EventValidationError(`event[${i}]: ${err.message}`, err.attribute);
      if (err instanceof FormatError) throw new FormatError(`event[${i}]: ${err.message}`, { cause: err });
      throw err;
    }
  }
  return out;
}
