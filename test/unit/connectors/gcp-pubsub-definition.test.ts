/**
 * The Pub/Sub definitions (schema defaults, lint), the client plan (endpoint, emulator detection,
 * credentials file handling), error classification and redaction, and lazy loading of the SDK.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { pubsubSink, pubsubSource } from "../../../connectors/gcp-pubsub/definition.js";
import { isPermanent, planClient, publishError, redact } from "../../../connectors/gcp-pubsub/client.js";
import { componentConfig } from "../../support/component.js";
import { REPO_ROOT } from "../../support/daemon.js";

describe("gcp_pubsub definitions", () => {
  it("gcp_pubsub definition - defaults", () => {
    assert.deepEqual(componentConfig(pubsubSource, { subscription: "projects/p/subscriptions/orders" }), {
      subscription: "projects/p/subscriptions/orders",
      mapping: "message_published",
      raw_type: "com.google.cloud.pubsub.message",
      streams: 1,
      max_bytes: 100 * 1024 * 1024,
      max_lease: 3_600_000,
    });
    assert.deepEqual(componentConfig(pubsubSink, { project: "p", topic: "orders" }), {
      project: "p",
      topic: "orders",
      mode: "binary",
      ordering: false,
      batch: { max_events: 100, max_bytes: 1024 * 1024, linger: 10 },
    });
  });

  const lintCases: { name: string; def: typeof pubsubSource | typeof pubsubSink; raw: Record<string, unknown>; error?: RegExp }[] = [
    { name: "a short id with a project", def: pubsubSink, raw: { project: "p", topic: "orders" } },
    { name: "an id under 3 characters", def: pubsubSink, raw: { topic: "ab" }, error: /topic: a Pub\/Sub id starts with a letter/ },
    { name: "an id starting with goog", def: pubsubSource, raw: { subscription: "googly" }, error: /must not start with goog/ },
    { name: "a malformed full name", def: pubsubSource, raw: { subscription: "projects/p/topics/t" }, error: /not a valid subscriptions name/ },
    { name: "a full name in another project than `project`", def: pubsubSink, raw: { project: "a", topic: "projects/b/topics/t1x" }, error: /project: `topic` names project "b"/ },
    { name: "tls.cert without tls.key", def: pubsubSink, raw: { topic: "orders", tls: { cert: "/c.pem" } }, error: /mutual TLS needs both/ },
    { name: "a batch over the client's 9 MiB", def: pubsubSink, raw: { topic: "orders", batch: { max_bytes: "10MiB" } }, error: /9 MiB/ },
  ];
  for (const c of lintCases) {
    it(`gcp_pubsub definition - lint: ${c.name}`, () => {
      if (c.error) assert.throws(() => componentConfig(c.def, c.raw), c.error);
      else assert.doesNotThrow(() => componentConfig(c.def, c.raw));
    });
  }
});

describe("gcp_pubsub client plan", () => {
  it("gcp_pubsub client - a non-Google endpoint is an emulator: plaintext, no credentials read, no metadata probe", async () => {
    const plan = await planClient({ endpoint: "127.0.0.1:8085", project: "p", credentials_file: "/nonexistent/key.json" }, {});
    assert.equal(plan.emulator, true);
    assert.deepEqual(plan.options, { projectId: "p", apiEndpoint: "127.0.0.1:8085", emulatorMode: true, universeDomain: "googleapis.com" });
  });

  it("gcp_pubsub client - PUBSUB_EMULATOR_HOST and PUBSUB_PROJECT_ID are honoured", async () => {
    const plan = await planClient({}, { PUBSUB_EMULATOR_HOST: "localhost:8681", PUBSUB_PROJECT_ID: "emu" });
    assert.equal(plan.emulator, true);
    assert.equal(plan.options.apiEndpoint, "localhost:8681");
    assert.equal(plan.options.projectId, "emu");
  });

  it("gcp_pubsub client - Google's endpoint, or any endpoint with tls, uses TLS and credentials", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cebridge-gcp-plan-"));
    const key = join(dir, "key.json");
    writeFileSync(key, JSON.stringify({ type: "service_account", client_email: "a@b", private_key: "x" }));
    const google = await planClient({ endpoint: "europe-west1-pubsub.googleapis.com:443", credentials_file: key }, {});
    assert.equal(google.emulator, false);
    assert.equal((google.options.credentials as { client_email?: string }).client_email, "a@b");
    const privateEndpoint = await planClient({ endpoint: "pubsub.internal:443", tls: { ca: "/ca.pem" } }, {});
    assert.equal(privateEndpoint.emulator, false);
    assert.equal(privateEndpoint.options.emulatorMode, false);
    const adc = await planClient({ project: "p" }, {});
    assert.deepEqual(adc.options, { projectId: "p" }, "no endpoint, no file: application default credentials");
  });

  it("gcp_pubsub client - a bad credentials file is named, never quoted", async () => {
    const dir = mkdtempSync(join(tmpdir(), "cebridge-gcp-plan-"));
    const broken = join(dir, "broken.json");
    writeFileSync(broken, '{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEF');
    await assert.rejects(planClient({ credentials_file: broken }, {}), (e: Error & { code?: string }) => e.code === "CEB_CONNECT" && e.message === `credentials_file ${broken}: not a JSON credentials file`);
    const notObject = join(dir, "array.json");
    writeFileSync(notObject, "[1]");
    await assert.rejects(planClient({ credentials_file: notObject }, {}), /a JSON object with a "type" member/);
    await assert.rejects(planClient({ credentials_file: join(dir, "missing.json") }, {}), /cannot read it \(ENOENT\)/);
  });

  it("gcp_pubsub client - redact removes PEM blocks, private key members and bearer tokens", () => {
    const text = `failed: {"private_key_id":"abc123","private_key":"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"} authorization: Bearer eyJhbGciOi.eyJpc3Mi.c2lnbmF0dXJl and -----BEGIN RSA PRIVATE KEY-----\nxyz`;
    const out = redact(text);
    assert.ok(!/MIIE|abc123|eyJhbGciOi|xyz/.test(out), out);
    assert.match(out, /Bearer \[redacted\]/);
  });

  it("gcp_pubsub client - error classes by gRPC code", () => {
    for (const code of [3, 5, 6, 9, 11, 12]) assert.equal(isPermanent(code), true, `code ${code}`);
    for (const code of [1, 2, 4, 7, 8, 10, 13, 14, 16, undefined]) assert.equal(isPermanent(code), false, `code ${code}`);
    const e = publishError(Object.assign(new Error("5 NOT_FOUND: Topic not found"), { code: 5 }), "orders");
    assert.equal(e.retryable, false);
    assert.equal(e.code, "CEB_SINK_PERMANENT");
    assert.equal(e.message, "Pub/Sub publish to orders failed (gRPC 5): 5 NOT_FOUND: Topic not found");
  });
});

describe("gcp_pubsub lazy loading", () => {
  it("gcp_pubsub lazy - neither the registry nor loading the implementation imports @google-cloud/pubsub (start/open does)", () => {
    const index = pathToFileURL(join(REPO_ROOT, "dist", "connectors", "index.js")).href;
    const script = `
      import { createRequire } from "node:module";
      const require = createRequire(import.meta.url);
      const loaded = () => Object.keys(require.cache).some((k) => k.includes("@google-cloud/pubsub"));
      const { builtinRegistry } = await import(${JSON.stringify(index)});
      const reg = builtinRegistry();
      const before = loaded();
      await reg.source("gcp_pubsub").load();
      await reg.sink("gcp_pubsub").load();
      const afterLoad = loaded();
      await import("@google-cloud/pubsub"); // the check itself works: a real import shows up
      console.log(JSON.stringify({ before, afterLoad, control: loaded() }));
    `;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", cwd: REPO_ROOT });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { before: false, afterLoad: false, control: true });
  });
});
