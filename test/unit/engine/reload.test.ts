/**
 * The engine applying hot reloads, with in-memory connectors under a steady stream of events:
 * which components are left alone, replaced or added, and that no event is lost or delivered twice
 * on a route that did not change (nor on one whose route changed but whose source did not).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, test } from "node:test";
import { waitFor } from "../../support/wait.js";
import { checkConfigText } from "../../../src/config/load.js";
import type { BridgeConfig } from "../../../src/config/schema.js";
import { silentLogger } from "../../../src/core/logger.js";
import type { Outcome } from "../../../src/core/outcome.js";
import { Engine } from "../../../src/engine/engine.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { StatusBoard } from "../../../src/observability/status.js";
import { memoryRegistry, queue, queues, sinkRecord, sinkRecords, testEvent } from "../../support/memory-connectors.js";

const registry = memoryRegistry();

function config(yaml: string): BridgeConfig {
  const r = checkConfigText(`engine: { instance_id: t, admin: { listen: "off" }, shutdown_timeout: 5s }\n${yaml}`, "test.yaml", registry);
  assert.ok(r.config, r.issues.map((i) => `${i.line}:${i.col} ${i.message}`).join("\n"));
  return r.config;
}

const BASE = `
sources:
  a: { type: memory, queue: qa }
  b: { type: memory, queue: qb }
sinks:
  sa: { type: memory, name: sa }
  sb: { type: memory, name: sb }
routes:
  - { name: ra, from: a, to: [sa], max_in_flight: 16 }
  - { name: rb, from: b, to: [sb], max_in_flight: 16 }
`;

async function startEngine(cfg: BridgeConfig): Promise<{ engine: Engine; board: StatusBoard }> {
  const board = new StatusBoard();
  const engine = new Engine(cfg, { registry, log: silentLogger, metrics: new Metrics(), board });
  await engine.start();
  return { engine, board };
}

/** Pushes `n` events to `q`, a few per tick, while `during` runs; returns every settle promise. */
async function underLoad(q: string, tag: string, n: number, during: () => Promise<void>): Promise<Promise<Outcome>[]> {
  const pending: Promise<Outcome>[] = [];
  let i = 0;
  const feeding = (async () => {
    while (i < n) {
      for (let k = 0; k < 5 && i < n; k++) pending.push(queue(q).push(testEvent(`${tag}-${i++}`)));
      await new Promise((r) => setImmediate(r));
    }
  })();
  await new Promise((r) => setTimeout(r, 5));
  await during();
  await feeding;
  return pending;
}

function idsOf(name: string): string[] {
  return sinkRecord(name).writes.map((e) => String(e.attributes["id"]));
}

function assertExactlyOnce(name: string, tag: string, n: number): void {
  const got = idsOf(name).filter((id) => id.startsWith(`${tag}-`));
  const distinct = new Set(got);
  assert.equal(distinct.size, n, `${name}: ${distinct.size} of ${n} distinct ids`);
  assert.equal(got.length, n, `${name}: ${got.length - n} duplicate(s)`);
}

afterEach(() => {
  queues.clear();
  sinkRecords.clear();
});

describe("engine reload", () => {
  test("engine reload - a route with a disk buffer restarts: the old buffer lets its directory go, the new one takes over, nothing is lost", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cebridge-reload-disk-"));
    try {
      const withDisk = (window: number) => BASE.replace("to: [sb], max_in_flight: 16 }", `to: [sb], max_in_flight: ${window}, buffer: { type: disk, path: "${dir}", fsync: interval } }`);
      const { engine } = await startEngine(config(withDisk(16)));
      let outcome;
      const pending = await underLoad("qb", "d", 500, async () => {
        outcome = await engine.reload(config(withDisk(8)));
      });
      // Settled once durable in the buffer; delivered afterwards, by whichever buffer holds them.
      assert.ok((await Promise.all(pending)).every((o) => o.status === "delivered"));
      assert.deepEqual(outcome!.routes, { keep: ["ra"], switch: [], restart: ["rb"], add: [], remove: [] });
      await waitFor(() => new Set(idsOf("sb")).size >= 500, 10_000, () => `${new Set(idsOf("sb")).size} of 500 delivered`);
      await engine.stop();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("engine reload - an unchanged route is left alone while another is switched and a third added: none lost or duplicated", async () => {
    const { engine, board } = await startEngine(config(BASE));
    const sinceA = board.routes.get("ra")!.since;
    let outcome;
    const [pa, pb] = await Promise.all([
      underLoad("qa", "a", 2000, async () => {}),
      underLoad("qb", "b", 2000, async () => {
        const yaml = (BASE.replace("to: [sb], max_in_flight: 16 }", "to: [sb], max_in_flight: 16, transform: { set: { subject: v2 } } }") + `  - { name: rc, from: c, to: [sc] }\n`).replace(
          "sinks:\n",
          "  c: { type: memory, queue: qc }\nsinks:\n  sc: { type: memory, name: sc }\n",
        );
        outcome = await engine.reload(config(yaml));
      }),
    ]);
    const outcomes = await Promise.all([...pa!, ...pb!]);
    assert.ok(outcomes.every((o) => o.status === "delivered"));
    assert.deepEqual(outcome!.routes, { keep: ["ra"], switch: ["rb"], restart: [], add: ["rc"], remove: [] });
    assert.equal(outcome!.result, "applied");
    assertExactlyOnce("sa", "a", 2000);
    assertExactlyOnce("sb", "b", 2000);
    // The switched route kept its source (one start), and later events went through the new transform.
    assert.equal(queue("qb").starts, 1);
    assert.equal(queue("qa").starts, 1);
    assert.equal(board.routes.get("ra")!.since, sinceA, "the unchanged route was not restarted");
    assert.equal(sinkRecord("sb").writes.at(-1)!.attributes["subject"], "v2");
    assert.equal(sinkRecord("sb").instances, 1, "a kept sink is not reopened");
    assert.equal(board.routes.get("rb")!.counters.received, 2000, "counters carry over a switch");
    await queue("qc").push(testEvent("c-0"));
    assert.deepEqual(idsOf("sc"), ["c-0"]);
    await engine.stop();
  });

  test("engine reload - a changed source restarts its route: the old one drains first, nothing is lost", async () => {
    const { engine, board } = await startEngine(config(BASE));
    let outcome;
    const pending = await underLoad("qb", "b", 1000, async () => {
      outcome = await engine.reload(config(BASE.replace("b: { type: memory, queue: qb }", "b: { type: memory, queue: qb, batch: 2 }")));
    });
    assert.ok((await Promise.all(pending)).every((o) => o.status === "delivered"));
    assert.deepEqual(outcome!.routes, { keep: ["ra"], switch: [], restart: ["rb"], add: [], remove: [] });
    assert.equal(queue("qb").starts, 2);
    assert.equal(queue("qb").closes, 1);
    assert.equal(new Set(idsOf("sb")).size, 1000);
    assert.equal(board.components.get("source:b")!.up, true);
    await engine.stop();
  });

  test("engine reload - a sink whose options change is closed after its routes drain, then opened anew; the source waits meanwhile", async () => {
    const { engine } = await startEngine(config(BASE.replace("sb: { type: memory, name: sb }", "sb: { type: memory, name: sb, delay: 2ms }")));
    let outcome;
    const pending = await underLoad("qb", "b", 600, async () => {
      outcome = await engine.reload(config(BASE));
    });
    assert.ok((await Promise.all(pending)).every((o) => o.status === "delivered"));
    assert.deepEqual(outcome!.routes.restart, ["rb"]);
    const rec = sinkRecord("sb");
    assert.equal(rec.instances, 2);
    assert.equal(rec.closes, 1, "the old instance closed before the new one took over");
    assert.equal(queue("qb").starts, 1, "the source itself did not restart");
    assertExactlyOnce("sb", "b", 600);
    await engine.stop();
  });

  test("engine reload - removing a route stops and closes its source; renaming one keeps its source", async () => {
    const { engine, board } = await startEngine(config(BASE));
    const out = await engine.reload(
      config(`
sources:
  a: { type: memory, queue: qa }
sinks:
  sa: { type: memory, name: sa }
routes:
  - { name: ra2, from: a, to: [sa], max_in_flight: 16 }
`),
    );
    assert.deepEqual(out.routes, { keep: [], switch: ["ra2"], restart: [], add: [], remove: ["rb"] });
    assert.equal(queue("qb").closes, 1);
    assert.equal(sinkRecord("sb").closes, 1);
    assert.deepEqual([...board.routes.keys()], ["ra2"]);
    assert.deepEqual([...board.components.keys()].sort(), ["sink:sa", "source:a"]);
    await queue("qa").push(testEvent("x"));
    assert.deepEqual(idsOf("sa"), ["x"]);
    await engine.stop();
  });

  test("engine reload - a new sink that cannot open leaves the running config as it was", async () => {
    const { engine, board } = await startEngine(config(BASE));
    const out = await engine.reload(config(BASE.replace("sinks:\n", "sinks:\n  sx: { type: memory, name: sx, open_fails: true }\n").replace("to: [sb]", "to: [sb, sx]")));
    assert.equal(out.result, "failed");
    assert.match(out.message!, /nothing was changed: sink sx cannot open/);
    assert.equal(board.components.has("sink:sx"), false);
    await queue("qb").push(testEvent("y"));
    assert.deepEqual(idsOf("sb"), ["y"]);
    assert.equal(engine.current.routes.find((r) => r.name === "rb")!.to.length, 1);
    await engine.stop();
  });

  test("engine reload - the same config again changes nothing; a stop during a reload's drain still drains everything", async () => {
    const { engine } = await startEngine(config(BASE.replace("sb: { type: memory, name: sb }", "sb: { type: memory, name: sb, delay: 300ms }")));
    const same = await engine.reload(config(BASE.replace("sb: { type: memory, name: sb }", "sb: { type: memory, name: sb, delay: 300ms }")));
    assert.equal(same.result, "unchanged");
    const pending = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => queue("qb").push(testEvent(`s-${i}`)));
    await new Promise((r) => setTimeout(r, 5));
    const reload = engine.reload(config(BASE.replace("to: [sb], max_in_flight: 16 }", "to: [sb], max_in_flight: 16, transform: { set: { subject: v2 } } }")));
    await new Promise((r) => setTimeout(r, 5));
    await engine.stop();
    assert.equal((await reload).result, "failed");
    assert.ok((await Promise.all(pending)).every((o) => o.status === "delivered"));
    assertExactlyOnce("sb", "s", 8);
  });
});
