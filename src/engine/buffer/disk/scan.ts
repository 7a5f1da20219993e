/**
 * Reads a segment left by a previous run from start to end, checking every record's checksum, and
 * lists the offsets of the intact records that were not acknowledged. Damage is reported as a
 * region and skipped: the scan looks for the next intact record after it.
 *
 * - `torn`: the file ends inside a record (a write cut off by a crash or power loss). Such a record
 *   was never acknowledged to its source: records are acknowledged only once fully written.
 * - `checksum`: bytes that are not an intact record although intact records follow, or a complete
 *   record whose checksum does not match (the disk changed it, or someone did).
 */
import type { FileHandle } from "node:fs/promises";
import type { CorruptionKind } from "../stats.js";
import { readAt } from "./io.js";
import { frameAt, HEADER_BYTES, MAGIC_BYTES, type Framed } from "./record.js";

const CHUNK = 1024 * 1024;

export interface Region {
  readonly kind: CorruptionKind;
  readonly offset: number;
  readonly bytes: number;
}

export interface ScanResult {
  /** Offsets of intact, unacknowledged records, in file order. */
  readonly offsets: number[];
  /** Write time of the first of them (0 when there is none). */
  readonly firstTime: number;
  readonly regions: Region[];
}

export async function scanSegment(fh: FileHandle, size: number, acked: ReadonlySet<number>): Promise<ScanResult> {
  let buf: Buffer = Buffer.alloc(0);
  let bufStart = 0;
  const load = async (from: number, need: number) => {
    buf = await readAt(fh, from, Math.min(Math.max(CHUNK, need), size - from));
    bufStart = from;
  };
  /** The frame at absolute `pos`, reading more of the file when the buffer holds too little. */
  const frame = async (pos: number): Promise<Framed> => {
    if (pos < bufStart || pos + HEADER_BYTES > bufStart + buf.length) await load(pos, HEADER_BYTES);
    let f = frameAt(buf, pos - bufStart);
    if (!f.ok && f.short && pos + f.need <= size) {
      await load(pos, f.need);
      f = frameAt(buf, 0);
    }
    return f;
  };
  /** The next intact record after a damaged one, or undefined when none follows. */
  const resync = async (from: number): Promise<number | undefined> => {
    let p = from;
    while (p + HEADER_BYTES <= size) {
      if (p < bufStart || p >= bufStart + buf.length) await load(p, HEADER_BYTES);
      const i = buf.indexOf(MAGIC_BYTES, p - bufStart);
      if (i < 0) {
        if (bufStart + buf.length >= size) return undefined;
        // The magic may straddle the chunk's end: start the next chunk 3 bytes early.
        p = Math.max(p + 1, bufStart + buf.length - (MAGIC_BYTES.length - 1));
        await load(p, HEADER_BYTES);
        continue;
      }
      const q = bufStart + i;
      if ((await frame(q)).ok) return q;
      p = q + 1;
    }
    return undefined;
  };

  const offsets: number[] = [];
  const regions: Region[] = [];
  let firstTime = 0;
  let pos = 0;
  while (pos < size) {
    const f = await frame(pos);
    if (f.ok) {
      if (!acked.has(pos)) {
        offsets.push(pos);
        if (firstTime === 0) firstTime = f.time;
      }
      pos = bufStart + f.end;
      continue;
    }
    const next = await resync(pos + 1);
    const end = next ?? size;
    regions.push({ kind: f.short && next === undefined ? "torn" : "checksum", offset: pos, bytes: end - pos });
    pos = end;
  }
  return { offsets, firstTime, regions };
}
