/**
 * A fuzzed corpus of subscription requests against the built daemon's Subscriptions API: random JSON,
 * mutations of valid bodies (members dropped, replaced, duplicated in another case, filters nested
 * and CESQL made of hostile text), bodies that are not JSON, odd content types and sizes.
 *
 * Every answer is a 201 (then the subscription is deleted again) or a 4xx whose JSON body names a
 * stable code and a reason (and, for an invalid subscription, the field as a JSON pointer); never a
 * 5xx, a hang or a crash. Afterwards the daemon is alive, holds no subscription, and logged no bug.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { ApiClient, WebhookReceiver } from "../support/subscribers.js";
import { anyString } from "./arbitraries.js";

const TOKEN = "fuzz-token";
let dir: string;
let daemon: Daemon;
let admin: string;
let api: ApiClient;
let natsClosed: string;
const hook = new WebhookReceiver();

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "cebridge-subs-fuzz-"));
  await hook.start();
  const p = { admin: await freePort(), source: await freePort(), api: await freePort(), closed: await freePort() };
  admin = `127.0.0.1:${p.admin}`;
  natsClosed = `nats://127.0.0.1:${p.closed}`;
  api = new ApiClient(`http://127.0.0.1:${p.api}`, TOKEN);
  daemon = startDaemon(
    `
engine:
  admin: { listen: "${admin}" }
  log: { level: warn }
sources:
  in: { type: http, listen: "127.0.0.1:${p.source}" }
sinks:
  out: { type: file, path: ${dir}/out.jsonl }
  dlq: { type: file, path: ${dir}/dlq.jsonl }
routes:
  - { name: r, from: in, to: [out], dead_letter: dlq }
subscriptions:
  listen: "127.0.0.1:${p.api}"
  auth: { bearer: "${TOKEN}" }
  state_dir: ${dir}/state
  max_body: 16KiB
  streams:
    s:
      route: r
      allowed_sinks: ["${hook.url}/", "nats://127.0.0.1:${p.closed}", "mqtt://127.0.0.1:${p.closed}"]
      connect_timeout: 200ms
      dead_letter: dlq
`,
    { dir },
  );
  await daemon.waitReady(admin, 30_000);
});

after(async () => {
  await daemon?.stop("SIGTERM");
  await hook.close();
  rmSync(dir, { recursive: true, force: true });
});

const json = fc.jsonValue({ maxDepth: 4 });
const cesql = fc.oneof(anyString(60), fc.constantFrom("type = 'a'", "a AND", "LEFT(type) = 'x'", "(((", "'unterminated", "1 + 1", "EXISTS subject", "type LIKE '%' ESCAPE 'x'"));
const filter: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  f: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.record({ cesql }),
    fc.record({ sql: cesql }),
    fc.record({ exact: fc.dictionary(fc.oneof(fc.stringMatching(/^[a-z0-9]{1,8}$/), anyString(8)), fc.oneof(anyString(10), json)) }),
    fc.record({ prefix: fc.oneof(json, fc.dictionary(fc.constantFrom("type", "source", "Type", ""), anyString(10))) }),
    fc.record({ all: fc.array(tie("f"), { maxLength: 3 }) }),
    fc.record({ any: fc.oneof(fc.array(tie("f"), { maxLength: 3 }), json) }),
    fc.record({ not: tie("f") }),
    fc.dictionary(anyString(6), json, { maxKeys: 2 }),
  ),
})).f;

const sinks = fc.constantFrom(`${hook.url}/x`, "https://evil.example.com/x", "http://10.0.0.1/x", "nats://127.0.0.1:1", "mqtt://u:p@127.0.0.1:1", "", "not a url", "javascript:alert(1)");
const protocols = fc.oneof(fc.constantFrom("HTTP", "MQTT3", "MQTT5", "NATS", "AMQP", "KAFKA", "http", ""), json);

/** Valid protocol and sink, the rest random: reaches the deeper checks (filters, settings, credentials). */
const nearlyValid = fc
  .tuple(
    fc.constantFrom({ protocol: "HTTP", sink: `${"HOOK"}/x` }, { protocol: "NATS", sink: "NATS" }),
    fc.record(
      {
        types: fc.oneof(fc.array(fc.constantFrom("com.example.a", "b"), { minLength: 1, maxLength: 2 }), fc.array(anyString(12), { maxLength: 3 })),
        filters: fc.oneof(fc.constant([{ cesql: "EXISTS subject" }]), fc.array(filter, { maxLength: 3 })),
        source: fc.oneof(fc.constant("urn:x"), anyString(20)),
        protocolsettings: fc.oneof(fc.record({ subject: fc.oneof(fc.stringMatching(/^[a-z]{1,5}(\.[a-z]{1,5}){0,2}$/), anyString(10)) }), fc.record({ headers: fc.dictionary(fc.stringMatching(/^X-[A-Za-z]{1,6}$/), anyString(12), { maxKeys: 2 }) })),
        sinkcredential: fc.record({ credentialtype: fc.constantFrom("ACCESSTOKEN", "PLAIN"), accesstoken: fc.stringMatching(/^[A-Za-z0-9]{1,12}$/), identifier: anyString(6), secret: anyString(6) }, { requiredKeys: ["credentialtype"] }),
      },
      { requiredKeys: [] },
    ),
  )
  .map(([base, rest]) => ({ ...rest, ...base }));

const body = fc.oneof(
  nearlyValid,
  json,
  fc.record(
    {
      id: fc.oneof(fc.uuid(), json),
      protocol: protocols,
      sink: fc.oneof(sinks, json),
      source: fc.oneof(anyString(20), json),
      types: fc.oneof(fc.array(anyString(12), { maxLength: 4 }), json),
      config: fc.oneof(fc.constant({}), json),
      filters: fc.oneof(fc.array(filter, { maxLength: 4 }), json),
      protocolsettings: fc.oneof(
        fc.record({ topicname: fc.oneof(anyString(12), json), qos: json, retain: json }, { requiredKeys: [] }),
        fc.record({ subject: fc.oneof(anyString(12), json) }, { requiredKeys: [] }),
        fc.record({ headers: fc.oneof(fc.dictionary(anyString(8), fc.oneof(anyString(12), json), { maxKeys: 3 }), json), method: json }, { requiredKeys: [] }),
        json,
      ),
      sinkcredential: fc.oneof(
        fc.record({ credentialtype: fc.constantFrom("PLAIN", "ACCESSTOKEN", "REFRESHTOKEN", "x"), identifier: json, secret: json, accesstoken: fc.oneof(anyString(12), json), accesstokenexpiresutc: fc.oneof(anyString(25), json) }, { requiredKeys: [] }),
        json,
      ),
      SinkCredential: json,
      extra: json,
    },
    { requiredKeys: [] },
  ),
);

const POINTER = /^(\/([^~/]|~[01])*)*$/;

async function check(status: number, text: string, what: string): Promise<void> {
  assert.ok([400, 403, 404, 413, 415].includes(status) || status === 201, `${what}: status ${status} ${text.slice(0, 300)}`);
  const j = JSON.parse(text) as { error?: string; message?: string; field?: unknown; id?: string };
  if (status === 201) {
    assert.equal((await api.request("DELETE", `/streams/s/subscriptions/${j.id}`)).status, 200);
    return;
  }
  assert.match(j.error ?? "", /^CEB_[A-Z_]+$/, `${what}: ${text}`);
  assert.ok((j.message ?? "").length > 0, `${what}: empty reason`);
  if (j.error === "CEB_SUBSCRIPTION_INVALID") {
    assert.ok(typeof j.field === "string" && POINTER.test(j.field), `${what}: field ${String(j.field)}`);
    fields.add(j.field as string);
  }
}

/** Fills in the addresses known only once the receivers run. */
function concrete(b: unknown): unknown {
  if (b === null || typeof b !== "object" || Array.isArray(b)) return b;
  const o = b as Record<string, unknown>;
  if (o["sink"] === "HOOK/x") return { ...o, sink: `${hook.url}/x` };
  if (o["sink"] === "NATS") return { ...o, sink: natsClosed };
  return b;
}

const statuses = new Map<number, number>();
const fields = new Set<string>();

describe("fuzz - subscription bodies", { timeout: 300_000 }, () => {
  it("every JSON body gets 201 or a 4xx with a code, a reason and the field", async () => {
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await api.request("POST", "/streams/s/subscriptions", concrete(b));
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        await check(r.status, r.text, JSON.stringify(b).slice(0, 300));
      }),
      { numRuns: 700 },
    );
    // The corpus reaches past the first checks: into filters, settings and credentials, and some bodies are valid.
    const reached = ["/protocol", "/sink", "/types", "/filters/", "/protocolsettings", "/sinkcredential"].filter((p) => [...fields].some((f) => f.startsWith(p)));
    assert.equal(reached.length, 6, `fields reached: ${[...fields].slice(0, 40).join(" ")}`);
    assert.ok((statuses.get(201) ?? 0) >= 1, JSON.stringify([...statuses]));
  });

  it("replace (PUT) of random bodies on an existing subscription answers the same way and keeps it valid", async () => {
    const { id } = await api.create("s", { protocol: "HTTP", sink: `${hook.url}/keep` });
    await fc.assert(
      fc.asyncProperty(body, async (b) => {
        const r = await api.request("PUT", `/streams/s/subscriptions/${id}`, concrete(b));
        assert.ok([200, 400, 404, 413, 415].includes(r.status), `PUT ${JSON.stringify(b).slice(0, 200)}: ${r.status} ${r.text.slice(0, 200)}`);
        const j = JSON.parse(r.text);
        if (r.status !== 200) assert.match(j.error, /^CEB_/);
        // Whatever happened, the subscription is still there and readable.
        assert.equal((await api.request("GET", `/streams/s/subscriptions/${id}`)).status, 200);
      }),
      { numRuns: 300 },
    );
    assert.equal((await api.request("DELETE", `/streams/s/subscriptions/${id}`)).status, 200);
  });

  it("bodies that are not JSON, odd content types and oversize bodies get 400, 415 and 413", async () => {
    await fc.assert(
      fc.asyncProperty(anyString(200), fc.constantFrom("application/json", "text/plain", "application/cloudevents+json", "", "multipart/form-data; boundary=x"), async (text, ct) => {
        const r = await api.request("POST", "/streams/s/subscriptions", text, { "content-type": ct });
        let parses = true;
        try {
          JSON.parse(text);
        } catch {
          parses = false;
        }
        const jsonType = ct === "application/json" || ct === "application/cloudevents+json";
        if (!jsonType) assert.equal(r.status, 415, `${ct}: ${r.text}`);
        else if (!parses) assert.equal(r.json?.error, "CEB_FORMAT", r.text);
        else await check(r.status, r.text, text);
      }),
      { numRuns: 300 },
    );
    for (const size of [16 * 1024 + 1, 100_000, 2_000_000]) {
      const r = await api.request("POST", "/streams/s/subscriptions", `{"x":"${"a".repeat(size)}"}`);
      assert.equal(r.status, 413, `size ${size}`);
    }
    const deep = "[".repeat(8000) + "]".repeat(8000);
    const r = await api.request("POST", "/streams/s/subscriptions", deep);
    assert.equal(r.status, 400, r.text.slice(0, 200));
  });

  it("afterwards the daemon is alive, holds nothing and logged no bug", async () => {
    assert.equal((await fetch(`http://${admin}/healthz`)).status, 200);
    assert.deepEqual((await api.request("GET", "/streams/s/subscriptions")).json, []);
    assert.doesNotMatch(daemon.stderr(), /a bug|unhandled/);
  });
});
