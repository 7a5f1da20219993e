import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { SinkError } from "../../../src/core/errors.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import type { Sink } from "../../../src/core/sink.js";
import { compileFilter } from "../../../src/filter/index.js";
import { reasonText } from "../../../src/engine/dead-letter.js";
import { Route, type RouteSetup } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import { compileTransform } from "../../../src/engine/transform.js";
import { Metrics } from "../../../src/observability/metrics.js";

/** A sink whose answer to each write is scripted; it records what it accepted. */
function scripted(answer: (event: CloudEvent, attempt: number) => "ok" | "transient" | "permanent" | Promise<"ok">): Sink & { got: CloudEvent[]; attempts: Map<string, number> } {
  const got: CloudEvent[] = [];
  const attempts = new Map<string, number>();
  return {
    guarantee: "confirmed",
    got,
    attempts,
    async open() {},
    async close() {},
    async write(event) {
      const id = String(event.attributes["id"]);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      const a = await answer(event, n);
      if (a === "transient") throw new SinkError("try later", true);
      if (a === "permanent") throw new SinkError("never", false);
      got.push(event);
    },
  };
}

function ev(id: string, extra: Record<string, string | number> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "/s", type: "t.a", ...extra }, data: { kind: "json", value: { id } } };
}

function route(partial: Partial<RouteSetup> & Pick<RouteSetup, "sinks">): Route {
  const setup: RouteSetup = { name: "r", sourceId: "src", window: 10, retry: { initial: 1, max: 2, max_elapsed: 200 }, timeoutMs: 1000, loopPrevention: true, maxHops: 8, instanceId: "me", ...partial };
  const stats = new RouteStats(new Metrics(), { name: "r", sourceId: "src", sinkIds: setup.sinks.map((s) => s.id), capacity: setup.window });
  return new Route(setup, stats, silentLogger);
}

function offer(r: Route, events: CloudEvent[], deliveryCount?: number): Promise<Outcome> {
  return new Promise((resolve) => {
    assert.equal(r.offer({ events, settle: resolve, ...(deliveryCount !== undefined ? { deliveryCount } : {}) }), true);
  });
}

describe("engine route", () => {
  test("engine route - delivered after every sink confirmed; loop markers added", async () => {
    const a = scripted(() => "ok");
    const b = scripted(() => "ok");
    const r = route({ sinks: [{ id: "a", sink: a }, { id: "b", sink: b }] });
    assert.deepEqual(await offer(r, [ev("1")]), { status: "delivered" });
    assert.equal(a.got.length, 1);
    assert.equal(b.got[0]!.attributes["cebridgevia"], "me");
    assert.equal(b.got[0]!.attributes["cebridgehops"], 1);
  });

  test("engine route - each sink retries on its own: a healthy sink sees no duplicate", async () => {
    const healthy = scripted(() => "ok");
    const flaky = scripted((_, n) => (n < 3 ? "transient" : "ok"));
    // A generous budget: this test is about who retries, not about when the budget runs out.
    const r = route({ sinks: [{ id: "h", sink: healthy }, { id: "f", sink: flaky }], retry: { initial: 1, max: 2, max_elapsed: 30_000 } });
    assert.equal((await offer(r, [ev("1")])).status, "delivered");
    assert.equal(healthy.attempts.get("1"), 1);
    assert.equal(flaky.attempts.get("1"), 3);
  });

  test("engine route - retries exhausted releases the message (errored), worst wins", async () => {
    const r = route({ sinks: [{ id: "ok", sink: scripted(() => "ok") }, { id: "down", sink: scripted(() => "transient") }] });
    const out = await offer(r, [ev("1")]);
    assert.equal(out.status, "errored");
    assert.equal(out.status === "errored" && out.error.code, "CEB_RETRIES_EXHAUSTED");
  });

  test("engine route - permanent failure goes to the dead-letter sink with context, then acks", async () => {
    const dl = scripted(() => "ok");
    const r = route({ sinks: [{ id: "bad", sink: scripted(() => "permanent") }], deadLetter: { id: "dl", sink: dl } });
    assert.equal((await offer(r, [ev("1")])).status, "dead_lettered");
    const d = dl.got[0]!.attributes;
    assert.equal(d["cebridgeerror"], "CEB_SINK_PERMANENT");
    assert.equal(d["cebridgereason"], "never");
    assert.equal(d["cebridgeroute"], "r");
    assert.equal(d["cebridgesink"], "bad");
    assert.equal(d["cebridgeattempts"], 1);
    assert.equal(d["cebridgevia"], undefined);
  });

  test("engine route - an event two sinks refuse becomes one dead letter per sink, each naming its sink and reason", async () => {
    const dl = scripted(() => "ok");
    const ok = scripted(() => "ok");
    const r = route({
      sinks: [{ id: "a", sink: scripted(() => "permanent") }, { id: "fine", sink: ok }, { id: "b", sink: scripted(() => "permanent") }],
      deadLetter: { id: "dl", sink: dl },
    });
    assert.equal((await offer(r, [ev("1")])).status, "dead_lettered");
    assert.equal(ok.got.length, 1);
    assert.deepEqual(
      dl.got.map((e) => [e.attributes["id"], e.attributes["cebridgesink"], e.attributes["cebridgeerror"], e.attributes["cebridgereason"]]),
      [
        ["1", "a", "CEB_SINK_PERMANENT", "never"],
        ["1", "b", "CEB_SINK_PERMANENT", "never"],
      ],
    );
  });

  test("engine route - a failing dead-letter write releases the message instead of acking", async () => {
    const r = route({ sinks: [{ id: "bad", sink: scripted(() => "permanent") }], deadLetter: { id: "dl", sink: scripted(() => "transient") } });
    const out = await offer(r, [ev("1")]);
    assert.equal(out.status, "errored");
    assert.equal(out.status === "errored" && out.error.code, "CEB_DEAD_LETTER");
  });

  test("engine route - no dead-letter sink: rejected", async () => {
    const r = route({ sinks: [{ id: "bad", sink: scripted(() => "permanent") }] });
    assert.equal((await offer(r, [ev("1")])).status, "rejected");
  });

  test("engine route - max_deliveries dead-letters a message that keeps failing transiently", async () => {
    const dl = scripted(() => "ok");
    const r = route({ sinks: [{ id: "down", sink: scripted(() => "transient") }], deadLetter: { id: "dl", sink: dl }, maxDeliveries: 3 });
    assert.equal((await offer(r, [ev("1")], 2)).status, "errored");
    assert.equal((await offer(r, [ev("1")], 3)).status, "dead_lettered");
    assert.equal(dl.got[0]!.attributes["cebridgeerror"], "CEB_RETRIES_EXHAUSTED");
  });

  test("engine route - filtered events count as delivered and reach no sink", async () => {
    const a = scripted(() => "ok");
    const r = route({ sinks: [{ id: "a", sink: a }], filter: compileFilter({ prefix: { type: "x." } }) });
    assert.equal((await offer(r, [ev("1")])).status, "delivered");
    assert.equal(a.got.length, 0);
  });

  test("engine route - loop: an event that passed this instance, or made max_hops, is dropped", async () => {
    const a = scripted(() => "ok");
    const r = route({ sinks: [{ id: "a", sink: a }], maxHops: 3 });
    assert.equal((await offer(r, [ev("1", { cebridgevia: "other,me" })])).status, "delivered");
    assert.equal((await offer(r, [ev("2", { cebridgehops: "3" })])).status, "delivered");
    assert.equal((await offer(r, [ev("3", { cebridgevia: "other", cebridgehops: 1 })])).status, "delivered");
    assert.deepEqual(a.got.map((e) => e.attributes["id"]), ["3"]);
    assert.equal(a.got[0]!.attributes["cebridgevia"], "other,me");
    assert.equal(a.got[0]!.attributes["cebridgehops"], 2);
  });

  test("engine route - a transform that makes the event invalid dead-letters the original", async () => {
    const dl = scripted(() => "ok");
    const a = scripted(() => "ok");
    const r = route({ sinks: [{ id: "a", sink: a }], deadLetter: { id: "dl", sink: dl }, transform: compileTransform({ remove: ["source"] }) });
    assert.equal((await offer(r, [ev("1")])).status, "dead_lettered");
    assert.equal(a.got.length, 0);
    assert.equal(dl.got[0]!.attributes["cebridgeerror"], "CEB_TRANSFORM");
    assert.equal(dl.got[0]!.attributes["source"], "/s");
  });

  test("engine route - set with templates, rename and remove", async () => {
    const a = scripted(() => "ok");
    const r = route({ sinks: [{ id: "a", sink: a }], loopPrevention: false, transform: compileTransform({ rename: { type: "origtype" }, set: { type: "bridged.{origtype}", subject: "{subject:-none}" }, remove: ["origtype"] }) });
    await offer(r, [ev("1")]);
    assert.deepEqual(a.got[0]!.attributes, { specversion: "1.0", id: "1", source: "/s", type: "bridged.t.a", subject: "none" });
  });

  test("engine route - the window is never exceeded; refusals when full", async () => {
    let concurrent = 0;
    let peak = 0;
    const release: (() => void)[] = [];
    const slow: Sink = {
      guarantee: "confirmed",
      async open() {},
      async close() {},
      async write() {
        concurrent++;
        peak = Math.max(peak, concurrent);
        await new Promise<void>((r) => release.push(r));
        concurrent--;
      },
    };
    const r = route({ sinks: [{ id: "s", sink: slow }], window: 3 });
    const settled: Promise<Outcome>[] = [];
    let refused = 0;
    for (let i = 0; i < 5; i++) {
      const p = new Promise<Outcome>((resolve) => {
        if (!r.offer({ events: [ev(String(i))], settle: resolve })) {
          refused++;
          resolve({ status: "delivered" });
        }
      });
      settled.push(p);
    }
    assert.equal(refused, 2);
    assert.equal(r.free, 0);
    await new Promise((res) => setImmediate(res));
    release.splice(0).forEach((f) => f());
    await Promise.all(settled);
    assert.equal(peak, 3);
    assert.equal(r.free, 3);
  });

  test("engine route - abort at shutdown releases in-flight messages for redelivery", async () => {
    const hang: Sink = { guarantee: "confirmed", async open() {}, async close() {}, write: (_e, signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason))) };
    const r = route({ sinks: [{ id: "h", sink: hang }] });
    const out = offer(r, [ev("1")]);
    r.stopAccepting();
    assert.equal(r.offer({ events: [ev("2")], settle() {} }), false);
    r.abort();
    assert.equal((await out).status, "errored");
    await r.drain();
  });

  test("engine route - dead-letter reasons are bounded, printable and never split a code point", () => {
    assert.equal(reasonText("a\nb\u0007c"), "a b c");
    const long = reasonText("€".repeat(600));
    assert.ok(Buffer.byteLength(long) <= 1024);
    assert.ok(long.endsWith("..."));
    assert.ok(!long.includes("\ufffd"));
  });
});
