/**
 * Fault matrix: hot reload under load.
 *
 * A JetStream → HTTP route (unchanged by every reload) carries thousands of events while SIGHUP
 * applies a new config that changes a second route (HTTP source → HTTP, under its own client load)
 * and adds a third, then an invalid config is refused. Counted by the fault-matrix harness: no event
 * lost or duplicated on the unchanged route, nor on the changed route whose source stayed. A second
 * test drives `run --watch`: a saved change applies, an invalid save is refused with its
 * FILE:LINE:COL errors in /status and on stderr, and the old config keeps running.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { after, describe, test } from "node:test";
import { startNats } from "../support/brokers.js";
import { createStream, ids, natsClient, preload, report, routeStatus, sample, startReceiver, Tally, waitConsumerDrained } from "../support/counting.js";
import { spawnDaemon, startDaemon, writeConfig } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Status {
  config: { generation: number; loaded_at: string; last_reload: null | { result: string; trigger: string; errors?: string[]; routes?: Record<string, string[]> } };
  routes: { name: string; since: string }[];
}

async function status(admin: string): Promise<Status> {
  return (await (await fetch(`http://${admin}/status`, { signal: AbortSignal.timeout(5000) })).json()) as Status;
}

/** Posts ids in `clients` parallel loops; a refused post (429, 503, connection error) is retried until 2xx. */
function httpLoad(port: number, list: readonly string[], clients: number): { done: Promise<void>; accepted: Tally; retries: number } {
  const accepted = new Tally();
  const state = { done: Promise.resolve(), accepted, retries: 0 };
  let next = 0;
  const one = async (id: string) => {
    for (;;) {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, {
          method: "POST",
          headers: { "content-type": "application/cloudevents+json" },
          body: JSON.stringify({ specversion: "1.0", id, source: "urn:cebridge:reload", type: "dev.cebridge.test.reload", data: { id } }),
        });
        await res.arrayBuffer();
        if (res.status === 204) return accepted.add(id);
      } catch {
        // connection refused or reset: try again
      }
      state.retries++;
      await sleep(20);
    }
  };
  state.done = Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < list.length) {
        await one(list[next++]!);
        await sleep(2);
      }
    }),
  ).then(() => undefined);
  return state;
}

function config(p: { admin: string; nats: string; a: string; b: string; c: string; bPort: number; cPort: number; variant: "v1" | "v2" | "invalid" }): string {
  const routeB =
    p.variant === "v1"
      ? `{ name: b, from: hooks, to: [out_b] }`
      : p.variant === "v2"
        ? `{ name: b, from: hooks, to: [out_b], transform: { set: { subject: v2 } } }`
        : `{ name: b, from: hooks, to: [nope] }`;
  return `
engine: { instance_id: hr, admin: { listen: "${p.admin}" }, shutdown_timeout: 10s, log: { level: warn } }
sources:
  js_in: { type: nats_jetstream, servers: ["${p.nats}"], stream: HR, consumer: bridge, create: true, ack_wait: 30s }
  hooks: { type: http, listen: "127.0.0.1:${p.bPort}", path: / }
${p.variant === "v1" ? "" : `  hooks_c: { type: http, listen: "127.0.0.1:${p.cPort}", path: / }\n`}sinks:
  out_a: { type: http, url: "${p.a}" }
  out_b: { type: http, url: "${p.b}" }
${p.variant === "v1" ? "" : `  out_c: { type: http, url: "${p.c}" }\n`}routes:
  - { name: a, from: js_in, to: [out_a], max_in_flight: 32 }
  - ${routeB}
${p.variant === "v1" ? "" : "  - { name: c, from: hooks_c, to: [out_c] }\n"}`;
}

describe("faults - hot reload", { timeout: 150_000 }, () => {
  test("hot reload - SIGHUP under load: the unchanged route loses and duplicates nothing, the changed one neither; an invalid config is refused", async (t) => {
    const N = 6000;
    const NB = 800;
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    const rxA = await startReceiver({ delayMs: 20 });
    const rxB = await startReceiver();
    const rxC = await startReceiver();
    cleanups.push(() => rxA.close(), () => rxB.close(), () => rxC.close());
    const sentA = ids("hr", N);
    await createStream(nc, "HR", ["hr.>"]);
    await preload(nc, "hr.x", sentA);

    const p = { admin: `127.0.0.1:${await freePort()}`, nats: nats.url, a: rxA.url, b: rxB.url, c: rxC.url, bPort: await freePort(), cPort: await freePort() };
    const daemon = startDaemon(config({ ...p, variant: "v1" }));
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(p.admin, 30_000);
    const sinceA = (await status(p.admin)).routes.find((r) => r.name === "a")!.since;

    const sentB = ids("hb", NB);
    const load = httpLoad(p.bPort, sentB, 8);
    await waitFor(() => rxA.tally.distinct > 600 && load.accepted.distinct > 100, 30_000, "both routes flowing");

    // 1. A valid change: route b changes (its source stays), route c is added.
    writeFileSync(daemon.configFile, config({ ...p, variant: "v2" }));
    const atReload = rxA.tally.distinct;
    daemon.proc.kill("SIGHUP");
    await waitFor(async () => (await status(p.admin)).config.generation === 2, 20_000, "generation 2");
    const applied = await status(p.admin);
    const flowingAfter = rxA.tally.distinct;
    assert.equal(applied.config.last_reload!.result, "applied");
    assert.deepEqual(applied.config.last_reload!.routes, { keep: ["a"], switch: ["b"], add: ["c"] });
    assert.equal(applied.routes.find((r) => r.name === "a")!.since, sinceA, "route a was not restarted");
    assert.ok(flowingAfter < N, `the reload was applied while route a still had ${N - flowingAfter} events to go`);

    // 2. An invalid config is refused with its FILE:LINE:COL errors; the running one stays.
    writeFileSync(daemon.configFile, config({ ...p, variant: "invalid" }));
    daemon.proc.kill("SIGHUP");
    await waitFor(async () => (await status(p.admin)).config.last_reload?.result === "refused", 20_000, "refused");
    const refused = await status(p.admin);
    assert.equal(refused.config.generation, 2);
    const line = refused.config.last_reload!.errors!.find((l) => l.includes("CFG_REF"))!;
    assert.match(line, new RegExp(`^${daemon.configFile.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:13:\\d+ error CFG_REF routes\\[1\\]\\.to\\[0\\]: no sink named "nope"`));
    assert.ok(daemon.stderr().includes(line), "the same line on stderr");
    assert.match(daemon.stderr(), /"msg":"reload refused: the new config has errors; the running config stays in force"/);
    const cPost = await fetch(`http://127.0.0.1:${p.cPort}/`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: "c-1", source: "urn:x", type: "t" }),
    });
    assert.equal(cPost.status, 204, "the added route c still runs");

    await load.done;
    await waitFor(() => rxA.tally.hasAll(sentA), 90_000, () => `route a: ${rxA.tally.distinct}/${N}, missing ${sample(rxA.tally.missing(sentA))}`, 100);
    await waitConsumerDrained(nc, "HR", "bridge", 20_000);
    await waitFor(() => rxB.tally.hasAll(sentB), 10_000, () => `route b: ${rxB.tally.distinct}/${NB}`);
    const stA = await routeStatus(p.admin, "a");
    report(t, {
      scenario: "hot reload (SIGHUP) under load: unchanged JetStream → HTTP route",
      sent: N,
      delivered: rxA.tally.distinct,
      duplicates: rxA.tally.duplicates,
      deadLettered: stA.counters.deadLettered,
      lost: rxA.tally.missing(sentA).length,
      note: `${atReload} delivered before the reload, ${N - flowingAfter} after it was applied; an invalid reload refused meanwhile`,
    });
    report(t, {
      scenario: "hot reload (SIGHUP) under load: changed HTTP → HTTP route (source kept, route switched)",
      sent: NB,
      delivered: rxB.tally.distinct,
      duplicates: rxB.tally.duplicates,
      deadLettered: 0,
      lost: rxB.tally.missing(sentB).length,
      note: `${load.retries} client retries (429/503)`,
    });
    assert.equal(rxA.tally.duplicates, 0);
    assert.deepEqual(rxA.tally.missing(sentA), []);
    assert.equal(rxB.tally.duplicates, 0);
    assert.deepEqual(rxB.tally.missing(sentB), []);
    assert.deepEqual(rxC.tally.missing(["c-1"]), []);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("hot reload - run --watch applies a saved change, refuses an invalid save, and keeps the old config running", async () => {
    const rx = await startReceiver();
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const port = await freePort();
    const yaml = (to: string, extra = "", level = "error") => `
engine: { instance_id: hw, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: ${level} } }
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: r, from: in, to: [${to}], retry: { initial: 20ms, max: 50ms, max_elapsed: 200ms }${extra} }
`;
    const file = writeConfig(yaml("out"));
    const daemon = spawnDaemon(["run", "-c", file, "--watch"], file);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin);
    const send = async (id: string) =>
      (
        await fetch(`http://127.0.0.1:${port}/`, {
          method: "POST",
          headers: { "content-type": "application/cloudevents+json" },
          body: JSON.stringify({ specversion: "1.0", id, source: "urn:w", type: "t" }),
        })
      ).status;
    assert.equal(await send("w-1"), 204);

    writeFileSync(file, yaml("out", ", filter: { exact: { type: t } }"));
    await waitFor(async () => (await status(admin)).config.generation === 2, 15_000, "watch applied the change");
    const s2 = await status(admin);
    assert.equal(s2.config.last_reload!.trigger, "watch");
    assert.equal(s2.config.last_reload!.result, "applied");
    assert.deepEqual(s2.config.last_reload!.routes, { switch: ["r"] });

    writeFileSync(file, yaml("missing"));
    await waitFor(async () => (await status(admin)).config.last_reload?.result === "refused", 15_000, "watch refused the invalid file");
    const s3 = await status(admin);
    assert.equal(s3.config.generation, 2);
    assert.deepEqual(
      s3.config.last_reload!.errors!.map((l) => l.replace(file, "F")),
      ['F:8:31 error CFG_REF routes[0].to[0]: no sink named "missing" (defined: out)'],
    );
    assert.equal(await send("w-2"), 204, "the previous config keeps running");
    assert.ok(readFileSync(file, "utf8").includes("missing"));
    assert.deepEqual(rx.tally.missing(["w-1", "w-2"]), []);

    // Only the log level changes: nothing restarts, and the running route's logger follows the new level.
    writeFileSync(file, yaml("out", ", filter: { exact: { type: t } }", "warn"));
    await waitFor(async () => (await status(admin)).config.generation === 3, 15_000, "watch applied the level change");
    assert.equal((await status(admin)).config.last_reload!.result, "unchanged");
    assert.doesNotMatch(daemon.stderr(), /releasing event for redelivery/);
    await rx.stop();
    assert.equal(await send("w-3"), 503);
    await waitFor(() => /"route":"r".*"msg":"releasing event for redelivery"/.test(daemon.stderr()), 5_000, "a warning from the route at the new level");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
