/**
 * The inbox switch between a running source and its route: offers follow the current route, a
 * waiting reservation moves to the new route, and an offer refused by a retired route is tried on
 * the new one before the source has to release it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Received } from "../../../src/core/source.js";
import { silentLogger } from "../../../src/core/logger.js";
import { holdInbox, InboxSwitch } from "../../../src/engine/inbox-switch.js";
import { Route } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import type { Sink } from "../../../src/core/sink.js";
import { Metrics } from "../../../src/observability/metrics.js";
import type { CloudEvent } from "../../../src/cloudevents/event.js";

function route(name: string, window: number, got: string[], gate?: Promise<void>): Route {
  const sink: Sink = {
    guarantee: "confirmed",
    async open() {},
    async close() {},
    async write(e: CloudEvent) {
      await gate;
      got.push(`${name}:${String(e.attributes["id"])}`);
    },
  };
  return new Route(
    { name, sourceId: "s", sinks: [{ id: "k", sink }], window, retry: { initial: 1, max: 1, max_elapsed: 0 }, timeoutMs: 5000, loopPrevention: false, maxHops: 8, instanceId: "i" },
    new RouteStats(new Metrics(), { name, sourceId: "s", sinkIds: ["k"], capacity: window }),
    silentLogger,
  );
}

function msg(id: string, settled: string[]): Received {
  return { events: [{ attributes: { specversion: "1.0", id, source: "/s", type: "t" } }], settle: (o) => settled.push(`${id}:${o.status}`) };
}

describe("inbox switch", () => {
  test("inbox switch - offers follow the current route", async () => {
    const got: string[] = [];
    const settled: string[] = [];
    const a = route("a", 4, got);
    const b = route("b", 4, got);
    const sw = new InboxSwitch(a);
    assert.equal(sw.offer(msg("1", settled)), true);
    sw.moveTo(b);
    a.stopAccepting();
    assert.equal(sw.offer(msg("2", settled)), true);
    await Promise.all([a.drain(), b.drain()]);
    assert.deepEqual(got.sort(), ["a:1", "b:2"]);
    assert.deepEqual(settled.sort(), ["1:delivered", "2:delivered"]);
  });

  test("inbox switch - a reservation waiting on a full route moves to the new one", async () => {
    const got: string[] = [];
    const settled: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const a = route("a", 1, got, gate);
    const b = route("b", 2, got);
    const sw = new InboxSwitch(a);
    assert.ok(sw.offer(msg("1", settled)));
    const waiting = sw.reserve(1, 2, new AbortController().signal);
    await new Promise((r) => setImmediate(r));
    sw.moveTo(b);
    a.stopAccepting();
    const r = await waiting;
    assert.equal(r.slots, 2, "granted on the new route, which has 2 free slots");
    assert.ok(r.offer(msg("2", settled)));
    r.release();
    open();
    await Promise.all([a.drain(), b.drain()]);
    assert.deepEqual(got.sort(), ["a:1", "b:2"]);
  });

  test("inbox switch - an offer into a reservation of a retired route goes to the new route", async () => {
    const got: string[] = [];
    const settled: string[] = [];
    const a = route("a", 2, got);
    const b = route("b", 2, got);
    const sw = new InboxSwitch(a);
    const r = await sw.reserve(1, 2, new AbortController().signal);
    sw.moveTo(b);
    a.stopAccepting();
    assert.equal(r.offer(msg("1", settled)), true);
    r.release();
    await b.drain();
    assert.deepEqual(got, ["b:1"]);
    assert.equal(a.free, 2, "the retired route's slots went back");
  });

  test("inbox switch - a hold has no room: offers are refused and reservations wait for the next route", async () => {
    const got: string[] = [];
    const settled: string[] = [];
    const sw = new InboxSwitch(holdInbox(4));
    assert.equal(sw.offer(msg("1", settled)), false);
    assert.equal(sw.accepting, true, "the HTTP source answers 429, not 503");
    const waiting = sw.reserve(1, 1, new AbortController().signal);
    let done = false;
    void waiting.then(() => (done = true));
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(done, false);
    const b = route("b", 4, got);
    sw.moveTo(b);
    const r = await waiting;
    assert.ok(r.offer(msg("2", settled)));
    r.release();
    await b.drain();
    assert.deepEqual(got, ["b:2"]);
    const ac = new AbortController();
    const held = new InboxSwitch(holdInbox(4)).reserve(1, 1, ac.signal);
    ac.abort(new Error("source stopped"));
    await assert.rejects(held, /source stopped/);
  });
});
