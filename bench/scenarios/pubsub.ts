/**
 * Scenario 9 (Pub/Sub → cebridge → NATS core: drain of a pre-loaded subscription) and scenario 10
 * (NATS JetStream → cebridge → Pub/Sub: drain of a pre-loaded stream into a topic), against the
 * in-process Pub/Sub emulator (test/emulators/pubsub), each beside the bare `@google-cloud/pubsub`
 * client on the same emulator (bench/baselines/pubsub-client.ts).
 *
 * - 9: one topic with two subscriptions gets `warmup + count` binary-mode events; the bare client
 *   drains one into NATS (JSON event, ack), then the daemon drains the other; the rate is first to last
 *   arrival on NATS, counted by the load generator's watcher. Both use the same flow control (the
 *   window), ack batching and number of streams (BENCH_PUBSUB_STREAMS, default 1 as the source's).
 * - 10: the bare client publishes `warmup + count` events (≤ window in flight), then the daemon drains
 *   the same number from a JetStream stream pre-loaded by the load generator into another topic; the
 *   rate is first to last arrival at the emulator.
 * The emulator runs in the orchestrator process, so its CPU weighs on both sides alike.
 */
import { connect } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { startNats } from "../../test/support/brokers.js";
import { startPubSubEmulator, type PubSubEmulator } from "../../test/emulators/pubsub/server.js";
import { benchAttributes, type PubSubClientTask } from "../baselines/pubsub-client.js";
import { DATA_BUF } from "../lib/events.js";
import { runFlow, startWatch, startWorker } from "../lib/load.js";
import type { WatchResult } from "../lib/protocol.js";
import { counterNote, cpuNote, daemonDetails, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx, type DaemonRun } from "./common.js";

const PROJECT = "bench";
const WINDOW = 256;
const CLIENT_ENV = { METADATA_SERVER_DETECTION: "none" };
/** StreamingPull streams on both sides of scenario 9 (the source's default is 1; the client's own is 5). */
const STREAMS = Number(process.env["BENCH_PUBSUB_STREAMS"] ?? 1);

/** Counts arrivals on topics at the emulator: distinct ids, first and last arrival. */
class Arrivals {
  private readonly topics = new Map<string, { prefix: string; ids: Set<string>; first: number; last: number; target: number; done: () => void }>();

  onPublish = (topic: string, m: { attributes: Readonly<Record<string, string>> }): void => {
    const t = this.topics.get(topic);
    if (!t) return;
    const id = m.attributes["ce-id"];
    if (id === undefined || !id.startsWith(t.prefix) || t.ids.has(id)) return;
    const now = performance.now();
    if (t.ids.size === 0) t.first = now;
    t.ids.add(id);
    t.last = now;
    if (t.ids.size === t.target) t.done();
  };

  /** Resolves with the rate once `target` distinct ids starting with `prefix` reached `topic` (or after `timeoutMs`). */
  expect(topic: string, prefix: string, target: number, timeoutMs: number): Promise<{ received: number; rate: number; timedOut: boolean }> {
    return new Promise((resolve) => {
      const finish = (timedOut: boolean) => {
        clearTimeout(timer);
        const t = this.topics.get(topic)!;
        this.topics.delete(topic);
        const n = t.ids.size;
        resolve({ received: n, rate: n > 1 ? ((n - 1) * 1000) / (t.last - t.first) : 0, timedOut });
      };
      const timer = setTimeout(() => finish(true), timeoutMs);
      this.topics.set(topic, { prefix, ids: new Set(), first: 0, last: 0, target, done: () => finish(false) });
    });
  }
}

async function emulator(ctx: Ctx, arrivals?: Arrivals): Promise<PubSubEmulator> {
  const em = await startPubSubEmulator({ record: false, ...(arrivals ? { onPublish: arrivals.onPublish } : {}) });
  ctx.scope.defer(() => em.close());
  return em;
}

export async function scenario9(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 5_000 : 20_000;
  const warmup = ctx.quick ? 1_000 : 2_000;
  const nats = own(ctx, await startNats());
  const em = await emulator(ctx);
  const base: WatchResult[] = [];
  const drains: WatchResult[] = [];
  const daemons: DaemonRun<unknown>[] = [];
  for (let r = 0; r < rounds; r++) {
    const tag = `s9r${r}`;
    const topic = `projects/${PROJECT}/topics/t9r${r}`;
    em.createTopic(topic);
    for (const s of ["bare", "bridge"]) em.createSubscription({ name: `projects/${PROJECT}/subscriptions/${s}9r${r}`, topic });
    ctx.log(`9: round ${r + 1}/${rounds}: pre-load ${warmup + count} events into two subscriptions; drain one with the bare client, one through cebridge`);
    for (let i = 0; i < warmup; i++) em.publish(topic, { data: DATA_BUF, attributes: benchAttributes(`${tag}w`, i) });
    for (let i = 0; i < count; i++) em.publish(topic, { data: DATA_BUF, attributes: benchAttributes(tag, i) });

    const bareWatch = startWatch({ tag, sub: { kind: "nats", url: nats.url, subject: "bare.>" }, count, timeoutMs: flowTimeout(ctx, 30_000), stallMs: 5000 }, ctx.scope);
    await bareWatch.ready;
    const task: PubSubClientTask = { mode: "drain", endpoint: em.endpoint, project: PROJECT, subscription: `bare9r${r}`, window: WINDOW, streams: STREAMS, natsUrl: nats.url, subject: "bare.e" };
    const bare = startWorker<never>("baselines/pubsub-client.js", task, { scope: ctx.scope, timeoutMs: flowTimeout(ctx, 40_000), env: CLIENT_ENV });
    base.push(await bareWatch.result);
    await bare.stop();

    const watch = startWatch({ tag, sub: { kind: "nats", url: nats.url, subject: "ps.>" }, count, timeoutMs: flowTimeout(ctx, 30_000), stallMs: 5000 }, ctx.scope);
    await watch.ready;
    const yaml = `
sources:
  in: { type: gcp_pubsub, project: ${PROJECT}, subscription: bridge9r${r}, endpoint: "${em.endpoint}", streams: ${STREAMS} }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "ps.e" }
routes:
  - { name: pubsub-to-nats, from: in, to: [out], max_in_flight: ${WINDOW} }
`;
    const run = await withDaemon(ctx, yaml, () => watch.result);
    drains.push(run.value);
    daemons.push(run);
  }
  const d = medianOf(drains);
  const b = medianOf(base);
  const r = ratio(d.rate, b.rate);
  const complete = drains.every((x) => x.received === count) && base.every((x) => x.received === count);
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { drains, daemons: daemons.map(daemonDetails) };
  res.rows.push({
    id: "9",
    scenario: `Pub/Sub → NATS drain (emulator, ${STREAMS} stream${STREAMS > 1 ? "s" : ""}; bare client bridge as baseline)`,
    rate: d.rate,
    rssMb: Math.max(...daemons.map((x) => x.peakRssMb)),
    baseline: b.rate,
    ratio: r,
    target: "≥ 0.7",
    pass: complete && (r ?? 0) >= 0.7,
    note: [`rounds ${ratesNote(drains)} vs bare client ${ratesNote(base)}`, complete ? undefined : "incomplete", cpuNote(daemons[daemons.length - 1]!), counterNote(daemons[daemons.length - 1]!)]
      .filter(Boolean)
      .join(", "),
  });
}

export async function scenario10(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rounds = roundsOf(ctx);
  const count = ctx.quick ? 5_000 : 20_000;
  const warmup = ctx.quick ? 1_000 : 2_000;
  const total = count + warmup;
  const arrivals = new Arrivals();
  const em = await emulator(ctx, arrivals);
  const nats = own(ctx, await startNats());
  const nc = await connect({ servers: [nats.url] });
  await (await jetstreamManager(nc)).streams.add({ name: "SRC10", subjects: ["src10.>"] });
  await nc.close();
  const base: { received: number; rate: number; timedOut: boolean }[] = [];
  const drains: { received: number; rate: number; timedOut: boolean }[] = [];
  const daemons: DaemonRun<unknown>[] = [];
  for (let r = 0; r < rounds; r++) {
    const tag = `s10r${r}`;
    ctx.log(`10: round ${r + 1}/${rounds}: the bare client publishes ${total} events; then cebridge drains ${total} from JetStream into Pub/Sub`);
    const bareTopic = `projects/${PROJECT}/topics/bare10r${r}`;
    em.createTopic(bareTopic);
    const bareDone = arrivals.expect(bareTopic, `${tag}-`, count, flowTimeout(ctx, 30_000));
    const task: PubSubClientTask = { mode: "publish", endpoint: em.endpoint, project: PROJECT, topic: `bare10r${r}`, window: WINDOW, tag, count, warmup };
    const bare = startWorker<{ failed: number }>("baselines/pubsub-client.js", task, { scope: ctx.scope, timeoutMs: flowTimeout(ctx, 40_000), env: CLIENT_ENV });
    base.push(await bareDone);
    await bare.result.catch(() => undefined);

    await runFlow(
      { tag, pub: { kind: "jetstream", url: nats.url, subject: "src10.e", stream: "SRC10" }, sub: { kind: "none" }, count, warmup, window: WINDOW, timeoutMs: flowTimeout(ctx, 20_000), stallMs: 5000 },
      ctx.scope,
    );
    const topic = `projects/${PROJECT}/topics/bridge10r${r}`;
    em.createTopic(topic);
    const done = arrivals.expect(topic, `${tag}-`, total, flowTimeout(ctx, 40_000));
    const yaml = `
sources:
  in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SRC10, consumer: bench10, create: true }
sinks:
  out: { type: gcp_pubsub, project: ${PROJECT}, topic: bridge10r${r}, endpoint: "${em.endpoint}", mode: binary }
routes:
  - { name: nats-to-pubsub, from: in, to: [out], max_in_flight: ${WINDOW} }
`;
    const run = await withDaemon(ctx, yaml, () => done);
    drains.push(run.value);
    daemons.push(run);
  }
  const d = medianOf(drains);
  const b = medianOf(base);
  const r = ratio(d.rate, b.rate);
  const complete = drains.every((x) => x.received === total) && base.every((x) => x.received === count);
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { drains, daemons: daemons.map(daemonDetails) };
  res.rows.push({
    id: "10",
    scenario: "JetStream → Pub/Sub drain (emulator; bare client publisher as baseline)",
    rate: d.rate,
    rssMb: Math.max(...daemons.map((x) => x.peakRssMb)),
    baseline: b.rate,
    ratio: r,
    target: "≥ 0.7",
    pass: complete && (r ?? 0) >= 0.7,
    note: [`rounds ${ratesNote(drains)} vs bare client ${ratesNote(base)}`, complete ? undefined : "incomplete", cpuNote(daemons[daemons.length - 1]!), counterNote(daemons[daemons.length - 1]!)]
      .filter(Boolean)
      .join(", "),
  });
}
