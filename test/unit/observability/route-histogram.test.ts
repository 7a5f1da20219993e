import { test } from "node:test";
import assert from "node:assert/strict";
import { Histogram, Registry } from "../../../src/observability/prom.js";
import { RouteHistogram } from "../../../src/observability/route-histogram.js";
import { DELIVERY_BUCKETS, Metrics } from "../../../src/observability/metrics.js";

/** The same observations through prom-client's Histogram and ours, each in its own registry. */
function both(observations: [route: string, seconds: number][]): { theirs: Registry; ours: Registry } {
  const theirs = new Registry();
  const ours = new Registry();
  const h = new Histogram({ name: "x_seconds", help: "Time", labelNames: ["route"], buckets: [...DELIVERY_BUCKETS], registers: [theirs] });
  const r = new RouteHistogram({ name: "x_seconds", help: "Time", labelName: "route", buckets: DELIVERY_BUCKETS, registers: [ours] });
  for (const [route, v] of observations) {
    h.labels(route).observe(v);
    r.labels(route).observe(v);
  }
  return { theirs, ours };
}

test("route histogram - /metrics prints what prom-client's Histogram prints, byte for byte", async () => {
  const obs: [string, number][] = [
    ["a", 0],
    ["a", 0.0005], // on a bound: counted in it (le is inclusive)
    ["a", 0.00051],
    ["a", 0.75],
    ["a", 61], // above every bound: +Inf only
    ["b \"quoted\"\\", 0.003],
    ["b \"quoted\"\\", 0.003],
    ["c", 1e-9],
  ];
  const { theirs, ours } = both(obs);
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON());
  assert.match(await ours.metrics(), /x_seconds_bucket\{le="0.0005",route="a"\} 2\n/);
  assert.match(await ours.metrics(), /x_seconds_bucket\{le="\+Inf",route="a"\} 5\n/);
  assert.match(await ours.metrics(), /x_seconds_count\{route="a"\} 5/);
});

test("route histogram - a route with no observations yet shows zeros; reset forgets every series", async () => {
  const reg = new Registry();
  const r = new RouteHistogram({ name: "y_seconds", help: "Time", labelName: "route", buckets: [1, 2], registers: [reg] });
  r.labels("idle");
  assert.match(await reg.metrics(), /y_seconds_bucket\{le="1",route="idle"\} 0\ny_seconds_bucket\{le="2",route="idle"\} 0\ny_seconds_bucket\{le="\+Inf",route="idle"\} 0\ny_seconds_sum\{route="idle"\} 0\ny_seconds_count\{route="idle"\} 0/);
  reg.resetMetrics();
  assert.doesNotMatch(await reg.metrics(), /route="idle"/);
});

test("route histogram - the daemon's delivery histogram is one of these, in the daemon's registry", async () => {
  const m = new Metrics();
  m.deliverySeconds.labels("r1").observe(0.002);
  const text = await m.registry.metrics();
  assert.match(text, /# TYPE cebridge_delivery_seconds histogram\n/);
  assert.match(text, /cebridge_delivery_seconds_bucket\{le="0.0025",route="r1"\} 1\n/);
});
