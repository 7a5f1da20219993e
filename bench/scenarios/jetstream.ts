/**
 * Scenario 3 (JetStream → cebridge → JetStream, drain of a pre-loaded stream) and scenario 4
 * (HTTP → cebridge → JetStream, single events over 50 keep-alive connections, and batch mode).
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import type { HttpJetStreamTask } from "../baselines/http-jetstream.js";
import { runFlow, startWatch, startWorker } from "../lib/load.js";
import type { FlowResult, WatchResult } from "../lib/protocol.js";
import { RssSampler } from "../lib/rss.js";
import { counterNote, cpuNote, daemonDetails, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type DaemonRun } from "./common.js";

export async function makeStreams(url: string, streams: Record<string, string[]>): Promise<void> {
  const nc = await connect({ servers: [url] });
  try {
    const jsm = await jetstreamManager(nc);
    for (const [name, subjects] of Object.entries(streams)) await jsm.streams.add({ name, subjects });
  } finally {
    await nc.close();
  }
}

async function streamCount(url: string, name: string): Promise<number> {
  const nc = await connect({ servers: [url] });
  try {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.info(name)).state.messages;
  } finally {
    await nc.close();
  }
}

/**
 * Each round pre-loads SRC with raw JetStream publishes (the baseline), then starts the daemon and
 * times the drain from the first to the last event arriving on the sink stream's subject, then stops
 * the daemon. The durable consumer carries over from round to round.
 */
export async function scenario3(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 5_000 : 20_000;
  const warmup = ctx.quick ? 1_000 : 2_000;
  const total = count + warmup;
  const nats = own(ctx, await startNats());
  await makeStreams(nats.url, { SRC: ["src.>"], DST: ["dst.>"] });
  const yaml = `
sources:
  in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SRC, consumer: bench, create: true }
sinks:
  out: { type: nats_jetstream, servers: ["${nats.url}"], subject: "dst.e", stream: DST, mode: structured }
routes:
  - { name: js-to-js, from: in, to: [out], max_in_flight: 256 }
`;
  const base: FlowResult[] = [];
  const drains: (WatchResult & { rate: number; drainFromSpawnMs: number })[] = [];
  const daemons: DaemonRun<unknown>[] = [];
  for (let r = 0; r < rounds; r++) {
    ctx.log(`3: round ${r + 1}/${rounds}: pre-load ${total} events with raw JetStream publishes, then drain through cebridge`);
    const tag = `s3r${r}`;
    base.push(
      await runFlow(
        { tag, pub: { kind: "jetstream", url: nats.url, subject: "src.e", stream: "SRC" }, sub: { kind: "none" }, count, warmup, window: 256, timeoutMs: flowTimeout(ctx, 10_000), stallMs: 5000 },
        ctx.scope,
      ),
    );
    const watch = startWatch({ tag, sub: { kind: "nats", url: nats.url, subject: "dst.>" }, count: total, timeoutMs: flowTimeout(ctx, 20_000), stallMs: 5000 }, ctx.scope);
    await watch.ready;
    const readyAt = performance.now();
    const spawnAt = performance.now();
    const run = await withDaemon(ctx, yaml, () => watch.result);
    // From the daemon's spawn to the last event stored in the sink (start-up included).
    drains.push({ ...run.value, rate: run.value.rate, drainFromSpawnMs: run.value.lastMs - (spawnAt - readyAt) });
    daemons.push(run);
  }
  const stored = await streamCount(nats.url, "DST");
  const d = medianOf(drains);
  const bs = medianOf(base);
  const peak = Math.max(...daemons.map((x) => x.peakRssMb));
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { drains, storedInSink: stored, expected: total * rounds, daemons: daemons.map(daemonDetails) };
  const complete = stored === total * rounds && drains.every((x) => x.received === total);
  const r = ratio(d.rate, bs.rate);
  res.rows.push({
    id: "3",
    scenario: "JetStream → JetStream drain (at least once)",
    rate: d.rate,
    rssMb: peak,
    baseline: bs.rate,
    ratio: r,
    target: "≥ 0.7",
    pass: complete && (r ?? 0) >= 0.7,
    note: [
      `rounds ${ratesNote(drains)} vs raw publish ${ratesNote(base)}`,
      complete ? undefined : `sink stream has ${stored}/${total * rounds}`,
      drains.some((x) => x.timedOut) ? "timed out" : undefined,
      cpuNote(daemons[daemons.length - 1]!),
      counterNote(daemons[daemons.length - 1]!),
    ]
      .filter(Boolean)
      .join(", "),
  });
}

export async function scenario4(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 4_000 : 8_000;
  const warmup = ctx.quick ? 1_000 : 1_000;
  const batchCount = ctx.quick ? 10_000 : 20_000;
  const batchSize = 100;
  const batchConns = Number(process.env["BENCH_BATCH_CONNECTIONS"] ?? 2);
  const connections = 50;
  const nats = own(ctx, await startNats());
  await makeStreams(nats.url, { HTTP: ["http.>"] });

  const port = await freePort();
  const bare = startWorker<never>("baselines/http-jetstream.js", { natsUrl: nats.url, subject: "http.bare", stream: "HTTP", port } satisfies HttpJetStreamTask, {
    scope: ctx.scope,
    timeoutMs: ctx.scope.remaining(),
  });
  await bare.ready;
  const bareRss = new RssSampler(bare.child.pid!).start();

  const hport = await freePort();
  const url = `http://127.0.0.1:${hport}/`;
  const yaml = `
sources:
  in: { type: http, listen: "127.0.0.1:${hport}", path: / }
sinks:
  out: { type: nats_jetstream, servers: ["${nats.url}"], subject: "http.bridge", stream: HTTP, mode: structured }
routes:
  - { name: http-to-js, from: in, to: [out], max_in_flight: 256 }
`;
  const raw: FlowResult[] = [];
  const base: FlowResult[] = [];
  const single: FlowResult[] = [];
  const batch: FlowResult[] = [];
  const t = (cap: number) => flowTimeout(ctx, cap);
  const run = await withDaemon(ctx, yaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`4: round ${r + 1}/${rounds}: raw JetStream publish, bare HTTP server, cebridge single, cebridge batch`);
      raw.push(
        await runFlow(
          { tag: `s4raw${r}`, pub: { kind: "jetstream", url: nats.url, subject: "http.raw", stream: "HTTP" }, sub: { kind: "none" }, count: batchCount, warmup, window: 256, timeoutMs: t(8_000), stallMs: 5000 },
          ctx.scope,
        ),
      );
      base.push(
        await runFlow(
          { tag: `s4bare${r}`, pub: { kind: "http", url: `http://127.0.0.1:${port}/`, mode: "binary", connections }, sub: { kind: "none" }, count, warmup, window: connections, timeoutMs: t(8_000), stallMs: 5000 },
          ctx.scope,
        ),
      );
      single.push(
        await runFlow({ tag: `s4r${r}`, pub: { kind: "http", url, mode: "binary", connections }, sub: { kind: "none" }, count, warmup, window: connections, timeoutMs: t(8_000), stallMs: 5000 }, ctx.scope),
      );
      batch.push(
        await runFlow(
          {
            tag: `s4b${r}`,
            pub: { kind: "http", url, mode: "batch", connections: batchConns, batch: batchSize },
            sub: { kind: "none" },
            count: batchCount,
            warmup: batchSize * 10,
            window: batchConns * batchSize,
            timeoutMs: t(8_000),
            stallMs: 5000,
          },
          ctx.scope,
        ),
      );
    }
  });
  bareRss.stop();
  await bare.stop();
  const s = medianOf(single);
  const b = medianOf(base);
  const bt = medianOf(batch);
  const rw = medianOf(raw);
  res.details["rounds"] = rounds;
  res.details["rawJetStreamPublish"] = raw;
  res.details["baseline"] = { runs: base, peakRssMb: bareRss.peak };
  res.details["cebridge"] = { single, batch, batchConnections: batchConns, daemon: daemonDetails(run) };
  res.rows.push({
    id: "4",
    scenario: "HTTP binary (50 conns) → JetStream",
    rate: s.rate,
    p50: s.latencyMs.p50,
    p99: s.latencyMs.p99,
    rssMb: run.peakRssMb,
    baseline: b.rate,
    ratio: ratio(s.rate, b.rate),
    target: "≥ 0.95",
    pass: (ratio(s.rate, b.rate) ?? 0) >= 0.95,
    note: [
      `rounds ${ratesNote(single)} vs bare server ${ratesNote(base)} (bare p50 ${b.latencyMs.p50.toFixed(1)}ms p99 ${b.latencyMs.p99.toFixed(1)}ms)`,
      cpuNote(run),
      counterNote(run),
      ...single.map(flowNote).filter(Boolean),
    ]
      .filter(Boolean)
      .join(", "),
  });
  res.rows.push({
    id: "4b",
    scenario: `HTTP batch ×${batchSize} (${batchConns} conns) → JetStream`,
    rate: bt.rate,
    p50: bt.latencyMs.p50,
    p99: bt.latencyMs.p99,
    rssMb: run.peakRssMb,
    baseline: rw.rate,
    ratio: ratio(bt.rate, rw.rate),
    target: "≥ 0.8 raw pub",
    pass: (ratio(bt.rate, rw.rate) ?? 0) >= 0.8,
    note: [`rounds ${ratesNote(batch)} vs raw publish (window 256) ${ratesNote(raw)}`, "p50/p99 per request", ...batch.map(flowNote).filter(Boolean)].join(", "),
  });
}
