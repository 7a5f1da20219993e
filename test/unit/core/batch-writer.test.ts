import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BatchWriter, type EntryResult } from "../../../src/core/batch-writer.js";
import { SinkError } from "../../../src/core/errors.js";

/** A transport that records each call and answers with a scripted result per entry. */
function recorder(answer: (entry: string) => EntryResult | Promise<never> = () => undefined, gate?: Promise<void>) {
  const calls: string[][] = [];
  const signals: AbortSignal[] = [];
  return {
    calls,
    signals,
    size: (e: string) => e.length,
    async send(entries: readonly string[], signal: AbortSignal): Promise<readonly EntryResult[]> {
      calls.push([...entries]);
      signals.push(signal);
      if (gate) await gate;
      const results: EntryResult[] = [];
      for (const e of entries) {
        const r = answer(e);
        if (r instanceof Promise) await r;
        results.push(r as EntryResult);
      }
      return results;
    },
  };
}

const never = new AbortController().signal;

describe("batch writer", () => {
  test("batch writer - concurrent writes share one call; each settles with its own entry's result", async () => {
    const t = recorder((e) => (e === "bad" ? new SinkError("refused", false) : e === "slow" ? new SinkError("throttled", true) : undefined));
    const w = new BatchWriter({ maxEntries: 10, maxBytes: 1000, lingerMs: 5 }, t);
    const results = await Promise.allSettled(["a", "bad", "b", "slow"].map((e) => w.write(e, never)));
    assert.deepEqual(t.calls, [["a", "bad", "b", "slow"]]);
    assert.deepEqual(results.map((r) => r.status), ["fulfilled", "rejected", "fulfilled", "rejected"]);
    assert.equal(((results[1] as PromiseRejectedResult).reason as SinkError).retryable, false);
    assert.equal(((results[3] as PromiseRejectedResult).reason as SinkError).retryable, true);
  });

  test("batch writer - a batch is cut at maxEntries and at maxBytes", async () => {
    const t = recorder();
    const w = new BatchWriter({ maxEntries: 3, maxBytes: 10, lingerMs: 5 }, t);
    await Promise.all(["aaaa", "bbbb", "cccc", "d", "e", "f", "g"].map((e) => w.write(e, never)));
    // 4+4 fits 10 bytes, +4 would not; then d,e,f hits 3 entries; g alone.
    assert.deepEqual(t.calls, [["aaaa", "bbbb"], ["cccc", "d", "e"], ["f", "g"]]);
  });

  test("batch writer - an entry larger than maxBytes is refused at once, for good, naming size and limit", async () => {
    const t = recorder();
    const w = new BatchWriter({ maxEntries: 10, maxBytes: 4, lingerMs: 5 }, t);
    await assert.rejects(w.write("too-long", never), (err: SinkError) => {
      assert.equal(err.code, "CEB_TOO_LARGE");
      assert.equal(err.retryable, false);
      assert.match(err.message, /8 bytes, over the limit of 4 bytes/);
      return true;
    });
    assert.equal(t.calls.length, 0);
  });

  test("batch writer - an entry aborted before its batch leaves is not sent", async () => {
    const t = recorder();
    const w = new BatchWriter({ maxEntries: 10, maxBytes: 1000, lingerMs: 30 }, t);
    const ac = new AbortController();
    const gone = w.write("gone", ac.signal);
    const kept = w.write("kept", never);
    ac.abort(new Error("deadline"));
    await assert.rejects(gone, /deadline/);
    await kept;
    assert.deepEqual(t.calls, [["kept"]]);
  });

  test("batch writer - the call's signal aborts only once every entry of the batch was given up", async () => {
    let open!: () => void;
    const t = recorder(undefined, new Promise<void>((r) => (open = r)));
    const w = new BatchWriter({ maxEntries: 2, maxBytes: 1000, lingerMs: 5 }, t);
    const a = new AbortController();
    const b = new AbortController();
    const pa = w.write("a", a.signal);
    const pb = w.write("b", b.signal);
    await new Promise((r) => setImmediate(r));
    assert.equal(t.calls.length, 1);
    a.abort(new Error("a gone"));
    assert.equal(t.signals[0]!.aborted, false);
    b.abort(new Error("b gone"));
    assert.equal(t.signals[0]!.aborted, true);
    await assert.rejects(pa, /a gone/);
    await assert.rejects(pb, /b gone/);
    open();
  });

  test("batch writer - a throwing call fails every entry of that batch with its error", async () => {
    const t = {
      size: (e: string) => e.length,
      async send(): Promise<readonly EntryResult[]> {
        throw new SinkError("connection reset", true);
      },
    };
    const w = new BatchWriter({ maxEntries: 10, maxBytes: 1000, lingerMs: 1 }, t);
    const results = await Promise.allSettled(["a", "b"].map((e) => w.write(e, never)));
    for (const r of results) assert.match(String((r as PromiseRejectedResult).reason), /connection reset/);
  });

  test("batch writer - at most maxConcurrent calls in flight; what queued meanwhile leaves next", async () => {
    let inFlight = 0;
    let peak = 0;
    const calls: string[][] = [];
    const w = new BatchWriter(
      { maxEntries: 2, maxBytes: 1000, lingerMs: 1, maxConcurrent: 2 },
      {
        size: (e: string) => e.length,
        async send(entries) {
          calls.push([...entries]);
          peak = Math.max(peak, ++inFlight);
          await new Promise((r) => setTimeout(r, 10));
          inFlight--;
          return entries.map(() => undefined);
        },
      },
    );
    await Promise.all(["1", "2", "3", "4", "5", "6", "7"].map((e) => w.write(e, never)));
    assert.equal(peak, 2);
    assert.deepEqual(calls.flat(), ["1", "2", "3", "4", "5", "6", "7"]);
  });

  test("batch writer - a short result list fails the entries it left out", async () => {
    const w = new BatchWriter(
      { maxEntries: 10, maxBytes: 1000, lingerMs: 1 },
      { size: (e: string) => e.length, send: async () => [undefined] },
    );
    const [a, b] = await Promise.allSettled([w.write("a", never), w.write("b", never)]);
    assert.equal(a!.status, "fulfilled");
    assert.equal(b!.status, "rejected");
  });

  test("batch writer - close flushes what lingers, waits for it, then refuses writes", async () => {
    const t = recorder();
    const w = new BatchWriter({ maxEntries: 10, maxBytes: 1000, lingerMs: 60_000 }, t);
    const p = w.write("late", never);
    await w.close();
    await p;
    assert.deepEqual(t.calls, [["late"]]);
    await assert.rejects(w.write("after", never), { code: "CEB_NOT_CONNECTED" });
  });
});
