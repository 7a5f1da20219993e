/**
 * What the status board keeps for /status and the status page: redacted recent errors in a bounded
 * ring, the config's secret values found through the connector schemas, and the page itself.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { builtinRegistry } from "../../../connectors/index.js";
import { checkConfigText } from "../../../src/config/load.js";
import { secretValues } from "../../../src/config/secrets.js";
import { silentLogger } from "../../../src/core/logger.js";
import { startAdminServer } from "../../../src/observability/admin.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { recordingLogger } from "../../../src/observability/recording-logger.js";
import { Redactor } from "../../../src/observability/redact.js";
import { StatusBoard } from "../../../src/observability/status.js";

describe("status board", () => {
  test("status board - the redactor hides configured secrets and secret-shaped text", () => {
    const r = new Redactor(["hunter2-long", "ab"]);
    assert.equal(r.redact("login failed for hunter2-long"), "login failed for [redacted]");
    assert.equal(r.redact("ab is too short to hide"), "ab is too short to hide");
    assert.equal(r.redact("connect to nats://alice:pw@host:4222 failed"), "connect to nats://[redacted]@host:4222 failed");
    assert.equal(r.redact("GET https://h/x?sig=abc123&se=1 -> 403"), "GET https://h/x?sig=[redacted]&se=1 -> 403");
    assert.equal(r.redact('Authorization: Bearer eyJhbGciOi.x.y'), "Authorization: Bearer [redacted]");
    assert.equal(r.redact('{"password":"p@ss"}'), '{"password":"[redacted]"}');
    assert.equal(r.redact("token=abc; other=1"), "token=[redacted]; other=1");
    assert.equal(r.redact("plain message with a key word"), "plain message with a key word");
  });

  test("status board - secretValues finds every writeOnly field, including interpolated files and header maps", () => {
    const registry = builtinRegistry();
    const { config } = checkConfigText(
      `engine: { admin: { listen: off } }
sources:
  in: { type: http, listen: "127.0.0.1:1", auth: { bearer: "tok-${"$"}{SUFFIX}" } }
sinks:
  out: { type: http, url: "http://x/", headers: { X-Api-Key: "k-123456" }, auth: { bearer: "b-987654" } }
  mq: { type: mqtt, url: "mqtt://h:1883", topic: t, username: u, password: "mqtt-pass" }
routes: [ { name: r, from: in, to: [out, mq] } ]
`,
      "t.yaml",
      registry,
      { SUFFIX: "xyz" },
    );
    assert.ok(config);
    assert.deepEqual(secretValues(config, registry).sort(), ["b-987654", "k-123456", "mqtt-pass", "tok-xyz"]);
  });

  test("status board - recent errors are bounded, newest first, redacted, and mark the component", () => {
    const board = new StatusBoard();
    board.redactor.setSecrets(["s3cr3t-value"]);
    board.components.set("sink:out", { id: "out", kind: "sink", type: "http", up: true, since: "" });
    const log = recordingLogger(silentLogger, "route:r", board);
    for (let i = 0; i < 60; i++) log.warn({ sink: "out", id: `e${i}`, code: "CEB_SINK_TRANSIENT", reason: `refused with s3cr3t-value #${i}` }, "releasing event for redelivery");
    log.info({}, "not kept");
    const list = board.errors.list();
    assert.equal(list.length, 50);
    assert.equal(list[0]!.event, "e59");
    assert.equal(list[0]!.message, "releasing event for redelivery (sink out): refused with [redacted] #59");
    assert.equal(list[0]!.sink, "out");
    assert.equal(list.at(-1)!.event, "e10");
    const sink = board.components.get("sink:out")!;
    assert.equal(sink.lastError, "CEB_SINK_TRANSIENT: releasing event for redelivery (sink out): refused with [redacted] #59");
    assert.ok(!JSON.stringify(list).includes("s3cr3t"));
  });

  test("status board - the page is small, self-contained, and its CSP names the script's hash", async () => {
    const board = new StatusBoard();
    const admin = await startAdminServer({ host: "127.0.0.1", port: 0 }, board, new Metrics(), { version: "1", instanceId: "i" });
    try {
      const res = await fetch(`http://${admin.address}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type")!, /^text\/html; charset=utf-8/);
      const html = await res.text();
      assert.ok(Buffer.byteLength(html) < 24 * 1024, `page is ${Buffer.byteLength(html)} bytes`);
      assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//, "no external asset");
      const script = /<script>([\s\S]*)<\/script>/.exec(html)![1]!;
      const hash = createHash("sha256").update(script).digest("base64");
      assert.ok(res.headers.get("content-security-policy")!.includes(`'sha256-${hash}'`));
      assert.match(res.headers.get("content-security-policy")!, /connect-src 'self'/);
      const status = (await (await fetch(`http://${admin.address}/status`)).json()) as Record<string, unknown>;
      assert.deepEqual(Object.keys(status.config as object).sort(), ["file", "generation", "last_reload", "loaded_at", "reloading"]);
      assert.deepEqual(status.recent_errors, []);
    } finally {
      await admin.close();
    }
  });
});
