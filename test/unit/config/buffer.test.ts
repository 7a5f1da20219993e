/**
 * The route `buffer` in the config: its two shapes with their defaults, errors that point inside it,
 * the lint warning for sources that cannot pause, and one directory per disk buffer.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { builtinRegistry } from "../../../connectors/index.js";
import { resolveBuffer } from "../../../src/config/buffer.js";
import { formatIssue } from "../../../src/config/issues.js";
import { checkConfigText } from "../../../src/config/load.js";

const registry = builtinRegistry();
const lint = (yaml: string) => checkConfigText(yaml, "c.yaml", registry, {});
const lines = (yaml: string) => lint(yaml).issues.map(formatIssue);
const errors = (yaml: string) => lint(yaml).issues.filter((i) => i.level === "error").map(formatIssue);

const config = (source: string, buffer?: string, extra = "") => `
sources:
  in: ${source}
  in2: { type: http, listen: "127.0.0.1:9001" }
sinks:
  out: { type: nats_jetstream, servers: ["nats://127.0.0.1:4222"], subject: x }
  dlq: { type: file, path: /tmp/dl.jsonl }
routes:
  - name: r
    from: in
    to: [out]
    dead_letter: dlq${buffer ? `\n    buffer: ${buffer}` : ""}
${extra}`;

const NATS = `{ type: nats, servers: ["nats://127.0.0.1:4222"], subject: "in.>" }`;
const HTTP = `{ type: http, listen: "127.0.0.1:9000" }`;

describe("config - route buffer", () => {
  test("buffer config - memory and disk load with their defaults, sizes and durations as numbers", () => {
    const mem = lint(config(NATS, "{ type: memory, max_bytes: 8MiB }"));
    assert.ok(mem.config, JSON.stringify(mem.issues));
    assert.deepEqual(mem.config.routes[0]!.buffer, { type: "memory", max_bytes: 8 * 1024 * 1024 });
    assert.deepEqual(resolveBuffer(mem.config.routes[0]!.buffer, false), { type: "memory", maxBytes: 8 * 1024 * 1024, whenFull: "drop_newest" });

    const disk = lint(config(HTTP, "{ type: disk, path: /var/lib/cebridge/r, fsync: interval, fsync_interval: 250ms }"));
    assert.ok(disk.config, JSON.stringify(disk.issues));
    assert.deepEqual(resolveBuffer(disk.config.routes[0]!.buffer, true), {
      type: "disk",
      path: "/var/lib/cebridge/r",
      maxBytes: 1024 ** 3,
      fsync: "interval",
      fsyncIntervalMs: 250,
      whenFull: "block",
    });
  });

  test("buffer config - the default: a memory buffer of 64 MiB for a source that cannot pause, none for one that can", () => {
    assert.deepEqual(resolveBuffer(undefined, false), { type: "memory", maxBytes: 64 * 1024 * 1024, whenFull: "drop_newest" });
    assert.equal(resolveBuffer(undefined, true), undefined);
  });

  test("buffer config - a typo inside the buffer is an unknown key of the type it names; a wrong type or a missing path says so", () => {
    assert.deepEqual(errors(config(HTTP, "{ type: disk, path: /tmp/b, fsyn: always }")), [
      'c.yaml:13:41 error CFG_UNKNOWN_KEY routes[0].buffer.fsyn: unknown key "fsyn" (did you mean "fsync"?); allowed: type, path, max_bytes, fsync, fsync_interval, when_full',
    ]);
    assert.deepEqual(errors(config(HTTP, "{ type: disk, max_bytes: 1GiB }")), ['c.yaml:13:13 error CFG_REQUIRED routes[0].buffer: missing required key "path"']);
    assert.deepEqual(errors(config(HTTP, "{ type: sqlite }")), ['c.yaml:13:21 error CFG_VALUE routes[0].buffer.type: must be one of: "memory", "disk"']);
    assert.deepEqual(errors(config(HTTP, "{ max_bytes: 1MiB }")), ['c.yaml:13:13 error CFG_REQUIRED routes[0].buffer: missing required key "type"']);
    assert.deepEqual(errors(config(HTTP, "{ type: memory, max_bytes: lots }")), ['c.yaml:13:40 error CFG_VALUE routes[0].buffer.max_bytes: must be a size such as 512B, 64KiB, 1MiB (or integer bytes)']);
    assert.deepEqual(errors(config(HTTP, "{ type: memory, when_full: wait }")), ['c.yaml:13:40 error CFG_VALUE routes[0].buffer.when_full: must be one of: "drop_newest", "block"']);
  });

  test("buffer config - lint warns when a source that cannot pause has only a memory buffer that drops (the default included), not with a disk buffer", () => {
    const warn = (buffer?: string) => lines(config(NATS, buffer)).filter((l) => l.includes("cannot pause"));
    assert.deepEqual(warn(), [
      'c.yaml:10:11 warning CFG_DELIVERY routes[0].from: source "in" (nats) cannot pause: when its memory buffer (64MiB) is full, events are dropped (counted in cebridge_events_dropped_total{reason="overflow"}); a disk buffer keeps them',
    ]);
    assert.equal(warn("{ type: memory, max_bytes: 8MiB, when_full: drop_newest }").length, 1);
    assert.match(warn("{ type: memory, max_bytes: 8MiB, when_full: drop_newest }")[0]!, /routes\[0\]\.buffer: source "in" \(nats\) cannot pause: when its memory buffer \(8MiB\) is full/);
    assert.match(warn("{ type: memory, when_full: block }")[0]!, /holds it back only where it can stall its input \(MQTT QoS 0 stops reading\); core NATS still drops/);
    assert.deepEqual(warn("{ type: disk, path: /tmp/nats-buffer }"), []);
    // A pausable source has nothing to drop.
    assert.deepEqual(lines(config(HTTP)).filter((l) => l.includes("cannot pause")), []);
  });

  test("buffer config - two routes on one disk buffer directory is an error", () => {
    const extra = `  - { name: r2, from: in2, to: [out], dead_letter: dlq, buffer: { type: disk, path: /tmp/shared/../shared } }`;
    assert.deepEqual(
      lines(config(HTTP, "{ type: disk, path: /tmp/shared }", extra)).filter((l) => l.includes("CFG_BUFFER")),
      ['c.yaml:14:85 error CFG_BUFFER routes[1].buffer.path: disk buffer directory "/tmp/shared/../shared" is already used by routes[0]; each route needs its own'],
    );
  });
});
