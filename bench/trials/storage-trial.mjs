// Storage trial behind the disk buffer's design (README "Route buffers"): 1 KiB records, C concurrent
// writers each waiting for its record to be durable, then acknowledged (deleted), with a segment log
// (writev + fdatasync on libuv's thread pool) against better-sqlite3 (WAL, one transaction per turn).
// Reports events/s, latency and how busy the JavaScript thread was (event-loop utilization).
//
// better-sqlite3 is not a dependency of cebridge. To rerun:
//   mkdir /tmp/sqlite-trial && cd /tmp/sqlite-trial && npm init -y && npm install better-sqlite3@12
//   SQLITE_DIR=/tmp/sqlite-trial C=64 N=20000 node bench/trials/storage-trial.mjs
//   SQLITE_DIR=/tmp/sqlite-trial C=1 N=2000 node bench/trials/storage-trial.mjs
import { openSync, writev, fdatasync, rmSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { crc32 } from "node:zlib";
const require = createRequire(join(process.env.SQLITE_DIR ?? "/tmp/sqlite-trial", "index.js"));
const Database = require("better-sqlite3");
const WORK = join(tmpdir(), "cebridge-storage-trial");
mkdirSync(WORK, { recursive: true });
const N = Number(process.env.N ?? 5000), C = Number(process.env.C ?? 64);
const payload = Buffer.alloc(1024, 97);
function pct(a, p) { a.sort((x, y) => x - y); return a[Math.min(a.length - 1, Math.floor(a.length * p))]; }

async function run(name, append) {
  const lat = []; let next = 0; let maxBlock = 0;
  const t0 = performance.now(); const elu0 = performance.eventLoopUtilization();
  async function worker() { while (next < N) { next++; const s = performance.now(); await append(); lat.push(performance.now() - s); } }
  // event-loop lag probe
  let last = performance.now(); const probe = setInterval(() => { const n = performance.now(); maxBlock = Math.max(maxBlock, n - last - 1); last = n; }, 1);
  await Promise.all(Array.from({ length: C }, worker));
  clearInterval(probe);
  const s = (performance.now() - t0) / 1000; const elu = performance.eventLoopUtilization(elu0).utilization;
  console.log(`${name.padEnd(34)} C=${C} ${Math.round(N / s)} ev/s  p50 ${pct(lat, .5).toFixed(2)} ms  p99 ${pct(lat, .99).toFixed(2)} ms  max loop block ${maxBlock.toFixed(1)} ms  main-thread busy ${(elu*100).toFixed(0)}%  = ${(elu*s*1e6/N).toFixed(1)} µs/ev`);
}

function segLog(sync) {
  const dir = join(WORK, "seg"); rmSync(dir, { recursive: true, force: true }); mkdirSync(dir);
  const fd = openSync(`${dir}/1.seg`, "a");
  let batch = [], waiting = [], busy = false, pos = 0;
  const afd = openSync(`${dir}/1.ack`, "a"); let off = 0;
  function ack(n) { const b = Buffer.alloc(8 * n); for (let i = 0; i < n; i++) { b.writeUInt32LE(off += 1044, i * 8); b.writeUInt32LE(crc32(b.subarray(i * 8, i * 8 + 4)), i * 8 + 4); } writev(afd, [b], () => {}); }
  function flush() {
    if (busy || batch.length === 0) return;
    busy = true; const bufs = batch, ws = waiting; batch = []; waiting = [];
    writev(fd, bufs, (err) => {
      if (err) throw err;
      const done = () => { busy = false; ws.forEach((w) => w()); flush(); ack(ws.length); };
      if (sync) fdatasync(fd, done); else done();
    });
  }
  return () => new Promise((res) => {
    const h = Buffer.alloc(20); h.writeUInt32LE(0x31424543, 0); h.writeUInt32LE(payload.length, 4); h.writeDoubleLE(Date.now(), 8);
    h.writeUInt32LE(crc32(payload, crc32(h.subarray(4, 16))), 16);
    batch.push(h, payload); waiting.push(res); if (!busy) setImmediate(flush);
  });
}

function sqlite(syncMode) {
  const f = join(WORK, `q-${syncMode}-${Date.now()}.db`);
  const db = new Database(f); db.pragma("journal_mode = WAL"); db.pragma(`synchronous = ${syncMode}`);
  db.exec("create table q (seq integer primary key, t real, body blob)");
  const ins = db.prepare("insert into q (t, body) values (?, ?)");
  const many = db.transaction((rows) => { for (const r of rows) ins.run(Date.now(), r); });
  const del = db.prepare("delete from q where seq = ?"); let nextDel = 1;
  const dels = db.transaction((n) => { for (let i = 0; i < n; i++) del.run(nextDel++); });
  let batch = [], waiting = [], scheduled = false;
  return () => new Promise((res) => {
    batch.push(payload); waiting.push(res);
    if (!scheduled) { scheduled = true; setImmediate(() => { scheduled = false; const b = batch, w = waiting; batch = []; waiting = []; many(b); w.forEach((f) => f()); setImmediate(() => dels(w.length)); }); }
  });
}

await run("segment log, fdatasync per batch", segLog(true));
await run("segment log, no fsync (interval)", segLog(false));
await run("better-sqlite3 WAL synchronous=FULL", sqlite("FULL"));
await run("better-sqlite3 WAL synchronous=NORMAL", sqlite("NORMAL"));
rmSync(WORK, { recursive: true, force: true });
