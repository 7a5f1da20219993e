import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { SinkError } from "../../../src/core/errors.js";
import type { ErroredOutcome, ReleaseReason } from "../../../src/core/outcome.js";
import { EVENT_GRID_RELEASE_DELAYS_MS, releaseDelay } from "../../../src/core/release-delay.js";

function errored(release: ReleaseReason = "retries_spent", retryAfterMs?: number): ErroredOutcome {
  return { status: "errored", error: new SinkError("x", true), release, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
}

describe("release delay", () => {
  test("release delay - base·2^(n-1) capped at max; unknown count is the first delivery", () => {
    assert.equal(releaseDelay(errored(), 1), 1000);
    assert.equal(releaseDelay(errored(), 3), 4000);
    assert.equal(releaseDelay(errored(), 50), 30_000);
    assert.equal(releaseDelay(errored(), undefined), 1000);
    assert.equal(releaseDelay(errored(), 2, { baseMs: 500, maxMs: 800 }), 800);
  });

  test("release delay - Retry-After is honoured up to five minutes; none at shutdown", () => {
    assert.equal(releaseDelay(errored("retries_spent", 2500), 9), 2500);
    assert.equal(releaseDelay(errored("retries_spent", 3_600_000), 1), 300_000);
    assert.equal(releaseDelay(errored("shutdown", 2500), 3), 0);
  });

  test("release delay - allowed values: rounded up, never sooner than asked; the largest above all", () => {
    const allowedMs = EVENT_GRID_RELEASE_DELAYS_MS;
    assert.equal(releaseDelay(errored(), 1, { allowedMs }), 10_000);
    assert.equal(releaseDelay(errored(), 5, { allowedMs }), 60_000); // 16 s → 60 s
    assert.equal(releaseDelay(errored("shutdown"), 5, { allowedMs }), 0);
    assert.equal(releaseDelay(errored("retries_spent", 7_200_000), 1, { allowedMs, maxMs: 7_200_000 }), 3_600_000);
  });
});
