/**
 * Credentials and TLS for the Pub/Sub connectors, through the built daemon:
 * - `credentials_file` (a service account key made here) and `tls.ca` against the emulator serving
 *   TLS: every call carries a self-signed JWT that the emulator verifies with the key's public half
 *   (no token exchange, no network beyond loopback), both for the source and the sink;
 * - when the emulator starts refusing the credentials, and when a sink refuses an event for good,
 *   neither the private key, nor its id, nor any bearer token appears in the logs, `/status`,
 *   `/metrics` or the dead letters;
 * - a malformed credentials file stops the start-up with an error naming the file, not its content.
 */
import assert from "node:assert/strict";
import { createVerify, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { STRUCTURED_CONTENT_TYPE } from "../../connectors/gcp-pubsub/mapping.js";
import { encodeNatsMessage } from "../../connectors/nats/mapping.js";
import type { PubSubEmulator } from "../emulators/pubsub/server.js";
import { startNats, type BrokerHandle } from "../support/brokers.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { readJsonl, startReceiver, structuredEvent, type Receiver } from "../support/counting.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { sampleEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { PROJECT, freshTopic, startPubSub, type Names } from "../support/pubsub.js";
import { waitFor } from "../support/wait.js";

const KEY_ID = "3f1c0ffee0ddba11cafe0123456789abcdef0123";
const EMAIL = `bridge@${PROJECT}.iam.gserviceaccount.com`;

let certs: TestCerts;
let em: PubSubEmulator;
let nats: BrokerHandle;
let nc: NatsConnection;
let rx: Receiver;
let daemon: Daemon;
let admin: string;
let dir: string;
let pem: string;
let inbound: Names;
let outbound: Names;
let accept = true;
const verified: string[] = [];

function verifyJwt(publicKey: ReturnType<typeof generateKeyPairSync>["publicKey"], authorization: string | undefined): boolean {
  if (!accept || !authorization?.startsWith("Bearer ")) return false;
  const [h, p, sig] = authorization.slice(7).split(".");
  if (!h || !p || !sig) return false;
  const v = createVerify("RSA-SHA256");
  v.update(`${h}.${p}`);
  if (!v.verify(publicKey, Buffer.from(sig, "base64url"))) return false;
  const claims = JSON.parse(Buffer.from(p, "base64url").toString()) as { iss?: string; exp?: number };
  const ok = claims.iss === EMAIL && (claims.exp ?? 0) * 1000 > Date.now();
  if (ok) verified.push(authorization);
  return ok;
}

before(async () => {
  certs = makeTestCerts();
  dir = mkdtempSync(join(tmpdir(), "cebridge-gcp-auth-"));
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
  writeFileSync(
    join(dir, "key.json"),
    JSON.stringify({ type: "service_account", project_id: PROJECT, private_key_id: KEY_ID, private_key: pem, client_email: EMAIL, client_id: "1", token_uri: "https://oauth2.googleapis.com/token" }),
  );
  em = await startPubSub({ tls: { cert: readFileSync(certs.server.cert, "utf8"), key: readFileSync(certs.server.key, "utf8") }, authorize: (a) => verifyJwt(publicKey, a) });
  inbound = freshTopic(em, "auth-in");
  outbound = freshTopic(em, "auth-out");
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  rx = await startReceiver({ status: (id) => (id === "auth-poison" ? 400 : 200) });
  admin = `127.0.0.1:${await freePort()}`;
  // `localhost`: the server certificate names it, and TLS wants a host name rather than an IP.
  const ps = `project: ${PROJECT}, endpoint: "localhost:${em.port}", credentials_file: "${join(dir, "key.json")}", tls: { ca: "${certs.ca.cert}" }`;
  daemon = startDaemon(`
engine: { instance_id: gcp-auth, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: debug } }
sources:
  ps_in: { type: gcp_pubsub, subscription: ${inbound.subscriptionId}, ${ps} }
  nats_in: { type: nats, servers: ["${nats.url}"], subject: "auth.>" }
sinks:
  http_out: { type: http, url: "${rx.url}" }
  ps_out: { type: gcp_pubsub, topic: ${outbound.topicId}, ${ps} }
  dlq: { type: file, path: "${join(dir, "dead.jsonl")}" }
routes:
  - { name: from-pubsub, from: ps_in, to: [http_out], dead_letter: dlq }
  - { name: to-pubsub, from: nats_in, to: [ps_out], dead_letter: dlq, retry: { initial: 50ms, max: 100ms, max_elapsed: 500ms } }
`);
  await daemon.waitReady(admin, 30_000);
});

after(async () => {
  await daemon?.stop("SIGKILL");
  await nc?.close();
  await nats?.close();
  await rx?.close();
  await em?.close();
});

function natsPublish(id: string): void {
  const m = encodeNatsMessage({ ...sampleEvents(1, "x")[0]!, attributes: { ...sampleEvents(1, "x")[0]!.attributes, id } }, "binary");
  const h = natsHeaders();
  for (const [k, v] of m.headers) h.append(k, v);
  nc.publish("auth.x", m.payload, { headers: h });
}

describe("e2e gcp_pubsub credentials and TLS", { timeout: 90_000 }, () => {
  it("gcp_pubsub auth - credentials_file and tls.ca: the source and the sink authenticate with a verified self-signed JWT", async () => {
    em.publish(inbound.topic, { data: structuredEvent("auth-1"), attributes: { "content-type": STRUCTURED_CONTENT_TYPE } });
    em.publish(inbound.topic, { data: structuredEvent("auth-poison"), attributes: { "content-type": STRUCTURED_CONTENT_TYPE } });
    natsPublish("auth-out-1");
    await waitFor(() => rx.tally.has("auth-1") && em.published(outbound.topic).length === 1, 20_000, () => daemon.stderr().slice(-3000));
    await waitFor(() => readJsonl(join(dir, "dead.jsonl")).length === 1, 10_000, "the poison event dead-lettered");
    assert.equal(em.published(outbound.topic)[0]!.attributes["ce-id"], "auth-out-1");
    assert.ok(verified.length >= 3, `${verified.length} calls carried a verified token`);
    assert.equal(em.authorizations.length, Object.values(em.calls).reduce((a, b) => a + b, 0), "every call carried credentials");
  });

  it("gcp_pubsub auth - no key material or token in logs, /status, /metrics or dead letters, also after the credentials are refused", async () => {
    // A Pub/Sub error inside a dead letter: the sink's permanent failure, with its reason.
    em.fail("Publish", { code: 3, match: (r: { messages: { attributes: Record<string, string> }[] }) => r.messages.some((m) => m.attributes["ce-id"] === "auth-invalid") });
    natsPublish("auth-invalid");
    await waitFor(() => readJsonl(join(dir, "dead.jsonl")).some((l) => l["id"] === "auth-invalid"), 20_000, () => daemon.stderr().slice(-3000));
    // Then the credentials are refused: publishes fail, and the reopened stream fails and is logged.
    accept = false;
    natsPublish("auth-refused-1");
    em.resetStreams();
    await waitFor(() => /UNAUTHENTICATED/.test(daemon.stderr()), 30_000, () => daemon.stderr().slice(-3000));
    const status = await (await fetch(`http://${admin}/status`)).text();
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    const deadLetters = readFileSync(join(dir, "dead.jsonl"), "utf8");
    const keyBody = pem.split("\n").filter((l) => l && !l.startsWith("-----"));
    const places: Record<string, string> = { stderr: daemon.stderr(), status, metrics, deadLetters };
    for (const [where, text] of Object.entries(places)) {
      assert.ok(!text.includes("PRIVATE KEY"), `${where} mentions a private key`);
      for (const line of keyBody) assert.ok(!text.includes(line.slice(8, 40)), `${where} holds part of the private key`);
      assert.ok(!text.includes(KEY_ID), `${where} holds the private key id`);
      for (const token of new Set(em.authorizations)) assert.ok(!text.includes(token.slice(7, 60)), `${where} holds a bearer token`);
    }
    accept = true;
  });

  it("gcp_pubsub auth - a malformed credentials file stops the start-up, naming the file but not its content", async () => {
    const bad = join(dir, "broken.json");
    writeFileSync(bad, `{"type":"service_account","private_key":"${pem.replace(/\n/g, "\\n").slice(0, 300)}`);
    const port = await freePort();
    const d = startDaemon(`
engine: { instance_id: gcp-bad, admin: { listen: "127.0.0.1:${port}" }, log: { level: debug } }
sources:
  nats_in: { type: nats, servers: ["${nats.url}"], subject: "bad.>" }
sinks:
  ps_out: { type: gcp_pubsub, project: ${PROJECT}, topic: ${outbound.topicId}, endpoint: "localhost:${em.port}", credentials_file: "${bad}", tls: { ca: "${certs.ca.cert}" } }
routes:
  - { name: r, from: nats_in, to: [ps_out] }
`);
    const code = await d.exited;
    assert.notEqual(code, 0);
    assert.match(d.stderr(), new RegExp(`credentials_file ${bad.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: not a JSON credentials file`));
    assert.ok(!d.stderr().includes("PRIVATE KEY"), d.stderr());
    assert.ok(!d.stderr().includes(pem.split("\n")[1]!.slice(0, 30)), "no part of the key");
  });
});
