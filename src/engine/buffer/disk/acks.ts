/**
 * Acknowledgement files: one `<id>.ack` per segment, appended with the offsets of the records that
 * are done with. Entries of one event-loop turn go out in one write per file. They are not synced
 * before the records count as acknowledged: a lost entry only delivers its record once more.
 */
import { open, type FileHandle } from "node:fs/promises";
import type { Logger } from "../../../core/logger.js";
import { ACK_BYTES, ackEntry } from "./record.js";
import type { Segment } from "./segments.js";

export class AckWriter {
  private readonly files = new Map<Segment, FileHandle>();
  private readonly dirty = new Set<Segment>();
  private scheduled = false;

  constructor(private readonly log: Logger) {}

  /** Records `offset` of `seg` as acknowledged (written on the next turn). */
  add(seg: Segment, offset: number): void {
    seg.pendingAcks.push(offset);
    this.dirty.add(seg);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Starts the writes of every pending entry (each segment's writes stay in order). */
  flush(): void {
    for (const seg of this.dirty) {
      if (seg.deleted || seg.pendingAcks.length === 0) continue;
      const offsets = seg.pendingAcks;
      seg.pendingAcks = [];
      const buf = Buffer.allocUnsafe(offsets.length * ACK_BYTES);
      offsets.forEach((o, i) => ackEntry(o, buf, i * ACK_BYTES));
      seg.ackWrite = seg.ackWrite.then(async () => {
        if (seg.deleted) return;
        try {
          let fh = this.files.get(seg);
          if (!fh) {
            fh = await open(seg.ackPath, "a");
            this.files.set(seg, fh);
          }
          await fh.write(buf);
          seg.ackBytes += buf.length;
        } catch (err) {
          // Not fatal: the records come back once more after a restart.
          this.log.warn({ err, file: seg.name }, "disk buffer could not record acknowledgements");
        }
      });
    }
    this.dirty.clear();
  }

  /** Waits for `seg`'s writes and closes its file (the segment is being deleted). */
  async forget(seg: Segment): Promise<void> {
    this.dirty.delete(seg);
    await seg.ackWrite;
    const fh = this.files.get(seg);
    this.files.delete(seg);
    await fh?.close().catch(() => {});
  }

  /** Syncs every open acknowledgement file. */
  async sync(): Promise<void> {
    for (const fh of this.files.values()) await fh.datasync();
  }

  /** Writes what is pending, syncs and closes every file. */
  async close(segments: Iterable<Segment>): Promise<void> {
    this.flush();
    for (const seg of segments) await seg.ackWrite;
    for (const fh of this.files.values()) {
      await fh.datasync().catch(() => {});
      await fh.close().catch(() => {});
    }
    this.files.clear();
  }
}
