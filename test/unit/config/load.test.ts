import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { builtinRegistry } from "../../../connectors/index.js";
import { formatIssue } from "../../../src/config/issues.js";
import { checkConfigText } from "../../../src/config/load.js";
import { parseDuration, parseSize } from "../../../src/config/units.js";

const registry = builtinRegistry();
const lint = (yaml: string, env: NodeJS.ProcessEnv = {}) => checkConfigText(yaml, "c.yaml", registry, env);
const lines = (yaml: string, env: NodeJS.ProcessEnv = {}) => lint(yaml, env).issues.map(formatIssue);

const GOOD = `
sources:
  in: { type: http, listen: "127.0.0.1:9000" }
sinks:
  out: { type: stdout }
  dlq: { type: file, path: /tmp/dl.jsonl }
routes:
  - name: r
    from: in
    to: [out]
    dead_letter: dlq
`;

describe("config - loading", () => {
  test("config - a valid file loads with defaults filled in and units converted", () => {
    const { config, issues } = lint(GOOD);
    assert.deepEqual(issues, []);
    assert.ok(config);
    const route = config.routes[0]!;
    assert.equal(route.max_in_flight, 256);
    assert.deepEqual(route.retry, { initial: 100, max: 30_000, max_elapsed: 300_000 });
    assert.equal(route.timeout, 30_000);
    assert.equal(route.max_hops, 8);
    assert.equal(route.loop_prevention, true);
    assert.equal(config.engine.shutdown_timeout, 30_000);
    assert.equal(config.engine.admin.listen, "127.0.0.1:8081");
    assert.equal(config.sources["in"]!.options["max_body"], 1024 * 1024);
    assert.equal(config.sources["in"]!.options["path"], "/");
    assert.ok(Object.isFrozen(config.routes[0]));
    assert.ok(Object.isFrozen(config.sources["in"]!.options));
  });

  test("config - unknown keys are errors with line, column and a suggestion", () => {
    assert.deepEqual(
      lines(`
sources:
  in: { type: http, listn: "127.0.0.1:9000" }
sinks:
  out: { type: stdout, formt: json }
routes:
  - { name: r, from: in, to: [out], dead_letter_sink: x }
`),
      [
        'c.yaml:3:21 error CFG_UNKNOWN_KEY sources.in.listn: unknown key "listn" (did you mean "listen"?); allowed: listen, path, max_body, max_depth, auth, allowed_origins, plain, retry_after, tls',
        'c.yaml:5:24 error CFG_UNKNOWN_KEY sinks.out.formt: unknown key "formt" (did you mean "format"?); allowed: format',
        'c.yaml:7:5 warning CFG_DELIVERY routes[0]: route has no dead_letter sink: events that fail permanently are logged, counted and rejected',
        'c.yaml:7:37 error CFG_UNKNOWN_KEY routes[0].dead_letter_sink: unknown key "dead_letter_sink" (did you mean "dead_letter"?); allowed: name, from, to, filter, transform, max_in_flight, buffer, retry, timeout, dead_letter, max_deliveries, loop_prevention, max_hops, dedupe, ordering',
      ],
    );
  });

  test("config - every problem is reported at once, in file order", () => {
    const out = lines(`
engine:
  shutdown_timeout: soon
sources:
  in: { type: htp }
sinks:
  out: { type: http, url: "ftp://x", mode: carrier }
routes:
  - name: r
    from: nowhere
    to: [out, missing]
    max_in_flight: 0
`);
    assert.deepEqual(out, [
      "c.yaml:3:21 error CFG_VALUE engine.shutdown_timeout: must be a duration such as 250ms, 30s, 5m, 1h (or integer milliseconds)",
      'c.yaml:5:3 warning CFG_REF sources.in: source "in" is not used by any route',
      `c.yaml:5:15 error CFG_UNKNOWN_CONNECTOR sources.in.type: unknown source type "htp"; known: ${registry.sourceTypes().join(", ")}`,
      "c.yaml:7:27 error CFG_VALUE sinks.out.url: must be where to POST events",
      'c.yaml:7:44 error CFG_VALUE sinks.out.mode: must be one of: "binary", "structured", "batch"',
      "c.yaml:9:5 warning CFG_DELIVERY routes[0]: route has no dead_letter sink: events that fail permanently are logged, counted and rejected",
      'c.yaml:10:11 error CFG_REF routes[0].from: no source named "nowhere" (defined: in)',
      'c.yaml:11:15 error CFG_REF routes[0].to[1]: no sink named "missing" (defined: out)',
      "c.yaml:12:20 error CFG_VALUE routes[0].max_in_flight: must be >= 1",
    ]);
  });

  test("config - missing required keys point at the parent", () => {
    assert.deepEqual(lines(`
sources:
  in: { type: http }
sinks:
  f: { type: file }
routes:
  - { from: in, to: [f] }
`).filter((l) => l.includes("error")), [
      'c.yaml:5:6 error CFG_REQUIRED sinks.f: missing required key "path"',
      'c.yaml:7:5 error CFG_REQUIRED routes[0]: missing required key "name"',
    ]);
  });

  test("config - YAML syntax errors carry their position", () => {
    const out = lines("sources:\n  in: { type: http\nroutes: []\n");
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^c\.yaml:3:\d+ error CFG_YAML \(root\): /);
  });

  test("config - ${VAR}, ${VAR:-default} and ${file:} interpolate; a missing variable is an error", () => {
    const dir = mkdtempSync(join(tmpdir(), "cebridge-cfg-"));
    const secret = join(dir, "token");
    writeFileSync(secret, "s3cr3t\n");
    const yaml = `
sources:
  in:
    type: http
    listen: "127.0.0.1:\${PORT}"
    max_depth: \${DEPTH:-12}
    auth: { bearer: "\${file:${secret}}" }
sinks:
  out: { type: stdout }
routes:
  - name: r
    from: in
    to: [out]
    max_in_flight: \${WINDOW}
`;
    const ok = lint(yaml, { PORT: "9999", WINDOW: "32" });
    assert.ok(ok.config, ok.issues.map(formatIssue).join("\n"));
    assert.equal(ok.config.sources["in"]!.options["listen"], "127.0.0.1:9999");
    assert.equal(ok.config.sources["in"]!.options["max_depth"], 12);
    assert.deepEqual(ok.config.sources["in"]!.options["auth"], { bearer: "s3cr3t" });
    assert.equal(ok.config.routes[0]!.max_in_flight, 32);

    const bad = lines(yaml, { PORT: "9999" }).filter((l) => l.includes(" error "));
    assert.deepEqual(bad, ["c.yaml:14:20 error CFG_ENV routes[0].max_in_flight: environment variable WINDOW is not set and has no default (write ${WINDOW:-default})"]);
    const noFile = lines(yaml.replace(secret, "/nonexistent/x"), { PORT: "1", WINDOW: "1" }).filter((l) => l.includes(" error "));
    assert.deepEqual(noFile, ["c.yaml:7:21 error CFG_FILE sources.in.auth.bearer: cannot read ${file:/nonexistent/x}: ENOENT"]);
  });

  test("config - secrets never appear in issues", () => {
    const out = lines(`
sources:
  in: { type: http, auth: { bearer: "hunter2-secret" }, max_body: lots }
sinks:
  out: { type: http, url: "http://x", headers: { authorization: "Bearer topsecret" }, timeout: forever }
routes:
  - { name: r, from: in, to: [out] }
`).join("\n");
    assert.ok(!out.includes("hunter2"));
    assert.ok(!out.includes("topsecret"));
    assert.match(out, /max_body: must be a size/);
  });

  test("config - warnings for a missing dead letter and unused components; a shared source is an error", () => {
    const out = lines(`
sources:
  in: { type: http }
  spare: { type: http, listen: "127.0.0.1:9001" }
sinks:
  out: { type: stdout }
  extra: { type: stdout }
routes:
  - { name: a, from: in, to: [out] }
  - { name: b, from: in, to: [out] }
`);
    assert.ok(out.includes('c.yaml:4:3 warning CFG_REF sources.spare: source "spare" is not used by any route'), out.join("\n"));
    assert.ok(out.includes('c.yaml:7:3 warning CFG_REF sinks.extra: sink "extra" is not used by any route'));
    assert.ok(out.some((l) => /^c\.yaml:9:5 warning CFG_DELIVERY routes\[0\]: route has no dead_letter sink/.test(l)));
    assert.ok(out.some((l) => /^c\.yaml:10:22 error CFG_REF routes\[1\]\.from: source "in" already feeds routes\[0\]/.test(l)));
  });

  test("config - a CESQL syntax error points into the expression", () => {
    const out = lines(`
sources: { in: { type: http } }
sinks: { out: { type: stdout } }
routes:
  - name: r
    from: in
    to: [out]
    filter: { sql: "type = 'a' AND AND" }
`);
    const err = out.find((l) => l.includes("CFG_FILTER"));
    assert.ok(err, out.join("\n"));
    // The expression starts at column 21 (after the opening quote); the second AND is at offset 15.
    assert.match(err!, /^c\.yaml:8:36 error CFG_FILTER routes\[0\]\.filter\.sql: /);
  });
});

describe("config - delivery rules", () => {
  test("config - max_deliveries must be below the source's max_deliver; one id for a source and sink of one type is refused", () => {
    const out = lines(`
sources:
  m: { type: mqtt, url: "mqtt://127.0.0.1:1", topic: "a/#" }
  j: { type: nats_jetstream, servers: ["nats://127.0.0.1:1"], stream: S, consumer: c, max_deliver: 5 }
sinks:
  m: { type: mqtt, url: "mqtt://127.0.0.1:1", topic: "b" }
  f: { type: file, path: /tmp/x }
  dl: { type: file, path: /tmp/y }
routes:
  - { name: a, from: m, to: [f], dead_letter: dl }
  - { name: b, from: j, to: [m], max_deliveries: 5, dead_letter: dl }
`).filter((l) => l.includes(" error "));
    assert.deepEqual(out, [
      'c.yaml:6:3 error CFG_REF sinks.m: source "m" and sink "m" are both mqtt: give them different ids, since client ids derive from them',
      'c.yaml:11:50 error CFG_DELIVERY routes[1].max_deliveries: max_deliveries (5) must be below source "j" max_deliver (5), or the broker drops the message before it is dead-lettered',
    ]);
  });
});

describe("config - units", () => {
  test("config - durations and sizes parse, and reject nonsense", () => {
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("1.5s"), 1500);
    assert.equal(parseDuration("5m"), 300_000);
    assert.equal(parseDuration("1h"), 3_600_000);
    assert.equal(parseDuration(42), 42);
    assert.equal(parseDuration("soon"), undefined);
    assert.equal(parseDuration(-1), undefined);
    assert.equal(parseSize("1MiB"), 1_048_576);
    assert.equal(parseSize("64KiB"), 65_536);
    assert.equal(parseSize("512"), 512);
    assert.equal(parseSize("1KB"), 1000);
    assert.equal(parseSize("1.5MiB"), undefined);
  });
});
