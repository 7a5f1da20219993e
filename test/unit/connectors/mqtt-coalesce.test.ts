/**
 * `coalesceWrites`: what is written between `cork()` and the matching `uncork()` reaches the
 * socket as one write, in order; `end` flushes first; callbacks and the drain signal still work.
 */
import assert from "node:assert/strict";
import { Duplex } from "node:stream";
import { describe, it } from "node:test";
import { coalesceWrites } from "../../../connectors/mqtt/coalesce.js";

function recorder(highWaterMark = 1024): { stream: Duplex; chunks: Buffer[]; ended: () => boolean } {
  const chunks: Buffer[] = [];
  let ended = false;
  const stream = new Duplex({
    highWaterMark,
    read() {},
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      setImmediate(cb);
    },
    final(cb) {
      ended = true;
      cb();
    },
  });
  return { stream, chunks, ended: () => ended };
}

const tick = () => new Promise((r) => setImmediate(r));

describe("mqtt coalesceWrites", () => {
  it("writes everything between cork and the last uncork as one buffer, in order", async () => {
    const { stream, chunks } = recorder();
    coalesceWrites(stream);
    coalesceWrites(stream); // idempotent
    stream.cork();
    stream.write(Buffer.from([1, 2]));
    stream.write("ab");
    stream.cork(); // a second packet in the same turn
    stream.write(new Uint8Array([3]));
    stream.write("é", "utf8");
    process.nextTick(() => stream.uncork());
    process.nextTick(() => stream.uncork());
    await tick();
    assert.equal(chunks.length, 1);
    assert.deepEqual(chunks[0], Buffer.concat([Buffer.from([1, 2]), Buffer.from("ab"), Buffer.from([3]), Buffer.from("é")]));
    // Uncorked writes go straight through.
    stream.write(Buffer.from([9]));
    await tick();
    assert.deepEqual(chunks[1], Buffer.from([9]));
  });

  it("calls every write callback once the coalesced write completes", async () => {
    const { stream } = recorder();
    coalesceWrites(stream);
    const called: number[] = [];
    stream.cork();
    stream.write(Buffer.from([1]), () => called.push(1));
    stream.write("x", "utf8", () => called.push(2));
    assert.deepEqual(called, []);
    stream.uncork();
    await tick();
    await tick();
    assert.deepEqual(called, [1, 2]);
  });

  it("reports the socket's own need to drain, so a drain awaited is one that comes", async () => {
    const { stream } = recorder(4);
    coalesceWrites(stream);
    stream.cork();
    assert.equal(stream.write(Buffer.alloc(100)), true, "nothing is buffered in the socket yet");
    stream.uncork();
    assert.equal(stream.writableNeedDrain, true);
    stream.cork();
    assert.equal(stream.write(Buffer.alloc(1)), false);
    stream.uncork();
    await new Promise((r) => stream.once("drain", r));
  });

  it("an uncork matching a cork from before the takeover uncorks the socket itself", async () => {
    const { stream, chunks } = recorder();
    stream.cork();
    stream.write(Buffer.from([1]));
    coalesceWrites(stream);
    stream.uncork();
    await tick();
    assert.deepEqual(chunks, [Buffer.from([1])]);
    assert.equal(stream.writableCorked, 0);
  });

  it("end flushes what is still corked before ending", async () => {
    const { stream, chunks, ended } = recorder();
    coalesceWrites(stream);
    stream.cork();
    stream.write(Buffer.from([7, 7]));
    stream.end();
    await new Promise((r) => stream.once("finish", r));
    assert.deepEqual(chunks, [Buffer.from([7, 7])]);
    assert.ok(ended());
  });
});
