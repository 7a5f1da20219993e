/**
 * Scenarios 1 and 2: MQTT 5 ⇄ NATS core through cebridge, against the hand-written bridge with the
 * same clients (`bench/baselines/hand-bridge.ts`, the bar: ≥ 0.85 of it), the straightforward SDK
 * bridge (`bench/baselines/sdk-bridge.ts`, cebridge must be ≥ 1.3× it), and for context a raw MQTT
 * publisher → subscriber with the same bytes.
 *
 * The daemon and both bridges stay up; the four flows alternate for `roundsOf(ctx)` rounds and the
 * median round of each counts.
 */
import { startMosquitto, startNats } from "../../test/support/brokers.js";
import type { HandBridgeTask } from "../baselines/hand-bridge.js";
import type { SdkBridgeTask } from "../baselines/sdk-bridge.js";
import { runFlow, startWorker, type Worker } from "../lib/load.js";
import type { FlowResult, PubSpec, SubSpec } from "../lib/protocol.js";
import { readCpuMs, RssSampler } from "../lib/rss.js";
import { counterNote, cpuNote, daemonDetails, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type Row } from "./common.js";

interface Leg {
  pub: PubSpec;
  sub: SubSpec;
}

interface Spec {
  id: string;
  label: string;
  /** against the hand-written bridge */
  target: number;
  /** against the SDK bridge */
  sdkTarget: number;
  /** the raw baseline: publisher → subscriber on the same broker */
  base: Leg;
  /** what the load generator does against cebridge */
  bridge: Leg;
  /** the same against the SDK bridge */
  sdk: Leg;
  sdkTask: SdkBridgeTask;
  /** the same against the hand-written bridge */
  hand: Leg;
  handTask: HandBridgeTask;
  yaml: string;
}

function sizes(ctx: Ctx) {
  return { count: ctx.quick ? 10_000 : 20_000, warmup: ctx.quick ? 2_000 : 2_000 };
}

function flow(ctx: Ctx, tag: string, leg: Leg): Promise<FlowResult> {
  const { count, warmup } = sizes(ctx);
  return runFlow({ tag, pub: leg.pub, sub: leg.sub, count, warmup, window: ctx.window, timeoutMs: flowTimeout(ctx, 12_000), stallMs: 1000 }, ctx.scope);
}

/** A flow with the CPU the bridge process `pid` spent on it, in µs per event sent (warm-up included). */
async function measured(ctx: Ctx, tag: string, leg: Leg, pid: number, cpu: number[]): Promise<FlowResult> {
  const before = readCpuMs(pid) ?? Number.NaN;
  const r = await flow(ctx, tag, leg);
  const ms = (readCpuMs(pid) ?? Number.NaN) - before;
  if (r.sent > 0) cpu.push((ms * 1000) / (r.sent + sizes(ctx).warmup));
  return r;
}

/** Median of `xs`, formatted in µs, or "-". */
function usNote(xs: number[]): string {
  const v = [...xs].filter(Number.isFinite).sort((a, b) => a - b);
  return v.length === 0 ? "-" : `${v[Math.floor(v.length / 2)]!.toFixed(0)} µs`;
}

async function run(ctx: Ctx, spec: Spec): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const sdkWorker: Worker<never> = startWorker<never>("baselines/sdk-bridge.js", spec.sdkTask, { scope: ctx.scope, timeoutMs: ctx.scope.remaining() });
  const handWorker: Worker<never> = startWorker<never>("baselines/hand-bridge.js", spec.handTask, { scope: ctx.scope, timeoutMs: ctx.scope.remaining() });
  await Promise.all([sdkWorker.ready, handWorker.ready]);
  const sdkRss = new RssSampler(sdkWorker.child.pid!).start();
  const handRss = new RssSampler(handWorker.child.pid!).start();
  const base: FlowResult[] = [];
  const bridge: FlowResult[] = [];
  const sdk: FlowResult[] = [];
  const hand: FlowResult[] = [];
  // CPU per event of each bridge process over its own flows: steadier than rates on a busy machine.
  const cpu = { bridge: [] as number[], hand: [] as number[], sdk: [] as number[] };
  const daemon = await withDaemon(ctx, spec.yaml, async (d) => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`${spec.id}: round ${r + 1}/${rounds}: raw baseline, hand-written bridge, cebridge, SDK bridge`);
      base.push(await flow(ctx, `s${spec.id}base${r}`, spec.base));
      hand.push(await measured(ctx, `s${spec.id}hand${r}`, spec.hand, handWorker.child.pid!, cpu.hand));
      bridge.push(await measured(ctx, `s${spec.id}r${r}`, spec.bridge, d.pid, cpu.bridge));
      sdk.push(await measured(ctx, `s${spec.id}sdk${r}`, spec.sdk, sdkWorker.child.pid!, cpu.sdk));
    }
  });
  sdkRss.stop();
  handRss.stop();
  await Promise.all([sdkWorker.stop(), handWorker.stop()]);
  const b = medianOf(bridge);
  const bs = medianOf(base);
  const s = medianOf(sdk);
  const h = medianOf(hand);
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { runs: bridge, daemon: daemonDetails(daemon) };
  res.details["sdkBridge"] = { runs: sdk, peakRssMb: sdkRss.peak };
  res.details["handBridge"] = { runs: hand, peakRssMb: handRss.peak };
  res.details["cpuUsPerEvent"] = cpu;
  const r = ratio(b.rate, h.rate);
  const overSdk = ratio(b.rate, s.rate);
  const rows: Row[] = [
    {
      id: spec.id,
      scenario: spec.label,
      rate: b.rate,
      p50: b.latencyMs.p50,
      p99: b.latencyMs.p99,
      rssMb: daemon.peakRssMb,
      baseline: h.rate,
      ratio: r,
      target: `≥ ${spec.target} hand, ≥ ${spec.sdkTarget}× sdk`,
      pass: (r ?? 0) >= spec.target && (overSdk ?? 0) >= spec.sdkTarget && bridge.every((x) => x.lost === 0),
      note: [
        `cebridge/sdk ${overSdk?.toFixed(2) ?? "-"}×`,
        `CPU per event: cebridge ${usNote(cpu.bridge)}, hand-written ${usNote(cpu.hand)}, SDK ${usNote(cpu.sdk)}`,
        `cebridge/raw ${ratio(b.rate, bs.rate)?.toFixed(2) ?? "-"}`,
        `rounds ${ratesNote(bridge)} vs hand ${ratesNote(hand)}`,
        cpuNote(daemon),
        counterNote(daemon),
        ...bridge.map(flowNote).filter(Boolean),
      ]
        .filter(Boolean)
        .join(", "),
    },
    {
      id: `${spec.id} hand`,
      scenario: "  same, hand-written bridge (the bar)",
      rate: h.rate,
      p50: h.latencyMs.p50,
      p99: h.latencyMs.p99,
      rssMb: handRss.peak,
      baseline: bs.rate,
      ratio: ratio(h.rate, bs.rate),
      target: "info",
      note: [`against raw ${ratesNote(base)}`, ...hand.map(flowNote).filter(Boolean)].join(", "),
    },
    {
      id: `${spec.id} sdk`,
      scenario: "  same, straightforward SDK bridge",
      rate: s.rate,
      p50: s.latencyMs.p50,
      p99: s.latencyMs.p99,
      rssMb: sdkRss.peak,
      baseline: bs.rate,
      ratio: ratio(s.rate, bs.rate),
      target: "info",
      note: [`against raw`, `rounds ${ratesNote(sdk)}`, ...sdk.map(flowNote).filter(Boolean)].join(", "),
    },
  ];
  res.rows.push(...rows);
}

export async function scenario1(ctx: Ctx): Promise<void> {
  const nats = own(ctx, await startNats({ jetstream: false }));
  const mosq = own(ctx, await startMosquitto());
  await run(ctx, {
    id: "1",
    label: "MQTT5 QoS0 structured → NATS core",
    target: 0.85,
    sdkTarget: 1.3,
    base: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "structured" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "structured" } },
    bridge: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/in", format: "structured" }, sub: { kind: "nats", url: nats.url, subject: "bench.out" } },
    sdk: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/sdk", format: "structured" }, sub: { kind: "nats", url: nats.url, subject: "bench.sdk" } },
    sdkTask: { dir: "mqtt-nats", mqttUrl: mosq.url, natsUrl: nats.url, from: "bench/sdk", to: "bench.sdk" },
    hand: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/hand", format: "structured" }, sub: { kind: "nats", url: nats.url, subject: "bench.hand" } },
    handTask: { dir: "mqtt-nats", mqttUrl: mosq.url, natsUrl: nats.url, from: "bench/hand", to: "bench.hand" },
    // The route window is twice the load generator's: a QoS 0 source drops on a full window, and a
    // window slot is freed only when the sink's write resolves, a little after the event went out.
    yaml: `
sources:
  in: { type: mqtt, url: "${mosq.url}", topic: "bench/in", qos: 0, protocol_version: 5 }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "bench.out", mode: structured }
routes:
  - { name: mqtt-to-nats, from: in, to: [out], max_in_flight: ${2 * ctx.window} }
`,
  });
}

export async function scenario2(ctx: Ctx): Promise<void> {
  const nats = own(ctx, await startNats({ jetstream: false }));
  const mosq = own(ctx, await startMosquitto());
  await run(ctx, {
    id: "2",
    label: "NATS core structured → MQTT5 QoS0 binary",
    target: 0.85,
    sdkTarget: 1.3,
    base: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "binary" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "binary" } },
    bridge: { pub: { kind: "nats", url: nats.url, subject: "bench.in" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/out", format: "binary" } },
    sdk: { pub: { kind: "nats", url: nats.url, subject: "bench.sdk" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/sdk", format: "binary" } },
    sdkTask: { dir: "nats-mqtt", mqttUrl: mosq.url, natsUrl: nats.url, from: "bench.sdk", to: "bench/sdk" },
    hand: { pub: { kind: "nats", url: nats.url, subject: "bench.hand" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/hand", format: "binary" } },
    handTask: { dir: "nats-mqtt", mqttUrl: mosq.url, natsUrl: nats.url, from: "bench.hand", to: "bench/hand" },
    yaml: `
sources:
  in: { type: nats, servers: ["${nats.url}"], subject: "bench.in" }
sinks:
  out: { type: mqtt, url: "${mosq.url}", topic: "bench/out", qos: 0, protocol_version: 5, mode: binary }
routes:
  - { name: nats-to-mqtt, from: in, to: [out], max_in_flight: ${2 * ctx.window} }
`,
  });
}
