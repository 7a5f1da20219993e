/**
 * The pure reload plan: what a change of config does to each pipeline and sink.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { checkConfigText } from "../../../src/config/load.js";
import type { BridgeConfig } from "../../../src/config/schema.js";
import { deepEqual, planReload } from "../../../src/engine/reload-plan.js";
import { memoryRegistry } from "../../support/memory-connectors.js";

const registry = memoryRegistry();

function cfg(body: string, engine = `instance_id: t, admin: { listen: "127.0.0.1:9000" }`): BridgeConfig {
  const r = checkConfigText(`engine: { ${engine} }\n${body}`, "t.yaml", registry);
  assert.ok(r.config, r.issues.map((i) => i.message).join("\n"));
  return r.config;
}

const BASE = `
sources:
  a: { type: memory, queue: qa }
  b: { type: memory, queue: qb }
  c: { type: memory, queue: qc }
sinks:
  s1: { type: memory, name: s1 }
  s2: { type: memory, name: s2 }
  dlq: { type: memory, name: dlq }
routes:
  - { name: ra, from: a, to: [s1], dead_letter: dlq }
  - { name: rb, from: b, to: [s1, s2] }
  - { name: rc, from: c, to: [s2] }
`;

function changes(prev: string, next: string, engine?: string) {
  const plan = planReload(cfg(prev), cfg(next, engine));
  return { pipelines: Object.fromEntries(plan.pipelines.map((p) => [p.sourceId, p.change + (p.sourceChanged ? "+source" : "")])), sinks: plan.sinks, needsRestart: plan.needsRestart, unchanged: plan.unchanged };
}

describe("reload plan", () => {
  test("reload plan - the same config (keys reordered, comments added) changes nothing", () => {
    const c = changes(BASE, BASE.replace("{ type: memory, queue: qa }", "{ queue: qa, type: memory }  # moved"));
    assert.equal(c.unchanged, true);
    assert.deepEqual(c.pipelines, { a: "keep", b: "keep", c: "keep" });
    assert.deepEqual(c.sinks, { keep: ["dlq", "s1", "s2"], replace: [], add: [], remove: [] });
  });

  const cases: [string, string, Record<string, string>, Partial<Record<"keep" | "replace" | "add" | "remove", string[]>>][] = [
    ["a route's filter changes: switch, its source stays", BASE.replace("to: [s2] }", "to: [s2], filter: { exact: { type: x } } }"), { a: "keep", b: "keep", c: "switch" }, {}],
    ["a route gains a new sink: switch (the new sink opens first)", BASE.replace("to: [s2] }", "to: [s2, s3] }").replace("sinks:\n", "sinks:\n  s3: { type: memory, name: s3 }\n"), { a: "keep", b: "keep", c: "switch" }, { add: ["s3"] }],
    ["a shared sink's options change: every route using it restarts, the others stay", BASE.replace("s2: { type: memory, name: s2 }", "s2: { type: memory, name: s2, delay: 5ms }"), { a: "keep", b: "restart", c: "restart" }, { replace: ["s2"], keep: ["dlq", "s1"] }],
    ["the dead-letter sink changes: its route restarts", BASE.replace("dlq: { type: memory, name: dlq }", "dlq: { type: memory, name: dlq2 }"), { a: "restart", b: "keep", c: "keep" }, { replace: ["dlq"] }],
    ["a source's options change: restart with a new source", BASE.replace("b: { type: memory, queue: qb }", "b: { type: memory, queue: qb, batch: 3 }"), { a: "keep", b: "restart+source", c: "keep" }, {}],
    ["a route is removed: its sink too when nothing else uses it", BASE.replace("  - { name: ra, from: a, to: [s1], dead_letter: dlq }\n", ""), { a: "remove", b: "keep", c: "keep" }, { remove: ["dlq"] }],
    ["a route is renamed: switch (same source)", BASE.replace("name: rc,", "name: rc2,"), { a: "keep", b: "keep", c: "switch" }, {}],
    // One directory has one owner: the old disk buffer closes before the new one opens and replays it.
    ["a route with a disk buffer changes: restart, not switch", BASE.replace("to: [s2] }", "to: [s2], buffer: { type: disk, path: /tmp/x }, max_in_flight: 9 }"), { a: "keep", b: "keep", c: "restart" }, {}],
  ];
  for (const [what, next, pipelines, sinks] of cases) {
    test(`reload plan - ${what}`, () => {
      const c = changes(BASE, next);
      assert.deepEqual(c.pipelines, pipelines);
      for (const [k, v] of Object.entries(sinks)) assert.deepEqual(c.sinks[k as "keep"], v, k);
      assert.equal(c.unchanged, false);
    });
  }

  test("reload plan - a new instance_id replaces everything; admin.listen needs a restart", () => {
    const c = changes(BASE, BASE, `instance_id: other, admin: { listen: "127.0.0.1:9001" }`);
    assert.deepEqual(c.pipelines, { a: "restart+source", b: "restart+source", c: "restart+source" });
    assert.deepEqual(c.sinks.replace, ["dlq", "s1", "s2"]);
    assert.deepEqual(c.needsRestart, ["engine.admin.listen"]);
  });

  test("reload plan - turning tracing on or off needs a restart, and changes no route", () => {
    const c = changes(BASE, BASE, `instance_id: t, admin: { listen: "127.0.0.1:9000" }, tracing: { enabled: true }`);
    assert.deepEqual(c.needsRestart, ["engine.tracing.enabled"]);
    assert.deepEqual(c.pipelines, { a: "keep", b: "keep", c: "keep" });
  });

  test("reload plan - a source that feeds a route only in the new config is added", () => {
    const c = changes(BASE.replace("  - { name: rc, from: c, to: [s2] }\n", ""), BASE);
    assert.deepEqual(c.pipelines, { a: "keep", b: "keep", c: "add" });
  });

  test("reload plan - deepEqual ignores key order and undefined members, not array order", () => {
    assert.equal(deepEqual({ a: 1, b: [1, 2], c: undefined }, { b: [1, 2], a: 1 }), true);
    assert.equal(deepEqual({ b: [2, 1] }, { b: [1, 2] }), false);
    assert.equal(deepEqual({ a: { x: 1 } }, { a: { x: "1" } }), false);
    assert.equal(deepEqual([], {}), false);
  });
});
