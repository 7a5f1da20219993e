/**
 * The segment log behind a disk buffer: append records durably, read them back in order,
 * acknowledge them one by one, and delete a segment file once every record in it is acknowledged.
 *
 * - Appends made in one event-loop turn are written together (one writev, one fdatasync with
 *   `fsync: always`): group commit. An append resolves once its bytes are written, and synced when
 *   the setting is `always`; the buffer acknowledges the source then.
 * - Reading: records appended while the reader has nothing older to read are handed over from
 *   memory (no read back, no decode). Otherwise the reader reads them from the file, in order.
 * - Acknowledgements are appended to a small `.ack` file per segment, without waiting for a sync:
 *   losing one in a crash only delivers its record once more (at least once).
 * - A previous run's segments are scanned at open (see `scan.ts`); their unacknowledged records are
 *   read before anything appended in this run.
 */
import { open, rm, type FileHandle } from "node:fs/promises";
import type { Logger } from "../../../core/logger.js";
import { Deque } from "../deque.js";
import type { CorruptionReport } from "../stats.js";
import { readAt, writeAllAt } from "./io.js";
import { ACK_BYTES, ackEntry, frameAt, HEADER_BYTES, recordHeader } from "./record.js";
import { scanSegment } from "./scan.js";
import { fileSize, listSegments, loadAcks, lockDir, Segment, syncDir } from "./segments.js";

const READ_CHUNK = 1024 * 1024;
/** Records read ahead and held in memory for the pump: at most this many, or this many bytes. */
const READY_MAX = 2048;
const READY_BYTES = 8 * 1024 * 1024;
/** After a write failed with the disk full, how long before writes are tried again. */
const DISK_FULL_RETRY_MS = 1000;

export interface LogOptions<T> {
  readonly dir: string;
  readonly maxBytes: number;
  readonly fsync: "always" | "interval";
  readonly fsyncIntervalMs: number;
  /** Turns a payload read back from disk into the value the reader hands out. Throws if it cannot. */
  decode(payload: Buffer): T;
  /** Records can be read (call `take`). */
  onReadable(): void;
  /** Space was freed (a segment deleted, the disk-full pause ended). */
  onSpace(): void;
  onCorrupt(report: CorruptionReport): void;
  readonly log: Logger;
}

/** One record handed out by the reader; pass it back to `ack` once it is done with. */
export interface LogRecord<T> {
  readonly seg: Segment;
  readonly offset: number;
  /** When it was written (ms since the epoch). */
  readonly time: number;
  readonly value: T;
  /** Bytes it takes in the file. */
  readonly bytes: number;
}

export interface AppendEntry<T> {
  readonly payload: Buffer;
  /** Handed out as the record's value when it is read from memory. */
  readonly value: T;
}

interface Pending<T> {
  readonly header: Buffer;
  readonly entry: AppendEntry<T>;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class SegmentLog<T> {
  private readonly segments: Segment[] = [];
  private active!: Segment;
  private opened = false;
  private activeFh!: FileHandle;
  private readonly segmentBytes: number;
  private unlock: (() => void) | undefined;

  private batch: Pending<T>[] = [];
  private batchBytes = 0;
  private waiters: Waiter[] = [];
  private writing: Promise<void> | undefined;
  private writingBytes = 0;
  private flushScheduled = false;
  private dirty = false;
  private dirDirty = false;

  private readonly ready = new Deque<LogRecord<T>>();
  private readyBytes = 0;
  private unread = 0;
  private reading = false;

  private diskBytes = 0;
  /** Running average of the records appended, in bytes (for `hasRoom`). */
  private typicalRecord = 1024;
  private liveRecords = 0;
  private diskFullUntil = 0;
  private acksScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly ackFhs = new Map<Segment, FileHandle>();

  constructor(private readonly opts: LogOptions<T>) {
    this.segmentBytes = Math.min(64 * 1024 * 1024, Math.max(64 * 1024, Math.floor(opts.maxBytes / 8)));
  }

  /** Records not yet acknowledged, appends in progress included. */
  get events(): number {
    return this.liveRecords + this.batch.length;
  }

  /** Bytes of the segment files, and of appends in progress. */
  get bytes(): number {
    return this.diskBytes + this.batchBytes + this.writingBytes;
  }

  /** Write time of the oldest record not yet handed out, if known. */
  get oldestUnreadTime(): number | undefined {
    const r = this.ready.peek();
    if (r) return r.time;
    for (const s of this.segments) if (s.unread > 0) return s.firstTime || undefined;
    return undefined;
  }

  /** Records ready to be taken. */
  get readyCount(): number {
    return this.ready.length;
  }

  /** True while a write failed for lack of disk space and the pause after it lasts. */
  get diskFull(): boolean {
    return Date.now() < this.diskFullUntil;
  }

  /** Whether `bytes` more fit under `max_bytes` (and the disk is not known to be full). */
  fits(bytes: number): boolean {
    return !this.diskFull && this.bytes + bytes <= this.opts.maxBytes;
  }

  /** Whether a record of the usual size still fits: the buffer is not full. */
  hasRoom(): boolean {
    return this.fits(Math.round(this.typicalRecord));
  }

  /** Locks the directory, scans what a previous run left, and starts a new segment. Returns the records found. */
  async open(): Promise<number> {
    this.unlock = lockDir(this.opts.dir);
    try {
      return await this.load();
    } catch (err) {
      this.unlock();
      this.unlock = undefined;
      throw err;
    }
  }

  private async load(): Promise<number> {
    const { dir } = this.opts;
    let lastId = 0;
    for (const id of listSegments(dir)) {
      lastId = id;
      const seg = new Segment(id, dir);
      seg.sealed = true;
      seg.size = await fileSize(seg.path);
      const acked = await loadAcks(seg);
      const fh = await open(seg.path, "r");
      const found = await scanSegment(fh, seg.size, acked).finally(() => fh.close());
      for (const r of found.regions) this.corrupt(seg, r.kind, r.offset, r.bytes);
      seg.waiting.push(...found.offsets);
      seg.live = found.offsets.length;
      seg.firstTime = found.firstTime;
      if (seg.live === 0) {
        await this.removeFiles(seg);
        continue;
      }
      this.segments.push(seg);
      this.diskBytes += seg.size;
      this.liveRecords += seg.live;
      this.unread += seg.live;
    }
    await this.startSegment(lastId + 1);
    this.opened = true;
    await syncDir(dir);
    this.dirDirty = false;
    this.timer = setInterval(() => void this.periodicSync(), this.opts.fsyncIntervalMs);
    this.timer.unref();
    this.fill();
    return this.liveRecords;
  }

  /** Appends records; resolves once they are written (and synced, with `fsync: always`). */
  append(entries: readonly AppendEntry<T>[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("disk buffer closed"));
    const now = Date.now();
    for (const entry of entries) {
      const header = recordHeader(entry.payload, now);
      this.batch.push({ header, entry });
      this.batchBytes += HEADER_BYTES + entry.payload.length;
      this.typicalRecord += (HEADER_BYTES + entry.payload.length - this.typicalRecord) / 16;
    }
    const done = new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      // One turn's appends go out together.
      setImmediate(() => {
        this.flushScheduled = false;
        void this.flush();
      });
    }
    return done;
  }

  /** The next record in log order, or undefined when none is read yet. */
  take(): LogRecord<T> | undefined {
    const r = this.ready.shift();
    if (r) {
      this.readyBytes -= r.bytes;
      this.fill();
    }
    return r;
  }

  peek(): LogRecord<T> | undefined {
    return this.ready.peek();
  }

  /** The record is done with (delivered or dead-lettered): it will not be read again. */
  ack(rec: LogRecord<T>): void {
    const seg = rec.seg;
    if (seg.deleted) return;
    seg.live--;
    this.liveRecords--;
    if (seg.sealed && seg.live === 0) {
      void this.deleteSegment(seg);
      return;
    }
    seg.pendingAcks.push(rec.offset);
    if (!this.acksScheduled) {
      this.acksScheduled = true;
      setImmediate(() => {
        this.acksScheduled = false;
        this.flushAcks();
      });
    }
  }

  /** Waits for writes in progress, writes the acknowledgements, syncs and closes every file. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (!this.opened) {
      // Never opened (the directory was locked, or unreadable): nothing of ours to release.
      this.closed = true;
      return;
    }
    while (this.writing || this.batch.length > 0) {
      if (this.writing) await this.writing;
      else await this.flush();
    }
    this.closed = true;
    clearInterval(this.timer);
    this.flushAcks();
    for (const seg of this.segments) await seg.ackWrite;
    await this.activeFh.datasync().catch(() => {});
    await this.activeFh.close().catch(() => {});
    // Nothing left to deliver in the last segment: leave no file behind for the next run to scan.
    if (this.active.live === 0) {
      this.active.deleted = true;
      await this.ackFhs.get(this.active)?.close().catch(() => {});
      this.ackFhs.delete(this.active);
      await this.removeFiles(this.active);
    }
    for (const [, fh] of this.ackFhs) {
      await fh.datasync().catch(() => {});
      await fh.close().catch(() => {});
    }
    for (const seg of this.segments) await seg.readFd?.close().catch(() => {});
    this.unlock?.();
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  private async flush(): Promise<void> {
    if (this.writing || this.batch.length === 0) return;
    const batch = this.batch;
    const waiters = this.waiters;
    const bytes = this.batchBytes;
    this.batch = [];
    this.waiters = [];
    this.batchBytes = 0;
    this.writingBytes = bytes;
    let finish!: () => void;
    this.writing = new Promise((resolve) => (finish = resolve));
    let start = -1;
    try {
      if (this.active.size > 0 && this.active.size + bytes > this.segmentBytes) await this.rotate();
      const seg = this.active;
      start = seg.size;
      const bufs: Buffer[] = [];
      for (const p of batch) bufs.push(p.header, p.entry.payload);
      await writeAllAt(this.activeFh, bufs, start);
      if (this.opts.fsync === "always") {
        await this.activeFh.datasync();
        if (this.dirDirty) {
          this.dirDirty = false;
          await syncDir(this.opts.dir);
        }
      } else this.dirty = true;
      this.placed(seg, start, batch);
      for (const w of waiters) w.resolve();
    } catch (err) {
      // Cut a partly written batch off, so the next one starts on a record boundary.
      if (start >= 0) await this.activeFh.truncate(start).catch(() => {});
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOSPC" || code === "EDQUOT") {
        this.diskFullUntil = Date.now() + DISK_FULL_RETRY_MS;
        setTimeout(() => this.opts.onSpace(), DISK_FULL_RETRY_MS).unref();
      }
      this.opts.log.error({ err, dir: this.opts.dir, code }, "disk buffer write failed");
      for (const w of waiters) w.reject(err);
    } finally {
      this.writingBytes = 0;
      this.writing = undefined;
      finish();
    }
    if (this.batch.length > 0 && !this.flushScheduled) void this.flush();
  }

  /** Records of a completed write: counted, and handed to the reader from memory when it is caught up. */
  private placed(seg: Segment, start: number, batch: readonly Pending<T>[]): void {
    let off = start;
    let handed = false;
    for (const p of batch) {
      const size = HEADER_BYTES + p.entry.payload.length;
      seg.live++;
      this.liveRecords++;
      const time = p.header.readDoubleLE(8);
      if (seg.firstTime === 0) seg.firstTime = time;
      if (this.unread === 0 && this.ready.length < READY_MAX && this.readyBytes < READY_BYTES) {
        this.ready.push({ seg, offset: off, time, value: p.entry.value, bytes: size });
        this.readyBytes += size;
        handed = true;
      } else {
        seg.waiting.push(off);
        this.unread++;
      }
      off += size;
    }
    seg.size = off;
    this.diskBytes += off - start;
    if (handed) this.opts.onReadable();
    this.fill();
  }

  private async rotate(): Promise<void> {
    const old = this.active;
    old.sealed = true;
    await this.activeFh.datasync();
    await this.activeFh.close();
    await this.startSegment(old.id + 1);
    if (old.live === 0) await this.deleteSegment(old);
  }

  private async startSegment(id: number): Promise<void> {
    const seg = new Segment(id, this.opts.dir);
    this.activeFh = await open(seg.path, "wx");
    this.active = seg;
    this.segments.push(seg);
    this.dirDirty = true;
  }

  private async periodicSync(): Promise<void> {
    if (this.closed) return;
    try {
      if (this.dirty && !this.writing) {
        this.dirty = false;
        await this.activeFh.datasync();
      }
      if (this.dirDirty && this.opts.fsync === "interval") {
        this.dirDirty = false;
        await syncDir(this.opts.dir);
      }
      for (const [, fh] of this.ackFhs) await fh.datasync();
    } catch (err) {
      this.opts.log.warn({ err, dir: this.opts.dir }, "disk buffer sync failed");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Reading

  /** Reads ahead from disk while the ready queue has room and records wait on disk. */
  private fill(): void {
    if (this.reading || this.closed || this.unread === 0) return;
    if (this.ready.length >= READY_MAX || this.readyBytes >= READY_BYTES) return;
    const seg = this.segments.find((s) => s.unread > 0);
    if (!seg) return;
    this.reading = true;
    this.readSome(seg)
      .catch((err: unknown) => this.opts.log.error({ err, file: seg.name }, "disk buffer read failed; retrying"))
      .finally(() => {
        this.reading = false;
        if (!this.closed) setImmediate(() => this.fill());
      });
  }

  private async readSome(seg: Segment): Promise<void> {
    const fh = (seg.readFd ??= await open(seg.path, "r"));
    const first = seg.waiting[seg.next]!;
    let buf = await readAt(fh, first, Math.min(READ_CHUNK, seg.size - first));
    let handed = false;
    while (seg.unread > 0 && this.ready.length < READY_MAX && this.readyBytes < READY_BYTES) {
      const off = seg.waiting[seg.next]!;
      const rel = off - first;
      let f = frameAt(buf, rel);
      if (!f.ok && f.short) {
        if (rel > 0) break; // the next read starts here
        buf = await readAt(fh, first, Math.min(f.need, seg.size - first));
        f = frameAt(buf, 0);
      }
      seg.next++;
      this.unread--;
      if (!f.ok) {
        // It was intact when scanned or written: the file changed since.
        this.corrupt(seg, "checksum", off, f.short ? seg.size - off : HEADER_BYTES);
        this.lose(seg);
        continue;
      }
      let value: T;
      try {
        value = this.opts.decode(f.payload);
      } catch {
        this.corrupt(seg, "checksum", off, f.end - rel);
        this.lose(seg);
        continue;
      }
      this.ready.push({ seg, offset: off, time: f.time, value, bytes: f.end - rel });
      this.readyBytes += f.end - rel;
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
    if (handed) this.opts.onReadable();
  }

  // ---------------------------------------------------------------------------------------------
  // Acknowledgements and deletion

  private flushAcks(): void {
    for (const seg of this.segments) {
      if (seg.pendingAcks.length === 0 || seg.deleted) continue;
      const offsets = seg.pendingAcks;
      seg.pendingAcks = [];
      const buf = Buffer.allocUnsafe(offsets.length * ACK_BYTES);
      offsets.forEach((o, i) => ackEntry(o, buf, i * ACK_BYTES));
      seg.ackWrite = seg.ackWrite.then(async () => {
        if (seg.deleted) return;
        try {
          let fh = this.ackFhs.get(seg);
          if (!fh) {
            fh = await open(seg.ackPath, "a");
            this.ackFhs.set(seg, fh);
          }
          await fh.write(buf);
          seg.ackBytes += buf.length;
        } catch (err) {
          // Not fatal: the records come back once more after a restart.
          this.opts.log.warn({ err, file: seg.name }, "disk buffer could not record acknowledgements");
        }
      });
    }
  }

  private async deleteSegment(seg: Segment): Promise<void> {
    if (seg.deleted) return;
    seg.deleted = true;
    const i = this.segments.indexOf(seg);
    if (i >= 0) this.segments.splice(i, 1);
    this.diskBytes -= seg.size;
    await seg.ackWrite;
    const fh = this.ackFhs.get(seg);
    this.ackFhs.delete(seg);
    await fh?.close().catch(() => {});
    await seg.readFd?.close().catch(() => {});
    seg.readFd = undefined;
    await this.removeFiles(seg);
    this.opts.onSpace();
  }

  private async removeFiles(seg: Segment): Promise<void> {
    try {
      await rm(seg.ackPath, { force: true });
      await rm(seg.path, { force: true });
    } catch (err) {
      this.opts.log.warn({ err, file: seg.name }, "disk buffer could not delete a finished segment");
    }
  }

  /** A record that could not be read back is gone: counted out of the segment. */
  private lose(seg: Segment): void {
    seg.live--;
    this.liveRecords--;
    if (seg.sealed && seg.live === 0) void this.deleteSegment(seg);
  }

  private corrupt(seg: Segment, kind: CorruptionReport["kind"], offset: number, bytes: number): void {
    this.opts.onCorrupt({ kind, file: seg.name, offset, bytes, at: new Date().toISOString() });
  }
}
