/**
 * Faults with the Event Grid connectors through the built daemon and the emulator:
 * - namespace source → HTTP, the daemon SIGKILLed twice mid-stream: the events it held locked come
 *   back once their locks expire; nothing acknowledged is missing at the receiver;
 * - a sink that fails past the route's retry budget: the events are released with Event Grid's
 *   delay and come back with the next delivery count, then are delivered;
 * - a slow sink (each request longer than the lock): the locks are renewed, nothing comes twice;
 * - webhook source killed while Event Grid pushes: Event Grid's retries deliver everything after the
 *   restart.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { startEventGridEmulator, type EventGridEmulator } from "../emulators/eventgrid/index.js";
import { ids, report, sample, startReceiver, structuredEvent } from "../support/counting.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { TEST_KEY, publishToTopic } from "../support/eventgrid.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function emulator(timeScale = 0.01): Promise<EventGridEmulator> {
  const emu = await startEventGridEmulator({ timeScale });
  emu.namespaceAuth({ keys: [TEST_KEY] });
  cleanups.push(() => emu.close());
  return emu;
}

/** Loads the namespace topic with structured events of these ids, 100 per publish. */
function preload(emu: EventGridEmulator, topic: string, list: readonly string[]): void {
  const t = emu.namespaceTopic(topic);
  for (let i = 0; i < list.length; i += 100) t.publish(list.slice(i, i + 100).map((id) => JSON.parse(structuredEvent(id)) as Record<string, unknown>));
}

function namespaceYaml(emu: EventGridEmulator, admin: string, rxUrl: string, extra = ""): string {
  return `
engine: { instance_id: fgrid, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  ns_in: { type: azure_eventgrid_namespace, endpoint: "${emu.url}", topic: orders, subscription: bridge, key: "${TEST_KEY}", max_wait: 1s, lock_duration: 2s }
sinks:
  out: { type: http, url: "${rxUrl}" }
routes:
  - { name: fgrid, from: ns_in, to: [out], max_in_flight: 100${extra} }
`;
}

describe("faults - Event Grid", { timeout: 150_000 }, () => {
  test("faults - Event Grid namespace source, daemon SIGKILLed twice mid-stream: locked events come back after their locks expire, nothing lost", async (t) => {
    const N = 2000;
    const emu = await emulator();
    const sub = emu.namespaceTopic("orders").subscription("bridge", { lockDurationMs: 2000 });
    const rx = await startReceiver({ delayMs: 1 });
    cleanups.push(() => rx.close());
    const sent = ids("fgk", N);
    preload(emu, "orders", sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = namespaceYaml(emu, admin, rx.url);
    let daemon: Daemon = startDaemon(yaml);
    cleanups.push(() => daemon.stop("SIGKILL"));
    const atKills: number[] = [];
    for (const f of [0.2, 0.6]) {
      await waitFor(() => rx.tally.distinct >= N * f, 60_000, () => `${rx.tally.distinct}/${N} before the kill\n${daemon.stderr().slice(-2000)}`, 2);
      atKills.push(rx.tally.distinct);
      daemon.proc.kill("SIGKILL");
      await daemon.exited;
      const d = startDaemon(yaml);
      daemon = d;
      cleanups.push(() => d.stop("SIGKILL"));
    }
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`, 50);
    await waitFor(() => sub.outstanding === 0, 20_000, () => `${sub.outstanding} events still outstanding`);
    const redelivered = sub.deliveries.filter((d) => d.deliveryCount > 1).length;
    report(t, {
      scenario: "daemon SIGKILL ×2: Event Grid namespace → HTTP",
      sent: N,
      delivered: rx.tally.distinct,
      duplicates: rx.tally.duplicates,
      deadLettered: sub.deadLettered.length,
      lost: rx.tally.missing(sent).length,
      note: `killed at ${atKills.join(" and ")} delivered; ${redelivered} deliveries after lock expiry`,
    });
    assert.deepEqual(rx.tally.missing(sent), []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.equal(sub.deadLettered.length, 0);
    assert.ok(redelivered > 0, "the killed daemons held locks that expired and came back");
    assert.ok(rx.tally.duplicates <= 2 * 100, `at most one window redelivered per kill (duplicates ${rx.tally.duplicates})`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("faults - Event Grid namespace source, sink failing past the retry budget: released with Event Grid's delay, back with the next delivery count, then delivered", async (t) => {
    const emu = await emulator();
    const sub = emu.namespaceTopic("orders").subscription("bridge", { lockDurationMs: 5000 });
    const failing = new Set(ids("fgr", 20).filter((_, i) => i % 4 === 0));
    const attempts = new Map<string, number>();
    const rx = await startReceiver({
      status: (id) => {
        const n = (attempts.get(id ?? "") ?? 0) + 1;
        attempts.set(id ?? "", n);
        // Fails for about a second: longer than the route's max_elapsed of 300ms.
        return id !== undefined && failing.has(id) && n <= 6 ? 503 : 200;
      },
    });
    cleanups.push(() => rx.close());
    const sent = ids("fgr", 20);
    preload(emu, "orders", sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(namespaceYaml(emu, admin, rx.url, ", retry: { initial: 100ms, max: 200ms, max_elapsed: 300ms }"));
    cleanups.push(() => daemon.stop("SIGKILL"));
    await waitFor(() => rx.tally.hasAll(sent), 30_000, () => `delivered ${rx.tally.distinct}/20\n${daemon.stderr().slice(-2000)}`);
    await waitFor(() => sub.outstanding === 0, 10_000);
    const releases = sub.settleCalls.filter((c) => c.verb === "release");
    const again = sub.deliveries.filter((d) => d.deliveryCount > 1).map((d) => d.id);
    report(t, { scenario: "sink failing past the retry budget: Event Grid namespace → HTTP", sent: 20, delivered: rx.tally.distinct, duplicates: rx.tally.duplicates, deadLettered: 0, lost: 0, note: `${releases.length} release calls, delays ${[...new Set(releases.map((r) => r.delaySeconds))].join(",")} s` });
    assert.ok(releases.length > 0 && releases.every((r) => r.delaySeconds === 10), JSON.stringify(releases));
    assert.deepEqual([...new Set(again)].sort(), [...failing].sort(), "only the failing events came back");
    assert.equal(rx.tally.duplicates, 0, "no event was delivered twice");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("faults - Event Grid namespace source, slow sink (3 s per request, 1 s locks): locks renewed, nothing delivered twice", async (t) => {
    const emu = await emulator();
    const sub = emu.namespaceTopic("orders").subscription("bridge", { lockDurationMs: 1000 });
    const rx = await startReceiver({ delayMs: 3000 });
    cleanups.push(() => rx.close());
    const sent = ids("fgs", 30);
    preload(emu, "orders", sent);
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(namespaceYaml(emu, admin, rx.url).replace("lock_duration: 2s", "lock_duration: 1s"));
    cleanups.push(() => daemon.stop("SIGKILL"));
    await waitFor(() => rx.tally.hasAll(sent), 30_000, () => `delivered ${rx.tally.distinct}/30\n${daemon.stderr().slice(-2000)}`);
    await waitFor(() => sub.outstanding === 0, 10_000);
    const renewals = sub.settleCalls.filter((c) => c.verb === "renewLock").length;
    report(t, { scenario: "slow sink, 1 s locks: Event Grid namespace → HTTP", sent: 30, delivered: rx.tally.distinct, duplicates: rx.tally.duplicates, deadLettered: 0, lost: 0, note: `${renewals} renewLock calls` });
    assert.equal(rx.tally.duplicates, 0);
    assert.ok(sub.deliveries.every((d) => d.deliveryCount === 1), "no lock expired");
    assert.ok(renewals >= 2);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("faults - Event Grid webhook source SIGKILLed while Event Grid pushes: Event Grid's retries deliver everything after the restart", async (t) => {
    const N = 300;
    const emu = await emulator(0.0005);
    const topic = emu.topic("pushed", { schema: "cloudevents", keys: [TEST_KEY] });
    const rx = await startReceiver({ delayMs: 2 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const hookPort = await freePort();
    const yaml = `
engine: { instance_id: fhook, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  hook: { type: azure_eventgrid, listen: "127.0.0.1:${hookPort}", path: /hook }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: fhook, from: hook, to: [out] }
`;
    let daemon = startDaemon(yaml);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);
    const sub = await topic.subscribe({ url: `http://127.0.0.1:${hookPort}/hook`, deliverySchema: "cloudevents", concurrency: 16 });
    const sent = ids("fgh", N);
    for (let i = 0; i < N; i += 50) await publishToTopic(topic, sent.slice(i, i + 50).map((id) => JSON.parse(structuredEvent(id)) as Record<string, unknown>));
    await waitFor(() => rx.tally.distinct >= N * 0.3, 30_000, () => `${rx.tally.distinct}/${N}`, 2);
    const atKill = rx.tally.distinct;
    daemon.proc.kill("SIGKILL");
    await daemon.exited;
    await sleep(300);
    const d = startDaemon(yaml);
    daemon = d;
    cleanups.push(() => d.stop("SIGKILL"));
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}; emulator pending ${sub.pending}\n${daemon.stderr().slice(-2000)}`);
    const retried = sub.attempts.filter((a) => typeof a.status !== "number" || a.status >= 500).length;
    report(t, { scenario: "webhook source SIGKILL during push: Event Grid → HTTP", sent: N, delivered: rx.tally.distinct, duplicates: rx.tally.duplicates, deadLettered: sub.deadLettered.length, lost: rx.tally.missing(sent).length, note: `killed at ${atKill}; ${retried} failed attempts retried by Event Grid` });
    assert.deepEqual(rx.tally.missing(sent), []);
    assert.equal(sub.deadLettered.length, 0);
    assert.ok(retried > 0);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
