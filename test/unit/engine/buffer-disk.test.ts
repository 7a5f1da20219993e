/**
 * The disk buffer on real files in front of a real route with scripted sinks: acknowledged only once
 * written, delivered in order, removed only once confirmed, retried with backoff, replayed after a
 * restart, bounded by max_bytes, and damage found by checksum, reported with its position and skipped.
 */
import assert from "node:assert/strict";
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { BridgeError } from "../../../src/core/errors.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import type { Received } from "../../../src/core/source.js";
import { decodeEvent, encodeEvent } from "../../../src/engine/buffer/disk/codec.js";
import type { DiskBuffer } from "../../../src/engine/buffer/disk/disk-buffer.js";
import { HEADER_BYTES } from "../../../src/engine/buffer/disk/record.js";
import { createBuffer } from "../../../src/engine/buffer/index.js";
import { KeyedSequencer } from "../../../src/engine/ordering.js";
import { Route } from "../../../src/engine/route.js";
import { RouteStats } from "../../../src/engine/route-stats.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { newRouteState } from "../../../src/observability/status.js";
import { sleep, waitFor } from "../../support/wait.js";
import { gatedSink, type GatedSink } from "./buffer-support.js";

const root = mkdtempSync(join(tmpdir(), "cebridge-disk-buffer-"));
after(() => rmSync(root, { recursive: true, force: true }));
let dirs = 0;
const newDir = () => join(root, `b${++dirs}`);

function ev(id: string, extra: Record<string, string> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "/disk", type: "t.disk", ...extra }, data: { kind: "bytes", bytes: Buffer.from(`payload of ${id}`) } };
}

interface Rig {
  readonly buffer: DiskBuffer;
  readonly route: Route;
  readonly sink: GatedSink;
  readonly metrics: Metrics;
  readonly state: ReturnType<typeof newRouteState>;
  /** Source settlements by id. */
  readonly acked: Map<string, Outcome>;
  offer(id: string, extra?: Record<string, string>): boolean;
  /** Shuts down the way the engine does, with the deadline passed at once when `abort`. */
  shutdown(abort?: boolean): Promise<void>;
}

async function rig(dir: string, opts: { window?: number; maxBytes?: number; fsync?: "always" | "interval"; ordered?: boolean; sink?: GatedSink } = {}): Promise<Rig> {
  const window = opts.window ?? 4;
  const sink = opts.sink ?? gatedSink();
  const metrics = new Metrics();
  const stats = new RouteStats(metrics, { name: "r", sourceId: "src", sinkIds: ["out"], capacity: window });
  const route = new Route(
    {
      name: "r",
      sourceId: "src",
      sinks: [{ id: "out", sink }],
      window,
      retry: { initial: 1, max: 2, max_elapsed: 20 },
      timeoutMs: 60_000,
      loopPrevention: false,
      maxHops: 8,
      instanceId: "me",
      ...(opts.ordered ? { ordering: new KeyedSequencer() } : {}),
    },
    stats,
    silentLogger,
  );
  const state = newRouteState("r", "src", ["out"], undefined, window);
  const buffer = createBuffer(
    { type: "disk", path: dir, maxBytes: opts.maxBytes ?? 1 << 30, fsync: opts.fsync ?? "always", fsyncIntervalMs: 50, whenFull: "block" },
    route,
    { routeName: "r", metrics, state, log: silentLogger, ordered: opts.ordered ?? false },
  ) as DiskBuffer;
  await buffer.open();
  const acked = new Map<string, Outcome>();
  return {
    buffer,
    route,
    sink,
    metrics,
    state,
    acked,
    offer: (id, extra) => buffer.offer(received(ev(id, extra), (o) => acked.set(id, o))),
    async shutdown(abort = false) {
      buffer.stopAccepting();
      const drained = buffer.drain();
      if (abort) buffer.abort();
      await drained;
      await buffer.close();
    },
  };
}

function received(event: CloudEvent, settle: (o: Outcome) => void): Received {
  return { events: [event], settle };
}

function segments(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith(".seg")).sort();
}

interface Snap {
  events: number;
  bytes: number;
  writes: number;
  reads: number;
  oldest_event_age_seconds: number;
  dropped: Record<string, number>;
  corruption: { regions: number; bytes: number; last: { kind: string; file: string; offset: number; bytes: number }[] };
}
const snap = (r: Rig) => r.state.buffer!.snapshot() as unknown as Snap;

describe("engine buffer - disk", () => {
  test("buffer disk - codec: attributes keep their types, bytes stay bytes, text and JSON data and the invalid marker round-trip", () => {
    const cases: CloudEvent[] = [
      { attributes: { specversion: "1.0", id: "1", source: "/s", type: "t", n: 42, b: true, e: "é" } },
      { attributes: { specversion: "1.0", id: "2", source: "/s", type: "t" }, data: { kind: "bytes", bytes: new Uint8Array([0, 255, 1, 0x43, 0x45, 0x42, 0x31]) } },
      { attributes: { specversion: "1.0", id: "3", source: "/s", type: "t" }, data: { kind: "text", text: "ünïcode text" } },
      { attributes: { specversion: "1.0", id: "4", source: "/s", type: "t" }, data: { kind: "json", value: { a: [1, null, "x"], b: 1.5 } } },
      { attributes: { specversion: "1.0", id: "5", source: "/s", type: "t" }, data: { kind: "json", value: null } },
      // Text kept from the wire is what is stored, as it came (not re-serialized), and comes back.
      { attributes: { specversion: "1.0", id: "6", source: "/s", type: "t" }, data: { kind: "json", value: { a: 1 }, text: '{ "a" : 1 }' } },
    ];
    for (const c of cases) {
      const back = decodeEvent(encodeEvent(c));
      assert.deepEqual(back.event.attributes, c.attributes);
      if (c.data?.kind === "bytes") assert.deepEqual(Buffer.from((back.event.data as { bytes: Uint8Array }).bytes), Buffer.from(c.data.bytes));
      else if (c.data?.kind === "json") assert.deepEqual(back.event.data, { ...c.data, text: c.data.text ?? JSON.stringify(c.data.value) });
      else assert.deepEqual(back.event.data, c.data);
      assert.equal(back.invalid, undefined);
    }
    const inv = decodeEvent(encodeEvent(cases[0]!, new BridgeError("CEB_FORMAT", "not JSON at byte 3", false)));
    assert.equal(inv.invalid?.code, "CEB_FORMAT");
    assert.equal(inv.invalid?.message, "not JSON at byte 3");
  });

  test("buffer disk - the source is acknowledged once the event is written and synced; sinks get it later, in order; the segment is deleted once all are confirmed", async () => {
    const dir = newDir();
    const r = await rig(dir);
    const N = 50;
    for (let i = 0; i < N; i++) assert.equal(r.offer(`e${i}`), true);
    assert.equal(r.acked.size, 0, "not before the write completed");
    await waitFor(() => r.acked.size === N, 5000, () => `acked ${r.acked.size}`);
    assert.ok([...r.acked.values()].every((o) => o.status === "delivered"));
    // The sink has not confirmed anything: every event is on disk and counted.
    assert.equal(r.sink.done.length, 0);
    assert.equal(snap(r).events, N);
    assert.ok(statSync(join(dir, segments(dir)[0]!)).size >= N * HEADER_BYTES);
    assert.ok(r.sink.maxActive <= 4);
    r.sink.letThrough();
    await waitFor(() => snap(r).events === 0, 5000, () => `held ${snap(r).events}`);
    assert.deepEqual(r.sink.done, Array.from({ length: N }, (_, i) => `e${i}`));
    assert.equal(snap(r).writes, N);
    assert.equal(snap(r).reads, N);
    await r.shutdown();
    // Reopened: nothing to replay.
    const again = await rig(dir);
    assert.equal(snap(again).events, 0);
    await again.shutdown();
  });

  test("buffer disk - a message's transport trace context is kept as the event's tracing extension", async () => {
    const sink = gatedSink();
    const write = sink.write.bind(sink);
    const seen: CloudEvent[] = [];
    sink.write = (e, signal, trace) => {
      seen.push(e);
      return write(e, signal, trace);
    };
    const r = await rig(newDir(), { sink });
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const own = "00-11111111111111111111111111111111-2222222222222222-01";
    assert.equal(r.buffer.offer({ events: [ev("t1")], trace: { traceparent, tracestate: "v=1" }, settle: () => {} }), true);
    assert.equal(r.buffer.offer({ events: [ev("t2", { traceparent: own })], trace: { traceparent }, settle: () => {} }), true);
    sink.letThrough();
    await waitFor(() => seen.length >= 2, 5_000);
    const byId = new Map(seen.map((e) => [e.attributes["id"], e.attributes]));
    assert.equal(byId.get("t1")!["traceparent"], traceparent);
    assert.equal(byId.get("t1")!["tracestate"], "v=1");
    assert.equal(byId.get("t2")!["traceparent"], own, "an event's own extension is never replaced");
    await r.shutdown();
  });

  test("buffer disk - restart: what a previous run left is replayed first, in order, then the new events", async () => {
    const dir = newDir();
    const first = await rig(dir, { fsync: "interval" });
    for (let i = 0; i < 30; i++) first.offer(`old${i}`);
    await waitFor(() => first.acked.size === 30, 5000, "acked");
    // The sink never answers; shutdown passes its deadline at once: in-window events are left on disk.
    await first.shutdown(true);
    assert.equal(first.sink.done.length, 0);

    const sink = gatedSink();
    const second = await rig(dir, { sink });
    assert.equal(snap(second).events, 30, "found on disk");
    for (let i = 0; i < 10; i++) second.offer(`new${i}`);
    sink.letThrough();
    await waitFor(() => sink.done.length === 40, 5000, () => `delivered ${sink.done.length}`);
    assert.deepEqual(sink.done, [...Array.from({ length: 30 }, (_, i) => `old${i}`), ...Array.from({ length: 10 }, (_, i) => `new${i}`)]);
    await waitFor(() => snap(second).events === 0, 5000, "all confirmed");
    await second.shutdown();
    assert.deepEqual(segments(dir).length, 0, "every finished segment deleted");
  });

  test("buffer disk - an event whose delivery failed stays and is retried with a growing delivery count; its key's later events wait behind it", async () => {
    const dir = newDir();
    const sink = gatedSink();
    sink.letThrough();
    // Fails for 1.5 s: longer than the route's retry budget (20 ms), so the buffer must redeliver it
    // (its backoff starts at 1 s): the first two deliveries fail, the third succeeds.
    const t0 = Date.now();
    sink.fail = (id) => (id === "k1-0" && Date.now() - t0 < 1500 ? "transient" : false);
    const counts: number[] = [];
    const r = await rig(dir, { sink, ordered: true, window: 8 });
    // Watch what the buffer hands the window: the pump offers through window reservations.
    const reserve = r.route.reserve.bind(r.route);
    r.route.reserve = async (min, max, signal) => {
      const res = await reserve(min, max, signal);
      const offer = res.offer.bind(res);
      return Object.assign(res, {
        offer: (m: Received) => {
          if (m.events[0]!.attributes["id"] === "k1-0") counts.push(m.deliveryCount ?? 0);
          return offer(m);
        },
      });
    };
    for (let i = 0; i < 3; i++) for (const k of ["k1", "k2"]) r.offer(`${k}-${i}`, { partitionkey: k });
    await waitFor(() => sink.done.length === 6, 10_000, () => `delivered ${JSON.stringify(sink.done)}`);
    assert.deepEqual(counts, [1, 2, 3], "redelivered with its delivery count");
    assert.deepEqual(sink.done.filter((id) => id.startsWith("k1")), ["k1-0", "k1-1", "k1-2"], "no later k1 event overtook the failed one");
    assert.deepEqual(sink.done.filter((id) => id.startsWith("k2")), ["k2-0", "k2-1", "k2-2"]);
    assert.ok(sink.done.indexOf("k2-2") < sink.done.indexOf("k1-0"), "the other key was not held");
    await waitFor(() => snap(r).events === 0, 5000, "confirmed");
    await r.shutdown();
  });

  test("buffer disk - max_bytes: a full buffer refuses offers (counted as full); a reservation waits until a finished segment is deleted", async () => {
    const dir = newDir();
    const one = HEADER_BYTES + encodeEvent(ev("f00")).length;
    // Segments are at least 64 KiB: a buffer of 100 KiB holds two segments' worth.
    const r = await rig(dir, { maxBytes: 100 * 1024, window: 4 });
    let accepted = 0;
    let i = 0;
    while (r.offer(`f${String(i).padStart(2, "0")}`)) {
      accepted++;
      i++;
      if (i % 50 === 0) await waitFor(() => r.acked.size === accepted, 5000, "written");
    }
    await waitFor(() => r.acked.size === accepted, 5000, "written");
    assert.ok(snap(r).bytes <= 100 * 1024 && snap(r).bytes > 100 * 1024 - 2 * one, `holds ${snap(r).bytes} bytes in ${accepted} events`);
    assert.equal(r.offer("refused-1"), false);
    assert.equal(r.offer("refused-2"), false);
    assert.equal(snap(r).dropped["full"], 3, "the offer that ended the loop and the two after it");
    let granted = false;
    const waiting = r.buffer.reserve(1, 1, new AbortController().signal).then((res) => {
      granted = true;
      return res;
    });
    await sleep(50);
    assert.equal(granted, false);
    r.sink.letThrough();
    const res = await waiting;
    assert.equal(res.offer(received(ev("after-full"), (o) => r.acked.set("after-full", o))), true);
    res.release();
    await waitFor(() => r.sink.done.includes("after-full"), 10_000, () => `delivered ${r.sink.done.length}`);
    await r.shutdown();
  });

  test("buffer disk - a record corrupted on disk is found by its checksum at open, reported with file and offset, skipped; the rest is delivered", async () => {
    const dir = newDir();
    const first = await rig(dir);
    for (let i = 0; i < 20; i++) first.offer(`c${String(i).padStart(2, "0")}`);
    await waitFor(() => first.acked.size === 20, 5000, "acked");
    await first.shutdown(true);
    const [file] = segments(dir);
    const bytes = readFileSync(join(dir, file!));
    const one = bytes.length / 20;
    // Flip a payload byte of record 7 and the length field of record 12.
    const flip = (at: number, mask: number) => (bytes[at] = bytes[at]! ^ mask);
    flip(7 * one + HEADER_BYTES + 5, 0x55);
    flip(12 * one + 4, 0x01);
    writeFileSync(join(dir, file!), bytes);

    const sink = gatedSink();
    sink.letThrough();
    const second = await rig(dir, { sink });
    const c = snap(second).corruption;
    assert.equal(c.regions, 2);
    assert.deepEqual(
      c.last.map((x) => [x.kind, x.file, x.offset, x.bytes]),
      [
        ["checksum", file, 7 * one, one],
        ["checksum", file, 12 * one, one],
      ],
    );
    const json = await second.metrics.registry.getSingleMetricAsString("cebridge_buffer_corruptions_total");
    assert.match(json, /cebridge_buffer_corruptions_total\{route="r",kind="checksum"\} 2/);
    await waitFor(() => sink.done.length === 18, 5000, () => `delivered ${sink.done.length}`);
    assert.deepEqual(sink.done, Array.from({ length: 20 }, (_, i) => `c${String(i).padStart(2, "0")}`).filter((_, i) => i !== 7 && i !== 12));
    await second.shutdown();
  });

  test("buffer disk - a record torn at the end of a segment (a write cut off) is reported as torn and skipped; every whole record is delivered", async () => {
    const dir = newDir();
    const first = await rig(dir);
    for (let i = 0; i < 10; i++) first.offer(`t${i}`);
    await waitFor(() => first.acked.size === 10, 5000, "acked");
    await first.shutdown(true);
    const [file] = segments(dir);
    const whole = readFileSync(join(dir, file!));
    const one = whole.length / 10;
    // The beginning of an eleventh record, as a crash mid-write leaves it.
    appendFileSync(join(dir, file!), whole.subarray(0, one - 7));
    const sink = gatedSink();
    sink.letThrough();
    const second = await rig(dir, { sink });
    assert.deepEqual(
      snap(second).corruption.last.map((x) => [x.kind, x.offset, x.bytes]),
      [["torn", whole.length, one - 7]],
    );
    await waitFor(() => sink.done.length === 10, 5000, () => `delivered ${sink.done.length}`);
    assert.deepEqual(sink.done, Array.from({ length: 10 }, (_, i) => `t${i}`));
    await second.shutdown();
  });

  test("buffer disk - acknowledgements survive a restart: confirmed events are not replayed, unconfirmed ones are", async () => {
    const dir = newDir();
    const sink = gatedSink();
    sink.letThrough();
    sink.fail = (id) => (Number(id.slice(1)) >= 15 ? "transient" : false);
    const first = await rig(dir, { sink });
    for (let i = 0; i < 30; i++) first.offer(`a${i}`);
    await waitFor(() => sink.done.length === 15, 5000, () => `delivered ${sink.done.length}`);
    await sleep(50); // the acknowledgements are written on the next turn
    await first.shutdown(true);
    const sink2 = gatedSink();
    sink2.letThrough();
    const second = await rig(dir, { sink: sink2 });
    assert.equal(snap(second).events, 15);
    await waitFor(() => sink2.done.length === 15, 5000, () => `delivered ${sink2.done.length}`);
    assert.deepEqual(sink2.done, Array.from({ length: 15 }, (_, i) => `a${i + 15}`));
    await second.shutdown();
  });

  test("buffer disk - a second daemon cannot open a directory in use", async () => {
    const dir = newDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "LOCK"), "1\n"); // pid 1 is alive: another daemon holds it
    await assert.rejects(rig(dir), /in use by process 1/);
  });

  test("buffer disk - nor can a second buffer of this process (a reload closes the old one first)", async () => {
    const dir = newDir();
    const r = await rig(dir);
    await assert.rejects(rig(dir), /in use by another route of this process/);
    await r.shutdown();
    const again = await rig(dir);
    await again.shutdown();
  });
});
