/**
 * Scenario 7b: RSS of the daemon over a long run with its sink down. HTTP → HTTP sink at a closed
 * port; clients keep `connections` requests in flight and resend at once whatever the answer
 * (429 while the window is full, 503 once an event's retries run out). The window bounds what the
 * daemon holds, so RSS must stay flat: its floor (what is left after collections) must not rise. (Scenario 7a, peak RSS at full rate, is collected from the
 * throughput scenarios by `run.ts`.)
 */
import { freePort } from "../../test/support/ports.js";
import { runHammer } from "../lib/load.js";
import { quantile, slope } from "../lib/stats.js";
import { withDaemon, type Ctx } from "./common.js";
import type { RssSample } from "../lib/rss.js";
import { RssSampler } from "../lib/rss.js";

export const FLAT_MB = 10;

export async function scenario7sinkDown(ctx: Ctx, seconds: number): Promise<void> {
  const res = ctx.result;
  const port = await freePort();
  const closed = await freePort(); // nothing listens there
  const connections = 100;
  const window = 64;
  const yaml = `
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  down: { type: http, url: "http://127.0.0.1:${closed}/", mode: binary, timeout: 2s }
routes:
  - name: sink-down
    from: in
    to: [down]
    max_in_flight: ${window}
    retry: { initial: 50ms, max: 500ms, max_elapsed: 2s }
`;
  ctx.log(`7: sink down for ${seconds}s (${connections} clients, window ${window})`);
  let samples: RssSample[] = [];
  const run = await withDaemon(ctx, yaml, async (d) => {
    const rss = new RssSampler(d.pid).start();
    const h = runHammer({ url: `http://127.0.0.1:${port}/`, connections, durationMs: seconds * 1000 }, ctx.scope);
    const r = await h.result;
    samples = rss.stop();
    return r;
  });
  const mbs = samples.map((s) => s.mb);
  const n = mbs.length;
  const start = mbs[0] ?? Number.NaN;
  const end = mbs[n - 1] ?? Number.NaN;
  const max = Math.max(...mbs);
  // RSS saws up and down with the garbage collector, so compare floors (10th percentile), not
  // medians: the last 10% of the run against the 10–20% stretch (after the window and caches filled).
  // Memory that is really kept raises the floor; garbage waiting for a collection does not.
  const lo = Math.floor(n * 0.1);
  const early = quantile(mbs.slice(lo, Math.max(Math.floor(n * 0.2), lo + 1)), 0.1);
  const late = quantile(mbs.slice(Math.floor(n * 0.9)), 0.1);
  const growth = late - early;
  const half = samples.slice(Math.floor(n / 2));
  const mbPerMin = slope(half.map((s) => s.t / 60_000), half.map((s) => s.mb));
  // A thinned series for the JSON file: one point per second.
  const series = samples.filter((_, i) => i % 10 === 0).map((s) => [Math.round(s.t), Math.round(s.mb * 10) / 10]);
  const h = run.value;
  res.details["sinkDown"] = {
    seconds,
    connections,
    window,
    startMb: start,
    maxMb: max,
    endMb: end,
    earlyFloorMb: early,
    lateFloorMb: late,
    floorGrowthMb: growth,
    mbPerMinSecondHalf: mbPerMin,
    hammer: h,
    series,
  };
  res.rows.push({
    id: "7b",
    scenario: `RSS, HTTP sink down ${seconds}s`,
    rate: (h.requests / h.elapsedMs) * 1000,
    rssMb: max,
    ratioText: `${start.toFixed(0)}→${max.toFixed(0)}→${end.toFixed(0)} MB`,
    target: `flat (floor ±${FLAT_MB}MB)`,
    pass: growth <= FLAT_MB && (h.statuses["204"] ?? 0) === 0,
    note: `start→max→end; floor ${early.toFixed(0)}→${late.toFixed(0)} MB (growth ${growth.toFixed(1)} MB); answers ${Object.entries(h.statuses)
      .map(([k, v]) => `${k}×${v}`)
      .join(" ")}`,
  });
}
