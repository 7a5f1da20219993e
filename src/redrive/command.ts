/**
 * `cebridge redrive`: re-sends dead-lettered events, from a dead-letter file or from a source in the
 * config, to the sink each dead letter names (or `--to`). See the README's "Redrive" section for the
 * rules; this file parses the options, sets the run up, handles Ctrl-C and prints the summary.
 *
 * Exit codes: 0 every selected dead letter was delivered (or, with --dry-run, could be sent);
 * 1 config or start-up error; 2 usage error; 3 some failed again, were left or could not be read
 * (see the messages); 130 interrupted.
 */
import { existsSync } from "node:fs";
import { checkConfigFile } from "../config/load.js";
import { formatIssue } from "../config/issues.js";
import { parseDuration } from "../config/units.js";
import type { Registry } from "../core/connector.js";
import { CesqlParseError, compileCesql, type CompiledCesql } from "../filter/index.js";
import { createLogger } from "../observability/log.js";
import { openFile, pendingLines, redriveFile, type FileRun } from "./file-input.js";
import { Progress, summary, zeroCounts } from "./progress.js";
import { Session } from "./session.js";
import { redriveSource } from "./source-input.js";

export const REDRIVE_HELP = `Redrive:
  cebridge redrive --from FILE|SOURCE [--to SINK] [--filter CESQL] [--dry-run] [-c FILE]
                   [--parallel N] [--idle DURATION]
    --from      a dead-letter file (JSON Lines, as the file sink writes) or the id of a source in the config
    --to        send every selected dead letter to this sink (default: the sink each one names in cebridgesink)
    --filter    CESQL over the dead letter as stored, e.g. "cebridgeerror = 'CEB_SINK_PERMANENT'"
    --dry-run   show what would be sent; send and record nothing
    --parallel  dead letters in flight at once (default 16)
    --idle      with a source: stop once nothing new arrived for this long (default 2s)
  The route named in cebridgeroute supplies the transform, retry, timeout and dead-letter sink.
  Handled lines of a file are recorded in FILE.redrive, so a second run does not send them again.
  Exit codes: 0 all delivered, 1 config error, 2 usage, 3 some failed again or were left, 130 interrupted.`;

export interface RedriveArgs {
  readonly configFile: string;
  readonly from: string;
  readonly to?: string;
  readonly filter?: string;
  readonly dryRun: boolean;
  readonly parallel?: string;
  readonly idle?: string;
}

export interface RedriveDeps {
  readonly registry: Registry;
  usage(message: string): never;
  readonly stdout?: NodeJS.WritableStream;
  readonly stderr?: NodeJS.WriteStream;
}

export async function runRedrive(args: RedriveArgs, deps: RedriveDeps): Promise<number> {
  const stdout = deps.stdout ?? process.stdout;
  const stderr = deps.stderr ?? process.stderr;
  const parallel = args.parallel === undefined ? 16 : Number(args.parallel);
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > 10_000) deps.usage(`--parallel must be an integer from 1 to 10000, not "${args.parallel}"`);
  const idleMs = args.idle === undefined ? 2_000 : parseDuration(args.idle);
  if (idleMs === undefined) deps.usage(`--idle must be a duration such as 2s or 500ms, not "${args.idle}"`);
  let filter: CompiledCesql | undefined;
  if (args.filter !== undefined) {
    try {
      filter = compileCesql(args.filter);
    } catch (err) {
      const at = err instanceof CesqlParseError ? ` at column ${err.position + 1}` : "";
      deps.usage(`--filter is not valid CESQL${at}: ${(err as Error).message}`);
    }
  }

  const { config, issues } = checkConfigFile(args.configFile, deps.registry);
  for (const i of issues.filter((x) => x.level === "error")) stderr.write(formatIssue(i) + "\n");
  if (!config) return 1;
  if (args.to !== undefined && config.sinks[args.to] === undefined) {
    deps.usage(`--to: no sink "${args.to}" in ${args.configFile} (sinks: ${Object.keys(config.sinks).join(", ") || "none"})`);
  }
  const fromSource = config.sources[args.from] !== undefined && !existsSync(args.from);
  if (!fromSource && !existsSync(args.from)) deps.usage(`--from: no file "${args.from}" and no source of that id in ${args.configFile}`);

  const log = createLogger(config.engine.log.level === "silent" ? "silent" : "warn");
  const counts = zeroCounts();
  const tty = stderr.isTTY === true;
  let opened: Awaited<ReturnType<typeof openFile>> | undefined;
  let pending: { total: number; alreadyDone: number } | undefined;
  if (!fromSource) {
    opened = await openFile(args.from);
    pending = await pendingLines(args.from, opened.journal, opened.size);
  }
  const progress = new Progress({ out: stderr, tty, ...(pending ? { total: pending.total } : {}) }, counts);
  const session = new Session({
    config,
    registry: deps.registry,
    log,
    ...(args.to !== undefined ? { to: args.to } : {}),
    ...(filter ? { filter } : {}),
    dryRun: args.dryRun,
    parallel,
    counts,
    progress,
  });

  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts === 1) {
      progress.message("stopping: no new dead letters; waiting for those in flight (Ctrl-C again to abandon them, they stay for the next run)");
      session.stop.abort(new Error("interrupted"));
    } else {
      session.hardStop.abort(new Error("interrupted twice"));
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const started = Date.now();
  const run: FileRun = { total: pending?.total ?? 0, notStarted: 0 };
  try {
    if (opened) {
      progress.update(true);
      await redriveFile(args.from, opened.size, opened.journal, session, run);
    } else {
      await redriveSource(args.from, idleMs!, session);
    }
  } finally {
    await opened?.journal.close().catch((err: Error) => stderr.write(`cebridge: could not sync the journal ${opened!.journal.path}: ${err.message}\n`));
    await session.close();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
  progress.finish();

  const interrupted = interrupts > 0;
  let text = summary(counts, { dryRun: args.dryRun, seconds: (Date.now() - started) / 1000, interrupted, from: args.from });
  if (interrupted && opened) {
    const done = progress.processed() - counts.left;
    text += `\nstopped after ${done} of ${run.total}; ${run.total - done} not sent yet — run the same command again to continue`;
  }
  if (opened && !args.dryRun) {
    const unhandled = counts.left + counts.skipped + counts.unreadable + counts.notMatching + run.notStarted;
    text += unhandled === 0 ? `\nevery dead letter in ${args.from} is handled (journal: ${opened.journal.path})` : `\njournal: ${opened.journal.path}`;
  }
  stdout.write(text + "\n");
  if (interrupted) return 130;
  return counts.deadLettered + counts.left + counts.skipped + counts.unreadable > 0 ? 3 : 0;
}
