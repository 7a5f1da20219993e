/**
 * Scenario 17: MQTT 5 QoS 1 structured → cebridge → JetStream, at least once (the source PUBACKs
 * after the PubAck), against a raw mqtt.js QoS 1 publisher → the same mosquitto → a raw mqtt.js QoS 1
 * subscriber (PUBACK on receipt, mqtt.js's default), same payload and content type.
 *
 * The daemon stays up (its persistent session too); baseline and cebridge alternate for
 * `roundsOf(ctx)` rounds and the median round of each counts. cebridge's events are counted on the
 * JetStream stream's subject as they are stored.
 */
import { startMosquitto, startNats } from "../../test/support/brokers.js";
import { runFlow } from "../lib/load.js";
import type { FlowResult, PubSpec, SubSpec } from "../lib/protocol.js";
import { counterNote, cpuNote, daemonDetails, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx } from "./common.js";
import { makeStreams } from "./jetstream.js";

const TARGET = 0.7;

export async function scenario17(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 10_000 : 20_000;
  const warmup = 2_000;
  const nats = own(ctx, await startNats());
  const mosq = own(ctx, await startMosquitto());
  await makeStreams(nats.url, { MQ: ["mq.>"] });
  const flow = (tag: string, pub: PubSpec, sub: SubSpec): Promise<FlowResult> =>
    runFlow({ tag, pub, sub, count, warmup, window: ctx.window, timeoutMs: flowTimeout(ctx, 15_000), stallMs: 2000 }, ctx.scope);
  const basePub: PubSpec = { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "structured", qos: 1 };
  const baseSub: SubSpec = { kind: "mqtt", url: mosq.url, topic: "bench/base", format: "structured", qos: 1 };
  const bridgePub: PubSpec = { kind: "mqtt", url: mosq.url, topic: "bench/in", format: "structured", qos: 1 };
  const bridgeSub: SubSpec = { kind: "nats", url: nats.url, subject: "mq.out" };
  const yaml = `
sources:
  in: { type: mqtt, url: "${mosq.url}", topic: "bench/in", qos: 1, protocol_version: 5, client_id: bench-q1 }
sinks:
  out: { type: nats_jetstream, servers: ["${nats.url}"], subject: "mq.out", stream: MQ, mode: structured }
routes:
  - { name: mqtt-to-js, from: in, to: [out], max_in_flight: 256 }
`;
  const base: FlowResult[] = [];
  const bridge: FlowResult[] = [];
  const daemon = await withDaemon(ctx, yaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`17: round ${r + 1}/${rounds}: raw QoS 1 publish → subscribe, then cebridge`);
      base.push(await flow(`s17base${r}`, basePub, baseSub));
      bridge.push(await flow(`s17r${r}`, bridgePub, bridgeSub));
    }
  });
  const b = medianOf(bridge);
  const bs = medianOf(base);
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { runs: bridge, daemon: daemonDetails(daemon) };
  const r = ratio(b.rate, bs.rate);
  res.rows.push({
    id: "17",
    scenario: "MQTT5 QoS1 structured → JetStream (at least once)",
    rate: b.rate,
    p50: b.latencyMs.p50,
    p99: b.latencyMs.p99,
    rssMb: daemon.peakRssMb,
    baseline: bs.rate,
    ratio: r,
    target: `≥ ${TARGET}`,
    pass: (r ?? 0) >= TARGET && bridge.every((x) => x.lost === 0),
    note: [`rounds ${ratesNote(bridge)} vs raw ${ratesNote(base)}`, cpuNote(daemon), counterNote(daemon), ...bridge.map(flowNote).filter(Boolean)]
      .filter(Boolean)
      .join(", "),
  });
}
