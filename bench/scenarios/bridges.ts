/**
 * Scenarios 1 and 2: MQTT 5 ⇄ NATS core through cebridge, against a raw MQTT publisher → subscriber
 * with the same bytes, and against the straightforward SDK bridge (`bench/baselines/sdk-bridge.ts`).
 *
 * The daemon and the SDK bridge stay up; the three flows alternate for `roundsOf(ctx)` rounds and
 * the median round of each counts.
 */
import { startMosquitto, startNats } from "../../test/support/brokers.js";
import type { SdkBridgeTask } from "../baselines/sdk-bridge.js";
import { runFlow, startWorker, type Worker } from "../lib/load.js";
import type { FlowResult, PubSpec, SubSpec } from "../lib/protocol.js";
import { RssSampler } from "../lib/rss.js";
import { counterNote, cpuNote, daemonDetails, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type Row } from "./common.js";

interface Leg {
  pub: PubSpec;
  sub: SubSpec;
}

interface Spec {
  id: string;
  label: string;
  target: number;
  /** the raw baseline: publisher → subscriber on the same broker */
  base: Leg;
  /** what the load generator does against cebridge */
  bridge: Leg;
  /** the same against the SDK bridge */
  sdk: Leg;
  sdkTask: SdkBridgeTask;
  yaml: string;
}

function sizes(ctx: Ctx) {
  return { count: ctx.quick ? 10_000 : 20_000, warmup: ctx.quick ? 2_000 : 2_000 };
}

function flow(ctx: Ctx, tag: string, leg: Leg): Promise<FlowResult> {
  const { count, warmup } = sizes(ctx);
  return runFlow({ tag, pub: leg.pub, sub: leg.sub, count, warmup, window: ctx.window, timeoutMs: flowTimeout(ctx, 12_000), stallMs: 1000 }, ctx.scope);
}

async function run(ctx: Ctx, spec: Spec): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const sdkWorker: Worker<never> = startWorker<never>("baselines/sdk-bridge.js", spec.sdkTask, { scope: ctx.scope, timeoutMs: ctx.scope.remaining() });
  await sdkWorker.ready;
  const sdkRss = new RssSampler(sdkWorker.child.pid!).start();
  const base: FlowResult[] = [];
  const bridge: FlowResult[] = [];
  const sdk: FlowResult[] = [];
  const daemon = await withDaemon(ctx, spec.yaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`${spec.id}: round ${r + 1}/${rounds}: raw baseline, cebridge, SDK bridge`);
      base.push(await flow(ctx, `s${spec.id}base${r}`, spec.base));
      bridge.push(await flow(ctx, `s${spec.id}r${r}`, spec.bridge));
      sdk.push(await flow(ctx, `s${spec.id}sdk${r}`, spec.sdk));
    }
  });
  sdkRss.stop();
  await sdkWorker.stop();
  const b = medianOf(bridge);
  const bs = medianOf(base);
  const s = medianOf(sdk);
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { runs: bridge, daemon: daemonDetails(daemon) };
  res.details["sdkBridge"] = { runs: sdk, peakRssMb: sdkRss.peak };
  const r = ratio(b.rate, bs.rate);
  const rows: Row[] = [
    {
      id: spec.id,
      scenario: spec.label,
      rate: b.rate,
      p50: b.latencyMs.p50,
      p99: b.latencyMs.p99,
      rssMb: daemon.peakRssMb,
      baseline: bs.rate,
      ratio: r,
      target: `≥ ${spec.target}`,
      pass: (r ?? 0) >= spec.target && bridge.every((x) => x.lost === 0),
      note: [
        `rounds ${ratesNote(bridge)} vs raw ${ratesNote(base)}`,
        cpuNote(daemon),
        counterNote(daemon),
        ...bridge.map(flowNote).filter(Boolean),
      ]
        .filter(Boolean)
        .join(", "),
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
      note: [`cebridge/sdk ${ratio(b.rate, s.rate)?.toFixed(2) ?? "-"}×`, `rounds ${ratesNote(sdk)}`, ...sdk.map(flowNote).filter(Boolean)].join(", "),
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
    target: 0.6,
    base: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "structured" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "structured" } },
    bridge: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/in", format: "structured" }, sub: { kind: "nats", url: nats.url, subject: "bench.out" } },
    sdk: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/sdk", format: "structured" }, sub: { kind: "nats", url: nats.url, subject: "bench.sdk" } },
    sdkTask: { dir: "mqtt-nats", mqttUrl: mosq.url, natsUrl: nats.url, from: "bench/sdk", to: "bench.sdk" },
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
    target: 0.8,
    base: { pub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "binary" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "binary" } },
    bridge: { pub: { kind: "nats", url: nats.url, subject: "bench.in" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/out", format: "binary" } },
    sdk: { pub: { kind: "nats", url: nats.url, subject: "bench.sdk" }, sub: { kind: "mqtt", url: mosq.url, topic: "bench/sdk", format: "binary" } },
    sdkTask: { dir: "nats-mqtt", mqttUrl: mosq.url, natsUrl: nats.url, from: "bench.sdk", to: "bench/sdk" },
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
