/**
 * The Subscriptions API's answers through the built daemon: every refusal (400 naming the field,
 * 401, 403 at the limit, 404, 405, 413, 415), OPTIONS, full replace, the handshake and connection
 * checks at create, the atomic state file, hot reload (a removed stream orphans its subscriptions,
 * a returning one revives them), and the listener over TLS with client certificates.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { ApiClient, postEvents, WebhookReceiver } from "../support/subscribers.js";
import { sleep, waitFor } from "../support/wait.js";

const TOKEN = "api-errors-token";

function event(id: string): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "urn:t", type: "com.example.t", subject: "s" }, data: { kind: "bytes", bytes: Buffer.from("x") } };
}

describe("e2e subscriptions API - answers, replace, reload", { timeout: 180_000 }, () => {
  let dir: string;
  let daemon: Daemon;
  let api: ApiClient;
  let admin: string;
  let source: string;
  let ports: { admin: number; source: number; api: number; closed: number };
  const hook = new WebhookReceiver();
  const refusing = new WebhookReceiver();
  const gone = new WebhookReceiver();

  const yaml = (withStream = true) => `
engine:
  instance_id: api-e2e
  admin: { listen: "127.0.0.1:${ports.admin}" }
  shutdown_timeout: 3s
  log: { level: warn }
sources:
  in: { type: http, listen: "127.0.0.1:${ports.source}", path: /e }
sinks:
  out: { type: file, path: ${dir}/out.jsonl }
  dlq: { type: file, path: ${dir}/dlq.jsonl }
routes:
  - { name: r, from: in, to: [out], dead_letter: dlq }
subscriptions:
  listen: "127.0.0.1:${ports.api}"
  auth: { bearer: "${TOKEN}" }
  state_dir: ${dir}/state
  max_subscriptions: 3
  max_body: 4KiB
  streams:
${withStream ? `    orders:
      route: r
      protocols: [HTTP, NATS]
      allowed_sinks: ["${hook.url}/", "${refusing.url}/", "${gone.url}/", "http://127.0.0.1:${ports.closed}/", "https://hooks.example.com/", "nats://127.0.0.1:${ports.closed}"]
      connect_timeout: 1s
      dead_letter: dlq
` : ""}    other:
      route: r
      allowed_sinks: ["${hook.url}/"]
      dead_letter: dlq
`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cebridge-subs-api-"));
    await hook.start();
    await refusing.start();
    refusing.grant = "refuse";
    await gone.start();
    gone.postStatus = 410;
    ports = { admin: await freePort(), source: await freePort(), api: await freePort(), closed: await freePort() };
    admin = `127.0.0.1:${ports.admin}`;
    source = `http://127.0.0.1:${ports.source}/e`;
    api = new ApiClient(`http://127.0.0.1:${ports.api}`, TOKEN);
    daemon = startDaemon(yaml(), { dir });
    await daemon.waitReady(admin, 30_000);
  });

  after(async () => {
    if (daemon) {
      const code = await daemon.stop("SIGTERM");
      if (code !== 0) process.stderr.write(daemon.stderr());
    }
    await hook.close();
    await refusing.close();
    await gone.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const coll = "/streams/orders/subscriptions";
  const good = () => ({ protocol: "HTTP", sink: `${hook.url}/a`, types: ["com.example.t"] });

  it("400 names the field as a JSON pointer, with the offset inside a CESQL filter", async () => {
    const r = await api.request("POST", coll, { ...good(), filters: [{ exact: { type: "x" } }, { any: [{ cesql: "subject = 'a' AND AND" }] }] });
    assert.equal(r.status, 400);
    assert.deepEqual(Object.keys(r.json).sort(), ["error", "field", "message", "position"]);
    assert.equal(r.json.error, "CEB_SUBSCRIPTION_INVALID");
    assert.equal(r.json.field, "/filters/1/any/0/cesql");
    assert.equal(r.json.position, 18);
    assert.match(r.json.message, /unexpected token "AND" at 18/);
    const rows: [unknown, string][] = [
      [{ ...good(), protocol: "MQTT5" }, "/protocol"],
      [{ ...good(), sink: "https://elsewhere.example.com/a" }, "/sink"],
      [{ ...good(), sink: "http://hooks.example.com/a" }, "/sink"],
      [{ ...good(), protocolsettings: { method: "GET" } }, "/protocolsettings/method"],
      [{ ...good(), sinkcredential: { credentialtype: "PLAIN", identifier: "u", secret: "s" } }, "/sinkcredential/credentialtype"],
      [{ ...good(), colour: "blue" }, "/colour"],
    ];
    for (const [body, field] of rows) {
      const x = await api.request("POST", coll, body);
      assert.equal(x.status, 400, JSON.stringify(body));
      assert.equal(x.json.field, field, x.text);
    }
    const bad = await api.request("POST", coll, "{not json");
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error, "CEB_FORMAT");
  });

  it("404, 405, 413, 415 and OPTIONS", async () => {
    assert.equal((await api.request("GET", "/streams/nope/subscriptions")).status, 404);
    assert.equal((await api.request("POST", "/streams/nope/subscriptions", good())).json.error, "CEB_NOT_FOUND");
    assert.equal((await api.request("GET", `${coll}/00000000-0000-4000-8000-000000000000`)).status, 404);
    assert.equal((await api.request("GET", "/subscriptions")).status, 404);
    assert.equal((await api.request("GET", `${coll}/a/b`)).status, 404);
    const patch = await api.request("PATCH", `${coll}/x`, {});
    assert.equal(patch.status, 405);
    assert.equal(patch.json.error, "CEB_METHOD");
    assert.equal(patch.headers.get("allow"), "GET, PUT, DELETE, OPTIONS");
    assert.equal((await api.request("PUT", coll, good())).headers.get("allow"), "GET, POST, OPTIONS");
    assert.equal((await api.request("DELETE", coll)).status, 405);
    const opts = await api.request("OPTIONS", coll);
    assert.equal(opts.status, 200);
    assert.equal(opts.headers.get("allow"), "GET, POST, OPTIONS");
    assert.equal((await api.request("OPTIONS", `${coll}/x`)).headers.get("allow"), "GET, PUT, DELETE, OPTIONS");
    const big = await api.request("POST", coll, { ...good(), source: "x".repeat(5000) });
    assert.equal(big.status, 413);
    assert.equal(big.json.error, "CEB_TOO_LARGE");
    for (const ct of ["text/plain", "application/x-www-form-urlencoded", ""]) {
      const r = await api.request("POST", coll, JSON.stringify(good()), { "content-type": ct });
      assert.equal(r.status, 415, ct);
      assert.equal(r.json.error, "CEB_UNSUPPORTED_MEDIA");
    }
    const streams = await api.request("GET", "/streams");
    assert.deepEqual(streams.json, [
      { name: "orders", protocols: ["HTTP", "NATS"] },
      { name: "other", protocols: ["HTTP", "MQTT3", "MQTT5", "NATS", "AMQP"] },
    ]);
  });

  it("create checks the sink: a refused handshake is CEB_HANDSHAKE, an unreachable sink CEB_CONNECT, and nothing is kept", async () => {
    const refused = await api.request("POST", coll, { protocol: "HTTP", sink: `${refusing.url}/x` });
    assert.equal(refused.status, 400);
    assert.equal(refused.json.error, "CEB_HANDSHAKE");
    assert.equal(refusing.requests.filter((r) => r.method === "POST").length, 0);
    const down = await api.request("POST", coll, { protocol: "NATS", sink: `nats://127.0.0.1:${ports.closed}`, protocolsettings: { subject: "x" } });
    assert.equal(down.status, 400);
    assert.equal(down.json.error, "CEB_CONNECT");
    assert.match(down.json.message, /within 1000 ms/);
    const downHttp = await api.request("POST", coll, { protocol: "HTTP", sink: `http://127.0.0.1:${ports.closed}/x` });
    assert.equal(downHttp.json.error, "CEB_CONNECT");
    assert.deepEqual((await api.request("GET", coll)).json, []);
  });

  it("a target that answers 410 Gone is dead-lettered once and the subscription suspended (state gone)", async () => {
    const { id } = await api.create("orders", { protocol: "HTTP", sink: `${gone.url}/retired` });
    assert.deepEqual(await postEvents(source, [event("gone-1")]), [204]);
    const status = async (): Promise<any> => (await fetch(`http://${admin}/status`)).json();
    await waitFor(async () => (await status()).subscriptions.find((s: { id: string }) => s.id === id)?.state === "gone", 10_000, () => daemon.stderr());
    const dl = readFileSync(join(dir, "dlq.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const letter = dl.find((d) => d.id === "gone-1");
    assert.equal(letter.cebridgeerror, "CEB_SINK_GONE");
    assert.equal(letter.cebridgesink, `subscription:${id}`);
    assert.equal(letter.cebridgeroute, "r");
    assert.deepEqual(await postEvents(source, [event("gone-2")]), [204]);
    await sleep(300);
    assert.equal(gone.requests.filter((r) => r.method === "POST").length, 1, "nothing more was sent after 410");
    const s = (await status()).subscriptions.find((x: { id: string }) => x.id === id);
    assert.deepEqual({ failed: s.counters.failed, dead_lettered: s.counters.dead_lettered, dropped: s.counters.dropped }, { failed: 1, dead_lettered: 1, dropped: 1 });
    assert.equal(s.last_error.code, "CEB_SINK_GONE");
    assert.equal((await api.request("DELETE", `${coll}/${id}`)).status, 200);
  });

  it("an access token past accesstokenexpiresutc suspends the subscription (state expired)", async () => {
    const expires = new Date(Date.now() + 1500).toISOString();
    const { id } = await api.create("orders", { protocol: "HTTP", sink: `${hook.url}/exp`, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "short-lived", accesstokenexpiresutc: expires } });
    const status = async (): Promise<any> => (await fetch(`http://${admin}/status`)).json();
    assert.equal((await status()).subscriptions.find((s: { id: string }) => s.id === id).state, "active");
    await waitFor(async () => (await status()).subscriptions.find((s: { id: string }) => s.id === id)?.state === "expired", 10_000, "expired");
    const before = hook.requests.filter((r) => r.path === "/exp" && r.method === "POST").length;
    assert.deepEqual(await postEvents(source, [event("exp-1")]), [204]);
    await sleep(300);
    assert.equal(hook.requests.filter((r) => r.path === "/exp" && r.method === "POST").length, before);
    // A replace with a fresh token revives it.
    const put = await api.request("PUT", `${coll}/${id}`, { protocol: "HTTP", sink: `${hook.url}/exp`, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "fresh", accesstokenexpiresutc: new Date(Date.now() + 3_600_000).toISOString() } });
    assert.equal(put.status, 200, put.text);
    await waitFor(async () => (await status()).subscriptions.find((s: { id: string }) => s.id === id)?.state === "active", 10_000, "active again");
    assert.deepEqual(await postEvents(source, [event("exp-2")]), [204]);
    await waitFor(() => hook.requests.some((r) => r.path === "/exp" && r.method === "POST" && r.headers["authorization"] === "Bearer fresh"), 10_000, "delivered with the fresh token");
    assert.equal((await api.request("DELETE", `${coll}/${id}`)).status, 200);
  });

  it("PUT replaces the whole subscription; an absent credential is kept; the state file is written atomically, 0600", async () => {
    const { id } = await api.create("orders", { ...good(), sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "tok-1" } });
    const put = await api.request("PUT", `${coll}/${id}`, { id, protocol: "HTTP", sink: `${hook.url}/b`, source: "urn:t" });
    assert.equal(put.status, 200);
    assert.deepEqual(put.json, { id, source: "urn:t", sink: `${hook.url}/b`, protocol: "HTTP", protocolsettings: { method: "POST", mode: "binary" } });
    assert.deepEqual((await api.request("GET", `${coll}/${id}`)).json, put.json);
    assert.equal((await api.request("PUT", `${coll}/${id}`, { id: "another", ...good() })).json.field, "/id");
    assert.equal((await api.request("PUT", `${coll}/00000000-0000-4000-8000-000000000000`, good())).status, 404);
    hook.events.length = 0;
    assert.deepEqual(await postEvents(source, [event("put-1")]), [204]);
    await waitFor(() => hook.events.length >= 1, 10_000, "delivered after the replace");
    const post = hook.requests.filter((r) => r.method === "POST").pop()!;
    assert.equal(post.path, "/b");
    assert.equal(post.headers["authorization"], "Bearer tok-1", "the stored credential was kept");

    const state = join(dir, "state", "subscriptions.json");
    assert.equal(statSync(state).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, "state")).mode & 0o777, 0o700);
    assert.deepEqual(readdirSync(join(dir, "state")).filter((f) => f.endsWith(".tmp")), []);
    const doc = JSON.parse(readFileSync(state, "utf8"));
    assert.equal(doc.version, 1);
    assert.equal(doc.subscriptions.length, 1);
    assert.equal(doc.subscriptions[0].stream, "orders");
    assert.equal(doc.subscriptions[0].subscription.sink, `${hook.url}/b`);
  });

  it("403 at max_subscriptions, across streams", async () => {
    await api.create("orders", good());
    await api.create("other", { protocol: "HTTP", sink: `${hook.url}/o` });
    const r = await api.request("POST", coll, good());
    assert.equal(r.status, 403);
    assert.equal(r.json.error, "CEB_SUBSCRIPTION_LIMIT");
    assert.equal((await api.request("GET", coll)).json.length, 2);
  });

  it("hot reload: a removed stream orphans its subscriptions (kept, reported); bringing it back revives them", async () => {
    const ids = ((await api.request("GET", coll)).json as { id: string }[]).map((s) => s.id).sort();
    writeFileSync(daemon.configFile, yaml(false));
    daemon.proc.kill("SIGHUP");
    await waitFor(async () => ((await (await fetch(`http://${admin}/status`)).json()) as any).config.generation === 2, 20_000, () => `reload applied\n${daemon.stderr()}`);
    await waitFor(async () => (await api.request("GET", coll)).status === 404, 10_000, "stream gone from the API");
    const st = (await (await fetch(`http://${admin}/status`)).json()) as any;
    const orphans = st.subscriptions.filter((s: { state: string }) => s.state === "orphaned").map((s: { id: string }) => s.id).sort();
    assert.deepEqual(orphans, ids);
    assert.equal(JSON.parse(readFileSync(join(dir, "state", "subscriptions.json"), "utf8")).subscriptions.length, 3, "orphans stay in the state file");
    assert.equal((await api.request("POST", "/streams/other/subscriptions", good())).status, 403, "orphans still count toward the limit");

    writeFileSync(daemon.configFile, yaml(true));
    daemon.proc.kill("SIGHUP");
    await waitFor(async () => (await api.request("GET", coll)).json?.length === 2, 20_000, () => `revived\n${daemon.stderr()}`);
    hook.events.length = 0;
    assert.deepEqual(await postEvents(source, [event("revived-1")]), [204]);
    await waitFor(() => hook.events.length >= 3, 10_000, () => `deliveries resumed: ${hook.events.length}`);
  });

  it("a reload that removes the subscriptions section is refused", async () => {
    const text = readFileSync(daemon.configFile, "utf8");
    writeFileSync(daemon.configFile, text.slice(0, text.indexOf("subscriptions:")));
    daemon.proc.kill("SIGHUP");
    const status = async (): Promise<any> => (await fetch(`http://${admin}/status`)).json();
    await waitFor(async () => (await status()).config.last_reload?.result === "refused", 20_000, "refused");
    const st = await status();
    assert.ok(st.config.last_reload.errors.some((e: string) => /removing the subscriptions section needs a restart/.test(e)), JSON.stringify(st.config.last_reload));
    writeFileSync(daemon.configFile, text);
    assert.equal((await api.request("GET", coll)).status, 200);
    await sleep(10);
  });
});

describe("e2e subscriptions API - TLS and client certificates", { timeout: 60_000 }, () => {
  let certs: TestCerts;
  let dir: string;
  let daemon: Daemon;
  let port: number;
  let admin: string;

  before(async () => {
    certs = makeTestCerts();
    dir = mkdtempSync(join(tmpdir(), "cebridge-subs-tls-"));
    port = await freePort();
    admin = `127.0.0.1:${await freePort()}`;
    const sourcePort = await freePort();
    daemon = startDaemon(
      `
engine:
  admin: { listen: "${admin}" }
  log: { level: warn }
sources:
  in: { type: http, listen: "127.0.0.1:${sourcePort}" }
sinks:
  out: { type: file, path: ${dir}/out.jsonl }
  dlq: { type: file, path: ${dir}/dlq.jsonl }
routes:
  - { name: r, from: in, to: [out], dead_letter: dlq }
subscriptions:
  listen: "127.0.0.1:${port}"
  tls: { cert: ${certs.server.cert}, key: ${certs.server.key}, ca: ${certs.ca.cert} }
  state_dir: ${dir}/state
  streams:
    s: { route: r, allowed_sinks: ["nats://127.0.0.1:4222"], dead_letter: dlq }
`,
      { dir },
    );
    await daemon.waitReady(admin, 30_000);
  });

  after(async () => {
    await daemon?.stop("SIGTERM");
    certs?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  function get(opts: { cert?: string; key?: string }): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/streams/s/subscriptions",
          ca: readFileSync(certs.ca.cert),
          ...(opts.cert ? { cert: readFileSync(opts.cert), key: readFileSync(opts.key!) } : {}),
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  it("a client with a certificate from the configured CA is served; without one, or with a rogue one, the TLS handshake fails", async () => {
    assert.equal(await get({ cert: certs.client.cert, key: certs.client.key }), 200);
    await assert.rejects(get({}));
    await assert.rejects(get({ cert: certs.rogueClient.cert, key: certs.rogueClient.key }));
    assert.ok(!existsSync(join(dir, "state", "subscriptions.json")));
    assert.ok(!daemon.stderr().includes(readFileSync(certs.server.key, "utf8").split("\n")[1]!));
  });
});
