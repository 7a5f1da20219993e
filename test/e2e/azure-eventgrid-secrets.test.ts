/**
 * No Event Grid credential ever shows up in a log line, /status, /metrics, a dead letter or `lint`
 * output: the daemon runs at debug level with a wrong topic key, a wrong SAS token, a namespace key
 * the emulator refuses and a webhook secret that a sender gets wrong; every failure path runs, and
 * every output is searched for each secret.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { makeSasToken, startEventGridEmulator } from "../emulators/eventgrid/index.js";
import { spawnDaemon, startDaemon, writeConfig } from "../support/daemon.js";
import { TEST_KEY } from "../support/eventgrid.js";
import { freePort, portAccepts } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

describe("e2e azure event grid secrets", { timeout: 90_000 }, () => {
  it("e2e - Event Grid keys, SAS tokens and webhook secrets never appear in logs, /status, /metrics, dead letters or lint output", async () => {
    const emu = await startEventGridEmulator();
    cleanups.push(() => emu.close());
    emu.namespaceAuth({ keys: [TEST_KEY] });
    emu.namespaceTopic("orders").subscription("bridge");
    const topic = emu.topic("orders", { schema: "cloudevents", keys: [TEST_KEY] });
    const wrongKey = Buffer.from("WRONG-TOPIC-KEY-5d1c7e").toString("base64");
    const wrongNsKey = Buffer.from("WRONG-NAMESPACE-KEY-90ab").toString("base64");
    const sas = makeSasToken(topic.endpoint, Buffer.from("NOT-THE-KEY-77").toString("base64"), new Date(Date.now() + 3_600_000));
    const hookSecret = "HOOK-SECRET-c0ffee-4242";
    const secrets = [wrongKey, wrongNsKey, sas, decodeURIComponent(sas.split("&s=")[1]!), hookSecret];
    const dir = mkdtempSync(join(tmpdir(), "cebridge-eg-secrets-"));
    const dlq = join(dir, "dead.jsonl");
    const admin = `127.0.0.1:${await freePort()}`;
    const inPort = await freePort();
    const hookPort = await freePort();
    const yaml = `
engine: { instance_id: egsec, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: debug } }
sources:
  in: { type: http, listen: "127.0.0.1:${inPort}", path: /in }
  hook: { type: azure_eventgrid, listen: "127.0.0.1:${hookPort}", path: /hook, secret: "${hookSecret}" }
  ns_in: { type: azure_eventgrid_namespace, endpoint: "${emu.url}", topic: orders, subscription: bridge, key: "${wrongNsKey}", max_wait: 1s }
sinks:
  grid_key: { type: azure_eventgrid, endpoint: "${topic.endpoint}", key: "${wrongKey}" }
  grid_sas: { type: azure_eventgrid, endpoint: "${topic.endpoint}", sas_token: "${sas}" }
  dlq: { type: file, path: "${dlq}" }
  out: { type: stdout }
routes:
  - { name: to-grid, from: in, to: [grid_key, grid_sas], dead_letter: dlq }
  - { name: from-hook, from: hook, to: [out] }
  - { name: from-ns, from: ns_in, to: [out] }
`;
    const daemon = startDaemon(yaml);
    cleanups.push(() => daemon.stop("SIGKILL"));
    // Not /readyz: the namespace source never gets up with a refused key.
    await waitFor(() => portAccepts(inPort), 20_000, () => daemon.stderr().slice(-2000));
    // Both sinks are refused with 401: the event is dead-lettered once per sink.
    const r = await fetch(`http://127.0.0.1:${inPort}/in`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: JSON.stringify({ specversion: "1.0", id: "sec-1", source: "urn:s", type: "t", data: { a: 1 } }),
    });
    assert.equal(r.status, 204);
    await waitFor(() => existsSync(dlq) && readFileSync(dlq, "utf8").trim().split("\n").length >= 2, 10_000, () => daemon.stderr().slice(-2000));
    const dead = readFileSync(dlq, "utf8");
    assert.match(dead, /401/);
    // A sender with the wrong secret, and the namespace receive refused (401) a few times.
    assert.equal((await fetch(`http://127.0.0.1:${hookPort}/hook?code=${hookSecret.slice(0, -1)}x`, { method: "POST", headers: { "content-type": "application/json" }, body: "[]" })).status, 401);
    await waitFor(() => /Event Grid receive failed/.test(daemon.stderr()), 10_000, () => daemon.stderr().slice(-2000));
    const status = await (await fetch(`http://${admin}/status`)).text();
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    assert.equal(await daemon.stop(), 0);
    const lint = spawnDaemon(["lint", "-c", writeConfig(yaml)]);
    await lint.exited;
    const outputs: Record<string, string> = { stderr: daemon.stderr(), stdout: daemon.stdout.join("\n"), status, metrics, dead, lint: lint.stderr() + lint.stdout.join("\n") };
    for (const [where, text] of Object.entries(outputs)) {
      for (const s of secrets) assert.ok(!text.includes(s), `a secret appears in ${where}`);
    }
    assert.match(outputs["stderr"]!, /401/, "the failures were logged (without their credentials)");
  });
});
