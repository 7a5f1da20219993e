/**
 * Scenarios 12 (HTTP → cebridge → EventBridge) and 13 (SQS → cebridge → NATS core) against the AWS
 * emulator (test/emulators/aws, in its own process), each beside the same emulator driven by the
 * bare SDK with the connectors' default batching and concurrency: what the emulator and the SDK cost
 * without the bridge. There is no pass/miss target: the emulator is a stand-in for AWS, whose
 * latency (tens of ms per call) would dominate in production; the figures show what cebridge adds.
 *
 * - 12: the load generator POSTs binary events over 50 keep-alive connections to the daemon's HTTP
 *   source; the route writes each to `aws_eventbridge` (PutEvents, 10 per call, 8 calls in flight);
 *   an event completes on its HTTP 2xx, which comes only after its entry got an EventId.
 *   Baseline: PutEvents of 10, 8 in flight, from one process.
 * - 13: a queue pre-loaded with structured events is drained by `aws_sqs` (4 long polls of 10,
 *   deletes batched) into NATS core; the clock runs from the first to the last event on NATS.
 *   Baseline: 4 bare receive-10-then-DeleteMessageBatch loops drain a queue of the same size.
 */
import { SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import type { SdkAwsResult, SdkAwsTask } from "../baselines/sdk-aws.js";
import { runFlow, startWatch, startWorker } from "../lib/load.js";
import type { FlowResult, WatchResult } from "../lib/protocol.js";
import { RssSampler } from "../lib/rss.js";
import type { AwsEmulatorTask, EmulatorStats } from "../workers/aws-emulator.js";
import { counterNote, cpuNote, daemonDetails, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type DaemonRun } from "./common.js";

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

const KEY_ID = "AKIDBENCH";
const SECRET = "bench-secret";

interface Emulator {
  readonly url: string;
  readonly pid: number;
  /** PutEvents calls and entries since the last call, requests per operation since start. */
  stats(): Promise<EmulatorStats>;
}

async function emulator(ctx: Ctx, queues: Record<string, Record<string, string>>, buses: string[]): Promise<Emulator> {
  const port = await freePort();
  const w = startWorker<never>("workers/aws-emulator.js", { port, keyId: KEY_ID, secret: SECRET, queues, buses } satisfies AwsEmulatorTask, {
    scope: ctx.scope,
    timeoutMs: ctx.scope.remaining(),
  });
  const info = await w.ready;
  return {
    url: String(info?.["url"]),
    pid: Number(info?.["pid"]),
    stats: () =>
      new Promise<EmulatorStats>((resolve) => {
        const on = (m: { type?: string; stats?: EmulatorStats }) => {
          if (m?.type !== "stats") return;
          w.child.off("message", on);
          resolve(m.stats!);
        };
        w.child.on("message", on);
        w.child.send({ type: "stats" });
      }),
  };
}

function connection(url: string): string {
  return `endpoint: "${url}", region: us-east-1, credentials: { access_key_id: ${KEY_ID}, secret_access_key: ${SECRET} }`;
}

function sdkBaseline(ctx: Ctx, task: SdkAwsTask, timeoutMs: number): Promise<SdkAwsResult> {
  return startWorker<SdkAwsResult>("baselines/sdk-aws.js", task, { scope: ctx.scope, timeoutMs }).result;
}

export async function scenario12(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 3_000 : 6_000;
  const warmup = 1_000;
  const connections = 50;
  const emu = await emulator(ctx, {}, ["bench"]);
  const emuRss = new RssSampler(emu.pid).start();
  const hport = await freePort();
  const yaml = `
sources:
  in: { type: http, listen: "127.0.0.1:${hport}", path: / }
sinks:
  bus: { type: aws_eventbridge, event_bus: bench, ${connection(emu.url)} }
routes:
  - { name: http-to-eventbridge, from: in, to: [bus], max_in_flight: 256 }
`;
  const base: SdkAwsResult[] = [];
  const flows: FlowResult[] = [];
  const perCall: number[] = [];
  const run = await withDaemon(ctx, yaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`12: round ${r + 1}/${rounds}: bare SDK PutEvents, then HTTP → cebridge → EventBridge`);
      base.push(await sdkBaseline(ctx, { mode: "put-events", endpoint: emu.url, keyId: KEY_ID, secret: SECRET, bus: "bench", count, warmup, concurrency: 8, tag: `s12sdk${r}` }, flowTimeout(ctx, 60_000)));
      await emu.stats();
      flows.push(
        await runFlow(
          { tag: `s12r${r}`, pub: { kind: "http", url: `http://127.0.0.1:${hport}/`, mode: "binary", connections }, sub: { kind: "none" }, count, warmup, window: connections, timeoutMs: flowTimeout(ctx, 60_000), stallMs: 5000 },
          ctx.scope,
        ),
      );
      const st = await emu.stats();
      perCall.push(st.putEventsCalls > 0 ? st.putEventsEntries / st.putEventsCalls : Number.NaN);
    }
  });
  emuRss.stop();
  const f = medianOf(flows);
  const b = medianOf(base);
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { flows, entriesPerPutEvents: perCall, daemon: daemonDetails(run) };
  res.details["emulatorPeakRssMb"] = emuRss.peak;
  res.rows.push(
    {
      id: "12",
      scenario: "HTTP binary (50 conns) → EventBridge (emulator)",
      rate: f.rate,
      p50: f.latencyMs.p50,
      p99: f.latencyMs.p99,
      rssMb: run.peakRssMb,
      baseline: b.rate,
      ratio: ratio(f.rate, b.rate),
      target: "info",
      note: [
        `rounds ${ratesNote(flows)} vs bare SDK PutEvents ${ratesNote(base)}`,
        `${perCall.map((n) => n.toFixed(1)).join("/")} entries per PutEvents`,
        cpuNote(run),
        counterNote(run),
        ...flows.map(flowNote).filter(Boolean),
      ]
        .filter(Boolean)
        .join(", "),
    },
    {
      id: "12 sdk",
      scenario: "  bare SDK PutEvents (10/call, 8 in flight)",
      rate: b.rate,
      p50: b.callP50,
      p99: b.callP99,
      target: "info",
      note: `per call; SDK process ${((b.cpuMs * 1000) / b.events).toFixed(0)} µs CPU/event; emulator peak RSS ${emuRss.peak.toFixed(0)} MB`,
    },
  );
}

/** Sends `n` structured events `<tag>-<i>` into the queue, 10 per call, 8 calls at a time. */
async function preload(url: string, queueUrl: string, tag: string, n: number): Promise<void> {
  const sqs = new SQSClient({ endpoint: url, region: "us-east-1", credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET } });
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const start = next;
      next = Math.min(n, next + 10);
      const entries = Array.from({ length: next - start }, (_, k) => {
        const id = `${tag}-${start + k}`;
        return { Id: String(k), MessageBody: JSON.stringify({ specversion: "1.0", id, source: "urn:bench", type: "dev.cebridge.bench", datacontenttype: "application/json", data: { id } }) };
      });
      const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      if (out.Failed?.length) throw new Error(`preload: ${out.Failed.length} failed`);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  sqs.destroy();
}

export async function scenario13(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 5_000 : 10_000;
  const nats = own(ctx, await startNats({ jetstream: false }));
  const emu = await emulator(ctx, { drain: {}, bare: {} }, []);
  const emuRss = new RssSampler(emu.pid).start();
  const queue = (name: string) => `${emu.url}/000000000000/${name}`;
  const yaml = `
sources:
  in: { type: aws_sqs, queue_url: "${queue("drain")}", ${connection(emu.url)}, wait_time: 1s }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "bench.sqs", mode: structured }
routes:
  - { name: sqs-to-nats, from: in, to: [out], max_in_flight: 256 }
`;
  const base: SdkAwsResult[] = [];
  const drains: WatchResult[] = [];
  const daemons: DaemonRun<unknown>[] = [];
  const calls: { receives: number; deletes: number; extends: number }[] = [];
  for (let r = 0; r < rounds; r++) {
    ctx.log(`13: round ${r + 1}/${rounds}: pre-load ${count} messages twice; drain one with the bare SDK, the other through cebridge`);
    const tag = `s13r${r}`;
    await preload(emu.url, queue("bare"), `${tag}b`, count);
    base.push(await sdkBaseline(ctx, { mode: "drain", endpoint: emu.url, keyId: KEY_ID, secret: SECRET, queueUrl: queue("bare"), count, receivers: 4 }, flowTimeout(ctx, 60_000)));
    await preload(emu.url, queue("drain"), tag, count);
    const watch = startWatch({ tag, sub: { kind: "nats", url: nats.url, subject: "bench.sqs" }, count, timeoutMs: flowTimeout(ctx, 60_000), stallMs: 5000 }, ctx.scope);
    await watch.ready;
    const before = (await emu.stats()).requests;
    const run = await withDaemon(ctx, yaml, () => watch.result);
    const after = (await emu.stats()).requests;
    const delta = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    calls.push({ receives: delta("sqs.ReceiveMessage"), deletes: delta("sqs.DeleteMessageBatch"), extends: delta("sqs.ChangeMessageVisibilityBatch") });
    drains.push(run.value);
    daemons.push(run);
  }
  emuRss.stop();
  const d = medianOf(drains);
  const b = medianOf(base);
  const last = daemons[daemons.length - 1]!;
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { drains, calls, daemons: daemons.map(daemonDetails) };
  res.details["emulatorPeakRssMb"] = emuRss.peak;
  res.rows.push(
    {
      id: "13",
      scenario: "SQS (emulator) → NATS core, drain",
      rate: d.rate,
      rssMb: Math.max(...daemons.map((x) => x.peakRssMb)),
      baseline: b.rate,
      ratio: ratio(d.rate, b.rate),
      target: "info",
      note: [
        `rounds ${ratesNote(drains)} vs bare SDK receive+delete ${ratesNote(base)}`,
        `${calls.map((c) => (count / Math.max(1, c.deletes)).toFixed(1)).join("/")} messages per DeleteMessageBatch, ${calls.map((c) => c.receives).join("/")} receives`,
        drains.some((x) => x.received < count) ? `received ${drains.map((x) => x.received).join("/")} of ${count}` : undefined,
        drains.some((x) => x.duplicates > 0) ? `${drains.map((x) => x.duplicates).join("/")} dup` : undefined,
        cpuNote(last),
        counterNote(last),
      ]
        .filter(Boolean)
        .join(", "),
    },
    {
      id: "13 sdk",
      scenario: "  bare SDK receive 10 + DeleteMessageBatch (4 loops)",
      rate: b.rate,
      p50: b.callP50,
      p99: b.callP99,
      target: "info",
      note: `per receive; SDK process ${((b.cpuMs * 1000) / b.events).toFixed(0)} µs CPU/event; emulator peak RSS ${emuRss.peak.toFixed(0)} MB`,
    },
  );
}
