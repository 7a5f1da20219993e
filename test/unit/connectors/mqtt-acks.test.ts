/**
 * `PubackLine`: PUBACKs in arrival order, only for settled places, one write per turn; a withheld
 * place is skipped and, once every place settled, the line hangs up.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { PubackLine } from "../../../connectors/mqtt/acks.js";

function sink(): { stream: Writable; writes: number[][] } {
  const writes: number[][] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      const ids: number[] = [];
      for (let o = 0; o < chunk.length; o += 4) {
        assert.equal(chunk[o], 0x40);
        assert.equal(chunk[o + 1], 2);
        ids.push(chunk.readUInt16BE(o + 2));
      }
      writes.push(ids);
      cb();
    },
  });
  return { stream, writes };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("mqtt PubackLine", () => {
  it("acknowledges the settled prefix in arrival order, batched per turn", async () => {
    const { stream, writes } = sink();
    let hungUp = 0;
    const line = new PubackLine(stream, () => hungUp++, () => {});
    const p = [10, 11, 12, 13, 65535].map((id) => line.take(id));
    line.ready(p[1]!);
    line.ready(p[2]!);
    await turn();
    assert.deepEqual(writes, [], "11 and 12 wait for 10");
    line.ready(p[0]!);
    line.ready(p[4]!);
    await turn();
    assert.deepEqual(writes, [[10, 11, 12]]);
    line.ready(p[3]!);
    line.ready(p[3]!); // a second settle is ignored
    await turn();
    assert.deepEqual(writes, [[10, 11, 12], [13, 65535]]);
    assert.equal(hungUp, 0);
  });

  it("skips a withheld place, takes no new one, and hangs up after the due PUBACKs once all settled", async () => {
    const { stream, writes } = sink();
    let hungUp = 0;
    const line = new PubackLine(stream, () => hungUp++, () => {});
    const p = [1, 2, 3, 4].map((id) => line.take(id));
    line.ready(p[0]!);
    line.withhold(p[1]!);
    assert.equal(line.open, false);
    line.ready(p[3]!);
    await turn();
    assert.equal(hungUp, 0, "3 is still open");
    line.ready(p[2]!);
    await turn();
    assert.deepEqual(writes.flat(), [1, 3, 4]);
    assert.equal(hungUp, 1);
  });

  it("writes nothing once discarded", async () => {
    const { stream, writes } = sink();
    const line = new PubackLine(stream, () => {}, () => {});
    const a = line.take(5);
    line.discard();
    line.ready(a);
    line.flush();
    await turn();
    assert.deepEqual(writes, []);
  });
});
