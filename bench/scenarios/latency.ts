/**
 * Scenario 5: added latency at a fixed 1,000 events/s, HTTP → cebridge → NATS core, measured at a
 * raw NATS subscriber from the send time carried in the event. The baseline is the same client
 * publishing straight to NATS (no HTTP, no bridge); the difference is what the bridge path adds.
 * Baseline and bridge alternate for `roundsOf(ctx)` rounds; the medians of the per-round p50 and p99
 * count.
 */
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import { runFlow } from "../lib/load.js";
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
  const base: FlowResult[] = [];
  const bridge: FlowResult[] = [];
  const run = await withDaemon(ctx, yaml, async () => {
    for (let r = 0; r < rounds; r++) {
      ctx.log(`5: round ${r + 1}/${rounds}: ${rate}/s for ${seconds}s straight to NATS, then through cebridge`);
      base.push(
        await runFlow(
          { ...common, tag: `s5base${r}`, pub: { kind: "nats", url: nats.url, subject: "lat.base" }, sub: { kind: "nats", url: nats.url, subject: "lat.base" }, timeoutMs: flowTimeout(ctx, (seconds + 6) * 1000) },
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
  res.details["rounds"] = rounds;
  res.details["baseline"] = base;
  res.details["cebridge"] = { runs: bridge, daemon: daemonDetails(run) };
  res.details["medianMs"] = { bridgeP50: bP50, bridgeP99: bP99, baselineP50: baseP50, baselineP99: baseP99, addedP50, addedP99 };
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
      counterNote(run),
      ...bridge.map(flowNote).filter(Boolean),
    ]
      .filter(Boolean)
      .join(", "),
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
