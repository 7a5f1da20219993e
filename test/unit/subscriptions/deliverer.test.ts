/**
 * A subscription's queue and deliverer with an in-memory sink: the window is never exceeded, the
 * queue is bounded (a full one refuses), order is kept, transient failures are retried and
 * permanent ones dead-lettered, nothing is taken while paused, and an abort after a delete counts
 * the cut-off deliveries as unsubscribed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CloudEvent } from "../../../src/cloudevents/index.js";
import { BridgeError, SinkError } from "../../../src/core/errors.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Sink } from "../../../src/core/sink.js";
import { Deliverer, type DeliveryReports } from "../../../src/subscriptions/deliverer.js";
import { makeQueue } from "../../../src/subscriptions/queues.js";
import { sampleEvents } from "../../support/events.js";
import { waitFor } from "../../support/wait.js";

class TestSink implements Sink {
  readonly guarantee = "confirmed" as const;
  inFlight = 0;
  maxInFlight = 0;
  written: string[] = [];
  /** Pending writes, resolved by the test. */
  held: { id: string; done: (err?: Error) => void }[] = [];
  hold = false;
  failWith: ((id: string, attempt: number) => Error | undefined) | undefined;
  private attempts = new Map<string, number>();
  async open(): Promise<void> {}
  async close(): Promise<void> {}
  write(event: CloudEvent, signal: AbortSignal): Promise<void> {
    const id = String(event.attributes["id"]);
    const attempt = (this.attempts.get(id) ?? 0) + 1;
    this.attempts.set(id, attempt);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise<void>((resolve, reject) => {
      const done = (err?: Error) => {
        this.inFlight--;
        if (err) return reject(err);
        this.written.push(id);
        resolve();
      };
      signal.addEventListener("abort", () => done(signal.reason as Error), { once: true });
      const failure = this.failWith?.(id, attempt);
      if (failure) return done(failure);
      if (this.hold) this.held.push({ id, done });
      else setImmediate(() => done());
    });
  }
}

function reports() {
  const r = { delivered: 0, failed: [] as { code: string; deadLettered: boolean }[], retried: 0, unsubscribed: 0, gone: 0 };
  const cb: DeliveryReports = {
    delivered: () => r.delivered++,
    failed: (e: BridgeError, dl: boolean) => r.failed.push({ code: e.code, deadLettered: dl }),
    retried: () => r.retried++,
    unsubscribed: () => r.unsubscribed++,
    gone: () => r.gone++,
  };
  return { r, cb };
}

const retry = { initial: 5, max: 20, max_elapsed: 200 };
const msg = (e: CloudEvent) => ({ events: [e], settle: () => undefined });

describe("subscriptions - queue and deliverer", () => {
  test("the window is never exceeded, order holds, and a full queue refuses", async () => {
    const sink = new TestSink();
    sink.hold = true;
    const { r, cb } = reports();
    const d = new Deliverer({ subscriptionId: "s", route: "r", window: 3, retry, timeoutMs: 5000, deadLetter: () => undefined }, cb, silentLogger);
    const q = makeQueue({ type: "memory", max_bytes: 2000 }, d, "", silentLogger);
    d.resume(sink);
    const evs = sampleEvents(40, "w");
    const accepted = evs.filter((e) => q.offer(msg(e)));
    assert.ok(accepted.length < evs.length, "the queue filled up and refused");
    assert.ok(q.reading().bytes <= 2000);
    while (sink.written.length < accepted.length) {
      await waitFor(() => sink.held.length > 0, 2000);
      assert.ok(sink.maxInFlight <= 3, `in flight ${sink.maxInFlight}`);
      sink.held.shift()!.done();
    }
    assert.deepEqual(sink.written, accepted.map((e) => String(e.attributes["id"])));
    await waitFor(() => r.delivered === accepted.length, 2000, () => `${r.delivered} reported`);
    assert.equal(sink.maxInFlight, 3);
  });

  test("transient failures are retried; permanent ones (and spent retries) dead-lettered", async () => {
    const sink = new TestSink();
    const dl = new TestSink();
    sink.failWith = (id, attempt) => (id === "f-0" && attempt < 3 ? new SinkError("flaky", true) : id === "f-1" ? new SinkError("no", false) : id === "f-2" ? new SinkError("down", true) : undefined);
    const { r, cb } = reports();
    const d = new Deliverer({ subscriptionId: "s", route: "r", window: 4, retry, timeoutMs: 5000, deadLetter: () => ({ id: "dlq", sink: dl }) }, cb, silentLogger);
    const q = makeQueue({ type: "memory", max_bytes: 1 << 20 }, d, "", silentLogger);
    d.resume(sink);
    for (const e of sampleEvents(4, "f")) q.offer(msg(e));
    await waitFor(() => r.delivered + r.failed.length === 4, 5000);
    assert.deepEqual(sink.written.sort(), ["f-0", "f-3"]);
    assert.ok(r.retried >= 2);
    assert.deepEqual(r.failed.map((f) => f.code).sort(), ["CEB_RETRIES_EXHAUSTED", "CEB_SINK_PERMANENT"]);
    assert.ok(r.failed.every((f) => f.deadLettered));
    assert.deepEqual(dl.written.sort(), ["f-1", "f-2"]);
  });

  test("nothing is taken while paused; an abort after a delete counts what it cut off", async () => {
    const sink = new TestSink();
    sink.hold = true;
    const { r, cb } = reports();
    const d = new Deliverer({ subscriptionId: "s", route: "r", window: 2, retry, timeoutMs: 5000, deadLetter: () => undefined }, cb, silentLogger);
    const q = makeQueue({ type: "memory", max_bytes: 1 << 20 }, d, "", silentLogger);
    for (const e of sampleEvents(5, "p")) assert.ok(q.offer(msg(e)));
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(sink.inFlight, 0, "not resumed yet: nothing delivered");
    assert.equal(q.reading().events, 5);
    d.resume(sink);
    await waitFor(() => sink.inFlight === 2, 2000);
    d.markDeleted();
    q.stopAccepting();
    await q.close();
    d.abort();
    await d.drain();
    assert.equal(r.unsubscribed, 2);
    assert.equal(r.delivered, 0);
    assert.equal(q.offer(msg(sampleEvents(1, "late")[0]!)), false);
  });
});
