/**
 * The segment scan on crafted files: records larger than its read chunk, the record magic inside
 * payloads, damage at the start, in the middle, across a chunk boundary and at the end. And a disk
 * that fills up (a small tmpfs, where the test may mount one).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import { ackEntry, HEADER_BYTES, MAGIC_BYTES, readAcks, recordHeader } from "../../../src/engine/buffer/disk/record.js";
import { scanSegment } from "../../../src/engine/buffer/disk/scan.js";
import type { DiskBuffer } from "../../../src/engine/buffer/disk/disk-buffer.js";
import { createBuffer } from "../../../src/engine/buffer/index.js";
import { Route } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { newRouteState } from "../../../src/observability/status.js";
import { waitFor } from "../../support/wait.js";
import { gatedSink } from "./buffer-support.js";

const root = mkdtempSync(join(tmpdir(), "cebridge-scan-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Records whose payloads are `sizes` bytes, each filled with its index and seeded with the magic. */
function build(sizes: number[]): { file: Buffer; offsets: number[] } {
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  sizes.forEach((n, i) => {
    const payload = Buffer.alloc(n, i + 1);
    // The magic inside a payload must not fool the scan.
    if (n > 16) MAGIC_BYTES.copy(payload, 8);
    offsets.push(at);
    const h = recordHeader(payload, 1_700_000_000_000 + i);
    parts.push(h, payload);
    at += h.length + n;
  });
  return { file: Buffer.concat(parts), offsets };
}

async function scan(bytes: Buffer, acked: Set<number> = new Set()) {
  const path = join(root, `s${Math.random().toString(36).slice(2)}.seg`);
  writeFileSync(path, bytes);
  const fh = await open(path, "r");
  try {
    return await scanSegment(fh, bytes.length, acked);
  } finally {
    await fh.close();
  }
}

describe("engine buffer - segment scan", () => {
  test("scan - intact records (some larger than the 1 MiB read chunk, magic inside payloads) are all found; acknowledged ones are left out", async () => {
    const sizes = [10, 700_000, 900_000, 1_500_000, 3, 0, 400_000];
    const { file, offsets } = build(sizes);
    const all = await scan(file);
    assert.deepEqual(all.offsets, offsets);
    assert.deepEqual(all.regions, []);
    assert.equal(all.firstTime, 1_700_000_000_000);
    const some = await scan(file, new Set([offsets[0]!, offsets[3]!]));
    assert.deepEqual(some.offsets, offsets.filter((_, i) => i !== 0 && i !== 3));
    assert.equal(some.firstTime, 1_700_000_000_001);
  });

  test("scan - damage at the start, in a record straddling a chunk boundary, and in a header is reported region by region; the records after each are found", async () => {
    const sizes = [100, 200, 600_000, 600_000, 300, 50, 60];
    const { file, offsets } = build(sizes);
    const bad = Buffer.from(file);
    bad[offsets[0]! + 1] = bad[offsets[0]! + 1]! ^ 0xff; // magic of record 0
    bad[offsets[3]! + HEADER_BYTES + 500_000] = bad[offsets[3]! + HEADER_BYTES + 500_000]! ^ 0x01; // payload of record 3, past the 1 MiB mark
    bad[offsets[5]! + 10] = bad[offsets[5]! + 10]! ^ 0x10; // write time of record 5 (checksummed)
    const r = await scan(bad);
    assert.deepEqual(r.offsets, [offsets[1], offsets[2], offsets[4], offsets[6]]);
    assert.deepEqual(r.regions, [
      { kind: "checksum", offset: offsets[0], bytes: offsets[1]! - offsets[0]! },
      { kind: "checksum", offset: offsets[3], bytes: offsets[4]! - offsets[3]! },
      { kind: "checksum", offset: offsets[5], bytes: offsets[6]! - offsets[5]! },
    ]);
  });

  test("scan - a file ending inside a record is one torn region; garbage after the last record without any record after it too", async () => {
    const { file, offsets } = build([100, 100, 100]);
    for (const cut of [1, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 99]) {
      const torn = file.subarray(0, offsets[2]! + cut);
      const r = await scan(torn);
      assert.deepEqual(r.offsets, offsets.slice(0, 2), `cut ${cut}`);
      assert.deepEqual(r.regions, [{ kind: "torn", offset: offsets[2], bytes: cut }], `cut ${cut}`);
    }
    // A complete final record with a bad checksum is damage, not a torn write.
    const flipped = Buffer.from(file);
    flipped[file.length - 1] = flipped[file.length - 1]! ^ 1;
    assert.deepEqual((await scan(flipped)).regions, [{ kind: "checksum", offset: offsets[2], bytes: file.length - offsets[2]! }]);
  });

  test("scan - ack entries: damaged ones are ignored (their record is delivered once more)", () => {
    const buf = Buffer.alloc(8 * 3);
    ackEntry(0, buf, 0);
    ackEntry(120, buf, 8);
    ackEntry(240, buf, 16);
    buf[9] = buf[9]! ^ 1;
    assert.deepEqual([...readAcks(Buffer.concat([buf, Buffer.from([1, 2, 3])]))], [0, 240]);
  });

  test("disk full - writes refused by a full file system settle their sources errored, further offers are refused (disk_full) until space frees; nothing written is lost", async (t) => {
    const mnt = join(root, "tiny");
    mkdirSync(mnt);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", mnt], { stdio: "ignore" });
    } catch {
      t.skip("cannot mount a small tmpfs here (needs root); the max_bytes path is tested in buffer-disk");
      return;
    }
    try {
      const sink = gatedSink();
      const metrics = new Metrics();
      const route = new Route(
        { name: "r", sourceId: "s", sinks: [{ id: "out", sink }], window: 4, retry: { initial: 1, max: 2, max_elapsed: 20 }, timeoutMs: 60_000, loopPrevention: false, maxHops: 8, instanceId: "me" },
        new RouteStats(metrics, { name: "r", sourceId: "s", sinkIds: ["out"], capacity: 4 }),
        silentLogger,
      );
      const state = newRouteState("r", "s", ["out"], undefined, 4);
      const buffer = createBuffer({ type: "disk", path: join(mnt, "buf"), maxBytes: 1 << 30, fsync: "always", fsyncIntervalMs: 50, whenFull: "drop_newest" }, route, {
        routeName: "r",
        metrics,
        state,
        log: silentLogger,
        ordered: false,
      }) as DiskBuffer;
      await buffer.open();
      const outcomes = new Map<string, Outcome>();
      const data = Buffer.alloc(2000, 9);
      const offer = (id: string) => buffer.offer({ events: [{ attributes: { specversion: "1.0", id, source: "/f", type: "t" }, data: { kind: "bytes", bytes: data } }], settle: (o) => outcomes.set(id, o) });
      let n = 0;
      let refused = 0;
      // Offer in small steps until writes fail and the buffer refuses.
      while (refused === 0 && n < 1000) {
        for (let i = 0; i < 10; i++) if (!offer(`d${n++}`)) refused++;
        await waitFor(() => [...outcomes.keys()].length + refused >= n, 5000, "settled");
      }
      const failed = [...outcomes.entries()].filter(([, o]) => o.status === "errored");
      const stored = [...outcomes.entries()].filter(([, o]) => o.status === "delivered").map(([id]) => id);
      assert.ok(failed.length > 0, "some writes failed with ENOSPC");
      assert.ok(failed.every(([, o]) => o.status === "errored" && o.error.code === "CEB_BUFFER" && /ENOSPC|no space/i.test(o.error.message)), JSON.stringify(failed[0]));
      assert.ok(refused > 0, "offers refused while the disk is full");
      const snap = state.buffer!.snapshot() as { dropped: Record<string, number> };
      assert.equal(snap.dropped["disk_full"], failed.length + refused);
      // Space frees as the sink confirms and segments are deleted: every stored event arrives.
      sink.letThrough();
      await waitFor(() => stored.every((id) => sink.done.includes(id)), 10_000, () => `delivered ${sink.done.length}/${stored.length}`);
      await waitFor(() => offer("after-space"), 10_000, "accepts again");
      await waitFor(() => sink.done.includes("after-space"), 10_000, "delivered after the disk had room again");
      buffer.stopAccepting();
      await buffer.drain();
      await buffer.close();
    } finally {
      execFileSync("umount", [mnt], { stdio: "ignore" });
    }
  });
});
