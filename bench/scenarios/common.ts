/**
 * What the scenarios share: the result rows, the run context, the daemon wrapper (start, wait for
 * /readyz, sample RSS, stop) and the YAML of the engine section.
 */
import { freePort } from "../../test/support/ports.js";
import type { BrokerHandle } from "../../test/support/brokers.js";
import { startDaemon, type DaemonHandle } from "../lib/daemon.js";
import type { Scope } from "../lib/load.js";
import { get } from "node:http";
import { readCpuMs, RssSampler } from "../lib/rss.js";

export interface Row {
  /** "1", "1 sdk", "4b", "6 parse binary", ... */
  id: string;
  scenario: string;
  /** events/s (ops/s for the codec) */
  rate?: number | undefined;
  p50?: number | undefined;
  p99?: number | undefined;
  rssMb?: number | undefined;
  baseline?: number | undefined;
  ratio?: number | undefined;
  /** shown instead of the ratio when the comparison is not a ratio (latency, RSS) */
  ratioText?: string | undefined;
  target: string;
  /** undefined: informational, or could not be measured */
  pass?: boolean | undefined;
  note?: string | undefined;
}

export interface ScenarioResult {
  id: string;
  title: string;
  rows: Row[];
  /** every figure, for the JSON file */
  details: Record<string, unknown>;
  errors: string[];
  /** e.g. other processes loading the machine */
  warnings: string[];
  durationMs?: number;
}

export interface Ctx {
  quick: boolean;
  scope: Scope;
  /** loadgen end-to-end window for the throughput flows */
  window: number;
  /** node flags for the daemon (`--cpu-prof ...` when profiling) */
  daemonNodeArgs: string[];
  log(msg: string): void;
  result: ScenarioResult;
}

/** Registers a broker for cleanup. */
export function own<T extends BrokerHandle>(ctx: Ctx, b: T): T {
  ctx.scope.defer(() => b.close());
  return b;
}

export interface EngineYaml {
  admin: string;
  yaml: string;
}

export async function engineSection(): Promise<EngineYaml> {
  const admin = `127.0.0.1:${await freePort()}`;
  const yaml = [
    "engine:",
    "  instance_id: bench",
    `  admin: { listen: "${admin}" }`,
    "  shutdown_timeout: 5s",
    "  log: { level: info, format: json }",
    "",
  ].join("\n");
  return { admin, yaml };
}

export interface DaemonRun<T> {
  value: T;
  readyMs: number;
  /** peak RSS during `fn` (MiB) */
  peakRssMb: number;
  /** RSS right after ready (MiB) */
  idleRssMb: number;
  /** CPU the daemon used during `fn` (ms) and the wall time of `fn` (ms) */
  cpuMs: number;
  wallMs: number;
  /** non-zero drop/failure counters from /metrics after `fn` */
  counters: Record<string, number>;
  exitCode: number | null;
}

/** Non-zero `cebridge_events_(dropped|failed|dead_lettered)_total` and retries from the admin /metrics. */
export function scrapeCounters(admin: string): Promise<Record<string, number>> {
  return new Promise((resolve) => {
    const req = get(`http://${admin}/metrics`, { agent: false, timeout: 3000 }, (res) => {
      let body = "";
      res.setEncoding("utf8").on("data", (c: string) => (body += c));
      res.on("end", () => {
        const out: Record<string, number> = {};
        for (const line of body.split("\n")) {
          const m = /^(cebridge_(?:events_dropped|events_failed|events_dead_lettered|retries|events_received|events_delivered)_total\S*)\s+(\S+)/.exec(line);
          if (m && Number(m[2]) !== 0) out[m[1]!] = Number(m[2]);
        }
        resolve(out);
      });
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve({}));
  });
}

/** Starts the daemon on `yaml` (engine section prepended), runs `fn` while sampling its RSS, stops it. */
export async function withDaemon<T>(ctx: Ctx, body: string, fn: (d: DaemonHandle) => Promise<T>): Promise<DaemonRun<T>> {
  const engine = await engineSection();
  const d = startDaemon(engine.yaml + body, { scope: ctx.scope, nodeArgs: ctx.daemonNodeArgs });
  const readyMs = await d.waitReady(engine.admin, Math.min(20_000, ctx.scope.remaining()));
  const rss = new RssSampler(d.pid).start();
  const idleRssMb = rss.samples[0]?.mb ?? Number.NaN;
  const cpu0 = readCpuMs(d.pid) ?? Number.NaN;
  const wall0 = performance.now();
  try {
    const value = await fn(d);
    const cpuMs = (readCpuMs(d.pid) ?? Number.NaN) - cpu0;
    const wallMs = performance.now() - wall0;
    rss.stop();
    const counters = await scrapeCounters(engine.admin);
    return { value, readyMs, peakRssMb: rss.peak, idleRssMb, cpuMs, wallMs, counters, exitCode: await d.stop() };
  } catch (err) {
    rss.stop();
    await d.stop(2000);
    throw new Error(`${(err as Error).message}\n--- daemon stderr (tail) ---\n${d.stderrTail().slice(-2000)}`);
  }
}

/** Timeout for one flow: what is left of the scenario budget, capped. */
export function flowTimeout(ctx: Ctx, capMs: number): number {
  return Math.max(2000, Math.min(capMs, ctx.scope.remaining() - 6000));
}

export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return undefined;
  return a / b;
}

/** A note listing what went wrong in a flow (losses, stalls, refusals, timeout), or undefined. */
export function flowNote(r: { lost: number; duplicates: number; stalls: number; timedOut: boolean; retries: number; statuses: Record<string, number> }): string | undefined {
  const parts: string[] = [];
  if (r.timedOut) parts.push("timed out");
  if (r.lost > 0) parts.push(`${r.lost} lost`);
  if (r.duplicates > 0) parts.push(`${r.duplicates} dup`);
  if (r.stalls > 0) parts.push(`${r.stalls} stalls`);
  if (r.retries > 0) parts.push(`${r.retries} retried (${Object.entries(r.statuses).filter(([k]) => !/^2|^ack$/.test(k)).map(([k, v]) => `${k}×${v}`).join(" ")})`);
  return parts.length ? parts.join(", ") : undefined;
}

/** The daemon figures of a run, for the JSON file. */
export function daemonDetails(run: DaemonRun<unknown>): Record<string, unknown> {
  let received = 0;
  for (const [k, v] of Object.entries(run.counters)) if (k.startsWith("cebridge_events_received_total")) received += v;
  return {
    readyMs: run.readyMs,
    idleRssMb: run.idleRssMb,
    peakRssMb: run.peakRssMb,
    cpuMs: run.cpuMs,
    wallMs: run.wallMs,
    cpuPct: (run.cpuMs / run.wallMs) * 100,
    cpuUsPerEvent: received > 0 ? (run.cpuMs * 1000) / received : null,
    counters: run.counters,
    exitCode: run.exitCode,
  };
}

/** "dropped overflow ×12" style note from the daemon's counters (drops and failures only). */
export function counterNote(run: DaemonRun<unknown>): string | undefined {
  const bad = Object.entries(run.counters).filter(([k]) => /dropped|failed|dead_lettered/.test(k));
  if (bad.length === 0) return undefined;
  return bad.map(([k, v]) => `${k.replace(/^cebridge_|_total/g, "")}×${v}`).join(" ");
}

/** Daemon CPU per event as a note fragment. */
export function cpuNote(run: DaemonRun<unknown>): string | undefined {
  const d = daemonDetails(run);
  const us = d["cpuUsPerEvent"];
  return typeof us === "number" ? `daemon ${us.toFixed(0)} µs CPU/event` : undefined;
}

/** Rounds of each measurement: alternating runs, so that a burst of foreign load hits all sides alike. */
export function roundsOf(ctx: Ctx): number {
  return Number(process.env["BENCH_ROUNDS"] ?? (ctx.quick ? 1 : 3));
}

/** The run with the median rate (its latency figures go with it). */
export function medianOf<T extends { rate: number }>(runs: readonly T[]): T {
  const sorted = [...runs].sort((a, b) => a.rate - b.rate);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** "12.3k/13.1k/12.9k" — every round's rate, for the notes. */
export function ratesNote(runs: readonly { rate: number }[]): string {
  return runs.map((r) => (r.rate >= 1000 ? `${(r.rate / 1000).toFixed(1)}k` : r.rate.toFixed(0))).join("/");
}
