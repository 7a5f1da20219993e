/**
 * Scenario 15: AMQP 1.0 through cebridge on a private RabbitMQ 3.10, against plain rhea on the same
 * broker (publisher → queue → subscriber, the same bytes, publisher awaiting `accepted`):
 *   15a AMQP (RabbitMQ queue, binary mode) → cebridge → NATS core (structured)
 *   15b HTTP (binary mode) → cebridge → AMQP (RabbitMQ queue, binary mode)
 * The daemon stays up; the flows alternate for `roundsOf(ctx)` rounds and the median round counts.
 */
import { declareQueue, startNats, startRabbitMq } from "../../test/support/brokers.js";
import { runFlow } from "../lib/load.js";
import type { FlowResult, PubSpec, SubSpec } from "../lib/protocol.js";
import { counterNote, cpuNote, daemonDetails, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx } from "./common.js";
import { freePort } from "../../test/support/ports.js";

function flow(ctx: Ctx, tag: string, pub: PubSpec, sub: SubSpec): Promise<FlowResult> {
  // RabbitMQ's AMQP 1.0 plugin with durable messages and publisher confirms runs at a few thousand
  // messages/s on this machine: fewer events than the other scenarios, so three rounds fit.
  const count = ctx.quick ? 2_000 : 6_000;
  return runFlow({ tag, pub, sub, count, warmup: 1_000, window: ctx.window, timeoutMs: flowTimeout(ctx, 40_000), stallMs: 5000 }, ctx.scope);
}

export async function scenario15(ctx: Ctx): Promise<void> {
  const rabbit = own(ctx, await startRabbitMq());
  const nats = own(ctx, await startNats({ jetstream: false }));
  for (const q of ["bench-base", "bench-in", "bench-out"]) await declareQueue(rabbit.url, q);
  const httpListen = `127.0.0.1:${await freePort()}`;
  const amqp = `url: "${rabbit.url}", username: guest, password: guest`;
  const base: [PubSpec, SubSpec] = [
    { kind: "amqp", url: rabbit.url, address: "/amq/queue/bench-base" },
    { kind: "amqp", url: rabbit.url, address: "/amq/queue/bench-base" },
  ];
  const a: [PubSpec, SubSpec] = [
    { kind: "amqp", url: rabbit.url, address: "/amq/queue/bench-in" },
    { kind: "nats", url: nats.url, subject: "bench.out" },
  ];
  const b: [PubSpec, SubSpec] = [
    { kind: "http", url: `http://${httpListen}/events`, mode: "binary", connections: 256 },
    { kind: "amqp", url: rabbit.url, address: "/amq/queue/bench-out" },
  ];
  const rounds = roundsOf(ctx);
  const baseRuns: FlowResult[] = [];
  const aRuns: FlowResult[] = [];
  const bRuns: FlowResult[] = [];
  const daemon = await withDaemon(
    ctx,
    `
sources:
  amqp_in: { type: amqp, ${amqp}, address: /amq/queue/bench-in }
  web: { type: http, listen: "${httpListen}", path: /events }
sinks:
  nats_out: { type: nats, servers: ["${nats.url}"], subject: "bench.out", mode: structured }
  amqp_out: { type: amqp, ${amqp}, address: /amq/queue/bench-out }
routes:
  - { name: amqp-to-nats, from: amqp_in, to: [nats_out], max_in_flight: ${ctx.window} }
  - { name: http-to-amqp, from: web, to: [amqp_out], max_in_flight: ${ctx.window} }
`,
    async () => {
      for (let r = 0; r < rounds; r++) {
        ctx.log(`15: round ${r + 1}/${rounds}: raw rhea, AMQP → NATS, HTTP → AMQP`);
        baseRuns.push(await flow(ctx, `s15base${r}`, ...base));
        aRuns.push(await flow(ctx, `s15a${r}`, ...a));
        bRuns.push(await flow(ctx, `s15b${r}`, ...b));
      }
    },
  );
  const bs = medianOf(baseRuns);
  const ma = medianOf(aRuns);
  const mb = medianOf(bRuns);
  ctx.result.details["rounds"] = rounds;
  ctx.result.details["baseline"] = baseRuns;
  ctx.result.details["cebridge"] = { amqpToNats: aRuns, httpToAmqp: bRuns, daemon: daemonDetails(daemon) };
  const shared = [cpuNote(daemon), counterNote(daemon)];
  ctx.result.rows.push(
    {
      id: "15a",
      scenario: "AMQP (RabbitMQ) binary → NATS core structured",
      rate: ma.rate,
      p50: ma.latencyMs.p50,
      p99: ma.latencyMs.p99,
      rssMb: daemon.peakRssMb,
      baseline: bs.rate,
      ratio: ratio(ma.rate, bs.rate),
      target: "info",
      note: [`rounds ${ratesNote(aRuns)} vs raw rhea ${ratesNote(baseRuns)}`, ...shared, ...aRuns.map(flowNote)].filter(Boolean).join(", "),
    },
    {
      id: "15b",
      scenario: "HTTP binary → AMQP (RabbitMQ) binary",
      rate: mb.rate,
      p50: mb.latencyMs.p50,
      p99: mb.latencyMs.p99,
      rssMb: daemon.peakRssMb,
      baseline: bs.rate,
      ratio: ratio(mb.rate, bs.rate),
      target: "info",
      note: [`rounds ${ratesNote(bRuns)} vs raw rhea ${ratesNote(baseRuns)}`, ...bRuns.map(flowNote)].filter(Boolean).join(", "),
    },
    {
      id: "15 raw",
      scenario: "  raw rhea publisher → RabbitMQ queue → rhea subscriber",
      rate: bs.rate,
      p50: bs.latencyMs.p50,
      p99: bs.latencyMs.p99,
      target: "info",
      note: [`rounds ${ratesNote(baseRuns)}`, ...baseRuns.map(flowNote)].filter(Boolean).join(", "),
    },
  );
}
