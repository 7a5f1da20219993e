/**
 * The files of a disk buffer directory: segment files (`<id>.seg`, records), their acknowledgement
 * files (`<id>.ack`), and `LOCK`, which keeps two daemons off one directory.
 */
import { closeSync, mkdirSync, openSync, readFileSync, readdirSync, realpathSync, rmSync, writeSync } from "node:fs";
import { open, readFile, stat, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { BridgeError } from "../../../core/errors.js";
import { readAcks } from "./record.js";

const SEGMENT = /^(\d{20})\.seg$/;

export function segmentName(id: number): string {
  return `${String(id).padStart(20, "0")}.seg`;
}

/** One segment file and what is known about the records in it. */
export class Segment {
  /** Bytes of whole records in the file (written this run, or found at open). */
  size = 0;
  /** No more records will be appended. */
  sealed = false;
  /** Records not yet acknowledged (waiting on disk, read ahead, or being delivered). */
  live = 0;
  /** Offsets of records waiting on disk to be read, in order. */
  readonly waiting: number[] = [];
  /** Index of the next offset of `waiting` to read (the array is consumed from the front). */
  next = 0;
  /** Write time of the first record (0 when unknown). */
  firstTime = 0;
  deleted = false;
  /** Acknowledged offsets waiting to be appended to the ack file. */
  pendingAcks: number[] = [];
  ackWrite: Promise<void> = Promise.resolve();
  ackBytes = 0;
  readFd: FileHandle | undefined;

  constructor(
    readonly id: number,
    readonly dir: string,
  ) {}

  get name(): string {
    return segmentName(this.id);
  }

  get path(): string {
    return join(this.dir, this.name);
  }

  get ackPath(): string {
    return join(this.dir, this.name.replace(/\.seg$/, ".ack"));
  }

  /** Offsets still waiting to be read. */
  get unread(): number {
    return this.waiting.length - this.next;
  }
}

/** The segment ids in `dir`, oldest first. */
export function listSegments(dir: string): number[] {
  return readdirSync(dir)
    .map((f) => SEGMENT.exec(f)?.[1])
    .filter((id): id is string => id !== undefined)
    .map(Number)
    .sort((a, b) => a - b);
}

/** The acknowledged offsets recorded for `seg`, and the ack file's size. */
export async function loadAcks(seg: Segment): Promise<Set<number>> {
  try {
    const buf = await readFile(seg.ackPath);
    seg.ackBytes = buf.length;
    return readAcks(buf);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return new Set();
    throw err;
  }
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** Makes directory entries (a new segment file) durable. */
export async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Directories locked by a buffer of this process: the LOCK file's pid cannot tell two of ours apart. */
const heldHere = new Set<string>();

/**
 * Takes `dir/LOCK` for this process. A lock left by a process that no longer runs (a crash) is
 * taken over; one held by a live process, or by another buffer of this process (a hot reload must
 * close the old buffer before the new one opens), is an error naming it.
 */
export function lockDir(dir: string): () => void {
  mkdirSync(dir, { recursive: true });
  const lock = join(dir, "LOCK");
  const key = realpathSync(dir);
  if (heldHere.has(key)) throw new BridgeError("CEB_CONFIG", `disk buffer directory ${dir} is in use by another route of this process`, false);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lock, "wx");
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      heldHere.add(key);
      return () => {
        heldHere.delete(key);
        rmSync(lock, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(lock, "utf8").trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new BridgeError("CEB_CONFIG", `disk buffer directory ${dir} is in use by process ${pid}`, false);
      }
      rmSync(lock, { force: true });
    }
  }
  throw new BridgeError("CEB_INTERNAL", `cannot take the lock ${lock}`, false);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
