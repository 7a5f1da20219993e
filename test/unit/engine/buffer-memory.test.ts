/**
 * The memory buffer in front of a real route with scripted sinks: direct path, queueing in order,
 * the byte bound, when_full both ways, reservations, drain and abort.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import type { Received } from "../../../src/core/source.js";
import { createBuffer } from "../../../src/engine/buffer/index.js";
import { MemoryBuffer } from "../../../src/engine/buffer/memory.js";
import { eventBytes } from "../../../src/engine/buffer/size.js";
import { KeyedSequencer } from "../../../src/engine/ordering.js";
import { Route } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { newRouteState } from "../../../src/observability/status.js";
import { waitFor } from "../../support/wait.js";
import { gatedSink, type GatedSink } from "./buffer-support.js";

function ev(id: string, extra: Record<string, string> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "/burst", type: "t.burst", ...extra }, data: { kind: "bytes", bytes: new Uint8Array(1000).fill(7) } };
}

interface Rig {
  readonly buffer: MemoryBuffer;
  readonly route: Route;
  readonly sink: GatedSink;
  readonly metrics: Metrics;
  readonly state: ReturnType<typeof newRouteState>;
  readonly outcomes: Map<string, Outcome>;
  offer(id: string, extra?: Record<string, string>): boolean;
}

function rig(opts: { window: number; maxBytes: number; whenFull?: "drop_newest" | "block"; ordered?: boolean }): Rig {
  const sink = gatedSink();
  const metrics = new Metrics();
  const stats = new RouteStats(metrics, { name: "r", sourceId: "src", sinkIds: ["out"], capacity: opts.window });
  const route = new Route(
    {
      name: "r",
      sourceId: "src",
      sinks: [{ id: "out", sink }],
      window: opts.window,
      retry: { initial: 1, max: 2, max_elapsed: 60_000 },
      timeoutMs: 60_000,
      loopPrevention: false,
      maxHops: 8,
      instanceId: "me",
      ...(opts.ordered ? { ordering: new KeyedSequencer() } : {}),
    },
    stats,
    silentLogger,
  );
  const state = newRouteState("r", "src", ["out"], undefined, opts.window);
  const buffer = createBuffer({ type: "memory", maxBytes: opts.maxBytes, whenFull: opts.whenFull ?? "drop_newest" }, route, {
    routeName: "r",
    metrics,
    state,
    log: silentLogger,
    ordered: opts.ordered ?? false,
  }) as MemoryBuffer;
  const outcomes = new Map<string, Outcome>();
  return {
    buffer,
    route,
    sink,
    metrics,
    state,
    outcomes,
    offer: (id, extra) => buffer.offer(received(ev(id, extra), (o) => outcomes.set(id, o))),
  };
}

function received(event: CloudEvent, settle: (o: Outcome) => void): Received {
  return { events: [event], settle };
}

async function metric(m: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const json = await m.registry.getMetricsAsJSON();
  const found = json.find((x) => x.name === name);
  const v = found?.values.find((val) => Object.entries(labels).every(([k, want]) => String(val.labels[k]) === want));
  return Number(v?.value ?? 0);
}

const ONE = eventBytes(ev("zz"));

describe("engine buffer - memory", () => {
  test("buffer memory - with room in the window and nothing queued, an offer goes straight to the window (nothing written to the buffer)", async () => {
    const r = rig({ window: 4, maxBytes: 1 << 20 });
    r.sink.letThrough();
    for (let i = 0; i < 3; i++) assert.equal(r.offer(`d${i}`), true);
    await waitFor(() => r.outcomes.size === 3, 5000, "settled");
    assert.equal(await metric(r.metrics, "cebridge_buffer_writes_total", { route: "r" }), 0);
    assert.deepEqual([...r.outcomes.values()].map((o) => o.status), ["delivered", "delivered", "delivered"]);
  });

  test("buffer memory - a burst 25× the window is queued and delivered in arrival order, never more than the window in flight", async () => {
    const r = rig({ window: 4, maxBytes: 1 << 20 });
    const N = 100;
    for (let i = 0; i < N; i++) assert.equal(r.offer(`b${i}`), true, `offer ${i}`);
    assert.equal(r.sink.calls.length, 4, "only the window's worth reached the sink");
    assert.equal(r.buffer.reading().events, N - 4);
    r.sink.letThrough();
    await waitFor(() => r.outcomes.size === N, 10_000, () => `settled ${r.outcomes.size}`);
    assert.deepEqual(r.sink.calls, Array.from({ length: N }, (_, i) => `b${i}`));
    assert.ok(r.sink.maxActive <= 4, `max in flight ${r.sink.maxActive}`);
    assert.equal(await metric(r.metrics, "cebridge_buffer_writes_total", { route: "r" }), N - 4);
    assert.equal(await metric(r.metrics, "cebridge_buffer_reads_total", { route: "r" }), N - 4);
    assert.equal(r.buffer.reading().events, 0);
    assert.equal(r.buffer.reading().bytes, 0);
  });

  test("buffer memory - drop_newest: past max_bytes the newest offer is refused and counted; what was queued is delivered", async () => {
    const r = rig({ window: 2, maxBytes: ONE * 5 });
    const accepted: string[] = [];
    for (let i = 0; i < 20; i++) if (r.offer(`f${i}`)) accepted.push(`f${i}`);
    // 2 in the window, 5 queued, the other 13 refused.
    assert.equal(accepted.length, 7);
    assert.deepEqual(accepted, ["f0", "f1", "f2", "f3", "f4", "f5", "f6"]);
    assert.equal(await metric(r.metrics, "cebridge_buffer_dropped_total", { route: "r", reason: "full" }), 13);
    const snap = r.state.buffer!.snapshot() as { dropped: { full: number }; events: number; bytes: number; oldest_event_age_seconds: number };
    assert.equal(snap.dropped.full, 13);
    assert.equal(snap.events, 5);
    assert.equal(snap.bytes, ONE * 5);
    assert.ok(snap.oldest_event_age_seconds >= 0);
    r.sink.letThrough();
    await waitFor(() => r.outcomes.size === 7, 5000, "settled");
    assert.deepEqual(r.sink.calls, accepted);
    // Room again: a new offer is taken.
    assert.equal(r.offer("after"), true);
  });

  test("buffer memory - when_full: block: the inbox says so, and a reservation waits for room instead of the message being dropped", async () => {
    const r = rig({ window: 2, maxBytes: ONE * 2, whenFull: "block" });
    assert.equal(r.buffer.blocking, true);
    for (let i = 0; i < 4; i++) assert.equal(r.offer(`k${i}`), true); // 2 in the window, 2 queued: full
    assert.equal(r.offer("refused"), false, "offer never blocks: a full buffer refuses it");
    let granted = false;
    const waiting = r.buffer.reserve(1, 1, new AbortController().signal).then((res) => {
      granted = true;
      return res;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(granted, false, "no room: the reservation waits");
    r.sink.letThrough();
    const res = await waiting;
    assert.equal(res.offer(received(ev("k4"), (o) => r.outcomes.set("k4", o))), true);
    res.release();
    await waitFor(() => r.outcomes.size === 5, 5000, "settled");
    assert.deepEqual(r.sink.calls, ["k0", "k1", "k2", "k3", "k4"]);
    assert.equal(rig({ window: 1, maxBytes: 1 }).buffer.blocking, false, "drop_newest is not blocking");
  });

  test("buffer memory - per-partitionkey order holds through the queue on an ordering route", async () => {
    const r = rig({ window: 3, maxBytes: 1 << 20, ordered: true });
    const sent: string[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `o${i}`;
      sent.push(id);
      assert.equal(r.offer(id, { partitionkey: `k${i % 3}` }), true);
    }
    r.sink.letThrough();
    await waitFor(() => r.outcomes.size === 30, 5000, "settled");
    for (const k of ["k0", "k1", "k2"]) {
      const want = sent.filter((_, i) => `k${i % 3}` === k);
      assert.deepEqual(r.sink.done.filter((id) => want.includes(id)), want, `order of ${k}`);
    }
  });

  test("buffer memory - shutdown: drain hands every queued message to the window first; abort settles what is left errored (released)", async () => {
    const r = rig({ window: 2, maxBytes: 1 << 20 });
    for (let i = 0; i < 10; i++) r.offer(`s${i}`);
    r.buffer.stopAccepting();
    assert.equal(r.offer("late"), false, "stopped: refused");
    const drained = r.buffer.drain();
    r.sink.letThrough();
    await drained;
    assert.equal(r.outcomes.size, 10);
    assert.ok([...r.outcomes.values()].every((o) => o.status === "delivered"));

    const r2 = rig({ window: 2, maxBytes: 1 << 20 });
    for (let i = 0; i < 10; i++) r2.offer(`a${i}`);
    r2.buffer.stopAccepting();
    const d2 = r2.buffer.drain();
    r2.buffer.abort();
    await d2;
    const statuses = [...r2.outcomes.entries()];
    assert.equal(statuses.length, 10, "every message settled once");
    assert.ok(statuses.every(([, o]) => o.status === "errored" && o.release === "shutdown"), JSON.stringify(statuses.map(([id, o]) => [id, o.status])));
    assert.equal(await metric(r2.metrics, "cebridge_buffer_dropped_total", { route: "r", reason: "shutdown" }), 8);
  });
});
