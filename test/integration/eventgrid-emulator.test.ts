/**
 * The Event Grid emulator against the real clients (`@azure/eventgrid` 5.12, `@azure/eventgrid-
 * namespaces` 1.0.0): publish with key, SAS and Bearer (https with a test CA), refusals with the
 * service's statuses, the namespace pull API (locks, expiry, release delays, reject, renew, max
 * delivery count, per-token failures) and push delivery with both handshakes and the retry schedule.
 * The connectors' tests rely on these behaviours, so they are pinned here first.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { AzureKeyCredential, AzureSASCredential, EventGridPublisherClient, generateSharedAccessSignature } from "@azure/eventgrid";
import { AzureKeyCredential as NamespaceKeyCredential, EventGridReceiverClient, EventGridSenderClient } from "@azure/eventgrid-namespaces";
import type { AccessToken, TokenCredential } from "@azure/core-auth";
import { makeSasToken, startEventGridEmulator, type EventGridEmulator } from "../emulators/eventgrid/index.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { sleep, waitFor } from "../support/wait.js";

const KEY = Buffer.from("emulator-test-key-0123456789abcdef").toString("base64");
const insecure = { allowInsecureConnection: true, retryOptions: { maxRetries: 0 } };

/** A webhook whose answers the test scripts. */
async function webhook(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<{ url: string; server: Server; seen: { method: string; headers: IncomingMessage["headers"]; body: string }[] }> {
  const seen: { method: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      seen.push({ method: req.method ?? "", headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook?code=abc`, server, seen };
}

describe("Event Grid emulator - basic topics with the real publisher client", () => {
  let emu: EventGridEmulator;
  before(async () => {
    emu = await startEventGridEmulator();
  });
  after(() => emu.close());

  it("accepts a key, the client's own SAS token and the emulator's identical one; refuses a wrong key and an expired SAS with 401", async () => {
    const t = emu.topic("keys", { schema: "cloudevents", keys: [KEY] });
    await new EventGridPublisherClient(t.endpoint, "CloudEvent", new AzureKeyCredential(KEY), insecure).send([{ type: "t", source: "urn:s", data: { a: 1 } }]);
    const expires = new Date(Date.now() + 60_000);
    const sas = await generateSharedAccessSignature(t.endpoint, new AzureKeyCredential(KEY), expires);
    assert.equal(makeSasToken(t.endpoint, KEY, expires), sas);
    await new EventGridPublisherClient(t.endpoint, "CloudEvent", new AzureSASCredential(sas), insecure).send([{ type: "t", source: "urn:s", data: { a: 2 } }]);
    assert.deepEqual(t.publishes.map((p) => [p.auth, p.status]), [["key", 200], ["sas", 200]]);

    const wrong = new EventGridPublisherClient(t.endpoint, "CloudEvent", new AzureKeyCredential(Buffer.from("nope").toString("base64")), insecure);
    await assert.rejects(wrong.send([{ type: "t", source: "urn:s", data: {} }]), (e: { statusCode?: number; code?: string }) => e.statusCode === 401 && e.code === "Unauthorized");
    const old = makeSasToken(t.endpoint, KEY, new Date(Date.now() - 1000));
    await assert.rejects(new EventGridPublisherClient(t.endpoint, "CloudEvent", new AzureSASCredential(old), insecure).send([{ type: "t", source: "urn:s", data: {} }]), /expired/);
    assert.equal(t.published.length, 2);
  });

  it("validates the Event Grid schema (400 naming the member) and the request size (413)", async () => {
    const t = emu.topic("egschema", { schema: "eventgrid", keys: [KEY] });
    const c = new EventGridPublisherClient(t.endpoint, "Custom", new AzureKeyCredential(KEY), insecure);
    await assert.rejects(c.send([{ id: "1", eventType: "t", subject: "s" }]), (e: { statusCode?: number; message: string }) => e.statusCode === 400 && /eventTime/.test(e.message));
    await c.send([{ id: "1", eventType: "t", subject: "s", eventTime: "2024-01-02T03:04:05.1234567Z", data: { x: 1 }, dataVersion: "2" }]);
    const big = "x".repeat(1024 * 1024);
    await assert.rejects(c.send([{ id: "2", eventType: "t", subject: "s", eventTime: "2024-01-02T03:04:05Z", data: big }]), (e: { statusCode?: number }) => e.statusCode === 413);
    assert.equal(t.published.length, 1);
  });

  it("injected 503 with Retry-After reaches the client as a RestError", async () => {
    const t = emu.topic("faulty", { schema: "cloudevents", keys: [KEY] });
    emu.inject({ op: "topic.publish", topic: "faulty", status: 503, retryAfterSeconds: 2 });
    const c = new EventGridPublisherClient(t.endpoint, "CloudEvent", new AzureKeyCredential(KEY), insecure);
    await assert.rejects(c.send([{ type: "t", source: "urn:s", data: {} }]), (e: { statusCode?: number; response?: { headers: { get(n: string): string | undefined } } }) => e.statusCode === 503 && e.response?.headers.get("retry-after") === "2");
    await c.send([{ type: "t", source: "urn:s", data: {} }]);
    assert.equal(t.published.length, 1);
  });
});

describe("Event Grid emulator - https and Bearer tokens", () => {
  let certs: TestCerts;
  let emu: EventGridEmulator;
  before(async () => {
    certs = makeTestCerts();
    emu = await startEventGridEmulator({ tls: certs.server });
  });
  after(async () => {
    await emu.close();
    certs.cleanup();
  });

  it("accepts a Bearer token over https with the test CA, refuses an unknown one", async () => {
    const t = emu.topic("entra", { schema: "cloudevents", bearerTokens: ["good-token"] });
    const cred = (token: string): TokenCredential => ({ getToken: async (): Promise<AccessToken> => ({ token, expiresOnTimestamp: Date.now() + 3_600_000 }) });
    const opts = { tlsOptions: { ca: certs.text(certs.ca.cert) }, retryOptions: { maxRetries: 0 } };
    await new EventGridPublisherClient(t.endpoint, "CloudEvent", cred("good-token"), opts).send([{ type: "t", source: "urn:s", data: { ok: true } }]);
    await assert.rejects(new EventGridPublisherClient(t.endpoint, "CloudEvent", cred("bad"), opts).send([{ type: "t", source: "urn:s", data: {} }]), (e: { statusCode?: number }) => e.statusCode === 401);
    assert.deepEqual(t.publishes.map((p) => p.auth), ["bearer", "none"]);
  });
});

describe("Event Grid emulator - namespace pull delivery with the real clients", () => {
  let emu: EventGridEmulator;
  before(async () => {
    emu = await startEventGridEmulator({ timeScale: 0.01 });
    emu.namespaceAuth({ keys: [KEY] });
  });
  after(() => emu.close());

  const clients = (topic: string, sub: string) => ({
    sender: new EventGridSenderClient(emu.url, new NamespaceKeyCredential(KEY), topic, insecure),
    receiver: new EventGridReceiverClient(emu.url, new NamespaceKeyCredential(KEY), topic, sub, insecure),
  });

  it("keeps extensions and data_base64 verbatim; receive returns them in the raw body; locks expire; release delays; reject dead-letters; max delivery count", async () => {
    const topic = emu.namespaceTopic("pull1");
    const sub = topic.subscription("s", { lockDurationMs: 300, maxDeliveryCount: 3 });
    const { sender, receiver } = clients("pull1", "s");
    await sender.sendEvents([
      { type: "t", source: "urn:s", id: "e1", data: { a: 1 } as never },
      { type: "t", source: "urn:s", id: "e2", data: new Uint8Array([0, 255]), dataContentType: "application/octet-stream" },
    ]);
    let raw = "";
    const r1 = await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 1, onResponse: (x) => (raw = x.bodyAsText ?? "") });
    assert.deepEqual(r1.details.map((d) => d.brokerProperties.deliveryCount), [1, 1]);
    assert.match(raw, /"data_base64":"AP8="/);
    const [t1, t2] = r1.details.map((d) => d.brokerProperties.lockToken);
    // e1 released with the 10 s delay (0.1 s scaled), e2 left to expire.
    assert.deepEqual((await receiver.releaseEvents([t1!], { releaseDelay: "10" })).succeededLockTokens, [t1]);
    assert.deepEqual((await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 0 })).details, []);
    const again = await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 2 });
    assert.deepEqual(again.details.map((d) => [d.event.id, d.brokerProperties.deliveryCount]), [["e1", 2]]);
    await receiver.rejectEvents([again.details[0]!.brokerProperties.lockToken]);
    // the expired token of e2 fails per token; e2 comes back with count 2, then 3, then is dead-lettered.
    await sleep(350);
    const late = await receiver.acknowledgeEvents([t2!]);
    assert.equal(late.failedLockTokens[0]?.error.code, "TokenLost");
    for (const n of [2, 3]) {
      const r = await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 2 });
      assert.deepEqual(r.details.map((d) => [d.event.id, d.brokerProperties.deliveryCount]), [["e2", n]]);
      await receiver.releaseEvents([r.details[0]!.brokerProperties.lockToken]);
    }
    assert.deepEqual((await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 0 })).details, []);
    assert.deepEqual(sub.deadLettered.map((d) => [d.event["id"], d.reason]), [["e1", "Rejected"], ["e2", "MaxDeliveryCountExceeded"]]);
  });

  it("renewLock keeps a lock past its duration; injected per-token failures; invalid release delay is a 400", async () => {
    const topic = emu.namespaceTopic("pull2");
    const sub = topic.subscription("s", { lockDurationMs: 200 });
    const { sender, receiver } = clients("pull2", "s");
    await sender.sendEvents({ type: "t", source: "urn:s", id: "r1", data: {} });
    const r = await receiver.receiveEvents({ maxEvents: 1, maxWaitTime: 1 });
    const token = r.details[0]!.brokerProperties.lockToken;
    for (let i = 0; i < 4; i++) {
      await sleep(100);
      assert.deepEqual((await receiver.renewEventLocks([token])).succeededLockTokens, [token]);
    }
    sub.failTokens("acknowledge", 1);
    const partial = await receiver.acknowledgeEvents([token]);
    assert.equal(partial.failedLockTokens[0]?.error.code, "InternalServerError");
    await assert.rejects(receiver.releaseEvents([token], { releaseDelay: "5" as never }), (e: { statusCode?: number }) => e.statusCode === 400);
    assert.deepEqual((await receiver.acknowledgeEvents([token])).succeededLockTokens, [token]);
    assert.deepEqual(sub.acknowledged, ["r1"]);
  });

  it("a long poll returns as soon as an event is published", async () => {
    emu.namespaceTopic("pull3").subscription("s");
    const { sender, receiver } = clients("pull3", "s");
    const started = Date.now();
    const poll = receiver.receiveEvents({ maxEvents: 5, maxWaitTime: 10 });
    await sleep(100);
    await sender.sendEvents({ type: "t", source: "urn:s", id: "p1", data: {} });
    const r = await poll;
    assert.equal(r.details.length, 1);
    assert.ok(Date.now() - started < 5000);
  });
});

describe("Event Grid emulator - push delivery", () => {
  let emu: EventGridEmulator;
  const servers: Server[] = [];
  before(async () => {
    emu = await startEventGridEmulator({ timeScale: 0.001 });
  });
  after(async () => {
    await emu.close();
    for (const s of servers) s.close();
  });

  it("Event Grid schema: validation event answered with the code, then deliveries with aeg-* headers retried on 503 and dead-lettered on 400", async () => {
    let n = 0;
    const hook = await webhook((req, body, res) => {
      if (req.headers["aeg-event-type"] === "SubscriptionValidation") {
        const code = (JSON.parse(body) as { data: { validationCode: string } }[])[0]!.data.validationCode;
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ validationResponse: code }));
        return;
      }
      const ev = (JSON.parse(body) as { id: string }[])[0]!;
      if (ev.id === "bad") return void res.writeHead(400).end();
      n++;
      res.writeHead(n <= 2 ? 503 : 200).end();
    });
    servers.push(hook.server);
    const t = emu.topic("push1", { schema: "eventgrid", keys: [KEY] });
    const sub = await t.subscribe({ url: hook.url, deliverySchema: "eventgrid", name: "mysub" });
    const c = new EventGridPublisherClient(t.endpoint, "Custom", new AzureKeyCredential(KEY), insecure);
    await c.send([{ id: "e1", eventType: "t", subject: "s", eventTime: "2024-01-02T03:04:05Z", data: { a: 1 }, dataVersion: "3" }]);
    await waitFor(() => sub.delivered.length === 1, 10_000);
    assert.deepEqual(sub.attempts.map((a) => [a.deliveryCount, a.status]), [[0, 503], [1, 503], [2, 200]]);
    const last = hook.seen.at(-1)!;
    assert.equal(last.headers["aeg-delivery-count"], "2");
    assert.equal(last.headers["aeg-subscription-name"], "MYSUB");
    assert.equal(last.headers["aeg-data-version"], "3");
    assert.deepEqual(JSON.parse(last.body)[0].topic, t.resourceId);
    await c.send([{ id: "bad", eventType: "t", subject: "s", eventTime: "2024-01-02T03:04:05Z", data: {} }]);
    await waitFor(() => sub.deadLettered.length === 1, 10_000);
    assert.match(sub.deadLettered[0]!.reason, /400/);
  });

  it("Event Grid schema: a 200 without the code waits for a GET of the validation URL", async () => {
    const hook = await webhook((req, body, res) => {
      if (req.headers["aeg-event-type"] === "SubscriptionValidation") {
        const url = (JSON.parse(body) as { data: { validationUrl: string } }[])[0]!.data.validationUrl;
        res.writeHead(200).end();
        setTimeout(() => void fetch(url), 20);
        return;
      }
      res.writeHead(200).end();
    });
    servers.push(hook.server);
    const t = emu.topic("push2", { schema: "eventgrid", keys: [KEY] });
    const sub = await t.subscribe({ url: hook.url, deliverySchema: "eventgrid", validation: "url" });
    assert.equal(sub.state, "active");
  });

  it("CloudEvents schema: the OPTIONS handshake needs WebHook-Allowed-Origin; deliveries carry WebHook-Request-Origin and the published extensions", async () => {
    const refusing = await webhook((_req, _body, res) => res.writeHead(200).end());
    servers.push(refusing.server);
    const t = emu.topic("push3", { schema: "cloudevents", keys: [KEY] });
    await assert.rejects(t.subscribe({ url: refusing.url, deliverySchema: "cloudevents" }), /no consent/);
    const hook = await webhook((req, _body, res) => {
      if (req.method === "OPTIONS") return void res.writeHead(200, { "webhook-allowed-origin": String(req.headers["webhook-request-origin"]) }).end();
      res.writeHead(200).end();
    });
    servers.push(hook.server);
    const sub = await t.subscribe({ url: hook.url, deliverySchema: "cloudevents" });
    const c = new EventGridPublisherClient(t.endpoint, "CloudEvent", new AzureKeyCredential(KEY), insecure);
    await c.send([{ type: "t", source: "urn:s", id: "c1", data: { a: 1 }, extensionAttributes: { tenant: "acme" } }]);
    await waitFor(() => sub.delivered.length === 1, 10_000);
    const last = hook.seen.at(-1)!;
    assert.equal(last.headers["webhook-request-origin"], "eventgrid.azure.net");
    assert.match(String(last.headers["content-type"]), /^application\/cloudevents\+json/);
    assert.equal(JSON.parse(last.body).tenant, "acme");
  });
});
