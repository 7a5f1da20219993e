import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Window } from "../../../src/engine/window.js";

const never = new AbortController().signal;

describe("engine window", () => {
  test("engine window - one freed slot and two waiters: the first gets it, the second keeps waiting (issue #8)", async () => {
    const w = new Window(2);
    assert.ok(w.tryAcquire(2));
    const got: string[] = [];
    void w.reserve(1, 1, never).then(() => got.push("first"));
    void w.reserve(1, 1, never).then(() => got.push("second"));
    w.release(1);
    await Promise.resolve();
    assert.deepEqual(got, ["first"]);
    assert.equal(w.free, 0, "the slot is held for the first waiter");
    assert.equal(w.tryAcquire(1), false, "an offer cannot take a slot someone waited for");
    w.release(1);
    await Promise.resolve();
    assert.deepEqual(got, ["first", "second"]);
  });

  test("engine window - a reservation takes up to max of what is free; unused slots go back", async () => {
    const w = new Window(10);
    assert.ok(w.tryAcquire(3));
    const n = await w.reserve(1, 100, never);
    assert.equal(n, 7);
    assert.equal(w.free, 0);
    w.useHeld(2);
    assert.equal(w.inFlight, 5);
    w.unhold(5);
    assert.equal(w.free, 5);
    assert.equal(w.reserved, 0);
  });

  test("engine window - waiters are served in order; an aborted waiter stops blocking those behind it", async () => {
    const w = new Window(4);
    assert.ok(w.tryAcquire(4));
    const ac = new AbortController();
    const big = w.reserve(3, 3, ac.signal);
    const got: number[] = [];
    void w.reserve(1, 1, never).then((n) => got.push(n));
    w.release(1);
    await Promise.resolve();
    assert.deepEqual(got, [], "the small request waits behind the big one");
    ac.abort(new Error("stop"));
    await assert.rejects(big, /stop/);
    await Promise.resolve();
    assert.deepEqual(got, [1]);
  });

  test("engine window - a reservation larger than the window is refused at once", async () => {
    await assert.rejects(new Window(2).reserve(3, 3, never), RangeError);
  });
});
