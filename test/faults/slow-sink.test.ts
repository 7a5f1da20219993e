/**
 * Fault: a slow sink (HTTP receiver answering after 200 ms) behind a JetStream source holding 10 000
 * messages, route `max_in_flight: 50`.
 *
 * - The window holds: `/status` routes[].in_flight ≤ 50 in every sample, and the receiver never has
 *   more than 50 requests open at once.
 * - Memory stays flat: the daemon's VmRSS stays under 150 MiB in every sample (the source pulls only
 *   as many messages as the window has free slots, so the backlog stays in JetStream).
 * - Every event arrives. At 50 / 0.2 s = 250 events/s the run takes about 40 s.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { startNats } from "../support/brokers.js";
import { startDaemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";
import { createStream, ids, natsClient, preload, report, routeStatus, rssMiB, sample, sampler, startReceiver, waitConsumerDrained } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

const WINDOW = 50;
const RSS_BOUND_MIB = 150;

describe("faults - slow sink", { timeout: 150_000 }, () => {
  test("slow sink - 10k JetStream messages into a 200 ms sink: the window of 50 holds, RSS stays bounded, every event arrives", async (t) => {
    const N = 10_000;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver({ delayMs: 200 });
    cleanups.push(() => rx.close());
    const sent = ids("slow", N);
    await createStream(nc, "SLOW", ["slow.>"]);
    await preload(nc, "slow.x", sent, 1000);

    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: slow, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SLOW, consumer: bridge, create: true }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: slow, from: js_in, to: [out], max_in_flight: ${WINDOW} }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);
    const pid = daemon.proc.pid!;

    const inFlight = sampler(async () => (await routeStatus(admin, "slow")).in_flight, 100);
    const rss = sampler(() => rssMiB(pid), 250);
    try {
      await waitFor(() => rx.tally.hasAll(sent), 90_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}`, 200);
    } finally {
      await inFlight.stop();
      await rss.stop();
    }
    await waitConsumerDrained(nc, "SLOW", "bridge", 20_000);

    const maxInFlight = Math.max(...inFlight.samples);
    const rssSamples = rss.samples.filter((x) => !Number.isNaN(x));
    const maxRss = Math.max(...rssSamples);
    const st = await routeStatus(admin, "slow");
    const lost = rx.tally.missing(sent);
    report(t, {
      scenario: "slow sink 200 ms, 10k JetStream, window 50",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: st.counters.deadLettered,
      lost: lost.length,
      note: `max in_flight ${maxInFlight} over ${inFlight.samples.length} samples; receiver max concurrent ${rx.maxActive}; RSS first ${rssSamples[0]?.toFixed(1)} MiB, max ${maxRss.toFixed(1)} MiB`,
    });
    assert.deepEqual(lost, []);
    assert.ok(inFlight.samples.length > 100, `sampled /status ${inFlight.samples.length} times`);
    assert.ok(maxInFlight <= WINDOW, `in_flight peaked at ${maxInFlight}`);
    assert.ok(maxInFlight >= WINDOW * 0.8, `the window was used (peak ${maxInFlight})`);
    assert.ok(rx.maxActive <= WINDOW, `receiver saw ${rx.maxActive} concurrent requests`);
    assert.ok(maxRss < RSS_BOUND_MIB, `RSS peaked at ${maxRss.toFixed(1)} MiB`);
    assert.equal(st.in_flight, 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
