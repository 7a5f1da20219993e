/**
 * Scenario 16: what the Subscriptions API costs a route. One daemon runs two NATS core → NATS core
 * routes doing the same work per event: route A writes to its sink and to 4 more configured NATS
 * sinks; route B writes to its sink and feeds a stream with 4 NATS subscriptions. The load generator
 * drives each route in turn (counting its first sink), then drives B again with a dead webhook
 * subscriber added to its stream (it grants the handshake and never answers). The ratio B / A is the
 * cost of subscriptions over the same fan-out done by configured sinks; the dead-webhook row compares
 * B with and without the dead subscriber: a stream that made its route wait for a subscriber would
 * show far below 1 there. The subscribers' deliveries are
 * read from /metrics once they stop growing (each of the 4 should get every event).
 */
import { createServer, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import { runFlow } from "../lib/load.js";
import type { FlowResult } from "../lib/protocol.js";
import { cpuNote, flowNote, flowTimeout, medianOf, own, ratesNote, ratio, roundsOf, withDaemon, type Ctx } from "./common.js";

const TOKEN = "bench-subscriptions";

/** A webhook that grants the handshake and then never answers a delivery. */
async function deadWebhook(): Promise<{ url: string; close(): Promise<void> }> {
  const hung: ServerResponse[] = [];
  const server: Server = createServer((req, res) => {
    req.resume();
    if (req.method === "OPTIONS") res.writeHead(200, { "webhook-allowed-origin": String(req.headers["webhook-request-origin"]), "webhook-allowed-rate": "*" }).end();
    else hung.push(res);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        for (const r of hung) r.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function api(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/** Sum of `cebridge_subscription_events_total{outcome="delivered"}` and the overflow drops. */
async function subscriptionTotals(admin: string): Promise<{ delivered: number; dropped: number }> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  let delivered = 0;
  let dropped = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("cebridge_subscription_events_total{") && line.includes('outcome="delivered"')) delivered += Number(line.split(" ").pop());
    if (line.startsWith("cebridge_subscription_dropped_total{")) dropped += Number(line.split(" ").pop());
  }
  return { delivered, dropped };
}

/** The totals once deliveries stopped growing for a second (subscribers lag the route: they are queued). */
async function settled(admin: string): Promise<{ delivered: number; dropped: number }> {
  let last = await subscriptionTotals(admin);
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await subscriptionTotals(admin);
    if (now.delivered === last.delivered && now.dropped === last.dropped) return now;
    last = now;
  }
  return last;
}

export async function scenario16(ctx: Ctx): Promise<void> {
  const nats = own(ctx, await startNats({ jetstream: false }));
  const dead = await deadWebhook();
  ctx.scope.defer(() => dead.close());
  const apiPort = await freePort();
  const base = `http://127.0.0.1:${apiPort}`;
  const state = mkdtempSync(join(tmpdir(), "cebridge-bench-subs-"));
  const count = ctx.quick ? 10_000 : 20_000;
  const warmup = 2_000;
  const flow = (tag: string, route: "a" | "b"): Promise<FlowResult> =>
    runFlow(
      { tag, pub: { kind: "nats", url: nats.url, subject: `bench.in.${route}` }, sub: { kind: "nats", url: nats.url, subject: `bench.out.${route}` }, count, warmup, window: ctx.window, timeoutMs: flowTimeout(ctx, 15_000), stallMs: 1000 },
      ctx.scope,
    );
  const yaml = `
sources:
  in_a: { type: nats, servers: ["${nats.url}"], subject: "bench.in.a" }
  in_b: { type: nats, servers: ["${nats.url}"], subject: "bench.in.b" }
sinks:
  out_a: { type: nats, servers: ["${nats.url}"], subject: "bench.out.a", mode: structured }
${[0, 1, 2, 3].map((i) => `  x${i}: { type: nats, servers: ["${nats.url}"], subject: "bench.x.${i}", mode: structured }`).join("\n")}
  out_b: { type: nats, servers: ["${nats.url}"], subject: "bench.out.b", mode: structured }
  dlq: { type: file, path: ${state}/dlq.jsonl }
routes:
  - { name: a, from: in_a, to: [out_a, x0, x1, x2, x3], max_in_flight: ${2 * ctx.window}, dead_letter: dlq }
  - { name: b, from: in_b, to: [out_b], max_in_flight: ${2 * ctx.window}, dead_letter: dlq }
subscriptions:
  listen: "127.0.0.1:${apiPort}"
  auth: { bearer: "${TOKEN}" }
  state_dir: ${state}/state
  streams:
    b: { route: b, allowed_sinks: ["${nats.url}", "${dead.url}/"], max_in_flight: 64, dead_letter: dlq }
`;
  const rounds = roundsOf(ctx);
  const runs = { a: [] as FlowResult[], b: [] as FlowResult[], bDead: [] as FlowResult[] };
  let totals = { delivered: 0, dropped: 0 };
  let deadTotals = { delivered: 0, dropped: 0 };
  let admin = "";
  const daemon = await withDaemon(ctx, yaml, async (d) => {
    admin = /admin: \{ listen: "([^"]+)"/.exec(readFileSync(d.configFile, "utf8"))?.[1] ?? "";
    for (let i = 0; i < 4; i++) {
      const r = await api(base, "POST", "/streams/b/subscriptions", { protocol: "NATS", sink: nats.url, protocolsettings: { subject: `bench.sub.${i}` } });
      if (r.status !== 201) throw new Error(`subscription ${i}: ${r.status} ${JSON.stringify(r.json)}`);
    }
    for (let r = 0; r < rounds; r++) {
      ctx.log(`16: round ${r + 1}/${rounds}: route a (no stream), route b (4 NATS subscriptions)`);
      runs.a.push(await flow(`s16a${r}`, "a"));
      runs.b.push(await flow(`s16b${r}`, "b"));
    }
    totals = await settled(admin);
    const created = await api(base, "POST", "/streams/b/subscriptions", { protocol: "HTTP", sink: `${dead.url}/hook` });
    if (created.status !== 201) throw new Error(`dead webhook subscription: ${created.status} ${JSON.stringify(created.json)}`);
    for (let r = 0; r < rounds; r++) {
      ctx.log(`16: round ${r + 1}/${rounds}: with a dead webhook subscriber`);
      runs.bDead.push(await flow(`s16bd${r}`, "b"));
    }
    deadTotals = await settled(admin);
  });
  const a = medianOf(runs.a);
  const b = medianOf(runs.b);
  const bd = medianOf(runs.bDead);
  const perRound = count + warmup;
  ctx.result.details["subscriptions"] = { runs, totals, deadTotals, expectedDeliveriesPerSubscription: rounds * perRound };
  ctx.result.rows.push(
    {
      id: "16",
      scenario: "NATS → NATS + stream with 4 NATS subscriptions vs + 4 configured NATS sinks",
      rate: b.rate,
      p50: b.latencyMs.p50,
      p99: b.latencyMs.p99,
      rssMb: daemon.peakRssMb,
      baseline: a.rate,
      ratio: ratio(b.rate, a.rate),
      target: "≥ 0.8",
      pass: (ratio(b.rate, a.rate) ?? 0) >= 0.8 && runs.b.every((x) => x.lost === 0),
      note: [
        `baseline: the same fan-out to 4 configured sinks, same daemon; rounds ${ratesNote(runs.b)} vs ${ratesNote(runs.a)}`,
        `subscribers got ${totals.delivered} of ${4 * rounds * perRound} (${totals.dropped} dropped)`,
        cpuNote(daemon),
        ...runs.b.map(flowNote).filter(Boolean),
      ]
        .filter(Boolean)
        .join(", "),
    },
    {
      id: "16 dead",
      scenario: "  same, plus a dead webhook subscriber (grants, never answers)",
      rate: bd.rate,
      p50: bd.latencyMs.p50,
      p99: bd.latencyMs.p99,
      baseline: b.rate,
      ratio: ratio(bd.rate, b.rate),
      target: "≥ 0.8",
      pass: (ratio(bd.rate, b.rate) ?? 0) >= 0.8 && runs.bDead.every((x) => x.lost === 0),
      note: [`baseline: the row above (no dead subscriber); rounds ${ratesNote(runs.bDead)} vs ${ratesNote(runs.b)}`, `the dead one's queue overflowed: ${deadTotals.dropped - totals.dropped} dropped`, ...runs.bDead.map(flowNote).filter(Boolean)].join(", "),
    },
  );
}
