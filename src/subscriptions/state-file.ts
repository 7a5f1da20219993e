/**
 * The subscriptions state file, `<state_dir>/subscriptions.json`:
 * `{ "version": 1, "subscriptions": [{ "stream", "createdat", "subscription" }] }`, secrets included
 * (they are needed to deliver after a restart), so the file is mode 0600 in a 0700 directory.
 *
 * Every write is atomic: the whole state goes to a temporary file (0600) which is fsynced, renamed
 * over the old one, and the directory is fsynced, so a crash leaves either the old state or the new
 * one, never a mix. Writes are serialized by the caller (one mutation at a time).
 */
import { chmod, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { BridgeError } from "../core/errors.js";
import type { StoredSubscription } from "./model.js";

export const STATE_FILE = "subscriptions.json";
const VERSION = 1;

/** A record as read back: its validated form is built by the manager, which may find it invalid. */
export interface RawRecord {
  readonly stream: string;
  readonly createdat: string;
  readonly subscription: Record<string, unknown> & { id: string };
}

export class StateFile {
  readonly path: string;
  private readonly tmp: string;

  constructor(readonly dir: string) {
    this.path = join(dir, STATE_FILE);
    this.tmp = join(dir, `${STATE_FILE}.tmp`);
  }

  /** Creates the directory (0700) and reads the records; none when the file does not exist yet. */
  async load(): Promise<RawRecord[]> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw stateError(`cannot create state_dir ${this.dir}`, err);
    }
    // A temporary file left by a crash mid-write holds a state that was never acknowledged.
    await rm(this.tmp, { force: true }).catch(() => undefined);
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw stateError(`cannot read ${this.path}`, err);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw stateError(`${this.path} is not valid JSON (${(err as Error).message}); fix or remove it: the daemon will not start over it and lose the subscriptions`);
    }
    const d = doc as { version?: unknown; subscriptions?: unknown };
    if (typeof doc !== "object" || doc === null || d.version !== VERSION || !Array.isArray(d.subscriptions)) {
      throw stateError(`${this.path} is not a version ${VERSION} subscriptions state file`);
    }
    return d.subscriptions.map((r: unknown, i: number) => {
      const rec = r as Partial<RawRecord>;
      if (typeof rec?.stream !== "string" || typeof rec.createdat !== "string" || typeof rec.subscription?.id !== "string") {
        throw stateError(`${this.path}: record ${i} lacks stream, createdat or subscription.id`);
      }
      return rec as RawRecord;
    });
  }

  /** Replaces the file's content with `records`, atomically and durably. Throws `CEB_STATE`. */
  async save(records: readonly (StoredSubscription | RawRecord)[]): Promise<void> {
    const text = JSON.stringify({ version: VERSION, subscriptions: records }, null, 1) + "\n";
    try {
      const fh = await open(this.tmp, "w", 0o600);
      try {
        await fh.writeFile(text, "utf8");
        await fh.sync();
      } finally {
        await fh.close();
      }
      await chmod(this.tmp, 0o600);
      await rename(this.tmp, this.path);
      const dir = await open(this.dir, "r");
      try {
        await dir.sync();
      } finally {
        await dir.close();
      }
    } catch (err) {
      await rm(this.tmp, { force: true }).catch(() => undefined);
      throw stateError(`cannot write ${this.path}`, err);
    }
  }
}

function stateError(message: string, cause?: unknown): BridgeError {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  return new BridgeError("CEB_STATE", code ? `${message}: ${code}` : message, true, cause ? { cause } : undefined);
}
