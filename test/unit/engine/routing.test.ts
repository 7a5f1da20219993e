import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { SinkError } from "../../../src/core/errors.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import type { Sink } from "../../../src/core/sink.js";
import { Deduper } from "../../../src/engine/dedupe.js";
import { KeyedSequencer } from "../../../src/engine/ordering.js";
import { Route, type RouteSetup } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import { compileTransform } from "../../../src/engine/transform.js";
import { Metrics } from "../../../src/observability/metrics.js";

function ev(id: string, extra: Record<string, string> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "/s", type: "t", ...extra } };
}

function makeRoute(sink: Sink, extra: Partial<RouteSetup>, window = 10_000): { route: Route; metrics: Metrics } {
  const metrics = new Metrics();
  const route = new Route(
    { name: "r", sourceId: "s", sinks: [{ id: "k", sink }], window, retry: { initial: 1, max: 1, max_elapsed: 0 }, timeoutMs: 5000, loopPrevention: false, maxHops: 8, instanceId: "i", ...extra },
    new RouteStats(metrics, { name: "r", sourceId: "s", sinkIds: ["k"], capacity: window }),
    silentLogger,
  );
  return { route, metrics };
}

function offer(r: Route, e: CloudEvent): Promise<Outcome> {
  return new Promise((resolve) => assert.ok(r.offer({ events: [e], settle: resolve })));
}

async function metric(m: Metrics, name: string, labels: string): Promise<number> {
  const text = await m.registry.metrics();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("routing - deduplication", () => {
  test("routing - a redelivered event inside the window is dropped, and passes after it", async () => {
    let now = 1_000;
    const got: string[] = [];
    const sink: Sink = { guarantee: "confirmed", async open() {}, async close() {}, async write(e) { got.push(String(e.attributes["id"])); } };
    const { route, metrics } = makeRoute(sink, { dedupe: new Deduper(60_000, 100, () => now) });
    await offer(route, ev("a"));
    await offer(route, ev("a"));
    await offer(route, ev("a", { source: "/other" }));
    assert.deepEqual(got, ["a", "a"], "same id from another source is a different event");
    now += 60_001;
    await offer(route, ev("a"));
    assert.deepEqual(got, ["a", "a", "a"]);
    assert.equal(await metric(metrics, "cebridge_events_dropped_total", 'route="r",reason="dedupe"'), 1);
  });

  test("routing - a duplicate arriving while the first is in flight waits for its outcome", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let writes = 0;
    const sink: Sink = { guarantee: "confirmed", async open() {}, async close() {}, async write() { writes++; await gate; } };
    const { route } = makeRoute(sink, { dedupe: new Deduper(60_000, 100) });
    const first = offer(route, ev("x"));
    const second = offer(route, ev("x"));
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(writes, 1);
    release();
    assert.equal((await first).status, "delivered");
    assert.equal((await second).status, "delivered");
    assert.equal(writes, 1);
  });

  test("routing - a failed first attempt does not hide the redelivery", async () => {
    let fail = true;
    const sink: Sink = { guarantee: "confirmed", async open() {}, async close() {}, async write() { if (fail) throw new SinkError("down", true); } };
    const { route } = makeRoute(sink, { dedupe: new Deduper(60_000, 100) });
    assert.equal((await offer(route, ev("y"))).status, "errored");
    fail = false;
    assert.equal((await offer(route, ev("y"))).status, "delivered");
  });

  test("routing - memory stays bounded: the oldest keys are evicted past max_keys", async () => {
    const dedupe = new Deduper(3_600_000, 1_000);
    const sink: Sink = { guarantee: "confirmed", async open() {}, async close() {}, async write() {} };
    const { route } = makeRoute(sink, { dedupe });
    for (let i = 0; i < 5_000; i++) await offer(route, ev(`k${i}`));
    assert.equal(dedupe.size, 1_000);
    let writes = 0;
    const counting: Sink = { ...sink, async write() { writes++; } };
    const { route: r2 } = makeRoute(counting, { dedupe });
    await offer(r2, ev("k4999"));
    await offer(r2, ev("k0"));
    assert.equal(writes, 1, "k4999 is remembered, k0 was evicted");
  });
});

describe("routing - ordering by partitionkey", () => {
  test("routing - 64 interleaved keys arrive in order per key while keys run in parallel", async () => {
    const arrived = new Map<string, number[]>();
    let concurrent = 0;
    let peak = 0;
    const sink: Sink = {
      guarantee: "confirmed",
      async open() {},
      async close() {},
      async write(e) {
        concurrent++;
        peak = Math.max(peak, concurrent);
        await new Promise((r) => setTimeout(r, Math.random() * 4));
        concurrent--;
        const key = String(e.attributes["partitionkey"]);
        const list = arrived.get(key) ?? [];
        list.push(Number(e.attributes["seq"]));
        arrived.set(key, list);
      },
    };
    const sequencer = new KeyedSequencer();
    const { route } = makeRoute(sink, { ordering: sequencer });
    const all: Promise<Outcome>[] = [];
    for (let seq = 0; seq < 20; seq++) {
      for (let k = 0; k < 64; k++) all.push(offer(route, ev(`${k}-${seq}`, { partitionkey: `key${k}`, seq: String(seq) })));
    }
    await Promise.all(all);
    assert.equal(arrived.size, 64);
    for (const [key, seqs] of arrived) assert.deepEqual(seqs, Array.from({ length: 20 }, (_, i) => i), key);
    assert.ok(peak > 8, `keys proceed in parallel (peak concurrency ${peak})`);
    assert.equal(sequencer.activeKeys, 0, "no state left once every key drained");
  });

  test("routing - a key is held while one of its events awaits redelivery", async () => {
    const written: string[] = [];
    const sink: Sink = {
      guarantee: "confirmed",
      async open() {},
      async close() {},
      async write(e) {
        if (e.attributes["id"] === "2") throw new SinkError("down", true);
        written.push(String(e.attributes["id"]));
      },
    };
    const { route } = makeRoute(sink, { ordering: new KeyedSequencer() });
    const outcomes = await Promise.all(["1", "2", "3"].map((id) => offer(route, ev(id, { partitionkey: "p" }))).concat(offer(route, ev("4", { partitionkey: "q" }))));
    assert.deepEqual(outcomes.map((o) => o.status), ["delivered", "errored", "errored", "delivered"]);
    assert.deepEqual(written.sort(), ["1", "4"], "event 3 was not written ahead of event 2");
  });
});

describe("routing - transforms", () => {
  test("routing - map_type and map_source tables replace listed values only", () => {
    const t = compileTransform({ map_type: { "aws.ec2": "com.example.ec2" }, map_source: { "/s": "https://bridge/s" } });
    assert.deepEqual(t(ev("1", { type: "aws.ec2" })).attributes, { specversion: "1.0", id: "1", source: "https://bridge/s", type: "com.example.ec2" });
    assert.equal(t(ev("1", { type: "other" })).attributes["type"], "other");
  });
});
