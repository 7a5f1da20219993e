/**
 * Orchestrator side of the worker processes: the load generator, the codec benchmark and the
 * baselines run as forked children (never in the orchestrator or the daemon). Every child is
 * registered in a `Scope`, which kills whatever is left when a scenario ends or runs out of time.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { FlowResult, FlowTask, HammerResult, HammerTask, WatchResult, WatchTask, WorkerMessage } from "./protocol.js";

/** `dist/bench/` (this file is `dist/bench/lib/load.js`). */
export const BENCH_DIST = fileURLToPath(new URL("../", import.meta.url));

/** Resources of one scenario and its time budget. */
export class Scope {
  private readonly cleanups: (() => unknown)[] = [];
  readonly deadline: number;
  private closed = false;

  constructor(readonly budgetMs: number) {
    this.deadline = Date.now() + budgetMs;
  }

  /** ms left, never below `floor`. */
  remaining(floor = 1000): number {
    return Math.max(floor, this.deadline - Date.now());
  }

  get expired(): boolean {
    return Date.now() >= this.deadline;
  }

  /** Runs `fn` when the scope closes (last registered first). */
  defer(fn: () => unknown): void {
    if (this.closed) void Promise.resolve().then(fn);
    else this.cleanups.push(fn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const fn of this.cleanups.reverse()) {
      try {
        await Promise.race([Promise.resolve(fn()), new Promise((r) => setTimeout(r, 12_000))]);
      } catch {
        // best effort
      }
    }
  }
}

export interface Worker<R> {
  readonly child: ChildProcess;
  /** Resolves on the child's `ready` message. */
  readonly ready: Promise<Record<string, unknown> | undefined>;
  /** Resolves on its `result` message; rejects on an error message, an early exit or the timeout. */
  readonly result: Promise<R>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the child is gone. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Forks `dist/bench/<script>`, sends it `message`, and kills it after `timeoutMs`.
 */
export function startWorker<R>(
  script: string,
  message: unknown,
  opts: { scope: Scope; timeoutMs: number; execArgv?: string[]; env?: NodeJS.ProcessEnv },
): Worker<R> {
  const child = fork(BENCH_DIST + script, [], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    execArgv: opts.execArgv ?? [],
    env: { ...process.env, ...opts.env },
    serialization: "advanced",
  });
  const exited = new Promise<void>((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r();
    else child.once("exit", () => r());
  });
  let readyResolve!: (v: Record<string, unknown> | undefined) => void;
  let readyReject!: (e: unknown) => void;
  const ready = new Promise<Record<string, unknown> | undefined>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => {});
  const result = new Promise<R>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${script} timed out after ${opts.timeoutMs} ms`));
    }, opts.timeoutMs);
    child.on("message", (m: WorkerMessage) => {
      if (m.type === "ready") readyResolve(m.info);
      else if (m.type === "result") {
        clearTimeout(timer);
        resolve(m.result as R);
      } else if (m.type === "error") {
        clearTimeout(timer);
        reject(new Error(`${script}: ${m.message}`));
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      const e = new Error(`${script} exited (${signal ?? code}) before answering`);
      readyReject(e);
      reject(e);
    });
  });
  result.catch(() => {});
  child.send(message as object);
  const stop = async (graceMs = 5000) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    }
  };
  opts.scope.defer(() => stop(1000));
  return { child, ready, result, stop };
}

/** Runs one load-generator task to its end. */
export function runFlow(task: Omit<FlowTask, "type">, scope: Scope): Promise<FlowResult> {
  const w = startWorker<FlowResult>("workers/loadgen.js", { type: "flow", ...task }, { scope, timeoutMs: task.timeoutMs + 8000 });
  return w.result;
}

export function startWatch(task: Omit<WatchTask, "type">, scope: Scope): Worker<WatchResult> {
  return startWorker<WatchResult>("workers/loadgen.js", { type: "watch", ...task }, { scope, timeoutMs: task.timeoutMs + 8000 });
}

export function runHammer(task: Omit<HammerTask, "type">, scope: Scope): Worker<HammerResult> {
  return startWorker<HammerResult>("workers/loadgen.js", { type: "hammer", ...task }, { scope, timeoutMs: task.durationMs + 20_000 });
}
