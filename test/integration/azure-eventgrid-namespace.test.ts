/**
 * `azure_eventgrid_namespace` source against the emulator with the real receiver client: the shared
 * source conformance suite, extensions and binary data exact, locks renewed for a slow sink,
 * lock-expired and released events coming back with their delivery count, release delays from the
 * kit rounded to Event Grid's values, reject after dead-lettering, per-token settle failures retried,
 * invalid events dead-lettered, and parallel receivers that never hold more than the window.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { namespaceSource } from "../../connectors/azure-eventgrid/definition.js";
import { perTokenResults } from "../../connectors/azure-eventgrid/namespace-source.js";
import { BridgeError } from "../../src/core/errors.js";
import type { Source } from "../../src/core/source.js";
import { startEventGridEmulator } from "../emulators/eventgrid/index.js";
import { sourceFactory } from "../support/component.js";
import { sourceConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { TEST_KEY, publishToNamespace } from "../support/eventgrid.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome, rejectedOutcome } from "../support/fake-inbox.js";
import { sleep, waitFor } from "../support/wait.js";

// Release delays of 10 s become 0.1 s; lock durations are given per subscription in ms.
const emu = await startEventGridEmulator({ timeScale: 0.01 });
emu.namespaceAuth({ keys: [TEST_KEY] });
after(() => emu.close());
const make = await sourceFactory(namespaceSource);

function fresh(tag: string, opts: { lockDurationMs?: number; maxDeliveryCount?: number } = {}, extra: Record<string, unknown> = {}) {
  const topic = emu.namespaceTopic(`t-${tag}`);
  const sub = topic.subscription("bridge", { lockDurationMs: opts.lockDurationMs ?? 2000, ...(opts.maxDeliveryCount !== undefined ? { maxDeliveryCount: opts.maxDeliveryCount } : {}) });
  const cfg = { endpoint: emu.url, topic: topic.name, subscription: "bridge", key: TEST_KEY, max_wait: "1s", lock_duration: `${opts.lockDurationMs ?? 2000}ms`, ...extra };
  return { topic, sub, cfg, make: (): Source => make(cfg, testContext()) };
}

async function withSource<T>(src: Source, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await src.close(AbortSignal.timeout(5000));
  }
}

sourceConformance("azure_eventgrid_namespace", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  redeliveryTimeoutMs: 15_000,
  async fresh(tag, opts) {
    const f = fresh(tag, {}, opts?.parallelism !== undefined ? { receivers: opts.parallelism } : {});
    return { make: f.make, publish: (events) => publishToNamespace(emu, f.topic.name, events) };
  },
});

describe("azure_eventgrid_namespace source", { timeout: 90_000 }, () => {
  it("azure_eventgrid_namespace source - extensions with their JSON types, binary data, a 64 KiB event and a nanosecond time arrive exactly", async () => {
    const tag = uniqueTag("rich");
    const f = fresh(tag);
    const src = f.make();
    const inbox = new FakeInbox();
    await withSource(src, async () => {
      await src.start(inbox);
      const evs = richEvents(tag);
      await publishToNamespace(emu, f.topic.name, evs);
      await inbox.waitForSettled(evs.length);
      const got = byId(inbox.offers.map((o) => o.events[0]!));
      for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e);
      await waitFor(() => f.sub.acknowledged.length === evs.length, 5000);
      assert.equal(f.sub.outstanding, 0);
    });
  });

  it("azure_eventgrid_namespace source - a slow sink keeps its locks: held 3× the lock duration, renewed, delivered once, acknowledged", async () => {
    const tag = uniqueTag("slow");
    const f = fresh(tag, { lockDurationMs: 600 });
    const src = f.make();
    const inbox = new FakeInbox({ script: async () => (await sleep(1800), DELIVERED_OUTCOME) });
    await withSource(src, async () => {
      await src.start(inbox);
      const evs = sampleEvents(5, tag);
      await publishToNamespace(emu, f.topic.name, evs);
      await inbox.waitForSettled(5, 15_000);
      await waitFor(() => f.sub.acknowledged.length === 5, 5000);
      await sleep(700);
      assert.equal(inbox.offers.length, 5, "no event came back while it was being delivered");
      assert.deepEqual(f.sub.deliveries.map((d) => d.deliveryCount), [1, 1, 1, 1, 1]);
      assert.ok(f.sub.settleCalls.filter((c) => c.verb === "renewLock").length >= 2, JSON.stringify(f.sub.settleCalls));
    });
  });

  it("azure_eventgrid_namespace source - lock-expired events come back with the next delivery count after a crash", async () => {
    const tag = uniqueTag("expire");
    const f = fresh(tag, { lockDurationMs: 500 });
    const first = f.make();
    const holding = new FakeInbox({ script: () => "hold" });
    await first.start(holding);
    await publishToNamespace(emu, f.topic.name, sampleEvents(3, tag));
    await holding.waitForOffers(3);
    await first.close(AbortSignal.timeout(1000));
    const second = f.make();
    const inbox = new FakeInbox();
    await withSource(second, async () => {
      await second.start(inbox);
      await inbox.waitForSettled(3, 10_000);
      assert.deepEqual(inbox.offers.map((o) => o.deliveryCount), [2, 2, 2]);
    });
  });

  it("azure_eventgrid_namespace source - errored events are released with the kit's delay rounded up to Event Grid's (10 s, then 10 s, 60 s…); at shutdown with none", async () => {
    const tag = uniqueTag("release");
    const f = fresh(tag);
    const src = f.make();
    const inbox = new FakeInbox({ script: (_m, info) => (info.seen <= 2 ? erroredOutcome() : DELIVERED_OUTCOME) });
    await withSource(src, async () => {
      await src.start(inbox);
      await publishToNamespace(emu, f.topic.name, sampleEvents(1, tag));
      await inbox.waitForSettled(3, 10_000);
      assert.deepEqual(inbox.offers.map((o) => o.deliveryCount), [1, 2, 3]);
      await waitFor(() => f.sub.acknowledged.length === 1, 5000);
      assert.deepEqual(f.sub.settleCalls.filter((c) => c.verb === "release").map((c) => c.delaySeconds), [10, 10]);
    });
    const shut = fresh(`${tag}b`);
    const s2 = shut.make();
    const box = new FakeInbox({ script: () => ({ status: "errored", error: new BridgeError("CEB_SHUTTING_DOWN", "stopping", true), release: "shutdown" }) });
    await withSource(s2, async () => {
      await s2.start(box);
      await publishToNamespace(emu, shut.topic.name, sampleEvents(1, `${tag}b`));
      await waitFor(() => shut.sub.settleCalls.some((c) => c.verb === "release"), 5000);
      assert.equal(shut.sub.settleCalls.find((c) => c.verb === "release")!.delaySeconds, 0);
    });
  });

  it("azure_eventgrid_namespace source - dead-lettered and rejected events are rejected, never redelivered; an invalid event is offered as dev.cebridge.invalid", async () => {
    const tag = uniqueTag("reject");
    const f = fresh(tag);
    const src = f.make();
    const inbox = new FakeInbox({
      script: (m) => {
        const id = String(m.events[0]!.attributes["id"]);
        if (m.invalid) return { status: "dead_lettered", error: m.invalid };
        return id.endsWith("-0") ? rejectedOutcome() : DELIVERED_OUTCOME;
      },
    });
    await withSource(src, async () => {
      await src.start(inbox);
      await publishToNamespace(emu, f.topic.name, sampleEvents(2, tag));
      // Published raw: an event whose extension name is not a valid CloudEvents name.
      f.topic.publish([{ specversion: "1.0", id: `${tag}-bad`, source: "urn:s", type: "t", "Bad-Name": "x" }]);
      await inbox.waitForSettled(3, 10_000);
      await waitFor(() => f.sub.deadLettered.length === 2 && f.sub.acknowledged.length === 1, 5000);
      const invalid = inbox.offers.find((o) => o.invalid)!;
      assert.equal(invalid.events[0]!.attributes["type"], "dev.cebridge.invalid");
      assert.equal(invalid.events[0]!.attributes["id"], `${tag}-bad`);
      assert.deepEqual(f.sub.deadLettered.map((d) => [d.event["id"], d.reason]).sort(), [[`${tag}-0`, "Rejected"], [`${tag}-bad`, "Rejected"]]);
      await sleep(500);
      assert.equal(inbox.offers.length, 3);
    });
  });

  it("azure_eventgrid_namespace source - a per-token acknowledge failure is retried and nothing comes back", async () => {
    const tag = uniqueTag("partial");
    const f = fresh(tag);
    f.sub.failTokens("acknowledge", 2);
    const src = f.make();
    const inbox = new FakeInbox();
    await withSource(src, async () => {
      await src.start(inbox);
      await publishToNamespace(emu, f.topic.name, sampleEvents(6, tag));
      await inbox.waitForSettled(6);
      await waitFor(() => f.sub.acknowledged.length === 6, 5000, () => JSON.stringify(f.sub.settleCalls));
      assert.ok(f.sub.settleCalls.filter((c) => c.verb === "acknowledge").length >= 2);
      await sleep(2500);
      assert.equal(inbox.offers.length, 6);
    });
  });

  it("azure_eventgrid_namespace source - 8 parallel receivers on a window of 4 never hold more than 4 events", async () => {
    const tag = uniqueTag("par");
    const f = fresh(tag, {}, { receivers: 8 });
    const src = f.make();
    const inbox = new FakeInbox({ capacity: 4, settleDelayMs: 15 });
    await withSource(src, async () => {
      await src.start(inbox);
      await publishToNamespace(emu, f.topic.name, sampleEvents(60, tag));
      await inbox.waitForSettled(60, 30_000);
      assert.ok(inbox.maxInUse <= 4, `peaked at ${inbox.maxInUse}`);
      assert.equal(inbox.refused, 0);
      await waitFor(() => f.sub.acknowledged.length === 60, 5000);
      assert.ok(f.sub.lockedCount === 0);
    });
  });

  it("azure_eventgrid_namespace source - receive failures (503) are retried with backoff: the source reports down, then up again, and loses nothing", async () => {
    const tag = uniqueTag("down");
    const f = fresh(tag);
    const ctx = testContext();
    const src = make(f.cfg, ctx);
    const inbox = new FakeInbox();
    await withSource(src, async () => {
      await src.start(inbox);
      await waitFor(() => ctx.isUp, 5000, "up after the first receive");
      emu.inject({ op: "namespace.receive", topic: f.topic.name, status: 503, count: 3 });
      await waitFor(() => !ctx.isUp, 10_000, "down after repeated 503s");
      await publishToNamespace(emu, f.topic.name, sampleEvents(2, tag));
      await inbox.waitForSettled(2, 15_000);
      assert.deepEqual(ctx.ups, [true, false, true]);
    });
  });

  it("azure_eventgrid_namespace source - per-token results keep the call's order; lost locks are permanent, others transient", () => {
    const r = perTokenResults(["a", "b", "c"], { succeededLockTokens: ["b"], failedLockTokens: [{ lockToken: "c", error: { code: "TokenLost" } }, { lockToken: "a", error: { code: "InternalServerError" } }] }, "acknowledge");
    assert.equal(r[1], undefined);
    assert.equal(r[0]?.retryable, true);
    assert.equal(r[2]?.retryable, false);
    assert.equal(r[2]?.code, "CEB_SETTLE");
  });
});
