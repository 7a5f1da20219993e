/**
 * Fault: the SOURCE's broker (nats-server with JetStream) crashes (SIGKILL) mid-stream and restarts on
 * the same port with the same store. The daemon must reconnect, re-bind its durable consumer and
 * drain everything: every id in the stream reaches the HTTP receiver. Acks lost in the crash come back
 * as redeliveries (counted as duplicates). More events are published after the restart, to prove the
 * pull loop is live again and not just draining what it had fetched.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { startNats } from "../support/brokers.js";
import { startDaemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { createStream, ids, natsClient, preload, report, routeStatus, sample, startReceiver, streamMessages, waitConsumerDrained } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe("faults - source broker restart", { timeout: 120_000 }, () => {
  test("source broker restart - nats-server (JetStream source) killed mid-stream: the daemon reconnects and drains everything", async (t) => {
    const N = 2000;
    const M = 300;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rx = await startReceiver({ delayMs: 2 });
    cleanups.push(() => rx.close());

    const before = ids("srb", N);
    const later = ids("srb", M, N);
    await createStream(nc, "SRB", ["srb.>"]);
    await preload(nc, "srb.x", before);

    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: srb, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${nats.url}"], stream: SRB, consumer: bridge, create: true, ack_wait: 3s }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: srb, from: js_in, to: [out], max_in_flight: 100 }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    await waitFor(() => rx.tally.distinct >= N * 0.3, 30_000, () => `30% delivered: ${rx.tally.distinct}\n${daemon.stderr()}`, 5);
    const atCrash = rx.tally.distinct;
    await nats.stop();
    await sleep(1500);
    await nats.restart();
    let stored = -1;
    await waitFor(async () => (stored = await streamMessages(nc, "SRB")) >= 0, 15_000, "the test client reconnected", 200);
    assert.equal(stored, N, "the JetStream store survived the crash");
    await daemon.waitReady(admin, 30_000);
    await preload(nc, "srb.x", later);

    const sent = [...before, ...later];
    await waitFor(() => rx.tally.hasAll(sent), 45_000, () => `delivered ${rx.tally.distinct}/${sent.length}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-3000)}`, 50);
    await waitConsumerDrained(nc, "SRB", "bridge", 20_000);
    await sleep(300);

    const lost = rx.tally.missing(sent);
    const st = await routeStatus(admin, "srb");
    report(t, {
      scenario: "source broker restart: nats-server SIGKILL (JetStream → HTTP)",
      sent: sent.length,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: st.counters.deadLettered,
      lost: lost.length,
      note: `crash after ${atCrash} delivered; ${M} more published after the restart`,
    });
    assert.deepEqual(lost, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.equal(st.in_flight, 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
