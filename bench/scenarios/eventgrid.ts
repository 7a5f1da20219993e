/**
 * Scenario 11: Azure Event Grid against the emulator (test/emulators/eventgrid/, in its own process).
 *
 * - 9 push: Event Grid push delivery (CloudEvents schema, one event per POST, 64 deliveries in flight,
 *   and batches of 10) → the `azure_eventgrid` webhook source → core NATS, against the same push into
 *   a bare `node:http` webhook that publishes each body to NATS (bench/baselines/eventgrid-bare.ts).
 * - 9 pull: a pre-loaded namespace subscription drained by the `azure_eventgrid_namespace` source →
 *   core NATS, against the bare `EventGridReceiverClient` loop (receive 100, publish, acknowledge),
 *   both with 2 receivers.
 *
 * Each figure is the rate from the first to the last distinct event seen on NATS (start-up and the
 * handshake excluded); the median of `roundsOf(ctx)` alternating rounds counts.
 */
import { fork, type ChildProcess } from "node:child_process";
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import type { EventGridBareTask } from "../baselines/eventgrid-bare.js";
import { BENCH_DIST, startWatch, startWorker } from "../lib/load.js";
import type { WatchResult } from "../lib/protocol.js";
import { RssSampler } from "../lib/rss.js";
import { cpuNote, counterNote, daemonDetails, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type DaemonRun } from "./common.js";

const KEY = Buffer.from("cebridge-bench-eventgrid-key").toString("base64");

/** The emulator worker: request/answer over IPC. */
class Emulator {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  url = "";
  private constructor(readonly child: ChildProcess) {
    child.on("message", (m: { id: number; ok: boolean; value?: unknown; error?: string }) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.ok) w.resolve(m.value);
      else w.reject(new Error(m.error ?? "emulator error"));
    });
  }

  static async start(ctx: Ctx): Promise<Emulator> {
    const child = fork(BENCH_DIST + "workers/eventgrid-emulator.js", [], { stdio: ["ignore", "inherit", "inherit", "ipc"] });
    ctx.scope.defer(() => {
      child.kill("SIGTERM");
    });
    const emu = new Emulator(child);
    const ready = new Promise<{ url: string }>((resolve, reject) => emu.waiting.set(0, { resolve: resolve as (v: unknown) => void, reject }));
    emu.url = (await ready).url;
    return emu;
  }

  call<T>(cmd: Record<string, unknown>): Promise<T> {
    const id = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.send({ ...cmd, id });
    });
  }
}

interface Drain extends WatchResult {
  failedAttempts?: number;
}

function drainNote(runs: readonly Drain[], count: number): string | undefined {
  const short = runs.filter((r) => r.received < count || r.timedOut);
  return short.length ? `${short.length} round(s) incomplete (${short.map((r) => r.received).join("/")} of ${count})` : undefined;
}

export async function scenario11(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 4_000 : 15_000;
  const nats = own(ctx, await startNats());
  const emu = await Emulator.start(ctx);
  const watch = (tag: string, subject: string) => startWatch({ tag, sub: { kind: "nats", url: nats.url, subject }, count, timeoutMs: flowTimeout(ctx, 60_000), stallMs: 5000 }, ctx.scope);

  // ---- push: webhook → NATS ----
  const hookPort = await freePort();
  const barePort = await freePort();
  const pushYaml = `
sources:
  hook: { type: azure_eventgrid, listen: "127.0.0.1:${hookPort}", path: /eg }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "eg.push.out" }
routes:
  - { name: eg-push, from: hook, to: [out], max_in_flight: 1024 }
`;
  const bare = startWorker<never>("baselines/eventgrid-bare.js", { mode: "webhook", natsUrl: nats.url, subject: "eg.push.bare", port: barePort } satisfies EventGridBareTask, {
    scope: ctx.scope,
    timeoutMs: ctx.scope.remaining(),
  });
  await bare.ready;
  const bareRss = new RssSampler(bare.child.pid!).start();
  const push = async (tag: string, subject: string, url: string, batch: number): Promise<Drain> => {
    const w = watch(tag, subject);
    await w.ready;
    const r = await emu.call<{ failedAttempts: number }>({ cmd: "push", tag, count, url, batch, concurrency: 64 });
    return { ...(await w.result), failedAttempts: r.failedAttempts };
  };
  const pushBridge: Drain[] = [];
  const pushBatch: Drain[] = [];
  const pushBare: Drain[] = [];
  const pushBareBatch: Drain[] = [];
  const pushRun = await withDaemon(ctx, pushYaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`9: push round ${r + 1}/${rounds}: bare webhook, cebridge, then batches of 10`);
      pushBare.push(await push(`s9bare${r}`, "eg.push.bare", `http://127.0.0.1:${barePort}/eg`, 1));
      pushBridge.push(await push(`s9push${r}`, "eg.push.out", `http://127.0.0.1:${hookPort}/eg`, 1));
      pushBareBatch.push(await push(`s9bareb${r}`, "eg.push.bare", `http://127.0.0.1:${barePort}/eg`, 10));
      pushBatch.push(await push(`s9pushb${r}`, "eg.push.out", `http://127.0.0.1:${hookPort}/eg`, 10));
    }
  });
  bareRss.stop();
  await bare.stop();

  // ---- pull: namespace → NATS ----
  const pullYaml = (subscription: string) => `
sources:
  ns: { type: azure_eventgrid_namespace, endpoint: "${emu.url}", topic: bench, subscription: ${subscription}, key: "${KEY}", max_wait: 1s, receivers: 2 }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "eg.pull.out" }
routes:
  - { name: eg-pull, from: ns, to: [out], max_in_flight: 256 }
`;
  const pullBridge: Drain[] = [];
  const pullBare: Drain[] = [];
  const pullRuns: DaemonRun<unknown>[] = [];
  for (let r = 0; r < rounds; r++) {
    ctx.log(`9: pull round ${r + 1}/${rounds}: bare receiver client, cebridge`);
    const bareSub = `bare${r}`;
    await emu.call({ cmd: "preload", topic: "bench", subscription: bareSub, tag: `s9pbare${r}`, count });
    const wb = watch(`s9pbare${r}`, "eg.pull.bare");
    await wb.ready;
    const worker = startWorker<never>(
      "baselines/eventgrid-bare.js",
      { mode: "pull", natsUrl: nats.url, subject: "eg.pull.bare", endpoint: emu.url, key: KEY, topic: "bench", subscription: bareSub, receivers: 2 } satisfies EventGridBareTask,
      { scope: ctx.scope, timeoutMs: ctx.scope.remaining() },
    );
    await worker.ready;
    pullBare.push(await wb.result);
    await emu.call({ cmd: "drained", topic: "bench", subscription: bareSub, timeoutMs: 10_000 });
    await worker.stop();

    const sub = `bridge${r}`;
    await emu.call({ cmd: "preload", topic: "bench", subscription: sub, tag: `s9pull${r}`, count });
    const w = watch(`s9pull${r}`, "eg.pull.out");
    await w.ready;
    const run = await withDaemon(ctx, pullYaml(sub), async () => {
      const got = await w.result;
      await emu.call({ cmd: "drained", topic: "bench", subscription: sub, timeoutMs: 10_000 });
      return got;
    });
    pullBridge.push(run.value);
    pullRuns.push(run);
  }

  const ps = medianOf(pushBridge);
  const pb = medianOf(pushBare);
  const psb = medianOf(pushBatch);
  const pbb = medianOf(pushBareBatch);
  const ls = medianOf(pullBridge);
  const lb = medianOf(pullBare);
  res.details["rounds"] = rounds;
  res.details["count"] = count;
  res.details["push"] = { cebridge: pushBridge, bare: pushBare, cebridgeBatch10: pushBatch, bareBatch10: pushBareBatch, bareWebhookPeakRssMb: bareRss.peak, daemon: daemonDetails(pushRun) };
  res.details["pull"] = { cebridge: pullBridge, bare: pullBare, daemons: pullRuns.map(daemonDetails) };
  const pullPeak = Math.max(...pullRuns.map((x) => x.peakRssMb));
  res.rows.push(
    {
      id: "11",
      scenario: "Event Grid push (1/POST, 64 in flight) → webhook → NATS",
      rate: ps.rate,
      rssMb: pushRun.peakRssMb,
      baseline: pb.rate,
      ratio: ratio(ps.rate, pb.rate),
      target: "info",
      note: [`rounds ${ratesNote(pushBridge)} vs bare webhook ${ratesNote(pushBare)}`, drainNote([...pushBridge, ...pushBare], count), cpuNote(pushRun), counterNote(pushRun)].filter(Boolean).join(", "),
    },
    {
      id: "11b",
      scenario: "Event Grid push (batches of 10) → webhook → NATS",
      rate: psb.rate,
      baseline: pbb.rate,
      ratio: ratio(psb.rate, pbb.rate),
      target: "info",
      note: [`rounds ${ratesNote(pushBatch)} vs bare webhook ${ratesNote(pushBareBatch)}`, drainNote([...pushBatch, ...pushBareBatch], count)].filter(Boolean).join(", "),
    },
    {
      id: "11c",
      scenario: "Event Grid namespace pull (2 receivers) → NATS",
      rate: ls.rate,
      rssMb: pullPeak,
      baseline: lb.rate,
      ratio: ratio(ls.rate, lb.rate),
      target: "info",
      note: [`rounds ${ratesNote(pullBridge)} vs bare receiver client ${ratesNote(pullBare)}`, drainNote([...pullBridge, ...pullBare], count), cpuNote(pullRuns.at(-1)!), counterNote(pullRuns.at(-1)!)].filter(Boolean).join(", "),
    },
  );
}
