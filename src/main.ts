#!/usr/bin/env node
/**
 * The `cebridge` command: the one place that knows both the connectors and the engine.
 * Exit codes: 0 clean stop, 1 config or start-up error, 2 usage error.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { builtinRegistry } from "../connectors/index.js";
import { formatIssue, type ConfigIssue } from "./config/issues.js";
import { buildJsonSchema } from "./config/json-schema.js";
import { checkConfigFile } from "./config/load.js";
import { splitHostPort } from "./core/net.js";
import { Engine } from "./engine/engine.js";
import { startAdminServer, type AdminServer } from "./observability/admin.js";
import { createLogger } from "./observability/log.js";
import { Metrics } from "./observability/metrics.js";
import { StatusBoard } from "./observability/status.js";
import type { DeliveryTracer } from "./engine/tracer.js";

const HELP = `cebridge — carries events across clouds and brokers as CloudEvents

Usage:
  cebridge run    [-c FILE]   start the daemon (FILE: $CEBRIDGE_CONFIG, else config/default.yaml)
  cebridge lint    -c FILE    check a config; prints FILE:LINE:COL level CODE path: message
  cebridge schema             print the config file's JSON Schema
  cebridge --version | --help

Exit codes: 0 clean stop, 1 config or start-up error, 2 usage error.
Docs: README.md (config reference, connectors, error codes).`;

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

async function run(file: string): Promise<number> {
  const registry = builtinRegistry();
  const { config, issues } = checkConfigFile(file, registry);
  printIssues(issues);
  if (!config) return 1;

  const log = createLogger(config.engine.log.level);
  const metrics = new Metrics();
  const board = new StatusBoard();
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
  const engine = new Engine(config, { registry, log, metrics, board, ...(tracer ? { tracer } : {}) });
  let admin: AdminServer | undefined;

  process.on("unhandledRejection", (err) => log.error({ err }, "unhandled rejection (a bug: please report it)"));
  let signals = 0;
  const done = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      if (++signals > 1) {
        log.warn({ signal }, "second signal: exiting now; in-flight events will be redelivered");
        process.exit(1);
      }
      log.info({ signal }, "stopping");
      engine
        .stop()
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
  } catch (err) {
    // A stop requested while connectors were still connecting ends start-up early: a clean stop.
    if (signals > 0) return done;
    log.error({ err, code: (err as { code?: string }).code }, "start-up failed");
    await engine.stop(0).catch(() => undefined);
    await tracer?.shutdown().catch(() => undefined);
    await admin?.close();
    return 1;
  }
  return done;
}

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
      },
    });
  } catch (err) {
    usage((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(HELP + "\n");
    return 0;
  }
  if (values.version) {
    process.stdout.write(version() + "\n");
    return 0;
  }
  const [command, ...rest] = positionals;
  if (rest.length > 0) usage(`unexpected argument "${rest[0]}"`);
  switch (command) {
    case "run":
      return run(values.config ?? defaultConfigPath());
    case "lint": {
      if (!values.config) usage("lint needs -c FILE");
      const { config, issues } = checkConfigFile(values.config, builtinRegistry());
      printIssues(issues);
      if (config) process.stderr.write(`${values.config}: ok (${issues.length} warning(s))\n`);
      return config ? 0 : 1;
    }
    case "schema":
      process.stdout.write(JSON.stringify(buildJsonSchema(builtinRegistry()), null, 2) + "\n");
      return 0;
    case undefined:
      usage("missing command");
    default:
      usage(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`cebridge: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
