/**
 * Redrive from a dead-letter file (JSON Lines, as the `file` sink writes them). The file is read up
 * to the size it had when the run started, so dead letters appended meanwhile (by the daemon, or by
 * this run when the route's dead-letter sink is this very file) wait for the next run. Handled lines
 * go to the journal (see journal.ts); nothing in the file itself is changed.
 */
import { closeSync, createReadStream, openSync, readSync, statSync } from "node:fs";
import { createInterface } from "node:readline";
import type { CloudEvent } from "../cloudevents/event.js";
import { parseStructured } from "../cloudevents/json-format.js";
import { Journal, journalPath, lineHash } from "./journal.js";
import type { Session } from "./session.js";

/** A line longer than this is not read as an event (the HTTP source's default limit, with room). */
const MAX_LINE_BYTES = 16 * 1024 * 1024;

export interface FileRun {
  /** Lines that were to be processed (not yet in the journal, not blank). */
  readonly total: number;
  /** Lines never started because the run was stopped. */
  notStarted: number;
}

/** Counts the lines still to process, for the progress bar. */
export async function pendingLines(file: string, journal: Journal, size: number): Promise<{ total: number; alreadyDone: number }> {
  let total = 0;
  let alreadyDone = 0;
  for await (const line of lines(file, size)) {
    if (line.trim() === "") continue;
    if (journal.has(lineHash(line))) alreadyDone++;
    else total++;
  }
  return { total, alreadyDone };
}

/** The size to read (up to the last complete line: a line being appended right now waits) and the journal. */
export async function openFile(file: string): Promise<{ size: number; journal: Journal }> {
  const size = statSync(file).size;
  let cut = completeLinesSize(file, size);
  // A last line without its line break is complete if it parses (a file written by hand).
  if (cut < size && size - cut <= MAX_LINE_BYTES && isJson(readRange(file, cut, size))) cut = size;
  return { size: cut, journal: await Journal.load(journalPath(file)) };
}

function readRange(file: string, start: number, end: number): string {
  const fd = openSync(file, "r");
  try {
    const buf = Buffer.alloc(end - start);
    readSync(fd, buf, 0, buf.length, start);
    return buf.toString("utf8");
  } finally {
    closeSync(fd);
  }
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function completeLinesSize(file: string, size: number): number {
  if (size === 0) return 0;
  const fd = openSync(file, "r");
  try {
    const chunk = Buffer.alloc(64 * 1024);
    for (let end = size; end > 0; ) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const i = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (i >= 0) return start + i + 1;
      end = start;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

export async function redriveFile(file: string, size: number, journal: Journal, session: Session, run: FileRun): Promise<void> {
  const { counts, progress, parallel, dryRun } = session.opts;
  const running = new Set<Promise<void>>();
  let lineNo = 0;
  let started = 0;
  try {
    for await (const line of lines(file, size)) {
      lineNo++;
      if (line.trim() === "") continue;
      const hash = lineHash(line);
      if (journal.has(hash)) {
        counts.alreadyDone++;
        continue;
      }
      if (session.stopping) break;
      const where = `${file}:${lineNo}`;
      let event: CloudEvent;
      try {
        if (Buffer.byteLength(line, "utf8") > MAX_LINE_BYTES) throw new Error(`the line is longer than ${MAX_LINE_BYTES} bytes`);
        event = parseStructured(line);
      } catch (err) {
        counts.read++;
        started++;
        counts.unreadable++;
        progress.message(`${where}: not a dead letter (${(err as Error).message}); left in place`);
        progress.update();
        continue;
      }
      while (running.size >= parallel) await Promise.race(running);
      if (session.stopping) break;
      counts.read++;
      started++;
      const task = session.process(event, where).then(async (v) => {
        if (!v.handled || dryRun) return;
        await journal.record({ line: hash, outcome: v.result.kind, id: String(event.attributes["id"] ?? ""), sinks: v.sinks }).catch((err: Error) => {
          progress.message(`${where}: handled, but the journal ${journal.path} could not be written (${err.message}): a later run will send it again`);
        });
      });
      const tracked = task.finally(() => running.delete(tracked));
      running.add(tracked);
    }
  } finally {
    await Promise.allSettled(running);
    run.notStarted = Math.max(0, run.total - started);
  }
}

async function* lines(file: string, size: number): AsyncGenerator<string> {
  if (size === 0) return;
  const rl = createInterface({ input: createReadStream(file, { encoding: "utf8", start: 0, end: size - 1 }), crlfDelay: Infinity });
  try {
    for await (const line of rl) yield line;
  } finally {
    rl.close();
  }
}
