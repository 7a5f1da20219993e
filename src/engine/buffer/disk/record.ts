/**
 * The record framing of a disk-buffer segment file, and of its acknowledgement file.
 *
 * Record: magic u32 "CEB1" | payload length u32 | write time f64 (ms since the epoch) | CRC-32 u32
 * of bytes 4..16 and the payload | payload. All little-endian. The checksum covers the length, so
 * a torn or flipped length is caught like a flipped payload byte; the magic lets a reader find the
 * next record after a damaged one.
 *
 * Ack entry (in `<segment>.ack`): offset u32 of an acknowledged record | CRC-32 u32 of that offset.
 * A damaged ack entry is ignored: its record is delivered once more (at least once).
 */
import { crc32 } from "node:zlib";

export const MAGIC = 0x31424543; // "CEB1" read as a little-endian u32
export const MAGIC_BYTES = Buffer.from([0x43, 0x45, 0x42, 0x31]);
export const HEADER_BYTES = 20;
export const ACK_BYTES = 8;
/** No record is larger than this: a larger length field is damage, not a record. */
export const MAX_PAYLOAD = 256 * 1024 * 1024;

export function recordHeader(payload: Uint8Array, timeMs: number): Buffer {
  const h = Buffer.allocUnsafe(HEADER_BYTES);
  h.writeUInt32LE(MAGIC, 0);
  h.writeUInt32LE(payload.byteLength, 4);
  h.writeDoubleLE(timeMs, 8);
  h.writeUInt32LE(crc32(payload, crc32(h.subarray(4, 16))), 16);
  return h;
}

export type Framed =
  /** A whole, intact record. `end` is the offset after it. */
  | { readonly ok: true; readonly time: number; readonly payload: Buffer; readonly end: number }
  /** `need` more bytes than `buf` holds from `pos` (read more, or it is torn at the end of the file). */
  | { readonly ok: false; readonly short: true; readonly need: number }
  /** Not a record: bad magic, impossible length or checksum mismatch. */
  | { readonly ok: false; readonly short: false; readonly reason: string };

/** Reads the record framed at `pos` in `buf`. The payload is a view into `buf`. */
export function frameAt(buf: Buffer, pos: number): Framed {
  if (buf.length - pos < HEADER_BYTES) return { ok: false, short: true, need: HEADER_BYTES };
  if (buf.readUInt32LE(pos) !== MAGIC) return { ok: false, short: false, reason: "no record header" };
  const len = buf.readUInt32LE(pos + 4);
  if (len > MAX_PAYLOAD) return { ok: false, short: false, reason: `impossible length ${len}` };
  const end = pos + HEADER_BYTES + len;
  if (end > buf.length) return { ok: false, short: true, need: HEADER_BYTES + len };
  const payload = buf.subarray(pos + HEADER_BYTES, end);
  const want = buf.readUInt32LE(pos + 16);
  if (crc32(payload, crc32(buf.subarray(pos + 4, pos + 16))) !== want) return { ok: false, short: false, reason: "checksum mismatch" };
  return { ok: true, time: buf.readDoubleLE(pos + 8), payload, end };
}

export function ackEntry(offset: number, into: Buffer, at: number): void {
  into.writeUInt32LE(offset, at);
  into.writeUInt32LE(crc32(into.subarray(at, at + 4)), at + 4);
}

/** The acknowledged offsets in an ack file's bytes; damaged entries are skipped. */
export function readAcks(buf: Buffer): Set<number> {
  const out = new Set<number>();
  for (let p = 0; p + ACK_BYTES <= buf.length; p += ACK_BYTES) {
    if (crc32(buf.subarray(p, p + 4)) === buf.readUInt32LE(p + 4)) out.add(buf.readUInt32LE(p));
  }
  return out;
}
