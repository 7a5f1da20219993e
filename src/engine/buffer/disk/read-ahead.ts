/**
 * The reader of a segment log: records ready to hand out, in log order, held in memory up to a
 * bound. A record appended while nothing older waits on disk is handed over from memory (`push`:
 * no read back, no decode); one appended behind older records is noted as waiting on disk
 * (`queue`) and read back here, a chunk at a time, in order.
 */
import { open } from "node:fs/promises";
import type { Logger } from "../../../core/logger.js";
import { Deque } from "../deque.js";
import type { CorruptionKind } from "../stats.js";
import { readAt } from "./io.js";
import { frameAt, HEADER_BYTES } from "./record.js";
import type { Segment } from "./segments.js";

const READ_CHUNK = 1024 * 1024;
/** Records held in memory ready for the pump: at most this many, or this many bytes. */
const READY_MAX = 2048;
const READY_BYTES = 8 * 1024 * 1024;

/** One record handed out by the reader; pass it back to `SegmentLog.ack` once it is done with. */
export interface LogRecord<T> {
  readonly seg: Segment;
  readonly offset: number;
  /** When it was written (ms since the epoch). */
  readonly time: number;
  readonly value: T;
  /** Bytes it takes in the file. */
  readonly bytes: number;
}

export interface ReadAheadHost<T> {
  /** Turns a payload read back from disk into the value handed out. Throws if it cannot. */
  decode(payload: Buffer): T;
  /** Records became ready. */
  onReadable(): void;
  /** A record waiting on disk could not be read back: report it, and count it out of its segment. */
  lost(seg: Segment, kind: CorruptionKind, offset: number, bytes: number): void;
  readonly log: Logger;
}

export class ReadAhead<T> {
  private readonly ready = new Deque<LogRecord<T>>();
  private readyBytes = 0;
  /** Records waiting on disk, over every segment. */
  private waiting = 0;
  private reading = false;
  private closed = false;

  constructor(
    private readonly host: ReadAheadHost<T>,
    /** The live segments, oldest first. */
    private readonly segments: readonly Segment[],
  ) {}

  get readyCount(): number {
    return this.ready.length;
  }

  /** Whether an appended record may be handed over from memory: nothing older waits on disk, and there is room. */
  get canTakeOver(): boolean {
    return this.waiting === 0 && this.hasRoom();
  }

  /** Write time of the oldest record not yet handed out, if known. */
  get oldestTime(): number | undefined {
    const r = this.ready.peek();
    if (r) return r.time;
    for (const s of this.segments) if (s.unread > 0) return s.firstTime || undefined;
    return undefined;
  }

  /** Hands over a record that was just written, from memory. */
  push(rec: LogRecord<T>): void {
    this.ready.push(rec);
    this.readyBytes += rec.bytes;
  }

  /** Notes that a record waits on disk at `offset` of `seg`. */
  queue(seg: Segment, offset: number): void {
    seg.waiting.push(offset);
    this.waiting++;
  }

  /** Records found on disk at open. */
  queued(n: number): void {
    this.waiting += n;
  }

  peek(): LogRecord<T> | undefined {
    return this.ready.peek();
  }

  take(): LogRecord<T> | undefined {
    const r = this.ready.shift();
    if (r) {
      this.readyBytes -= r.bytes;
      this.fill();
    }
    return r;
  }

  close(): void {
    this.closed = true;
  }

  /** Reads ahead from disk while there is room and records wait there. */
  fill(): void {
    if (this.reading || this.closed || this.waiting === 0 || !this.hasRoom()) return;
    const seg = this.segments.find((s) => s.unread > 0);
    if (!seg) return;
    this.reading = true;
    this.readSome(seg)
      .catch((err: unknown) => this.host.log.error({ err, file: seg.name }, "disk buffer read failed; retrying"))
      .finally(() => {
        this.reading = false;
        if (!this.closed) setImmediate(() => this.fill());
      });
  }

  private hasRoom(): boolean {
    return this.ready.length < READY_MAX && this.readyBytes < READY_BYTES;
  }

  private async readSome(seg: Segment): Promise<void> {
    const fh = (seg.readFd ??= await open(seg.path, "r"));
    const first = seg.waiting[seg.next]!;
    let buf = await readAt(fh, first, Math.min(READ_CHUNK, seg.size - first));
    let handed = false;
    while (seg.unread > 0 && this.hasRoom()) {
      const off = seg.waiting[seg.next]!;
      const rel = off - first;
      let f = frameAt(buf, rel);
      if (!f.ok && f.short) {
        if (rel > 0) break; // the next read starts here
        buf = await readAt(fh, first, Math.min(f.need, seg.size - first));
        f = frameAt(buf, 0);
      }
      seg.next++;
      this.waiting--;
      if (!f.ok) {
        // It was intact when scanned or written: the file changed since.
        this.host.lost(seg, "checksum", off, f.short ? seg.size - off : HEADER_BYTES);
        continue;
      }
      let value: T;
      try {
        value = this.host.decode(f.payload);
      } catch {
        this.host.lost(seg, "checksum", off, f.end - rel);
        continue;
      }
      this.push({ seg, offset: off, time: f.time, value, bytes: f.end - rel });
      handed = true;
    }
    if (seg.unread === 0) {
      seg.waiting.length = 0;
      seg.next = 0;
      if (seg.sealed) {
        await seg.readFd?.close();
        seg.readFd = undefined;
      }
    }
    if (handed) this.host.onReadable();
  }
}
