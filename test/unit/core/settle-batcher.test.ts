import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EntryResult } from "../../../src/core/batch-writer.js";
import { SinkError } from "../../../src/core/errors.js";
import { silentLogger, type Logger } from "../../../src/core/logger.js";
import { SettleBatcher } from "../../../src/core/settle-batcher.js";
import { sleep } from "../../support/wait.js";

type Call = { verb: string; handles: string[]; delayMs: number };

function logger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentLogger, warnings, warn: (_o: object, msg?: string) => void warnings.push(msg ?? ""), child: () => logger() };
}

describe("settle batcher", () => {
  test("settle batcher - settles of one turn are grouped by verb and delay, cut at maxBatch", async () => {
    const calls: Call[] = [];
    const b = new SettleBatcher<string>({ apply: (verb, handles, delayMs) => void calls.push({ verb, handles: [...handles], delayMs }) }, { maxBatch: 2, log: silentLogger });
    b.settle("delete", "1");
    b.settle("release", "2", 10_000);
    b.settle("delete", "3");
    b.settle("delete", "4");
    b.settle("release", "5", 10_000);
    b.settle("release", "6", 0);
    assert.equal(calls.length, 0, "nothing leaves before the end of the turn");
    await b.close();
    assert.deepEqual(calls, [
      { verb: "delete", handles: ["1", "3"], delayMs: 0 },
      { verb: "delete", handles: ["4"], delayMs: 0 },
      { verb: "release", handles: ["2", "5"], delayMs: 10_000 },
      { verb: "release", handles: ["6"], delayMs: 0 },
    ]);
    assert.equal(b.pending, 0);
  });

  test("settle batcher - oneVerbPerTurn never sends two kinds of settle in one turn", async () => {
    const turns: string[][] = [];
    let current: string[] | undefined;
    const b = new SettleBatcher<string>(
      {
        apply: (verb) => {
          if (!current) {
            current = [];
            turns.push(current);
            // Runs once the current callback returns, before the next turn's callbacks.
            process.nextTick(() => (current = undefined));
          }
          current.push(verb);
        },
      },
      { maxBatch: 100, oneVerbPerTurn: true, log: silentLogger },
    );
    b.settle("accept", "1");
    b.settle("release", "2");
    b.settle("accept", "3");
    await b.close();
    assert.deepEqual(turns, [["accept"], ["release"]]);
  });

  test("settle batcher - only the entries that failed transiently are tried again", async () => {
    const calls: string[][] = [];
    let round = 0;
    const b = new SettleBatcher<string>(
      {
        async apply(_verb, handles): Promise<readonly EntryResult[]> {
          calls.push([...handles]);
          round++;
          return handles.map((h) => (h === "t" && round === 1 ? new SinkError("throttled", true) : undefined));
        },
      },
      { maxBatch: 10, log: silentLogger },
    );
    b.settle("delete", "a");
    b.settle("delete", "t");
    await b.close();
    assert.deepEqual(calls, [["a", "t"], ["t"]]);
  });

  test("settle batcher - a permanent failure, or one past the attempts, is logged and not retried", async () => {
    const log = logger();
    let calls = 0;
    const b = new SettleBatcher<string>(
      {
        async apply(_v, handles) {
          calls++;
          return handles.map((h) => (h === "p" ? new SinkError("ReceiptHandleIsInvalid", false) : new SinkError("down", true)));
        },
      },
      { maxBatch: 10, attempts: 2, log },
    );
    b.settle("delete", "p");
    b.settle("delete", "t");
    await b.close();
    assert.equal(calls, 2, "one call, then one retry of the transient entry");
    assert.equal(log.warnings.length, 2);
    assert.equal(b.pending, 0);
  });

  test("settle batcher - close waits for settles in flight", async () => {
    let finished = false;
    const b = new SettleBatcher<string>(
      {
        async apply() {
          await sleep(50);
          finished = true;
        },
      },
      { maxBatch: 10, log: silentLogger },
    );
    b.settle("ack", "1");
    await b.close();
    assert.equal(finished, true);
  });

  test("settle batcher - close stops waiting at its deadline and says what is left", async () => {
    const log = logger();
    const b = new SettleBatcher<string>({ apply: () => new Promise(() => {}) }, { maxBatch: 10, log });
    b.settle("ack", "1");
    const started = Date.now();
    const deadline = new AbortController();
    setTimeout(() => deadline.abort(), 50);
    await b.close(deadline.signal);
    assert.ok(Date.now() - started < 1_000);
    assert.equal(b.pending, 1);
    assert.match(log.warnings[0]!, /deadline passed with settles still pending/);
  });

  test("settle batcher - a throwing apply fails the whole group with its error", async () => {
    let calls = 0;
    const b = new SettleBatcher<string>(
      {
        apply() {
          calls++;
          throw new SinkError("socket closed", true);
        },
      },
      { maxBatch: 10, attempts: 3, log: silentLogger },
    );
    b.settle("ack", "1");
    b.settle("ack", "2");
    await b.close();
    assert.equal(calls, 3);
  });
});
