/**
 * The AWS connector definitions: schema defaults and lint rules, the SDK loaded only by `load()`
 * (never by the registry), and the SDK's Node version warning silenced on the first client.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { eventBridgeSink, eventBridgeSource, sqsSink, sqsSource } from "../../../connectors/aws/definition.js";
import { regionOfQueueUrl } from "../../../connectors/aws/client.js";
import { classify, scrub, sinkErrorOf } from "../../../connectors/aws/aws-errors.js";
import { componentConfig } from "../../support/component.js";
import { REPO_ROOT } from "../../support/daemon.js";

const URL = "https://sqs.eu-west-1.amazonaws.com/123456789012/orders";

function lint(def: typeof sqsSource | typeof sqsSink, raw: Record<string, unknown>): string[] {
  const cfg = componentConfig({ ...def, lint: undefined } as never, raw);
  return (def.lint?.(cfg as never) ?? []).map((l) => `${l.level} ${l.path.join(".")}: ${l.message}`);
}

describe("aws definitions", () => {
  it("aws definitions - source defaults and limits", () => {
    const cfg = componentConfig(sqsSource, { queue_url: URL });
    assert.deepEqual(
      { wait: cfg["wait_time"], vis: cfg["visibility_timeout"], max: cfg["max_messages"], receivers: cfg["receivers"] },
      { wait: 20_000, vis: 30_000, max: 10, receivers: 4 },
    );
    assert.deepEqual(lint(sqsSource, { queue_url: URL, wait_time: "21s" }), ["error wait_time: SQS long polls wait at most 20s"]);
    assert.deepEqual(lint(eventBridgeSource, { queue_url: URL, visibility_timeout: "500ms" }), ["error visibility_timeout: must be between 1s and 12h"]);
    assert.deepEqual(lint(sqsSource, { queue_url: URL, visibility_timeout: "1500ms" }), ["warning visibility_timeout: SQS counts whole seconds: rounded up"]);
    assert.throws(() => componentConfig(sqsSource, { queue_url: URL, max_messages: 11 }), /max_messages/);
    assert.throws(() => componentConfig(sqsSource, { queue_url: "sqs://nope" }), /queue_url/);
    assert.throws(() => componentConfig(sqsSource, { queue_url: URL, credentials: { access_key_id: "A" } }), /secret_access_key/);
  });

  it("aws definitions - sink defaults and lint", () => {
    const eb = componentConfig(eventBridgeSink, {});
    assert.deepEqual({ bus: eb["event_bus"], detail: eb["detail"], bytes: eb["max_batch_bytes"] }, { bus: "default", detail: "event", bytes: 262_144 });
    assert.deepEqual(lint(sqsSink, { queue_url: `${URL}.fifo` }), ["warning message_group_id: a FIFO queue: events without a partitionkey will fail unless message_group_id is set"]);
    assert.deepEqual(lint(sqsSink, { queue_url: URL, message_group_id: "g" }), ["warning message_group_id: only used with a FIFO queue (a URL ending in .fifo)"]);
    assert.deepEqual(lint(sqsSink, { queue_url: URL, external_id: "x", endpoint: "http://127.0.0.1:1", tls: { insecure_skip_verify: true } }), [
      "warning external_id: only used with role_arn",
      "warning tls: the endpoint is plain http://, so tls has no effect",
    ]);
    assert.equal(componentConfig(sqsSink, { queue_url: URL })["mode"], "binary");
  });

  it("aws definitions - the region of a queue URL", () => {
    assert.equal(regionOfQueueUrl(URL), "eu-west-1");
    assert.equal(regionOfQueueUrl("https://us-west-2.queue.amazonaws.com/1/q"), "us-west-2");
    assert.equal(regionOfQueueUrl("http://127.0.0.1:4566/000000000000/q"), undefined);
  });

  it("aws definitions - SDK errors: throttling, 5xx and network are transient, refused credentials transient CEB_UNAUTHORIZED, other 4xx permanent; secrets scrubbed", () => {
    const sdk = (name: string, status?: number, message = "m") => Object.assign(new Error(message), { name, ...(status !== undefined ? { $metadata: { httpStatusCode: status } } : {}) });
    assert.equal(classify(sdk("ThrottlingException", 400)).kind, "throttled");
    assert.equal(classify(sdk("InternalException", 500)).kind, "transient");
    assert.equal(classify(Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" })).kind, "transient");
    assert.equal(classify(sdk("ValidationException", 400)).kind, "permanent");
    const auth = sinkErrorOf(sdk("InvalidSignatureException", 403, "bad signature for SECRETVALUE"), "PutEvents", ["SECRETVALUE"]);
    assert.deepEqual([auth.code, auth.retryable, auth.message], ["CEB_UNAUTHORIZED", true, "PutEvents failed: InvalidSignatureException (HTTP 403): bad signature for [redacted]"]);
    const perm = sinkErrorOf(sdk("ResourceNotFoundException", 400), "PutEvents", []);
    assert.deepEqual([perm.code, perm.retryable], ["CEB_SINK_PERMANENT", false]);
    assert.equal(scrub("a-k-a-k", ["k"]), "a-[redacted]-a-[redacted]");
  });

  it("aws definitions - the registry does not load the SDK; load() does, and the first client prints no Node version warning", () => {
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).some((k) => k.includes("/@aws-sdk/"));
      const { builtinRegistry } = await import("./dist/connectors/index.js");
      const reg = builtinRegistry();
      const before = loaded();
      const factory = await reg.sink("aws_eventbridge").load();
      const after = loaded();
      const sink = factory({ event_bus: "default", detail: "event", max_batch_bytes: 1000, linger: 5, max_concurrent: 1, region: "us-east-1", endpoint: "http://127.0.0.1:9", credentials: { access_key_id: "a", secret_access_key: "b" } },
        { id: "x", instanceId: "i", log: { debug() {}, info() {}, warn() {}, error() {}, child() { return this; } }, setUp() {}, countDropped() {} });
      await sink.open();
      await sink.close();
      console.log(JSON.stringify({ before, after }));
    `;
    const env = { ...process.env };
    delete env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"];
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: REPO_ROOT, env, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { before: false, after: true });
    assert.ok(!r.stderr.includes("NodeVersionSupportWarning"), r.stderr);
  });
});
