/**
 * Scenario 14: route buffers (issue #13).
 *
 * 14a — the burst: 20,000 × 1 KiB published at once on core NATS, `nats` source → `nats_jetstream`
 *      sink, default route settings (a 64 MiB memory buffer in front of a window of 256). Every
 *      event must reach the stream; the rate is the drain rate (first publish to last arrival).
 *      Beside it, the same burst with the buffer turned off (`max_bytes: 0`: the window is the only
 *      room, as before the buffer existed) shows what it prevents.
 * 14b/14c — HTTP binary (50 connections) → JetStream with a disk buffer, `fsync: always` and
 *      `interval`, against the same path without a buffer, alternated per round. The HTTP answer
 *      comes once the event is durable in the buffer; the note says when the stream held them all.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import { structured } from "../lib/events.js";
import { runFlow, startWatch } from "../lib/load.js";
import type { FlowResult } from "../lib/protocol.js";
import { counterNote, cpuNote, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type DaemonRun } from "./common.js";

const BURST = 20_000;

async function streamCount(url: string, name: string): Promise<number> {
  const nc = await connect({ servers: [url] });
  try {
    return (await (await jetstreamManager(nc)).streams.info(name)).state.messages;
  } finally {
    await nc.close();
  }
}

interface BurstRun {
  received: number;
  stored: number;
  drainMs: number;
  overflow: number;
  daemon: DaemonRun<unknown>;
}

/** One burst through a daemon with `buffer` on the route (undefined: the default). */
async function burst(ctx: Ctx, natsUrl: string, tag: string, buffer: string | undefined): Promise<BurstRun> {
  const subject = `burst.${tag}`;
  const stream = `BURST_${tag.toUpperCase()}`;
  const nc = await connect({ servers: [natsUrl] });
  try {
    await (await jetstreamManager(nc)).streams.add({ name: stream, subjects: [subject] });
    const yaml = `
sources:
  in: { type: nats, servers: ["${natsUrl}"], subject: "burst.in.${tag}" }
sinks:
  out: { type: nats_jetstream, servers: ["${natsUrl}"], subject: "${subject}", stream: ${stream}, mode: structured }
routes:
  - { name: burst, from: in, to: [out]${buffer ? `, buffer: ${buffer}` : ""} }
`;
    const watch = startWatch({ tag, sub: { kind: "nats", url: natsUrl, subject }, count: BURST, timeoutMs: flowTimeout(ctx, 60_000), stallMs: 5000 }, ctx.scope);
    await watch.ready;
    const readyAt = performance.now();
    let sentAt = 0;
    const run = await withDaemon(ctx, yaml, async () => {
      sentAt = performance.now();
      for (let i = 0; i < BURST; i++) nc.publish(`burst.in.${tag}`, structured(tag, i, 0));
      await nc.flush();
      return watch.result;
    });
    const w = run.value;
    const overflow = Object.entries(run.counters)
      .filter(([k]) => k.startsWith("cebridge_events_dropped_total") && k.includes('reason="overflow"'))
      .reduce((n, [, v]) => n + v, 0);
    return { received: w.received, stored: await streamCount(natsUrl, stream), drainMs: w.lastMs - (sentAt - readyAt), overflow, daemon: run };
  } finally {
    await nc.close();
  }
}

export async function scenario14burst(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const nats = own(ctx, await startNats());
  ctx.log(`14a: ${BURST} × 1 KiB at once on core NATS → JetStream, default route (memory buffer)`);
  const withBuffer = await burst(ctx, nats.url, "b14a", undefined);
  ctx.log("14a: the same burst with the buffer off (max_bytes: 0, the window only)");
  const windowOnly = await burst(ctx, nats.url, "b14w", "{ type: memory, max_bytes: 0 }");
  res.details["burst"] = { withBuffer: { ...withBuffer, daemon: undefined, peakRssMb: withBuffer.daemon.peakRssMb }, windowOnly: { ...windowOnly, daemon: undefined } };
  const rate = (withBuffer.received / withBuffer.drainMs) * 1000;
  const complete = withBuffer.received === BURST && withBuffer.stored === BURST && withBuffer.overflow === 0;
  res.rows.push({
    id: "14a",
    scenario: `burst ${BURST} × 1 KiB core NATS → JetStream, default`,
    rate,
    rssMb: withBuffer.daemon.peakRssMb,
    ratioText: `${withBuffer.stored}/${BURST} stored`,
    target: "no loss",
    pass: complete,
    note: [
      `drained in ${(withBuffer.drainMs / 1000).toFixed(2)} s`,
      `without the buffer (window only) ${windowOnly.stored}/${BURST} stored, ${windowOnly.overflow} dropped as overflow`,
      cpuNote(withBuffer.daemon),
      counterNote(withBuffer.daemon),
    ]
      .filter(Boolean)
      .join(", "),
  });
}

export async function scenario14disk(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 3_000 : 8_000;
  const warmup = 500;
  const connections = 50;
  const nats = own(ctx, await startNats());
  const nc = await connect({ servers: [nats.url] });
  ctx.scope.defer(() => nc.close());
  await (await jetstreamManager(nc)).streams.add({ name: "HTTPBUF", subjects: ["httpbuf.>"] });
  const dirs = mkdtempSync(join(tmpdir(), "cebridge-bench-buffer-"));
  ctx.scope.defer(() => rmSync(dirs, { recursive: true, force: true }));

  const variants = [
    { key: "none", buffer: undefined },
    { key: "always", buffer: "disk, fsync: always" },
    { key: "interval", buffer: "disk, fsync: interval" },
  ] as const;
  const flows: Record<string, FlowResult[]> = { none: [], always: [], interval: [] };
  const storedAfterMs: Record<string, number[]> = { none: [], always: [], interval: [] };
  const runs: Record<string, DaemonRun<unknown>[]> = { none: [], always: [], interval: [] };
  for (let r = 0; r < rounds; r++) {
    for (const v of variants) {
      ctx.log(`14b: round ${r + 1}/${rounds}: HTTP → JetStream, buffer ${v.buffer ?? "none"}`);
      const port = await freePort();
      const subject = `httpbuf.${v.key}.${r}`;
      const yaml = `
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  out: { type: nats_jetstream, servers: ["${nats.url}"], subject: "${subject}", stream: HTTPBUF, mode: structured }
routes:
  - name: http-to-js
    from: in
    to: [out]
    max_in_flight: 256${v.buffer ? `\n    buffer: { type: ${v.buffer}, path: "${join(dirs, `${v.key}-${r}`)}" }` : ""}
`;
      const before = await streamCount(nats.url, "HTTPBUF");
      let flow!: FlowResult;
      let after = 0;
      const run = await withDaemon(ctx, yaml, async () => {
        flow = await runFlow(
          { tag: `s14${v.key}${r}`, pub: { kind: "http", url: `http://127.0.0.1:${port}/`, mode: "binary", connections }, sub: { kind: "none" }, count, warmup, window: connections, timeoutMs: flowTimeout(ctx, 20_000), stallMs: 5000 },
          ctx.scope,
        );
        // With a buffer, a 2xx means durable, not delivered: wait until the stream holds every event.
        const t0 = performance.now();
        const want = before + count + warmup;
        while ((after = await streamCount(nats.url, "HTTPBUF")) < want && performance.now() - t0 < 20_000) await new Promise((r2) => setTimeout(r2, 20));
        storedAfterMs[v.key]!.push(performance.now() - t0);
        return undefined;
      });
      flows[v.key]!.push(flow);
      runs[v.key]!.push(run);
      if (after - before !== count + warmup) res.warnings.push(`14b ${v.key} round ${r + 1}: the stream got ${after - before} of ${count + warmup}`);
    }
  }
  const base = medianOf(flows["none"]!);
  res.details["rounds"] = rounds;
  res.details["flows"] = flows;
  res.details["storedAfterLastAnswerMs"] = storedAfterMs;
  res.rows.push({
    id: "14b0",
    scenario: "HTTP binary (50 conns) → JetStream, no buffer",
    rate: base.rate,
    p50: base.latencyMs.p50,
    p99: base.latencyMs.p99,
    rssMb: Math.max(...runs["none"]!.map((x) => x.peakRssMb)),
    target: "info",
    note: [`rounds ${ratesNote(flows["none"]!)}`, cpuNote(runs["none"]![0]!), ...flows["none"]!.map(flowNote).filter(Boolean)].filter(Boolean).join(", "),
  });
  for (const key of ["always", "interval"] as const) {
    const m = medianOf(flows[key]!);
    const lost = flows[key]!.reduce((n, f) => n + f.lost, 0);
    res.rows.push({
      id: key === "always" ? "14b" : "14c",
      scenario: `HTTP binary (50 conns) → disk buffer (fsync ${key}) → JetStream`,
      rate: m.rate,
      p50: m.latencyMs.p50,
      p99: m.latencyMs.p99,
      rssMb: Math.max(...runs[key]!.map((x) => x.peakRssMb)),
      baseline: base.rate,
      ratio: ratio(m.rate, base.rate),
      target: "info",
      note: [
        `rounds ${ratesNote(flows[key]!)} vs no buffer ${ratesNote(flows["none"]!)}`,
        `latency = time to a durable 2xx; the stream held every event ${storedAfterMs[key]!.map((x) => x.toFixed(0)).join("/")} ms after the last answer`,
        lost > 0 ? `${lost} lost` : undefined,
        cpuNote(runs[key]![0]!),
        counterNote(runs[key]![0]!),
      ]
        .filter(Boolean)
        .join(", "),
    });
  }
}
