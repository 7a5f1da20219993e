/**
 * Runs the built daemon the way a user does: `node dist/src/main.js run -c <yaml>`, in its own
 * process, with optional node flags (`--cpu-prof`). Keeps only the tail of stderr.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { get } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Scope } from "./load.js";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const MAIN = join(REPO_ROOT, "dist", "src", "main.js");

export interface DaemonHandle {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly startedAt: number;
  readonly configFile: string;
  stderrTail(): string;
  /** Polls `GET http://<admin>/readyz` every `everyMs` until 200; returns ms since spawn. */
  waitReady(admin: string, timeoutMs?: number, everyMs?: number): Promise<number>;
  /** SIGTERM (a clean stop, which lets --cpu-prof write its file), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface DaemonOptions {
  scope: Scope;
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
}

export function startDaemon(yaml: string, opts: DaemonOptions): DaemonHandle {
  const dir = mkdtempSync(join(tmpdir(), "cebridge-bench-"));
  const configFile = join(dir, "cebridge.yaml");
  writeFileSync(configFile, yaml);
  const startedAt = performance.now();
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), MAIN, "run", "-c", configFile], {
    env: { ...process.env, ...opts.env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let tail = "";
  proc.stderr!.setEncoding("utf8").on("data", (c: string) => {
    tail = (tail + c).slice(-8000);
  });
  const exited = new Promise<number | null>((r) => {
    if (proc.exitCode !== null || proc.signalCode !== null) r(proc.exitCode);
    else proc.once("exit", (code) => r(code));
  });
  const stop = async (graceMs = 15_000) => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    }
    return exited;
  };
  opts.scope.defer(() => stop(3000));
  return {
    proc,
    pid: proc.pid ?? -1,
    startedAt,
    configFile,
    stderrTail: () => tail,
    async waitReady(admin, timeoutMs = 15_000, everyMs = 5) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (proc.exitCode !== null || proc.signalCode !== null) {
          throw new Error(`daemon exited with ${proc.exitCode ?? proc.signalCode}:\n${tail}`);
        }
        if ((await status(`http://${admin}/readyz`)) === 200) return performance.now() - startedAt;
        if (Date.now() > deadline) throw new Error(`daemon not ready after ${timeoutMs} ms:\n${tail}`);
        await new Promise((r) => setTimeout(r, everyMs));
      }
    },
    stop,
  };
}

/** GET `url` on a fresh connection: the status code, or 0 when nothing answers. */
function status(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 2000 }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(0));
  });
}
