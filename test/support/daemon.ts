/**
 * Starts the built daemon (`dist/src/main.js run -c FILE`) as a child process with a YAML config,
 * the way a user runs it, and gives tests its stdout lines, stderr and admin address.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { waitFor } from "./wait.js";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const MAIN = join(REPO_ROOT, "dist", "src", "main.js");

export interface Daemon {
  readonly proc: ChildProcess;
  readonly configFile: string;
  /** Lines the daemon wrote to stdout so far (the stdout sink). */
  readonly stdout: string[];
  /** Everything written to stderr (JSON logs, lint issues). */
  stderr(): string;
  /** Resolves with the exit code once the process ends. */
  readonly exited: Promise<number | null>;
  /** Polls `GET /readyz` on `admin` until it answers 200. */
  waitReady(admin: string, timeoutMs?: number): Promise<void>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Writes `yaml` to `cebridge.yaml` in a new temp directory (or `dir`) and returns the path. */
export function writeConfig(yaml: string, dir = mkdtempSync(join(tmpdir(), "cebridge-e2e-"))): string {
  const configFile = join(dir, "cebridge.yaml");
  writeFileSync(configFile, yaml);
  return configFile;
}

/** Writes `yaml` to a temp file and starts the daemon on it. */
export function startDaemon(yaml: string, opts: { env?: NodeJS.ProcessEnv; dir?: string } = {}): Daemon {
  const configFile = writeConfig(yaml, opts.dir);
  return spawnDaemon(["run", "-c", configFile], configFile, opts.env);
}

const live = new Set<ChildProcess>();
// A test file that fails half-way must not leave daemons behind.
process.once("exit", () => live.forEach((p) => p.kill("SIGKILL")));

/** Runs the CLI with `args` (no temp file). */
export function spawnDaemon(args: string[], configFile = "", env: NodeJS.ProcessEnv = {}): Daemon {
  const proc = spawn(process.execPath, [MAIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout: string[] = [];
  let partial = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    const parts = (partial + chunk).split("\n");
    partial = parts.pop()!;
    stdout.push(...parts);
  });
  proc.stderr!.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
  // "close", not "exit": exit can fire while the pipes still hold output (a 150 KB
  // `schema` arrived cut short in CI), and the last line needs no newline to count.
  const exited = new Promise<number | null>((resolve) =>
    proc.once("close", (code) => {
      if (partial !== "") stdout.push(partial);
      partial = "";
      resolve(code);
    }),
  );
  live.add(proc);
  proc.once("exit", () => live.delete(proc));
  return {
    proc,
    configFile,
    stdout,
    stderr: () => err,
    exited,
    async waitReady(admin, timeoutMs = 15_000) {
      await waitFor(
        async () => {
          if (proc.exitCode !== null) throw new Error(`daemon exited with ${proc.exitCode}:\n${err}`);
          try {
            const res = await fetch(`http://${admin}/readyz`);
            return res.status === 200;
          } catch {
            return false;
          }
        },
        timeoutMs,
        "daemon ready",
      );
    },
    async stop(signal = "SIGTERM") {
      if (proc.exitCode === null) proc.kill(signal);
      return exited;
    },
  };
}
