/**
 * The redrive journal of a dead-letter file: `<file>.redrive`, JSON Lines, one entry per dead letter
 * that a redrive handled — delivered, or dead-lettered again with its new reason — keyed by the
 * SHA-256 of the dead letter's line. A later run skips every line in the journal, so it never
 * re-sends what was delivered, and picks up what an interrupted run left.
 *
 * The dead-letter file itself is never rewritten: the daemon may be appending to it, and replacing
 * it under a writer would lose dead letters. An entry is appended only after the sink confirmed
 * (or the new dead letter was written), and the journal is synced on close: a crash in between
 * re-sends at most those events again (at least once, never lost). Once the daemon no longer
 * writes to the file, the file and its journal can be removed together.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { createInterface } from "node:readline";
import { LineBatcher } from "../core/line-batcher.js";

export type JournalOutcome = "delivered" | "dead_lettered";

export interface JournalEntry {
  /** SHA-256 (hex) of the dead letter's line, without its line break. */
  readonly line: string;
  readonly outcome: JournalOutcome;
  readonly id?: string;
  readonly sinks?: readonly string[];
  readonly at: string;
}

export function journalPath(file: string): string {
  return `${file}.redrive`;
}

export function lineHash(line: string): string {
  return createHash("sha256").update(line, "utf8").digest("hex");
}

export class Journal {
  private handle: FileHandle | undefined;
  private readonly batcher = new LineBatcher(async (text) => {
    this.handle ??= await open(this.path, "a", 0o640);
    await this.handle.appendFile(text, "utf8");
  });

  private constructor(
    readonly path: string,
    private readonly done: Set<string>,
  ) {}

  /** Reads the journal at `path` (none yet is an empty journal). Lines it cannot read are ignored. */
  static async load(path: string): Promise<Journal> {
    const done = new Set<string>();
    if (existsSync(path)) {
      const lines = createInterface({ input: createReadStream(path, "utf8"), crlfDelay: Infinity });
      for await (const text of lines) {
        try {
          const e = JSON.parse(text) as Partial<JournalEntry>;
          if (typeof e.line === "string") done.add(e.line);
        } catch {
          // A line cut by a crash: its dead letter is simply handled again.
        }
      }
    }
    return new Journal(path, done);
  }

  /** Handled lines (by hash). */
  get size(): number {
    return this.done.size;
  }

  has(hash: string): boolean {
    return this.done.has(hash);
  }

  /** Appends an entry; resolves once it is written. */
  async record(entry: Omit<JournalEntry, "at">): Promise<void> {
    this.done.add(entry.line);
    await this.batcher.write(JSON.stringify({ ...entry, at: new Date().toISOString() }) + "\n");
  }

  /** Waits for pending entries, syncs and closes. */
  async close(): Promise<void> {
    await this.batcher.idle();
    if (this.handle) {
      await this.handle.sync();
      await this.handle.close();
      this.handle = undefined;
    }
  }
}
