/**
 * The benchmark's events: 1 KiB of JSON data, a sequence number in `id` (`<tag>-<seq>`) and the
 * send time in the `benchts` extension (ms from `performance.now()` of the load generator, as a
 * string: extensions can only be Integer, and a 32-bit one would overflow). Publisher and subscriber
 * live in the same load-generator process, so the clock is the same at both ends.
 *
 * The subscriber never parses the whole event: it finds `"id":"` and `"benchts":"` with
 * `Buffer.indexOf`, which costs the same whether the bridge or a raw publisher wrote the message.
 */

export const DATA_BYTES = 1024;
export const EVENT_SOURCE = "/bench/loadgen";
export const EVENT_TYPE = "io.cebridge.bench";
export const EVENT_TIME = "2026-11-26T12:00:00.000Z";
export const STRUCTURED_CT = "application/cloudevents+json";
export const BATCH_CT = "application/cloudevents-batch+json";

/** `{"kind":"bench","filler":"xxxx..."}`, exactly `DATA_BYTES` bytes. */
export const DATA_JSON: string = (() => {
  const head = '{"kind":"bench","filler":"';
  const tail = '"}';
  return head + "x".repeat(DATA_BYTES - head.length - tail.length) + tail;
})();
export const DATA_BUF: Buffer = Buffer.from(DATA_JSON, "utf8");

export function eventId(tag: string, seq: number): string {
  return `${tag}-${seq}`;
}

/** The structured-mode JSON event as a string. */
export function structuredJson(tag: string, seq: number, ts: number): string {
  return (
    `{"specversion":"1.0","id":"${tag}-${seq}","source":"${EVENT_SOURCE}","type":"${EVENT_TYPE}","time":"${EVENT_TIME}",` +
    `"datacontenttype":"application/json","benchts":"${ts.toFixed(3)}","data":${DATA_JSON}}`
  );
}

export function structured(tag: string, seq: number, ts: number): Buffer {
  return Buffer.from(structuredJson(tag, seq, ts), "utf8");
}

/** HTTP binary-mode headers (data goes as the body, `DATA_BUF`). */
export function httpBinaryHeaders(tag: string, seq: number, ts: number, bodyLength: number): Record<string, string> {
  return {
    "content-type": "application/json",
    "content-length": String(bodyLength),
    "ce-specversion": "1.0",
    "ce-id": `${tag}-${seq}`,
    "ce-source": EVENT_SOURCE,
    "ce-type": EVENT_TYPE,
    "ce-time": EVENT_TIME,
    "ce-benchts": ts.toFixed(3),
  };
}

/**
 * MQTT 5 binary-mode user properties, the same set the bridge writes for one of these events
 * (attributes by name, plus the loop markers a bridge adds), so a raw baseline carries the same bytes.
 */
export function mqttUserProperties(tag: string, seq: number, ts: number): Record<string, string> {
  return {
    specversion: "1.0",
    id: `${tag}-${seq}`,
    source: EVENT_SOURCE,
    type: EVENT_TYPE,
    time: EVENT_TIME,
    benchts: ts.toFixed(3),
    cebridgevia: "bench",
    cebridgehops: "1",
  };
}

const ID_KEY = Buffer.from('"id":"');
const TS_KEY = Buffer.from('"benchts":');

/** Sequence number after the last `-` of an id string, or -1. */
export function seqOfId(id: string | undefined): number {
  if (id === undefined) return -1;
  const i = id.lastIndexOf("-");
  const n = Number(id.slice(i + 1));
  return Number.isInteger(n) ? n : -1;
}

/** Reads `id` (as a sequence number) and `benchts` from a structured JSON event without parsing it. */
export function scanStructured(buf: Buffer): { seq: number; ts: number } {
  let seq = -1;
  let ts = Number.NaN;
  const i = buf.indexOf(ID_KEY);
  if (i >= 0) {
    const start = i + ID_KEY.length;
    const end = buf.indexOf(0x22, start); // closing quote
    if (end > start) seq = seqOfId(buf.toString("latin1", start, end));
  }
  const j = buf.indexOf(TS_KEY);
  if (j >= 0) {
    let start = j + TS_KEY.length;
    if (buf[start] === 0x22) start++;
    let end = start;
    while (end < buf.length && end - start < 32) {
      const c = buf[end]!;
      if ((c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d) end++;
      else break;
    }
    ts = Number(buf.toString("latin1", start, end));
  }
  return { seq, ts };
}

/** A Buffer view over a Uint8Array without copying. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/**
 * AMQP binary-mode application properties, the set the cebridge AMQP sink writes for one of these
 * events (prefix `cloudEvents:`, a loop marker as a bridge adds one, naming another instance than
 * the bench daemon's so an AMQP source does not cut it), so a raw baseline carries the same bytes.
 */
export function amqpProperties(tag: string, seq: number, ts: number): Record<string, string> {
  return {
    "cloudEvents:specversion": "1.0",
    "cloudEvents:id": `${tag}-${seq}`,
    "cloudEvents:source": EVENT_SOURCE,
    "cloudEvents:type": EVENT_TYPE,
    "cloudEvents:time": EVENT_TIME,
    "cloudEvents:benchts": ts.toFixed(3),
    "cloudEvents:cebridgevia": "loadgen",
  };
}
