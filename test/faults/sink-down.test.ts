/**
 * Fault: the HTTP sink is down (connection refused) for longer than the route's retry budget
 * (`retry.max_elapsed: 1s`), with a JetStream source.
 *
 * - Without `max_deliveries`: each event outlasts its budget, is released (JetStream nak with a
 *   growing delay) and redelivered, and is delivered once the sink is back. Nothing lost.
 * - With `max_deliveries: 2` and a dead-letter file sink: once JetStream's delivery count reaches 2 the
 *   event is dead-lettered (CEB_RETRIES_EXHAUSTED) and acked instead of released again. Nothing lost:
 *   every id is in the dead-letter file.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { startNats } from "../support/brokers.js";
import { startDaemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { Tally, createStream, ids, metric, natsClient, preload, readJsonl, report, routeStatus, sample, startReceiver, waitConsumerDrained } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe("faults - sink down", { timeout: 120_000 }, () => {
  test("sink down - longer than retry.max_elapsed: events are released (nak), redelivered, and delivered once the sink is back", async (t) => {
    const N = 200;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    await rx.stop(); // the sink is down: connection refused on its port

    const sent = ids("sd", N);
    await createStream(nc, "SD", ["sd.>"]);
    await preload(nc, "sd.x", sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: sd, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SD, consumer: bridge, create: true, ack_wait: 10s }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: sd, from: js_in, to: [out], retry: { initial: 50ms, max: 200ms, max_elapsed: 1s } }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    // Down for more than two budgets: every event is released at least twice.
    await waitFor(async () => (await routeStatus(admin, "sd")).counters.released >= 2 * N, 30_000, "two rounds of releases", 100);
    const down = await routeStatus(admin, "sd");
    assert.equal(rx.tally.distinct, 0);
    await rx.start();

    await waitFor(() => rx.tally.hasAll(sent), 45_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}`, 50);
    await waitConsumerDrained(nc, "SD", "bridge", 20_000);
    const st = await routeStatus(admin, "sd");
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "HTTP sink down > max_elapsed (JetStream, release + redeliver)",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: st.counters.deadLettered,
      lost: lost.length,
      note: `released ${st.counters.released} times while down (${down.counters.released} when the sink came back)`,
    });
    assert.deepEqual(lost, []);
    assert.equal(st.counters.deadLettered, 0);
    assert.equal(st.in_flight, 0);
    assert.ok((await metric(admin, "cebridge_events_failed_total", { route: "sd", sink: "out" })) >= 2 * N);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("sink down - with max_deliveries: 2 and a dead-letter file, every event is dead-lettered instead (none lost)", async (t) => {
    const N = 200;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    await rx.stop();
    const dl = join(mkdtempSync(join(tmpdir(), "cebridge-sd-")), "dead.jsonl");

    const sent = ids("sdl", N);
    await createStream(nc, "SDL", ["sdl.>"]);
    await preload(nc, "sdl.x", sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: sdl, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SDL, consumer: bridge, create: true, ack_wait: 10s }
sinks:
  out: { type: http, url: "${rx.url}" }
  dlq: { type: file, path: "${dl}" }
routes:
  - { name: sdl, from: js_in, to: [out], dead_letter: dlq, max_deliveries: 2, retry: { initial: 50ms, max: 200ms, max_elapsed: 1s } }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    const dead = new Tally();
    await waitFor(
      () => {
        dead.counts.clear();
        dead.deliveries = 0;
        for (const line of readJsonl(dl)) dead.add(String(line["id"]));
        return dead.hasAll(sent);
      },
      30_000,
      () => `dead-lettered ${dead.distinct}/${N}`,
      100,
    );
    await waitConsumerDrained(nc, "SDL", "bridge", 20_000);
    const lines = readJsonl(dl);
    for (const line of lines) {
      assert.equal(line["cebridgeerror"], "CEB_RETRIES_EXHAUSTED", JSON.stringify(line));
      assert.match(String(line["cebridgereason"]), /gave up after 2 deliveries/);
      assert.equal(line["cebridgeroute"], "sdl");
      assert.equal(line["cebridgesink"], "out");
    }
    const st = await routeStatus(admin, "sdl");
    const lost = dead.missing(sent);
    report(t, {
      scenario: "HTTP sink down, max_deliveries 2 → dead-letter file",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: dead.duplicates,
      deadLettered: dead.distinct,
      lost: lost.length,
      note: `released ${st.counters.released} (first deliveries), dead-lettered ${st.counters.deadLettered}`,
    });
    assert.deepEqual(lost, []);
    assert.equal(st.counters.deadLettered, N);
    assert.equal(await metric(admin, "cebridge_events_dead_lettered_total", { route: "sdl", reason: "CEB_RETRIES_EXHAUSTED" }), N);
    await sleep(200);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
