/**
 * Hot reload requests (SIGHUP, `run --watch`): read and check the config file again; refuse it with
 * every problem (printed in the `FILE:LINE:COL` form `lint` uses, logged, and kept in `/status`)
 * and keep the running config; or hand it to the engine, which applies the difference. Requests
 * that arrive while one is being applied are folded into one more run after it, so the last state of
 * the file always wins and reloads never overlap.
 */
import type { BridgeConfig } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import type { ReloadReport, StatusBoard } from "../observability/status.js";
import type { Engine } from "./engine.js";

export interface ReloaderDeps {
  readonly engine: Engine;
  readonly board: StatusBoard;
  readonly log: Logger;
  /** Reads and checks the config file: the config when valid, and every issue as a formatted line. */
  load(): { readonly config?: BridgeConfig; readonly errors: readonly string[]; readonly warnings: readonly string[] };
  /** Writes one line for the operator (stderr). */
  print(line: string): void;
  /** Called once a new config is in force (to apply the log level, the secrets to redact, ...). */
  adopted?(config: BridgeConfig): void;
  /** Resolves once the engine has started; requests made before wait for it. */
  readonly started: Promise<void>;
}

export class Reloader {
  private running: Promise<unknown> = Promise.resolve();
  private queued: Promise<ReloadReport> | undefined;

  constructor(private readonly deps: ReloaderDeps) {}

  /** Asks for a reload; `trigger` says why (`SIGHUP`, `watch`). Resolves with what happened. */
  request(trigger: string): Promise<ReloadReport> {
    // A request while another waits to run adds nothing: the waiting one reads the file when it runs.
    if (this.queued) return this.queued;
    const run = this.running.then(async () => {
      this.queued = undefined;
      await this.deps.started;
      return this.run(trigger);
    });
    this.queued = run;
    this.running = run.catch(() => undefined);
    return run;
  }

  private async run(trigger: string): Promise<ReloadReport> {
    const { board, log, engine } = this.deps;
    const at = new Date().toISOString();
    const { config, errors, warnings } = this.deps.load();
    for (const line of [...errors, ...warnings]) this.deps.print(line);
    if (!config) {
      const report: ReloadReport = { at, trigger, result: "refused", errors };
      board.config.lastReload = report;
      log.error({ trigger, errors: errors.length, generation: board.config.generation }, "reload refused: the new config has errors; the running config stays in force");
      board.recordError({ level: "error", where: "engine", code: "CEB_CONFIG", message: `reload refused (${errors.length} error(s)): ${errors[0] ?? ""}` });
      return report;
    }
    board.config.reloading = true;
    let report: ReloadReport;
    try {
      const outcome = await engine.reload(config);
      const routes = Object.fromEntries(Object.entries(outcome.routes).filter(([, names]) => names.length > 0));
      if (outcome.result === "failed") {
        report = { at, trigger, result: "failed", routes, ...(outcome.message !== undefined ? { message: outcome.message } : {}) };
        log.error({ trigger, reason: outcome.message }, "reload failed; the running config stays in force");
        board.recordError({ level: "error", where: "engine", code: "CEB_RELOAD", message: `reload failed: ${outcome.message ?? ""}` });
      } else {
        board.config.generation++;
        board.config.loadedAt = new Date().toISOString();
        const message = outcome.problems.length > 0 ? `applied with problems: ${outcome.problems.join("; ")}` : undefined;
        report = { at, trigger, result: outcome.result, routes, needsRestart: outcome.needsRestart, ...(message !== undefined ? { message } : {}) };
        this.deps.adopted?.(config);
        log.info({ trigger, generation: board.config.generation, routes, needsRestart: outcome.needsRestart, problems: outcome.problems }, "config reloaded");
        if (outcome.needsRestart.length > 0) log.warn({ settings: outcome.needsRestart }, "some changed settings take effect only after a restart");
      }
    } finally {
      board.config.reloading = false;
    }
    board.config.lastReload = report;
    return report;
  }
}
