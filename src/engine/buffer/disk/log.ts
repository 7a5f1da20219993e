/**
 * The segment log behind a disk buffer: append records durably, read them back in order,
 * acknowledge them one by one, and delete a segment file once every record in it is acknowledged.
 *
 * - Appends made in one event-loop turn are written together (one writev, and one fdatasync with
 *   `fsync: always`): group commit. An append resolves once its bytes are written, and synced when
 *   the setting is `always`; the buffer acknowledges the source then. Syncs run on libuv's thread
 *   pool, never on the JavaScript thread.
 * - Reading is `read-ahead.ts`; acknowledgements are `acks.ts`.
 * - A previous run's segments are scanned at open (`scan.ts`); their unacknowledged records are read
 *   before anything appended in this run. A new run always appends to a new segment.
 */
import { open, rm, type FileHandle } from "node:fs/promises";
import type { Logger } from "../../../core/logger.js";
import type { CorruptionReport } from "../stats.js";
import { AckWriter } from "./acks.js";
import { writeAllAt } from "./io.js";
import { ReadAhead, type LogRecord } from "./read-ahead.js";
import { HEADER_BYTES, recordHeader } from "./record.js";
import { scanSegment } from "./scan.js";
import { fileSize, listSegments, loadAcks, lockDir, Segment, syncDir } from "./segments.js";

export type { LogRecord } from "./read-ahead.js";

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
  private activeFh!: FileHandle;
  private opened = false;
  private closed = false;
  private readonly segmentBytes: number;
  private unlock: (() => void) | undefined;
  private readonly reader: ReadAhead<T>;
  private readonly acks: AckWriter;

  private batch: Pending<T>[] = [];
  private batchBytes = 0;
  private waiters: Waiter[] = [];
  private writing: Promise<void> | undefined;
  private writingBytes = 0;
  private flushScheduled = false;
  private dirty = false;
  private dirDirty = false;
  private timer: NodeJS.Timeout | undefined;

  private diskBytes = 0;
  private liveRecords = 0;
  private diskFullUntil = 0;
  /** Running average of the records appended, in bytes (for `hasRoom`). */
  private typicalRecord = 1024;

  constructor(private readonly opts: LogOptions<T>) {
    this.segmentBytes = Math.min(64 * 1024 * 1024, Math.max(64 * 1024, Math.floor(opts.maxBytes / 8)));
    this.acks = new AckWriter(opts.log);
    this.reader = new ReadAhead<T>(
      {
        decode: opts.decode,
        onReadable: opts.onReadable,
        lost: (seg, kind, offset, bytes) => {
          this.corrupt(seg, kind, offset, bytes);
          this.done(seg);
        },
        log: opts.log,
      },
      this.segments,
    );
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
    return this.reader.oldestTime;
  }

  /** Records ready to be taken. */
  get readyCount(): number {
    return this.reader.readyCount;
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

  /** Appends records; resolves once they are written (and synced, with `fsync: always`). */
  append(entries: readonly AppendEntry<T>[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error("disk buffer closed"));
    const now = Date.now();
    for (const entry of entries) {
      const size = HEADER_BYTES + entry.payload.length;
      this.batch.push({ header: recordHeader(entry.payload, now), entry });
      this.batchBytes += size;
      this.typicalRecord += (size - this.typicalRecord) / 16;
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
    return this.reader.take();
  }

  peek(): LogRecord<T> | undefined {
    return this.reader.peek();
  }

  /** The record is done with (delivered or dead-lettered): it will not be read again. */
  ack(rec: LogRecord<T>): void {
    if (rec.seg.deleted) return;
    if (!this.done(rec.seg)) this.acks.add(rec.seg, rec.offset);
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
    this.reader.close();
    clearInterval(this.timer);
    await this.acks.close(this.segments);
    await this.activeFh.datasync().catch(() => {});
    await this.activeFh.close().catch(() => {});
    for (const seg of this.segments) await seg.readFd?.close().catch(() => {});
    // Nothing left to deliver in the last segment: leave no file behind for the next run to scan.
    if (this.active.live === 0) await this.removeFiles(this.active);
    this.unlock?.();
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
      if (found.offsets.length === 0) {
        await this.removeFiles(seg);
        continue;
      }
      seg.waiting.push(...found.offsets);
      seg.live = found.offsets.length;
      seg.firstTime = found.firstTime;
      this.segments.push(seg);
      this.diskBytes += seg.size;
      this.liveRecords += seg.live;
      this.reader.queued(seg.live);
    }
    await this.startSegment(lastId + 1);
    await syncDir(dir);
    this.dirDirty = false;
    this.opened = true;
    this.timer = setInterval(() => void this.periodicSync(), this.opts.fsyncIntervalMs);
    this.timer.unref();
    this.reader.fill();
    return this.liveRecords;
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
      if (this.reader.canTakeOver) {
        this.reader.push({ seg, offset: off, time, value: p.entry.value, bytes: size });
        handed = true;
      } else this.reader.queue(seg, off);
      off += size;
    }
    seg.size = off;
    this.diskBytes += off - start;
    if (handed) this.opts.onReadable();
    this.reader.fill();
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
      await this.acks.sync();
    } catch (err) {
      this.opts.log.warn({ err, dir: this.opts.dir }, "disk buffer sync failed");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Deletion

  /** Counts a record of `seg` as done; deletes the segment if that was its last. Returns true then. */
  private done(seg: Segment): boolean {
    seg.live--;
    this.liveRecords--;
    if (!seg.sealed || seg.live > 0) return false;
    void this.deleteSegment(seg);
    return true;
  }

  private async deleteSegment(seg: Segment): Promise<void> {
    if (seg.deleted) return;
    seg.deleted = true;
    const i = this.segments.indexOf(seg);
    if (i >= 0) this.segments.splice(i, 1);
    this.diskBytes -= seg.size;
    await this.acks.forget(seg);
    await seg.readFd?.close().catch(() => {});
    seg.readFd = undefined;
    await this.removeFiles(seg);
    this.opts.onSpace();
  }

  private async removeFiles(seg: Segment): Promise<void> {
    seg.deleted = true;
    try {
      await rm(seg.ackPath, { force: true });
      await rm(seg.path, { force: true });
    } catch (err) {
      this.opts.log.warn({ err, file: seg.name }, "disk buffer could not delete a finished segment");
    }
  }

  private corrupt(seg: Segment, kind: CorruptionReport["kind"], offset: number, bytes: number): void {
    this.opts.onCorrupt({ kind, file: seg.name, offset, bytes, at: new Date().toISOString() });
  }
}
