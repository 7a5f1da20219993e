/**
 * AbortWatch: one listener per signal, every watched item told on abort, nothing after delete.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { AbortWatch } from "../../../src/core/abort-watch.js";

/** The abort listeners on `signal`, counted through Node's own inspection of EventTarget. */
function listeners(signal: AbortSignal): number {
  const sym = Object.getOwnPropertySymbols(signal).find((s) => s.description === "kEvents");
  const events = sym ? ((signal as unknown as Record<symbol, Map<string, { size: number }>>)[sym]) : undefined;
  return events?.get("abort")?.size ?? 0;
}

describe("abort watch", () => {
  test("many items on one signal take one listener; an abort reaches each in order, once", () => {
    const told: [number, unknown][] = [];
    const w = new AbortWatch<number>((item, signal) => told.push([item, signal.reason]));
    const ac = new AbortController();
    for (let i = 0; i < 100; i++) w.add(ac.signal, i);
    assert.equal(w.signals, 1);
    assert.equal(listeners(ac.signal), 1);
    w.delete(ac.signal, 5);
    ac.abort("deadline");
    assert.deepEqual(
      told.map(([i]) => i),
      [...Array(100).keys()].filter((i) => i !== 5),
    );
    assert.ok(told.every(([, r]) => r === "deadline"));
    assert.equal(w.signals, 0);
    w.delete(ac.signal, 7); // after the abort: a no-op
  });

  test("the listener goes with the last item; signals are independent", () => {
    const told: string[] = [];
    const w = new AbortWatch<string>((item) => told.push(item));
    const a = new AbortController();
    const b = new AbortController();
    w.add(a.signal, "a1");
    w.add(a.signal, "a2");
    w.add(b.signal, "b1");
    assert.equal(w.signals, 2);
    w.delete(a.signal, "a1");
    w.delete(a.signal, "a1"); // twice: no-op
    assert.equal(listeners(a.signal), 1);
    w.delete(a.signal, "a2");
    assert.equal(listeners(a.signal), 0);
    assert.equal(w.signals, 1);
    a.abort();
    b.abort();
    assert.deepEqual(told, ["b1"]);
  });
});
