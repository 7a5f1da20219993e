/**
 * Shared conformance suites: every source and sink connector's integration test calls these with a
 * harness that knows how to publish natively and read back. Modelled on Benthos'
 * StreamTestAtLeastOnceDelivery: open/close, N in order, redelivery after errored, redelivery after a
 * crash, partial failure, and a window that is never exceeded.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { TemplateError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import type { Source } from "../../src/core/source.js";
import { assertSameEvent, byId, sampleEvents } from "./events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome } from "./fake-inbox.js";
import { sleep, waitFor } from "./wait.js";

let caseCounter = 0;
/** A unique tag per case, usable in subjects, topics, stream and client names. */
export function uniqueTag(prefix = "c"): string {
  caseCounter++;
  return `${prefix}${process.pid}x${caseCounter}x${Math.floor(Math.random() * 1e6)}`;
}

export interface SourceCase {
  /** A new source instance; every call uses the same configuration (same durable, client id...). */
  make(): Source;
  /** Publishes the events natively, in order; resolves once the broker accepted them. */
  publish(events: readonly CloudEvent[]): Promise<void>;
  cleanup?(): Promise<void>;
}

export interface SourceHarness {
  /**
   * A fresh, isolated configuration (new subject, stream, topic, client id) for one case. With
   * `parallelism`, the source should run that many connections or concurrent pulls where it can
   * (MQTT `connections`, parallel SQS receivers); a source with one puller ignores it.
   */
  fresh(tag: string, opts?: { readonly parallelism?: number }): Promise<SourceCase>;
  /** Whether the source redelivers (false for core NATS: at most once). */
  readonly redelivers: boolean;
  /** Whether the source can pause (waits for room) or drops on a full window. */
  readonly pausable: boolean;
  /** Whether the source reports `deliveryCount`. */
  readonly reportsDeliveryCount?: boolean;
  /** Time allowed for a redelivery to arrive. Default 15 s. */
  readonly redeliveryTimeoutMs?: number;
  /** How long "nothing more arrives" is observed. Default 1 s. */
  readonly quietMs?: number;
}

function idOf(key: string): string {
  return key.slice(key.lastIndexOf(" ") + 1);
}

function countOf(inbox: FakeInbox, id: string): number {
  return inbox.keys.filter((k) => idOf(k) === id).length;
}

async function withSource<T>(src: Source, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    await src.close();
  }
}

export function sourceConformance(name: string, h: SourceHarness): void {
  const redeliveryTimeout = h.redeliveryTimeoutMs ?? 15_000;
  const quiet = h.quietMs ?? 1000;

  describe(`${name} source conformance`, { timeout: 90_000 }, () => {
    it(`${name} source - starts, stops and closes; stop and close are idempotent`, async () => {
      const tag = uniqueTag();
      const c = await h.fresh(tag);
      const src = c.make();
      const inbox = new FakeInbox();
      await src.start(inbox);
      await src.stop();
      await src.stop();
      await src.close();
      await src.close();
      // close without start or stop is fine too
      await c.make().close();
      await c.cleanup?.();
    });

    it(`${name} source - delivers N messages in publish order`, async () => {
      const tag = uniqueTag();
      const c = await h.fresh(tag);
      const src = c.make();
      const inbox = new FakeInbox();
      await withSource(src, async () => {
        await src.start(inbox);
        const evs = sampleEvents(25, tag);
        await c.publish(evs);
        await inbox.waitForSettled(25);
        assert.deepEqual(inbox.keys.map(idOf), evs.map((e) => e.attributes["id"]));
        const got = byId(inbox.offers.map((o) => o.events[0]!));
        for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e, { stringly: true });
        assert.equal(inbox.doubleSettles, 0);
        await sleep(quiet);
        assert.equal(inbox.offers.length, 25, "no message may come twice after delivered");
      });
      await c.cleanup?.();
    });

    if (h.redelivers) {
      it(`${name} source - redelivers a message settled errored`, async () => {
        const tag = uniqueTag();
        const c = await h.fresh(tag);
        const src = c.make();
        const target = `${tag}-2`;
        const inbox = new FakeInbox({
          script: (_m, info) => (idOf(info.key) === target && info.seen === 1 ? erroredOutcome() : DELIVERED_OUTCOME),
        });
        await withSource(src, async () => {
          await src.start(inbox);
          const evs = sampleEvents(5, tag);
          await c.publish(evs);
          await waitFor(() => inbox.keys.filter((k) => idOf(k) === target).length >= 2, redeliveryTimeout, "redelivery of the errored message");
          await waitFor(() => evs.every((e) => inbox.keys.some((k) => idOf(k) === e.attributes["id"])), redeliveryTimeout, "all messages");
          if (h.reportsDeliveryCount) {
            const counts = inbox.offers.filter((o) => o.events[0]!.attributes["id"] === target).map((o) => o.deliveryCount);
            assert.deepEqual(counts, [1, 2]);
          }
          await sleep(quiet);
          for (const e of evs) {
            const id = String(e.attributes["id"]);
            const n = inbox.keys.filter((k) => idOf(k) === id).length;
            assert.equal(n, id === target ? 2 : 1, `deliveries of ${id}`);
          }
        });
        await c.cleanup?.();
      });

      it(`${name} source - redelivers unsettled messages after a crash`, async () => {
        const tag = uniqueTag();
        const c = await h.fresh(tag);
        const evs = sampleEvents(5, tag);
        const first = c.make();
        const holding = new FakeInbox({ script: () => "hold" });
        await first.start(holding);
        await c.publish(evs);
        await holding.waitForOffers(1);
        await sleep(200);
        // Crash: close without settling anything.
        await first.close();

        const second = c.make();
        const inbox = new FakeInbox();
        await withSource(second, async () => {
          await second.start(inbox);
          await waitFor(
            () => evs.every((e) => inbox.keys.some((k) => idOf(k) === e.attributes["id"])),
            redeliveryTimeout,
            () => `after the crash got ${inbox.keys.map(idOf).join(",")}`,
          );
        });
        await c.cleanup?.();
      });

      it(`${name} source - after a partial failure only the errored messages come back`, async () => {
        const tag = uniqueTag();
        const c = await h.fresh(tag);
        const src = c.make();
        const evs = sampleEvents(10, tag);
        const failing = new Set(evs.filter((_, i) => i % 3 === 1).map((e) => String(e.attributes["id"])));
        const inbox = new FakeInbox({
          script: (_m, info) => (failing.has(idOf(info.key)) && info.seen === 1 ? erroredOutcome() : DELIVERED_OUTCOME),
        });
        await withSource(src, async () => {
          await src.start(inbox);
          await c.publish(evs);
          await waitFor(
            () => evs.every((e) => countOf(inbox, String(e.attributes["id"])) >= (failing.has(String(e.attributes["id"])) ? 2 : 1)),
            redeliveryTimeout * 2,
            () => `got ${inbox.keys.map(idOf).join(",")}`,
          );
          await sleep(quiet);
          for (const e of evs) {
            const id = String(e.attributes["id"]);
            const n = inbox.keys.filter((k) => idOf(k) === id).length;
            assert.equal(n, failing.has(id) ? 2 : 1, `deliveries of ${id}`);
          }
        });
        await c.cleanup?.();
      });
    }

    if (h.pausable) {
      it(`${name} source - more connections or parallel pulls than the window: every message arrives, none refused`, async () => {
        // Issue #8: four waiters on a window of two, each freed slot woke them all and the losers'
        // offers were refused, leaving their messages neither settled nor released.
        const tag = uniqueTag();
        const c = await h.fresh(tag, { parallelism: 4 });
        const src = c.make();
        const capacity = 2;
        const inbox = new FakeInbox({ capacity, settleDelayMs: 150 });
        await withSource(src, async () => {
          await src.start(inbox);
          const evs = sampleEvents(24, tag);
          await c.publish(evs);
          // 24 messages, two at a time, 150 ms each: about 2 s when no slot is ever wasted.
          await inbox.waitForSettled(24, 20_000);
          assert.equal(inbox.refused, 0, "no offer was refused for lack of room");
          assert.ok(inbox.maxInUse <= capacity, `in flight peaked at ${inbox.maxInUse} > window ${capacity}`);
          assert.deepEqual(new Set(inbox.keys.map(idOf)), new Set(evs.map((e) => String(e.attributes["id"]))));
          assert.equal(inbox.doubleSettles, 0);
        });
        await c.cleanup?.();
      });
    }

    it(`${name} source - never exceeds the window`, async () => {
      const tag = uniqueTag();
      const c = await h.fresh(tag);
      const src = c.make();
      const capacity = 4;
      const inbox = new FakeInbox({ capacity, settleDelayMs: 20 });
      await withSource(src, async () => {
        await src.start(inbox);
        const evs = sampleEvents(40, tag);
        await c.publish(evs);
        if (h.pausable) {
          await inbox.waitForSettled(40, 30_000);
          assert.equal(inbox.refused, 0, "a pausable source waits for room instead of offering into a full window");
        } else {
          // A source that cannot pause drops what does not fit and says so.
          await waitFor(() => inbox.settlements.length + inbox.refused >= 40, 30_000, () => `settled ${inbox.settlements.length}, refused ${inbox.refused}`);
        }
        assert.ok(inbox.maxInUse <= capacity, `in flight peaked at ${inbox.maxInUse} > window ${capacity}`);
        assert.equal(inbox.doubleSettles, 0);
      });
      await c.cleanup?.();
    });
  });
}

export interface SinkCase {
  make(): Sink;
  /** Starts reading what the sink writes, decoded to CloudEvents, in arrival order. */
  reader(): Promise<{ readonly events: CloudEvent[]; close(): Promise<void> }>;
  /** An event the sink must refuse permanently (e.g. lacks the attribute its subject template needs). */
  readonly unroutable?: CloudEvent;
  cleanup?(): Promise<void>;
}

export interface SinkHarness {
  fresh(tag: string): Promise<SinkCase>;
  /** Attribute values compared as strings (binary modes carry no JSON types). */
  readonly stringly?: boolean;
}

export function sinkConformance(name: string, h: SinkHarness): void {
  describe(`${name} sink conformance`, { timeout: 60_000 }, () => {
    it(`${name} sink - opens and closes; close is idempotent`, async () => {
      const c = await h.fresh(uniqueTag());
      const sink = c.make();
      await sink.open();
      await sink.close();
      await sink.close();
      await c.cleanup?.();
    });

    it(`${name} sink - writes N concurrent events that arrive intact`, async () => {
      const tag = uniqueTag();
      const c = await h.fresh(tag);
      const reader = await c.reader();
      const sink = c.make();
      try {
        await sink.open();
        const evs = sampleEvents(50, tag);
        await Promise.all(evs.map((e) => sink.write(e, AbortSignal.timeout(15_000))));
        await waitFor(() => reader.events.length >= 50, 10_000, () => `read ${reader.events.length} of 50`);
        const got = byId(reader.events);
        for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e, { stringly: h.stringly ?? false });
      } finally {
        await sink.close();
        await reader.close();
        await c.cleanup?.();
      }
    });

    it(`${name} sink - rejects a write whose signal is already aborted`, async () => {
      const c = await h.fresh(uniqueTag());
      const sink = c.make();
      try {
        await sink.open();
        const ac = new AbortController();
        ac.abort(new Error("deadline"));
        await assert.rejects(sink.write(sampleEvents(1, "x")[0]!, ac.signal));
      } finally {
        await sink.close();
        await c.cleanup?.();
      }
    });

    it(`${name} sink - a permanent failure of one event leaves the others delivered`, async (t) => {
      const tag = uniqueTag();
      const c = await h.fresh(tag);
      if (!c.unroutable) {
        t.skip("this harness has no unroutable event");
        return;
      }
      const reader = await c.reader();
      const sink = c.make();
      try {
        await sink.open();
        const evs = sampleEvents(6, tag);
        const results = await Promise.allSettled([...evs, c.unroutable].map((e) => sink.write(e, AbortSignal.timeout(15_000))));
        results.slice(0, 6).forEach((r, i) => assert.equal(r.status, "fulfilled", `event ${i}`));
        const bad = results[6]!;
        assert.equal(bad.status, "rejected");
        const err = (bad as PromiseRejectedResult).reason as { retryable?: boolean };
        assert.ok(err instanceof TemplateError || err.retryable === false, "the failure is permanent");
        await waitFor(() => reader.events.length >= 6, 10_000);
        await sleep(200);
        assert.equal(reader.events.length, 6);
      } finally {
        await sink.close();
        await reader.close();
        await c.cleanup?.();
      }
    });
  });
}
