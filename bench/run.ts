/**
 * `npm run bench`: cebridge measured side by side with raw-client baselines in one run.
 *
 * Runs each scenario in turn on private brokers (test/support/brokers.ts), the daemon as a user runs
 * it (`node dist/src/main.js run -c <yaml>`), load generators and baselines in forked processes.
 * Prints one table on stdout (progress goes to stderr) and writes bench/results/<YYYY-MM-DD>.json.
 *
 * Environment:
 *   BENCH_QUICK=1                 short smoke run (fewer events, 20 s sink-down)
 *   BENCH_SINK_DOWN_SECONDS=300   duration of the sink-down memory run
 *   BENCH_ONLY=1,2,6              run only these scenarios (ids 1–17; 9 and 10 Pub/Sub, 11 Event Grid, 12 and 13 AWS, on emulators; 14 route buffers; 15 AMQP on RabbitMQ; 16 subscriptions; 17 MQTT QoS 1 → JetStream)
 *   BENCH_WINDOW=1024             end-to-end window of the throughput load generators
 *   BENCH_BATCH_CONNECTIONS=2     concurrent batch requests in scenario 4b
 *   BENCH_PUBSUB_STREAMS=1        StreamingPull streams of both sides in scenario 9
 *   BENCH_DAEMON_NODE_ARGS="..."  extra node flags for the daemon (diagnostics, e.g. --import a-probe.mjs)
 *   BENCH_PROFILE=2               run only scenario 2 with the daemon under `node --cpu-prof`
 *                                 and print its hottest functions (no results file)
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { cpus, freemem, loadavg, platform, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { findBinary } from "../test/support/brokers.js";
import { REPO_ROOT } from "./lib/daemon.js";
import { Scope } from "./lib/load.js";
import { summarize, type ProfileSummary } from "./lib/profile.js";
import { ForeignCpu } from "./lib/rss.js";
import { fmtMs, fmtNum, fmtRate, markdownTable, round, table } from "./lib/stats.js";
import { scenario15 } from "./scenarios/amqp.js";
import { scenario12, scenario13 } from "./scenarios/aws.js";
import { scenario1, scenario2 } from "./scenarios/bridges.js";
import { scenario14burst, scenario14disk } from "./scenarios/buffers.js";
import { scenario6 } from "./scenarios/codec.js";
import { scenario11 } from "./scenarios/eventgrid.js";
import type { Ctx, Row, ScenarioResult } from "./scenarios/common.js";
import { scenario3, scenario4 } from "./scenarios/jetstream.js";
import { scenario5 } from "./scenarios/latency.js";
import { scenario17 } from "./scenarios/mqtt-qos1.js";
import { scenario7sinkDown } from "./scenarios/memory.js";
import { scenario9, scenario10 } from "./scenarios/pubsub.js";
import { scenario8 } from "./scenarios/startup.js";
import { scenario16 } from "./scenarios/subscriptions.js";

const env = process.env;
const QUICK = env["BENCH_QUICK"] === "1";
const SINK_DOWN_SECONDS = Number(env["BENCH_SINK_DOWN_SECONDS"] ?? (QUICK ? 20 : 300));
const WINDOW = Number(env["BENCH_WINDOW"] ?? 1024);
const PROFILE = env["BENCH_PROFILE"];
const DAEMON_NODE_ARGS = (env["BENCH_DAEMON_NODE_ARGS"] ?? "").split(" ").filter(Boolean);
const ONLY = PROFILE ? [PROFILE] : env["BENCH_ONLY"]?.split(",").map((s) => s.trim()).filter(Boolean);

interface ScenarioDef {
  id: string;
  title: string;
  budgetMs: number;
  run(ctx: Ctx): Promise<void>;
}

const SCENARIOS: ScenarioDef[] = [
  { id: "1", title: "MQTT 5 QoS 0 structured → cebridge → NATS core structured", budgetMs: 60_000, run: scenario1 },
  { id: "2", title: "NATS core structured → cebridge → MQTT 5 QoS 0 binary", budgetMs: 60_000, run: scenario2 },
  { id: "3", title: "JetStream → cebridge → JetStream (drain of a pre-loaded stream)", budgetMs: 60_000, run: scenario3 },
  { id: "4", title: "HTTP → cebridge → JetStream (single events, batches)", budgetMs: 60_000, run: scenario4 },
  { id: "5", title: "Added latency at 1,000 events/s, HTTP → cebridge → NATS core", budgetMs: 60_000, run: scenario5 },
  { id: "6", title: "Codec: cebridge vs the cloudevents SDK", budgetMs: 60_000, run: scenario6 },
  { id: "8", title: "Start-up to /readyz", budgetMs: 60_000, run: scenario8 },
  { id: "9", title: "Pub/Sub → cebridge → NATS core (emulator, drain of a pre-loaded subscription)", budgetMs: 120_000, run: scenario9 },
  { id: "10", title: "JetStream → cebridge → Pub/Sub (emulator, drain into a topic)", budgetMs: 120_000, run: scenario10 },
  { id: "11", title: "Azure Event Grid (emulator): push → webhook → NATS, namespace pull → NATS", budgetMs: 240_000, run: scenario11 },
  { id: "12", title: "HTTP → cebridge → EventBridge (AWS emulator), beside the bare SDK", budgetMs: 240_000, run: scenario12 },
  { id: "13", title: "SQS (AWS emulator) → cebridge → NATS core, beside the bare SDK", budgetMs: 300_000, run: scenario13 },
  { id: "15", title: "AMQP 1.0 (RabbitMQ): AMQP → cebridge → NATS, HTTP → cebridge → AMQP, beside raw rhea", budgetMs: 240_000, run: scenario15 },
  {
    id: "14",
    title: "Route buffers (issue #13): a 20,000-event burst on core NATS; HTTP → disk buffer → JetStream",
    budgetMs: 240_000,
    run: async (ctx) => {
      await scenario14burst(ctx);
      await scenario14disk(ctx);
    },
  },
  { id: "16", title: "Subscriptions API: a route feeding 4 NATS subscriptions (and a dead webhook) beside one that feeds none", budgetMs: 240_000, run: scenario16 },
  { id: "17", title: "MQTT 5 QoS 1 structured → cebridge → JetStream, beside raw QoS 1 publish → subscribe", budgetMs: 120_000, run: scenario17 },
  {
    id: "7",
    title: `RSS with the sink down (${SINK_DOWN_SECONDS}s)`,
    budgetMs: SINK_DOWN_SECONDS * 1000 + 45_000,
    run: (ctx) => scenario7sinkDown(ctx, SINK_DOWN_SECONDS),
  },
];

const t0 = Date.now();
function log(msg: string): void {
  process.stderr.write(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`);
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(findBinary(cmd), args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).split("\n")[0]!.trim();
  } catch (err) {
    // mosquitto -h exits with 3 but prints its version first
    const out = (err as { stdout?: string }).stdout ?? "";
    return out.split("\n")[0]?.trim() || "unknown";
  }
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(join(REPO_ROOT, "node_modules", name, "package.json"), "utf8")) as { version: string }).version;
  } catch {
    return "not installed";
  }
}

/** The commit measured, and whether src/ or connectors/ had uncommitted changes. */
function codeVersion(): Record<string, unknown> {
  const git = (args: string[]) => execFileSync("git", args, { cwd: REPO_ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  try {
    return { head: git(["rev-parse", "--short", "HEAD"]), subject: git(["log", "-1", "--format=%s"]), dirty: git(["status", "--porcelain", "--", "src", "connectors"]) !== "" };
  } catch {
    return { head: "unknown" };
  }
}

function machine(): Record<string, unknown> {
  const c = cpus();
  return {
    cpuModel: c[0]?.model ?? "unknown",
    cores: c.length,
    memTotalMb: Math.round(totalmem() / 2 ** 20),
    memFreeMbAtStart: Math.round(freemem() / 2 ** 20),
    loadavgAtStart: loadavg().map((v) => round(v, 2)),
    os: `${platform()} ${release()}`,
    node: process.version,
    natsServer: version("nats-server", ["--version"]),
    mosquitto: version("mosquitto", ["-h"]),
    packages: Object.fromEntries(
      ["@nats-io/transport-node", "@nats-io/jetstream", "@nats-io/nats-core", "mqtt", "cloudevents", "pino", "prom-client", "@google-cloud/pubsub", "rhea", "protobufjs"].map((p) => [p, pkgVersion(p)]),
    ),
  };
}

async function runScenario(def: ScenarioDef, daemonNodeArgs: string[]): Promise<ScenarioResult> {
  const result: ScenarioResult = { id: def.id, title: def.title, rows: [], details: {}, errors: [], warnings: [] };
  const scope = new Scope(def.budgetMs);
  const ctx: Ctx = { quick: QUICK, scope, window: WINDOW, daemonNodeArgs, log, result };
  const started = Date.now();
  result.details["loadavgAtStart"] = loadavg().map((v) => round(v, 2));
  log(`scenario ${def.id}: ${def.title} (load average ${loadavg()[0]!.toFixed(2)})`);
  let timer: NodeJS.Timeout | undefined;
  const foreign = new ForeignCpu().start();
  try {
    await Promise.race([
      def.run(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`scenario ${def.id} ran out of its ${def.budgetMs / 1000}s budget`)), def.budgetMs);
      }),
    ]);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    result.errors.push(msg);
    log(`scenario ${def.id} FAILED: ${msg.split("\n").slice(0, 12).join("\n")}`);
  } finally {
    clearTimeout(timer);
    await scope.close();
  }
  result.durationMs = Date.now() - started;
  result.details["loadavgAtEnd"] = loadavg().map((v) => round(v, 2));
  const cpu = foreign.stop();
  result.details["cpu"] = { foreignPct: round(cpu.foreignPct, 1), benchTreePct: round(cpu.oursPct, 1) };
  if (cpu.foreignPct > 20) {
    const msg = `other processes used ${cpu.foreignPct.toFixed(0)}% of a core during this scenario: figures skewed`;
    result.warnings.push(msg);
    log(`scenario ${def.id}: WARNING ${msg}`);
  }
  log(`scenario ${def.id} done in ${(result.durationMs / 1000).toFixed(1)}s`);
  return result;
}

function verdict(r: Row): string {
  if (r.target === "info") return "";
  if (r.pass === undefined) return "n/a";
  return r.pass ? "pass" : "MISS";
}

function cells(r: Row): string[] {
  const ratio = r.ratioText ?? (r.ratio !== undefined && Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}` : "-");
  return [
    `${r.id.padEnd(6)} ${r.scenario}`,
    fmtRate(r.rate),
    fmtMs(r.p50),
    fmtMs(r.p99),
    fmtNum(r.rssMb, 0),
    fmtRate(r.baseline),
    ratio,
    r.target,
    verdict(r),
  ];
}

const HEADER = ["scenario", "events/s", "p50", "p99", "peak RSS MB", "baseline ev/s", "ratio", "target", "pass/miss"];

function peakRssRow(results: ScenarioResult[]): Row | undefined {
  const rows = results.flatMap((s) => s.rows).filter((r) => /^[1-5]b?$/.test(r.id) && r.rssMb !== undefined && Number.isFinite(r.rssMb));
  if (rows.length === 0) return undefined;
  const top = rows.reduce((a, b) => ((b.rssMb ?? 0) > (a.rssMb ?? 0) ? b : a));
  return {
    id: "7a",
    scenario: "peak RSS at full rate (max of 1–5)",
    rssMb: top.rssMb,
    ratioText: `${top.rssMb!.toFixed(0)} MB in ${top.id}`,
    target: "≤ 120MB",
    pass: top.rssMb! <= 120,
  };
}

function notFinished(s: ScenarioResult): Row[] {
  if (s.errors.length === 0) return [];
  return [{ id: s.id, scenario: `(${s.title.slice(0, 40)}…) did not finish`, target: "-", note: s.errors[0]!.split("\n")[0] }];
}

async function profileRun(def: ScenarioDef): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "cebridge-cpuprof-"));
  const result = await runScenario(def, [...DAEMON_NODE_ARGS, "--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", "200"]);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".cpuprofile"))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  process.stdout.write(table(HEADER, result.rows.map(cells)) + "\n\n");
  if (files.length === 0) {
    process.stdout.write(`no .cpuprofile written in ${dir} (did the daemon exit cleanly?)\n`);
    process.exitCode = 1;
    return;
  }
  const summaries: ProfileSummary[] = files.map((f) => summarize(f, 20));
  const s = summaries[0]!;
  const pct = (ms: number) => `${((ms / s.totalMs) * 100).toFixed(1)}%`;
  const lines: string[] = [];
  lines.push(`profile of the daemon in scenario ${def.id}: ${s.file}`);
  lines.push(`busy ${s.totalMs.toFixed(0)} ms; by category: ${Object.entries(s.byCategory).map(([k, v]) => `${k} ${pct(v)}`).join(", ")}`);
  lines.push(`dependencies: ${Object.entries(s.byPackage).sort((a, b) => b[1] - a[1]).slice(0, 8).map(([k, v]) => `${k} ${pct(v)}`).join(", ")}`);
  lines.push("");
  lines.push(table(["ours, by self time", "where", "self ms", "%"], s.ours.map((h) => [h.name, h.where, h.selfMs.toFixed(1), h.selfPct.toFixed(2)])));
  lines.push("");
  lines.push(table(["ours, by inclusive time", "where", "incl ms", "%"], s.oursInclusive.map((h) => [h.name, h.where, h.selfMs.toFixed(1), h.selfPct.toFixed(2)])));
  lines.push("");
  lines.push(table(["everything, by self time", "where", "self ms", "%"], s.all.map((h) => [h.name, h.where, h.selfMs.toFixed(1), h.selfPct.toFixed(2)])));
  process.stdout.write(lines.join("\n") + "\n");
  const out = join(REPO_ROOT, "bench", "results", `profile-${new Date(t0).toISOString().slice(0, 10)}-s${def.id}.json`);
  mkdirSync(join(REPO_ROOT, "bench", "results"), { recursive: true });
  writeFileSync(out, JSON.stringify({ code: codeVersion(), scenario: result, profiles: summaries }, null, 2) + "\n");
  process.stdout.write(`\nprofile summary: ${out}\n`);
}

async function main(): Promise<void> {
  if (!existsSync(join(REPO_ROOT, "dist", "src", "main.js"))) throw new Error("dist/src/main.js is missing: run `npm run build` first (npm run bench does)");
  const selected = SCENARIOS.filter((s) => !ONLY || ONLY.includes(s.id));
  if (selected.length === 0) throw new Error(`no scenario matches ${ONLY?.join(",")}; ids: ${SCENARIOS.map((s) => s.id).join(", ")}`);
  const info = machine();
  const code = codeVersion();
  log(`code: ${String(code["head"])}${code["dirty"] ? " (with uncommitted changes in src/ or connectors/)" : ""} ${String(code["subject"] ?? "")}`);
  log(`machine: ${String(info["cpuModel"])}, ${String(info["cores"])} cores, node ${process.version}, ${String(info["natsServer"])}, ${String(info["mosquitto"])}`);
  if (loadavg()[0]! > 0.5 * cpus().length) {
    log(`WARNING: load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores before the bench: other work will skew the figures`);
  }
  log(`settings: quick=${QUICK} window=${WINDOW} sink-down=${SINK_DOWN_SECONDS}s scenarios=${selected.map((s) => s.id).join(",")}`);

  if (PROFILE) {
    await profileRun(selected[0]!);
    return;
  }

  const results: ScenarioResult[] = [];
  for (const def of selected) results.push(await runScenario(def, DAEMON_NODE_ARGS));

  const ordered = [...results].sort((a, b) => a.id.localeCompare(b.id));
  const rows: Row[] = [];
  for (const s of ordered) {
    if (s.id === "7") {
      const peak = peakRssRow(results);
      if (peak) rows.push(peak);
    }
    rows.push(...s.rows, ...notFinished(s));
  }
  if (!results.some((s) => s.id === "7")) {
    const peak = peakRssRow(results);
    if (peak) rows.push(peak);
  }

  const text = table(HEADER, rows.map(cells));
  const notes = rows.filter((r) => r.note).map((r) => `  ${r.id}: ${r.note}`);
  process.stdout.write(`\ncebridge bench — ${new Date().toISOString()} — ${String(info["cpuModel"])} ×${String(info["cores"])}, node ${process.version}${QUICK ? " — QUICK" : ""}\n\n`);
  process.stdout.write(text + "\n");
  if (notes.length) process.stdout.write(`\nnotes:\n${notes.join("\n")}\n`);
  const cpuLine = ordered.map((s) => `${s.id}: ${String((s.details["cpu"] as { foreignPct?: number } | undefined)?.foreignPct ?? "-")}%`).join(", ");
  process.stdout.write(`\nCPU used by processes outside the bench (% of one core), per scenario: ${cpuLine}\n`);
  for (const s of ordered) for (const w of s.warnings) process.stdout.write(`WARNING scenario ${s.id}: ${w}\n`);

  // Named after the day the run started (a run may end after midnight).
  const date = new Date(t0).toISOString().slice(0, 10);
  const dir = join(REPO_ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  // A partial, instrumented or quick run never overwrites the day's full results.
  const partial = ONLY !== undefined || DAEMON_NODE_ARGS.length > 0;
  const file = join(dir, partial ? `${date}-partial.json` : QUICK ? `${date}-quick.json` : `${date}.json`);
  const json = {
    date: new Date().toISOString(),
    command: "npm run bench",
    settings: { quick: QUICK, window: WINDOW, sinkDownSeconds: SINK_DOWN_SECONDS, only: ONLY ?? null, batchConnections: Number(env["BENCH_BATCH_CONNECTIONS"] ?? 2) },
    machine: info,
    code,
    durationSeconds: (Date.now() - t0) / 1000,
    loadavgAtEnd: loadavg().map((v) => round(v, 2)),
    table: rows.map((r) => ({
      id: r.id,
      scenario: r.scenario.trim(),
      eventsPerSecond: round(r.rate, 1),
      p50Ms: round(r.p50, 3),
      p99Ms: round(r.p99, 3),
      peakRssMb: round(r.rssMb, 1),
      baselineEventsPerSecond: round(r.baseline, 1),
      ratio: round(r.ratio, 3),
      ratioText: r.ratioText ?? null,
      target: r.target,
      pass: r.pass ?? null,
      note: r.note ?? null,
    })),
    markdown: markdownTable(HEADER, rows.map(cells)),
    scenarios: results,
  };
  writeFileSync(file, JSON.stringify(json, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2) + "\n");
  process.stdout.write(`\nresults: ${file} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n`);
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
