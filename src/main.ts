#!/usr/bin/env node
/**
 * The `cebridge` command: the one place that knows both the connectors and the engine.
 * Exit codes: 0 clean stop, 1 config or start-up error, 2 usage error.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { setFlagsFromString } from "node:v8";
import { builtinRegistry } from "../connectors/index.js";
import { formatIssue, type ConfigIssue } from "./config/issues.js";
import { checkConfigFile } from "./config/load.js";
import type { BridgeConfig } from "./config/schema.js";
import { subscriptionsReloadProblem } from "./config/subscriptions.js";
import { secretValues } from "./config/secrets.js";
import { watchConfigFile } from "./config/watch.js";
import type { Registry } from "./core/connector.js";
import type { Logger } from "./core/logger.js";
import { splitHostPort } from "./core/net.js";
import { Engine } from "./engine/engine.js";
import { Reloader } from "./engine/reloader.js";
import { startAdminServer, type AdminServer } from "./observability/admin.js";
import { createLogger, setLogLevel } from "./observability/log.js";
import { Metrics } from "./observability/metrics.js";
import { StatusBoard } from "./observability/status.js";
import type { DeliveryTracer } from "./engine/tracer.js";
import type { RedriveArgs } from "./redrive/command.js";
import type { SubscriptionService } from "./subscriptions/service.js";

// Only what `run` needs is imported above: the other commands, the Subscriptions API and tracing load
// when used, since every module a start-up loads delays /readyz.

const help = (redriveHelp: string) => `cebridge — carries events across clouds and brokers as CloudEvents

Usage:
  cebridge run    [-c FILE] [--watch]  start the daemon (FILE: $CEBRIDGE_CONFIG, else config/default.yaml);
                                       SIGHUP reloads FILE, --watch also reloads it whenever it changes
  cebridge lint    -c FILE             check a config; prints FILE:LINE:COL level CODE path: message
  cebridge schema                      print the config file's JSON Schema
  cebridge redrive --from DL [--to SINK] [--filter CESQL] [--dry-run] [-c FILE]
                                       re-send dead-lettered events (see below)
  cebridge --version | --help

${redriveHelp}

Exit codes: 0 clean stop, 1 config or start-up error, 2 usage error (redrive: see above).
Docs: README.md (config reference, status page, hot reload, redrive, error codes).`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

function usage(message: string): never {
  process.stderr.write(`cebridge: ${message}\nRun "cebridge --help" for usage.\n`);
  process.exit(2);
}

function printIssues(issues: readonly ConfigIssue[]): void {
  for (const issue of issues) process.stderr.write(formatIssue(issue) + "\n");
}

function defaultConfigPath(): string {
  return process.env["CEBRIDGE_CONFIG"] || new URL("../../config/default.yaml", import.meta.url).pathname;
}

/**
 * After each full collection V8 lets the old generation grow to up to about 4× what survived it,
 * plus the young generation. At full rate an event stays in the route window long enough to be
 * promoted, so the old generation fills with dead events and RSS follows the garbage, not what the
 * daemon holds (bench 2: 250 MB peak with 22–34 MB live). Growth bounded to 2× (100 %): 250 → 185 MB
 * for about 6 % more CPU per event in bench 2 (71 → 75 µs, A/B on one machine). 25 % gives 150 MB
 * for 25–35 % more CPU, which the CPU-per-event targets cannot afford; a smaller young generation
 * (NODE_OPTIONS=--max-semi-space-size=4) takes another 25 MB for 10–30 % more. An operator's own
 * --heap-growing-percent (command line or NODE_OPTIONS) is left alone.
 */
const HEAP_GROWING_PERCENT = 100;

function boundHeapGrowth(): void {
  const flags = [...process.execArgv, ...(process.env["NODE_OPTIONS"] ?? "").split(/\s+/)];
  if (!flags.some((f) => /^--heap[-_]growing[-_]percent/.test(f))) setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

async function run(file: string, watch: boolean): Promise<number> {
  boundHeapGrowth();
  const registry = builtinRegistry();
  const { config, issues } = checkConfigFile(file, registry);
  printIssues(issues);
  if (!config) return 1;

  const log = createLogger(config.engine.log.level);
  const metrics = new Metrics();
  const board = new StatusBoard();
  board.config = { file, generation: 1, loadedAt: new Date().toISOString(), reloading: false };
  board.redactor.setSecrets(secretValues(config, registry));
  let tracer: DeliveryTracer | undefined;
  if (config.engine.tracing.enabled) {
    try {
      // Loaded only when enabled: with tracing off no OpenTelemetry module is imported.
      const { startOpenTelemetry } = await import("./observability/otel.js");
      tracer = await startOpenTelemetry({ log, instanceId: config.engine.instance_id, version: version() });
    } catch (err) {
      log.error({ err, code: (err as { code?: string }).code }, "start-up failed: tracing");
      return 1;
    }
  }
  let subscriptions: SubscriptionService | undefined;
  if (config.subscriptions) {
    try {
      const { SubscriptionService } = await import("./subscriptions/service.js");
      subscriptions = await SubscriptionService.start({ ...config, subscriptions: config.subscriptions }, { registry, log, promRegistry: metrics.registry });
    } catch (err) {
      log.error({ err, code: (err as { code?: string }).code }, "start-up failed: the Subscriptions API could not start");
      return 1;
    }
    const service = subscriptions;
    board.subscriptions = () => service.snapshot();
  }
  // The streams' virtual sinks run in the engine like any sink; lint never sees their type.
  const engine = new Engine(config, {
    registry: subscriptions ? subscriptions.registry(builtinRegistry()) : registry,
    log,
    metrics,
    board,
    ...(tracer ? { tracer } : {}),
  });
  let admin: AdminServer | undefined;
  let started!: () => void;
  const reloader = new Reloader({
    engine,
    board,
    log,
    started: new Promise<void>((resolve) => (started = resolve)),
    load: () => refuseSubscriptionChanges(engine.current, loadForReload(file, registry)),
    print: (line) => process.stderr.write(line + "\n"),
    adopted: (next) => {
      adopt(next, registry, board, log);
      void subscriptions?.reload(next).catch((err) => log.error({ err }, "subscriptions: reload failed"));
    },
  });
  // Installed before start-up: SIGHUP's default action would end the process.
  process.on("SIGHUP", () => void reloader.request("SIGHUP"));
  const unwatch = watch ? watchConfigFile(file, () => void reloader.request("watch")) : undefined;

  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection (a bug: please report it)"));
  let signals = 0;
  const done = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        log.warn({ signal }, "second signal: exiting now; in-flight events will be redelivered");
        process.exit(1);
      }
      log.info({ signal }, "stopping");
      unwatch?.();
      // No subscription changes while stopping; the streams keep delivering until their routes drained.
      void subscriptions?.closeApi();
      engine
        .stop()
        .then(() => subscriptions?.stop(config.engine.shutdown_timeout))
        .then(() => tracer?.shutdown().catch((err) => log.warn({ err }, "tracing: could not export the last spans")))
        .then(() => admin?.close())
        .then(
          () => resolve(0),
          (err) => {
            log.error({ err }, "error while stopping");
            resolve(1);
          },
        );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });

  try {
    if (config.engine.admin.listen !== "off") {
      admin = await startAdminServer(splitHostPort(config.engine.admin.listen), board, metrics, {
        version: version(),
        instanceId: config.engine.instance_id,
      });
      log.info({ address: admin.address }, "admin server listening");
    }
    await engine.start();
    started();
  } catch (err) {
    // A stop requested while connectors were still connecting ends start-up early: a clean stop.
    if (signals > 0) return done;
    log.error({ err, code: (err as { code?: string }).code }, "start-up failed");
    unwatch?.();
    await engine.stop(0).catch(() => undefined);
    await subscriptions?.stop(0).catch(() => undefined);
    await tracer?.shutdown().catch(() => undefined);
    await admin?.close();
    return 1;
  }
  return done;
}

/** The file checked again for a reload, its issues formatted as `lint` prints them. */
function loadForReload(file: string, registry: Registry): { config?: BridgeConfig; errors: string[]; warnings: string[] } {
  const { config, issues } = checkConfigFile(file, registry);
  const lines = (level: string) => issues.filter((i) => i.level === level).map(formatIssue);
  return { ...(config ? { config } : {}), errors: lines("error"), warnings: lines("warning") };
}

/** A reload cannot add or remove the Subscriptions API, nor move its state: those need a restart. */
function refuseSubscriptionChanges(running: BridgeConfig, loaded: ReturnType<typeof loadForReload>): ReturnType<typeof loadForReload> {
  const problem = subscriptionsReloadProblem(running, loaded.config);
  return problem ? { errors: [...loaded.errors, `${running.file}: error CEB_RELOAD subscriptions: ${problem}`], warnings: loaded.warnings } : loaded;
}

/** What a reload changes outside the engine: the log level and the secrets the status board hides. */
function adopt(next: BridgeConfig, registry: Registry, board: StatusBoard, log: Logger): void {
  board.redactor.setSecrets(secretValues(next, registry));
  setLogLevel(log, next.engine.log.level);
}

/** Options each command accepts, besides --help and --version. */
const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  run: ["config", "watch"],
  lint: ["config"],
  schema: [],
  redrive: ["config", "from", "to", "filter", "dry-run", "parallel", "idle"],
};

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        watch: { type: "boolean" },
        from: { type: "string" },
        to: { type: "string" },
        filter: { type: "string" },
        "dry-run": { type: "boolean" },
        parallel: { type: "string" },
        idle: { type: "string" },
      },
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    const { REDRIVE_HELP } = await import("./redrive/command.js");
    process.stdout.write(help(REDRIVE_HELP) + "\n");
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + "\n");
    return 0;
  }
  const [command, ...rest] = positionals;
  if (rest.length > 0) usage(`unexpected argument "${rest[0]}"`);
  const allowed = command !== undefined ? COMMAND_OPTIONS[command] : undefined;
  if (allowed) {
    const extra = Object.keys(values).filter((k) => k !== "help" && k !== "version" && !allowed.includes(k));
    if (extra.length > 0) usage(`${command} does not take --${extra[0]}`);
  }
  switch (command) {
    case "run":
      return run(values.config ?? defaultConfigPath(), values.watch === true);
    case "redrive": {
      if (values.from === undefined) usage("redrive needs --from FILE or --from SOURCE_ID");
      const args: RedriveArgs = {
        configFile: values.config ?? defaultConfigPath(),
        from: values.from,
        ...(values.to !== undefined ? { to: values.to } : {}),
        ...(values.filter !== undefined ? { filter: values.filter } : {}),
        dryRun: values["dry-run"] === true,
        ...(values.parallel !== undefined ? { parallel: values.parallel } : {}),
        ...(values.idle !== undefined ? { idle: values.idle } : {}),
      };
      const { runRedrive } = await import("./redrive/command.js");
      return runRedrive(args, { registry: builtinRegistry(), usage });
    }
    case "lint": {
      if (!values.config) usage("lint needs -c FILE");
      const { config, issues } = checkConfigFile(values.config, builtinRegistry());
      printIssues(issues);
      if (config) process.stderr.write(`${values.config}: ok (${issues.length} warning(s))\n`);
      return config ? 0 : 1;
    }
    case "schema": {
      const { buildJsonSchema } = await import("./config/json-schema.js");
      process.stdout.write(JSON.stringify(buildJsonSchema(builtinRegistry()), null, 2) + "\n");
      return 0;
    }
    case undefined:
      usage("missing command");
    default:
      usage(`unknown command "${command}"`);
  }
}

/**
 * Exits once stdout and stderr took everything written to them: a pipe can still hold output when
 * `process.exit` runs (Node 24 cut `cebridge schema`'s 150 KB short), and an empty write's callback
 * comes after every earlier write's.
 */
function exitAfterOutput(code: number): void {
  process.stdout.write("", () => process.stderr.write("", () => process.exit(code)));
}

main(process.argv.slice(2)).then(
  (code) => exitAfterOutput(code),
  (err) => {
    process.stderr.write(`cebridge: ${(err as Error).stack ?? String(err)}\n`);
    exitAfterOutput(1);
  },
);
