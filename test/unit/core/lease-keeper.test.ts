import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { BridgeError, SinkError } from "../../../src/core/errors.js";
import { LeaseKeeper } from "../../../src/core/lease-keeper.js";
import { sleep, waitFor } from "../../support/wait.js";

describe("lease keeper", () => {
  test("lease keeper - extends a held lease before it runs out, in groups, until done", async () => {
    const calls: string[][] = [];
    let now = 0;
    const keeper = new LeaseKeeper<string>({ leaseMs: 120, maxBatch: 2, now: () => now, extend: (hs) => void calls.push([...hs]) });
    const done = ["a", "b", "c"].map((h) => keeper.hold(h));
    await sleep(50);
    assert.deepEqual(calls, [], "nothing to extend while more than the margin remains");
    now = 70; // 50 ms left of 120: inside the default margin of 60
    await waitFor(() => calls.length >= 2, 2_000);
    assert.deepEqual(calls.slice(0, 2), [["a", "b"], ["c"]]);
    done.forEach((d) => d());
    const before = calls.length;
    now = 1_000;
    await sleep(100);
    assert.equal(calls.length, before, "no extension after done");
    assert.equal(keeper.size, 0);
    keeper.close();
  });

  test("lease keeper - keeps extending while the message is held (several leases' worth)", async () => {
    let extensions = 0;
    let now = 0;
    const keeper = new LeaseKeeper<string>({ leaseMs: 80, now: () => now, extend: () => void extensions++ });
    const done = keeper.hold("slow");
    // Five leases' worth of time, in steps the keeper gets to see one by one.
    for (let step = 1; step <= 8; step++) {
      now = step * 50;
      await waitFor(() => extensions >= step, 2_000, () => `extension ${step} of 8`);
    }
    done();
    assert.equal(extensions, 8);
    keeper.close();
  });

  test("lease keeper - a settle racing an extension: the late answer changes nothing, no loss reported", async () => {
    let answer: ((v: void) => void) | undefined;
    let now = 0;
    const lost: string[] = [];
    const keeper = new LeaseKeeper<string>({
      leaseMs: 60,
      now: () => now,
      extend: () => new Promise<void>((r) => (answer = r)),
      onLost: (h) => lost.push(h),
    });
    const done = keeper.hold("m");
    now = 40;
    await waitFor(() => answer !== undefined, 5_000);
    done(); // settled while the extension is in flight
    answer!();
    now = 500; // long past the lease: a lease still kept would be reported lost now
    await sleep(100);
    assert.deepEqual(lost, []);
    assert.equal(keeper.size, 0);
    keeper.close();
  });

  test("lease keeper - a permanent extend failure loses the lease at once; a transient one is retried", async () => {
    const lost: [string, string][] = [];
    let tries = 0;
    const keeper = new LeaseKeeper<string>({
      leaseMs: 200,
      extend: (hs) =>
        hs.map((h) => {
          if (h === "gone") return new SinkError("receipt handle is invalid", false);
          tries++;
          return tries < 3 ? new SinkError("throttled", true) : undefined;
        }),
      onLost: (h, e) => lost.push([h, e.message]),
    });
    const d1 = keeper.hold("gone");
    const d2 = keeper.hold("flaky");
    await waitFor(() => tries >= 3, 2_000);
    assert.deepEqual(lost, [["gone", "receipt handle is invalid"]]);
    assert.equal(keeper.size, 1, "the flaky lease is still kept");
    d1();
    d2();
    keeper.close();
  });

  test("lease keeper - a lease that ran out before it could be extended is reported lost", async () => {
    let now = 0;
    const lost: BridgeError[] = [];
    const keeper = new LeaseKeeper<string>({ leaseMs: 100, now: () => now, extend: () => {}, onLost: (_h, e) => lost.push(e) });
    keeper.hold("m");
    now = 150; // the process stalled past the lease
    await sleep(60);
    assert.equal(lost.length, 1);
    assert.equal(lost[0]!.code, "CEB_LEASE_LOST");
    keeper.close();
  });

  test("lease keeper - stops extending past maxHoldMs and says so", async () => {
    let now = 0;
    const lost: string[] = [];
    const keeper = new LeaseKeeper<string>({ leaseMs: 100, maxHoldMs: 250, now: () => now, extend: () => {}, onLost: (_h, e) => lost.push(e.message) });
    keeper.hold("m");
    for (now = 60; now <= 240; now += 60) await sleep(40);
    assert.equal(lost.length, 1);
    assert.match(lost[0]!, /most the remote allows is 250 ms/);
    keeper.close();
  });
});
