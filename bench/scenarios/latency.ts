/**
 * Scenario 5: added latency at a fixed 1,000 events/s, HTTP → cebridge → NATS core, measured at a
 * raw NATS subscriber from the send time carried in the event. The baseline is the same client
 * publishing straight to NATS (no HTTP, no bridge); the difference is what the bridge path adds.
 * For context, the hand-written HTTP → NATS bridge (`baselines/http-nats.ts`) runs the same flow, so
 * the row can tell what cebridge adds from what any bridge with an HTTP hop adds. The three alternate
 * for `roundsOf(ctx)` rounds; the medians of the per-round p50 and p99 count.
 */
import { startNats } from "../../test/support/brokers.js";
import type { HttpNatsTask } from "../baselines/http-nats.js";
import { freePort } from "../../test/support/ports.js";
import { runFlow, startWorker } from "../lib/load.js";
import type { FlowResult, FlowTask } from "../lib/protocol.js";
import { median } from "../lib/stats.js";
import { counterNote, daemonDetails, flowNote, flowTimeout, own, roundsOf, withDaemon, type Ctx } from "./common.js";

export async function scenario5(ctx: Ctx): Promise<void> {
  const res = ctx.result;
  const rate = 1000;
  const rounds = roundsOf(ctx);
  const seconds = ctx.quick ? 3 : 4;
  const count = rate * seconds;
  const warmup = 500;
  const nats = own(ctx, await startNats({ jetstream: false }));
  const port = await freePort();
  const yaml = `
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "lat.out", mode: structured }
routes:
  - { name: http-to-nats, from: in, to: [out] }
`;
  const common: Omit<FlowTask, "type" | "tag" | "pub" | "sub" | "timeoutMs"> = { count, warmup, window: 100_000, rate, stallMs: 3000 };
  const handPort = await freePort();
  const hand = startWorker<never>("baselines/http-nats.js", { natsUrl: nats.url, subject: "lat.hand", port: handPort } satisfies HttpNatsTask, {
    scope: ctx.scope,
    timeoutMs: ctx.scope.remaining(),
  });
  await hand.ready;
  const base: FlowResult[] = [];
  const handRuns: FlowResult[] = [];
  const bridge: FlowResult[] = [];
  const run = await withDaemon(ctx, yaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`5: round ${r + 1}/${rounds}: ${rate}/s for ${seconds}s straight to NATS, through the hand-written HTTP bridge, then through cebridge`);
      base.push(
        await runFlow(
          { ...common, tag: `s5base${r}`, pub: { kind: "nats", url: nats.url, subject: "lat.base" }, sub: { kind: "nats", url: nats.url, subject: "lat.base" }, timeoutMs: flowTimeout(ctx, (seconds + 6) * 1000) },
          ctx.scope,
        ),
      );
      handRuns.push(
        await runFlow(
          {
            ...common,
            tag: `s5hand${r}`,
            pub: { kind: "http", url: `http://127.0.0.1:${handPort}/`, mode: "binary", connections: 16 },
            sub: { kind: "nats", url: nats.url, subject: "lat.hand" },
            timeoutMs: flowTimeout(ctx, (seconds + 6) * 1000),
          },
          ctx.scope,
        ),
      );
      bridge.push(
        await runFlow(
          {
            ...common,
            tag: `s5r${r}`,
            pub: { kind: "http", url: `http://127.0.0.1:${port}/`, mode: "binary", connections: 16 },
            sub: { kind: "nats", url: nats.url, subject: "lat.out" },
            timeoutMs: flowTimeout(ctx, (seconds + 6) * 1000),
          },
          ctx.scope,
        ),
      );
    }
  });
  const p = (runs: FlowResult[], k: "p50" | "p99") => median(runs.map((x) => x.latencyMs[k]));
  const bP50 = p(bridge, "p50");
  const bP99 = p(bridge, "p99");
  const baseP50 = p(base, "p50");
  const baseP99 = p(base, "p99");
  const addedP50 = bP50 - baseP50;
  const addedP99 = bP99 - baseP99;
  await hand.stop();
  const handP50 = p(handRuns, "p50");
  const handP99 = p(handRuns, "p99");
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { runs: bridge, daemon: daemonDetails(run) };
  res.details["handWritten"] = handRuns;
  res.details["medianMs"] = { bridgeP50: bP50, bridgeP99: bP99, baselineP50: baseP50, baselineP99: baseP99, addedP50, addedP99, handP50, handP99 };
  const lost = bridge.reduce((a, x) => a + x.lost, 0);
  res.rows.push({
    id: "5",
    scenario: "added latency @1k/s HTTP → NATS",
    rate: median(bridge.map((x) => x.rate)),
    p50: bP50,
    p99: bP99,
    rssMb: run.peakRssMb,
    baseline: median(base.map((x) => x.rate)),
    ratioText: `+${addedP99.toFixed(2)}ms p99`,
    target: "added p99 ≤ 1ms",
    pass: addedP99 <= 1 && lost === 0,
    note: [
      `added p50 +${addedP50.toFixed(2)}ms; per-round p99 ${bridge.map((x) => x.latencyMs.p99.toFixed(1)).join("/")} ms vs direct ${base.map((x) => x.latencyMs.p99.toFixed(1)).join("/")} ms`,
      `over the hand-written HTTP bridge: p50 ${signed(bP50 - handP50)}ms, p99 ${signed(bP99 - handP99)}ms`,
      counterNote(run),
      ...bridge.map(flowNote).filter(Boolean),
    ]
      .filter(Boolean)
      .join(", "),
  });
  res.rows.push({
    id: "5 hand",
    scenario: "  hand-written HTTP → NATS bridge (context)",
    rate: median(handRuns.map((x) => x.rate)),
    p50: handP50,
    p99: handP99,
    baseline: median(base.map((x) => x.rate)),
    ratioText: `${signed(handP99 - baseP99)}ms p99`,
    target: "info",
    note: [`per-round p99 ${handRuns.map((x) => x.latencyMs.p99.toFixed(1)).join("/")} ms`, ...handRuns.map(flowNote).filter(Boolean)].join(", "),
  });
  res.rows.push({
    id: "5 base",
    scenario: "  direct NATS publish (baseline)",
    rate: median(base.map((x) => x.rate)),
    p50: baseP50,
    p99: baseP99,
    target: "info",
    note: base.map(flowNote).filter(Boolean).join(", ") || undefined,
  });
}

function signed(ms: number): string {
  return (ms >= 0 ? "+" : "") + ms.toFixed(2);
}
