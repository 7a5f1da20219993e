/**
 * Faults around route buffers, through the built daemon:
 * - HTTP source with a disk buffer, sink down, the daemon SIGKILLed three times while events wait
 *   (kills land while requests are being written), then the sink comes up: every event answered 2xx
 *   arrives, none more than once; the backlog is delivered before events the last run received.
 * - A record corrupted on disk between runs: reported (log, metric, /status with file and offset),
 *   skipped, and every other event delivered.
 * - A full disk buffer (max_bytes) refuses with 429 and counts it; a full memory buffer in front of
 *   core NATS drops and counts overflow; every event taken is delivered once the sink is back.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { startNats } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { ids, metric, natsClient, report, routeStatus, sample, startReceiver, structuredEvent, type Receiver } from "../support/counting.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { decodeEvent } from "../../src/engine/buffer/disk/codec.js";
import { frameAt } from "../../src/engine/buffer/disk/record.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

/** Posts one binary-mode CloudEvent; resolves with the status, or 0 when the connection failed. */
async function post(url: string, id: string): Promise<number> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "ce-specversion": "1.0", "ce-id": id, "ce-source": "urn:cebridge:faults", "ce-type": "dev.cebridge.test.fault", "content-type": "application/json" },
      body: JSON.stringify({ id, pad: "p".repeat(400) }),
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** Keeps `concurrency` posters busy on the ids handed out by `next` until `stop` is called. */
function posters(url: string, next: () => string, concurrency: number, onAnswer: (id: string, status: number) => void): { stop(): Promise<void> } {
  let stopped = false;
  const loops = Array.from({ length: concurrency }, async () => {
    while (!stopped) {
      const id = next();
      onAnswer(id, await post(url, id));
    }
  });
  return {
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

interface Setup {
  readonly yaml: string;
  readonly admin: string;
  readonly url: string;
  readonly dir: string;
}

async function httpToHttp(rx: Receiver, buffer: string, route = ""): Promise<Setup> {
  const admin = `127.0.0.1:${await freePort()}`;
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cebridge-buffer-fault-"));
  const yaml = `
engine: { instance_id: bf, admin: { listen: "${admin}" }, shutdown_timeout: 3s, log: { level: info } }
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: /e }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - name: bf
    from: in
    to: [out]
    retry: { initial: 50ms, max: 500ms, max_elapsed: 2s }
    buffer: ${buffer.replace("$DIR", join(dir, "buf"))}${route}
`;
  return { yaml, admin, url: `http://127.0.0.1:${port}/e`, dir: join(dir, "buf") };
}

function start(yaml: string): Daemon {
  const d = startDaemon(yaml);
  cleanups.push(() => d.stop("SIGKILL"));
  return d;
}

describe("faults - route buffers", { timeout: 170_000 }, () => {
  test("buffers - HTTP with a disk buffer, sink down, daemon SIGKILLed three times while events wait: every 2xx arrives once, the backlog first", async (t) => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    await rx.stop(); // the sink is down: connections are refused
    const s = await httpToHttp(rx, `{ type: disk, path: "$DIR", fsync: always }`, "\n    max_in_flight: 1");
    const acked = new Set<string>();
    const answered = new Map<number, number>();
    let n = 0;
    const kills: string[] = [];
    for (let round = 0; round < 3; round++) {
      const d = start(s.yaml);
      await waitFor(async () => (await post(s.url, `probe-${round}`)) === 204, 30_000, () => `source not listening\n${d.stderr().slice(-2000)}`);
      acked.add(`probe-${round}`);
      const before = acked.size;
      const p = posters(s.url, () => `k-${n++}`, 8, (id, status) => {
        answered.set(status, (answered.get(status) ?? 0) + 1);
        if (status >= 200 && status < 300) acked.add(id);
      });
      // Kill while requests are being written.
      await waitFor(() => acked.size >= before + 300, 30_000, () => `${acked.size - before} answered 2xx in round ${round}`, 5);
      d.proc.kill("SIGKILL");
      await d.exited;
      await p.stop();
      kills.push(`${acked.size - before} acked in run ${round + 1}`);
    }
    // The sink comes back, then the last run starts: it finds the backlog and delivers it, one at a
    // time (max_in_flight 1), while new events arrive; those must come after the whole backlog.
    await rx.start();
    const last = start(s.yaml);
    const fresh: string[] = [];
    await waitFor(async () => (await post(s.url, "fresh-0")) === 204, 30_000, "listening");
    fresh.push("fresh-0");
    for (let i = 1; i <= 20; i++) if ((await post(s.url, `fresh-${i}`)) === 204) fresh.push(`fresh-${i}`);
    const deliveredWhileNew = rx.tally.distinct;
    const expected = [...acked, ...fresh];
    await waitFor(() => expected.every((id) => rx.tally.has(id)), 60_000, () => `delivered ${rx.tally.distinct}, missing ${sample(expected.filter((id) => !rx.tally.has(id)))}\n${last.stderr().slice(-3000)}`, 50);
    await sleep(300);
    const missing = expected.filter((id) => !rx.tally.has(id));
    const order = [...rx.tally.counts.keys()];
    const firstFresh = Math.min(...fresh.map((id) => order.indexOf(id)));
    const lastOld = Math.max(...[...acked].filter((id) => id.startsWith("k-")).map((id) => order.indexOf(id)));
    report(t, {
      scenario: "HTTP → disk buffer, sink down, daemon SIGKILLed ×3, then sink up",
      sent: n,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: missing.length,
      note: `${acked.size} answered 2xx (${kills.join(", ")}); ${deliveredWhileNew} of the backlog delivered while ${fresh.length} new events came in; answers ${JSON.stringify(Object.fromEntries(answered))}`,
    });
    assert.deepEqual(missing, []);
    // Nothing was delivered before the last run (the sink was down), so nothing is delivered twice.
    assert.equal(rx.tally.duplicates, 0);
    // Events the source refused or never answered may or may not arrive; nothing else may.
    assert.deepEqual(rx.tally.unexpected([...ids("k", n), ...Array.from({ length: 3 }, (_, i) => `probe-${i}`), ...ids("fresh", 21)]), []);
    assert.ok(lastOld < firstFresh, `the backlog (${acked.size}) was delivered before the new events (last old at ${lastOld}, first new at ${firstFresh})`);
    assert.equal(await last.stop(), 0, last.stderr());
  });

  test("buffers - a record corrupted on disk is reported with its file and offset, skipped, and every other event delivered", async (t) => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    await rx.stop();
    const s = await httpToHttp(rx, `{ type: disk, path: "$DIR" }`);
    const d1 = start(s.yaml);
    await waitFor(async () => (await post(s.url, "c-first")) === 204, 30_000, "listening");
    const sent = ["c-first", ...ids("c", 100)];
    for (const id of sent.slice(1)) assert.equal(await post(s.url, id), 204, id);
    d1.proc.kill("SIGKILL");
    await d1.exited;

    // Damage one byte of the payload of the 51st record.
    const file = readdirSync(s.dir).filter((f) => f.endsWith(".seg")).sort()[0]!;
    const bytes = readFileSync(join(s.dir, file));
    let pos = 0;
    for (let i = 0; i < 50; i++) {
      const f = frameAt(bytes, pos);
      assert.ok(f.ok);
      pos = f.end;
    }
    const victim = frameAt(bytes, pos);
    assert.ok(victim.ok);
    const lostId = String(decodeEvent(victim.payload).event.attributes["id"]);
    bytes[pos + 30] = bytes[pos + 30]! ^ 0x20;
    writeFileSync(join(s.dir, file), bytes);

    await rx.start();
    const d2 = start(s.yaml);
    const expected = sent.filter((id) => id !== lostId);
    await waitFor(() => expected.every((id) => rx.tally.has(id)), 60_000, () => `delivered ${rx.tally.distinct}\n${d2.stderr().slice(-2000)}`, 50);
    await sleep(300);
    const status = (await routeStatus(s.admin, "bf")) as unknown as { buffer: { corruption: { regions: number; last: { kind: string; file: string; offset: number; bytes: number }[] } } };
    const logged = d2.stderr().split("\n").filter((l) => l.includes("corrupted bytes skipped"));
    report(t, {
      scenario: "disk buffer record corrupted between runs",
      sent: sent.length,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: sent.length - rx.tally.distinct,
      note: `lost ${lostId} (its record at ${file}:${pos} was damaged), reported: ${logged.length} log line, /status ${JSON.stringify(status.buffer.corruption.last)}`,
    });
    assert.equal(rx.tally.has(lostId), false);
    assert.deepEqual(expected.filter((id) => !rx.tally.has(id)), []);
    assert.equal(rx.tally.duplicates, 0);
    assert.equal(logged.length, 1, d2.stderr());
    const line = JSON.parse(logged[0]!) as Record<string, unknown>;
    assert.equal(line["file"], file);
    assert.equal(line["offset"], pos);
    assert.equal(line["kind"], "checksum");
    assert.equal(status.buffer.corruption.regions, 1);
    assert.deepEqual(
      status.buffer.corruption.last.map((c) => [c.kind, c.file, c.offset, c.bytes]),
      [["checksum", file, pos, victim.end - pos]],
    );
    assert.equal(await metric(s.admin, "cebridge_buffer_corruptions_total", { route: "bf", kind: "checksum" }), 1);
    assert.equal(await d2.stop(), 0, d2.stderr());
  });

  test("buffers - a full disk buffer answers 429 and counts it; everything answered 2xx is delivered once the sink is back", async (t) => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    await rx.stop();
    const s = await httpToHttp(rx, `{ type: disk, path: "$DIR", max_bytes: 256KiB, fsync: interval }`);
    const d = start(s.yaml);
    await waitFor(async () => (await post(s.url, "f-first")) === 204, 30_000, "listening");
    const acked = ["f-first"];
    let refused = 0;
    let i = 0;
    while (refused < 20 && i < 5000) {
      const id = `f${i++}`;
      const st = await post(s.url, id);
      if (st === 204) acked.push(id);
      else if (st === 429) refused++;
      else assert.fail(`unexpected ${st} for ${id}`);
    }
    assert.equal(refused, 20);
    assert.equal(await metric(s.admin, "cebridge_buffer_dropped_total", { route: "bf", reason: "full" }), 20);
    const status = (await routeStatus(s.admin, "bf")) as unknown as { buffer: { bytes: number; events: number; dropped: { full: number } } };
    assert.ok(status.buffer.bytes <= 256 * 1024, `held ${status.buffer.bytes} bytes`);
    assert.equal(status.buffer.dropped.full, 20);
    await rx.start();
    await waitFor(() => acked.every((id) => rx.tally.has(id)), 60_000, () => `delivered ${rx.tally.distinct}/${acked.length}`, 50);
    // Room again: accepted.
    await waitFor(async () => (await post(s.url, "f-after")) === 204, 30_000, "accepts again");
    await waitFor(() => rx.tally.has("f-after"), 30_000, "delivered");
    report(t, {
      scenario: "disk buffer full (max_bytes 256 KiB), HTTP source",
      sent: i + 2,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: 0,
      note: `${acked.length} answered 204 and delivered, ${refused} answered 429 (counted as dropped{reason="full"})`,
    });
    assert.equal(rx.tally.duplicates, 0);
    assert.equal(await d.stop(), 0, d.stderr());
  });

  test("buffers - a full memory buffer in front of core NATS drops the newest and counts them as overflow; the rest is delivered", async (t) => {
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    await rx.stop();
    const admin = `127.0.0.1:${await freePort()}`;
    const d = start(`
engine: { instance_id: bm, admin: { listen: "${admin}" }, shutdown_timeout: 3s, log: { level: warn } }
sources:
  in: { type: nats, servers: ["${nats.url}"], subject: bm.in }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - name: bm
    from: in
    to: [out]
    max_in_flight: 10
    retry: { initial: 50ms, max: 500ms, max_elapsed: 1m }
    buffer: { type: memory, max_bytes: 64KiB, when_full: drop_newest }
`);
    await waitFor(async () => (await metric(admin, "cebridge_connector_up", { component: "source:in" }).catch(() => 0)) === 1, 30_000, "source up");
    const sent = ids("bm", 1000);
    for (const id of sent) nc.publish("bm.in", structuredEvent(id, { data: { id, pad: "q".repeat(200) } }));
    await nc.flush();
    let dropped = 0;
    await waitFor(async () => {
      dropped = await metric(admin, "cebridge_events_dropped_total", { route: "bm", reason: "overflow" });
      const st = (await routeStatus(admin, "bm")) as unknown as { in_flight: number; buffer: { events: number } };
      return dropped > 0 && st.in_flight + st.buffer.events + dropped === sent.length;
    }, 30_000, () => `dropped ${dropped}`, 100);
    const full = await metric(admin, "cebridge_buffer_dropped_total", { route: "bm", reason: "full" });
    await rx.start();
    await waitFor(() => rx.tally.distinct + dropped >= sent.length, 60_000, () => `delivered ${rx.tally.distinct} + dropped ${dropped} of ${sent.length}`, 50);
    report(t, {
      scenario: "memory buffer full (64 KiB) in front of core NATS, drop_newest",
      sent: sent.length,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: 0,
      lost: dropped,
      note: `${dropped} dropped and counted as overflow (buffer full: ${full})`,
    });
    assert.equal(full, dropped, "every overflow drop was a full buffer");
    assert.equal(rx.tally.distinct + dropped, sent.length);
    // What was kept is the oldest: drop_newest.
    assert.deepEqual(rx.tally.missing(sent.slice(0, rx.tally.distinct)), []);
    assert.equal(await d.stop(), 0, d.stderr());
  });
});
