/**
 * An event as the payload of one disk-buffer record, and back, losslessly: attribute types
 * (string, integer, boolean) and the data in the form it arrived in (bytes stay bytes, unencoded).
 *
 * Layout: u8 version | u8 data kind | u32 attributes length | attributes JSON | u32 invalid length |
 * invalid JSON ({code, message}) or nothing | data (raw bytes, UTF-8 text, or JSON text).
 */
import type { CloudEvent, EventData } from "../../../cloudevents/event.js";
import { BridgeError, ERROR_CODES, type ErrorCode } from "../../../core/errors.js";

const VERSION = 1;
const KIND = { none: 0, bytes: 1, text: 2, json: 3 } as const;

export interface StoredEvent {
  readonly event: CloudEvent;
  /** Why the source could not make this message a CloudEvent (it is dead-lettered on delivery). */
  readonly invalid?: BridgeError;
}

export function encodeEvent(event: CloudEvent, invalid?: BridgeError): Buffer {
  const attrs = Buffer.from(JSON.stringify(event.attributes), "utf8");
  const inv = invalid ? Buffer.from(JSON.stringify({ code: invalid.code, message: invalid.message }), "utf8") : undefined;
  const d = event.data;
  const data: Uint8Array =
    d === undefined ? EMPTY : d.kind === "bytes" ? d.bytes : d.kind === "text" ? Buffer.from(d.text, "utf8") : Buffer.from(d.text ?? JSON.stringify(d.value) ?? "null", "utf8");
  const kind = d === undefined ? KIND.none : KIND[d.kind];
  const out = Buffer.allocUnsafe(10 + attrs.length + (inv?.length ?? 0) + data.byteLength);
  let p = 0;
  out[p++] = VERSION;
  out[p++] = kind;
  out.writeUInt32LE(attrs.length, p);
  p += 4;
  p += attrs.copy(out, p);
  out.writeUInt32LE(inv?.length ?? 0, p);
  p += 4;
  if (inv) p += inv.copy(out, p);
  out.set(data, p);
  return out;
}

/** Throws a FormatError-like BridgeError when the payload is not one this code wrote. */
export function decodeEvent(payload: Buffer): StoredEvent {
  if (payload.length < 10 || payload[0] !== VERSION) throw new BridgeError("CEB_FORMAT", `disk buffer record has an unknown layout (version ${payload[0]})`, false);
  const kind = payload[1]!;
  let p = 2;
  const alen = payload.readUInt32LE(p);
  p += 4;
  const attributes = JSON.parse(payload.toString("utf8", p, p + alen)) as CloudEvent["attributes"];
  p += alen;
  const ilen = payload.readUInt32LE(p);
  p += 4;
  let invalid: BridgeError | undefined;
  if (ilen > 0) {
    const inv = JSON.parse(payload.toString("utf8", p, p + ilen)) as { code: string; message: string };
    const code: ErrorCode = inv.code in ERROR_CODES ? (inv.code as ErrorCode) : "CEB_FORMAT";
    invalid = new BridgeError(code, inv.message, false);
    p += ilen;
  }
  let data: EventData | undefined;
  if (kind === KIND.bytes) data = { kind: "bytes", bytes: Uint8Array.prototype.slice.call(payload, p) };
  else if (kind === KIND.text) data = { kind: "text", text: payload.toString("utf8", p) };
  else if (kind === KIND.json) {
    const text = payload.toString("utf8", p);
    data = { kind: "json", value: JSON.parse(text) as unknown, text };
  }
  else if (kind !== KIND.none) throw new BridgeError("CEB_FORMAT", `disk buffer record has an unknown data kind ${kind}`, false);
  const event: CloudEvent = data === undefined ? { attributes } : { attributes, data };
  return invalid ? { event, invalid } : { event };
}

const EMPTY = new Uint8Array(0);
