/**
 * `azure_eventgrid` webhook source, pushed to by the emulator's real push delivery: both delivery
 * schemas, both handshakes (validation code, validation URL, OPTIONS with an origin allow-list),
 * the secret (query or header) and Entra token checks, and the statuses that make Event Grid retry
 * our transient failures (with `aeg-delivery-count` as the delivery count) but not the sender's.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { eventGridSource } from "../../connectors/azure-eventgrid/definition.js";
import { hostAllowed } from "../../connectors/azure-eventgrid/webhook-source.js";
import { toJsonObject } from "../../src/cloudevents/index.js";
import type { Source } from "../../src/core/source.js";
import { startEventGridEmulator, type BasicTopic } from "../emulators/eventgrid/index.js";
import { sourceFactory } from "../support/component.js";
import { uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { REPO_ROOT } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { TEST_KEY, publishToTopic, startJwks } from "../support/eventgrid.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome, rejectedOutcome } from "../support/fake-inbox.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

const emu = await startEventGridEmulator({ timeScale: 0.0005 });
after(() => emu.close());
const make = await sourceFactory(eventGridSource);
const sources: Source[] = [];
after(async () => {
  for (const s of sources) await s.close();
});

const BLOB = JSON.parse(readFileSync(join(REPO_ROOT, "test", "fixtures", "eventgrid", "blob-created.eventgrid.json"), "utf8")) as Record<string, unknown>[];

async function webhook(inbox: FakeInbox, extra: Record<string, unknown> = {}, path = "/eventgrid") {
  const port = await freePort();
  const src = make({ listen: `127.0.0.1:${port}`, path, ...extra }, testContext());
  sources.push(src);
  await src.start(inbox);
  return { src, url: `http://127.0.0.1:${port}${path}` };
}

function egTopic(tag: string): BasicTopic {
  return emu.topic(`eg-${tag}`, { schema: "eventgrid", keys: [TEST_KEY] });
}

function ceTopic(tag: string): BasicTopic {
  return emu.topic(`ce-${tag}`, { schema: "cloudevents", keys: [TEST_KEY] });
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
}

describe("azure_eventgrid webhook source - Event Grid schema", { timeout: 60_000 }, () => {
  it("azure_eventgrid webhook source - answers the validation code, then maps BlobCreated and a custom event; delivery count from aeg-delivery-count", async () => {
    const tag = uniqueTag("eg");
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox);
    const topic = egTopic(tag);
    const sub = await topic.subscribe({ url, deliverySchema: "eventgrid", validation: "sync" });
    assert.equal(sub.state, "active");
    assert.equal(sub.handshake?.status, 200);
    const custom = { id: `${tag}-1`, subject: "orders/1", eventType: "com.example.order", eventTime: "2024-05-06T07:08:09.1234567Z", data: { n: 1 }, dataVersion: "2" };
    await publishToTopic(topic, [{ ...BLOB[0]!, topic: undefined }, custom]);
    await inbox.waitForSettled(2, 10_000);
    const byType = new Map(inbox.offers.map((o) => [String(o.events[0]!.attributes["type"]), o]));
    const blob = byType.get("Microsoft.Storage.BlobCreated")!;
    assert.equal(blob.deliveryCount, 1);
    assert.deepEqual(blob.events[0]!.attributes, {
      specversion: "1.0",
      id: "831e1650-001e-001b-66ab-eeb76e069631",
      source: topic.resourceId,
      type: "Microsoft.Storage.BlobCreated",
      subject: "/blobServices/default/containers/test-container/blobs/new-file.txt",
      time: "2017-06-26T18:41:00.9584103Z",
      datacontenttype: "application/json",
      dataversion: "",
      metadataversion: "1",
    });
    assert.deepEqual(toJsonObject(blob.events[0]!)["data"], BLOB[0]!["data"]);
    const order = byType.get("com.example.order")!;
    assert.equal(order.events[0]!.attributes["dataversion"], "2");
    await waitFor(() => sub.delivered.length === 2, 5000);
    assert.ok(sub.attempts.every((a) => a.status === 204));
  });

  it("azure_eventgrid webhook source - a transient failure of ours answers 503 and Event Grid retries; the retry carries the next delivery count", async () => {
    const tag = uniqueTag("retry");
    const inbox = new FakeInbox({ script: (_m, info) => (info.seen === 1 ? erroredOutcome("sink down") : DELIVERED_OUTCOME) });
    const { url } = await webhook(inbox);
    const topic = egTopic(tag);
    const sub = await topic.subscribe({ url, deliverySchema: "eventgrid" });
    await publishToTopic(topic, [{ id: `${tag}-r`, subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z", data: {} }]);
    await waitFor(() => sub.delivered.length === 1, 10_000);
    assert.deepEqual(sub.attempts.map((a) => [a.deliveryCount, a.status]), [[0, 503], [1, 204]]);
    assert.deepEqual(inbox.offers.map((o) => o.deliveryCount), [1, 2]);
    assert.equal(sub.deadLettered.length, 0);
  });

  it("azure_eventgrid webhook source - validation: url answers 200 and visits the URL on an allowed host; a URL elsewhere is not visited", async () => {
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox, { validation: "url", validation_hosts: ["127.0.0.1"] });
    const sub = await egTopic(uniqueTag("vurl")).subscribe({ url, deliverySchema: "eventgrid", validation: "url" });
    assert.equal(sub.state, "active");
    assert.equal(sub.handshake?.body, "");
    const other = await webhook(new FakeInbox(), { validation: "url", validation_hosts: ["*.eventgrid.azure.net"] });
    await assert.rejects(egTopic(uniqueTag("vurl2")).subscribe({ url: other.url, deliverySchema: "eventgrid", validation: "url" }), /validation URL was not visited/);
    assert.equal(hostAllowed("rp-eastus2.eventgrid.azure.net", ["*.eventgrid.azure.net"]), true);
    assert.equal(hostAllowed("eventgrid.azure.net.evil.example", ["*.eventgrid.azure.net"]), false);
    assert.equal(hostAllowed("evil-eventgrid.azure.net", ["*.eventgrid.azure.net"]), false);
  });

  it("azure_eventgrid webhook source - SubscriptionDeletion notices are answered 200 and deliver nothing", async () => {
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox);
    const r = await post(url, "[]", { "aeg-event-type": "SubscriptionDeletion" });
    assert.equal(r.status, 200);
    assert.equal(inbox.offers.length, 0);
  });
});

describe("azure_eventgrid webhook source - CloudEvents schema", { timeout: 60_000 }, () => {
  it("azure_eventgrid webhook source - the OPTIONS handshake grants an allowed origin; every attribute, extension and data byte arrives exactly", async () => {
    const tag = uniqueTag("ce");
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox);
    const topic = ceTopic(tag);
    const sub = await topic.subscribe({ url, deliverySchema: "cloudevents", requestRate: 120 });
    assert.equal(sub.handshake?.headers["webhook-allowed-origin"], "eventgrid.azure.net");
    assert.equal(sub.handshake?.headers["webhook-allowed-rate"], "*");
    const evs = richEvents(tag);
    await publishToTopic(topic, evs);
    await inbox.waitForSettled(evs.length, 10_000);
    const got = byId(inbox.offers.map((o) => o.events[0]!));
    for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e);
  });

  it("azure_eventgrid webhook source - the OPTIONS handshake is refused (403, no consent header) for an origin not in allowed_origins", async () => {
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox, { allowed_origins: ["eventgrid.azure.net"] });
    const topic = ceTopic(uniqueTag("origin"));
    await assert.rejects(topic.subscribe({ url, deliverySchema: "cloudevents", origin: "attacker.example" }), /answered 403.*not in allowed_origins/);
    assert.equal(topic.subscriptions[0]!.sub.handshake?.status, 403);
    assert.equal(topic.subscriptions[0]!.sub.handshake?.headers["webhook-allowed-origin"], undefined);
  });

  it("azure_eventgrid webhook source - batched CloudEvents deliveries settle as one request: 204 only after all, 503 while any failed", async () => {
    const tag = uniqueTag("batch");
    const inbox = new FakeInbox({ script: (m, info) => (String(m.events[0]!.attributes["id"]).endsWith("-0") && info.seen === 1 ? erroredOutcome() : DELIVERED_OUTCOME) });
    const { url } = await webhook(inbox);
    const topic = ceTopic(tag);
    const sub = await topic.subscribe({ url, deliverySchema: "cloudevents", maxEventsPerBatch: 10 });
    await publishToTopic(topic, sampleEvents(5, tag));
    await waitFor(() => sub.delivered.length === 5, 10_000);
    const statuses = sub.attempts.map((a) => a.status);
    assert.ok(statuses.includes(503) && statuses.at(-1) === 204, JSON.stringify(sub.attempts));
  });
});

describe("azure_eventgrid webhook source - refusals and statuses", { timeout: 60_000 }, () => {
  const SECRET = "webhook-secret-7f3a9c";

  it("azure_eventgrid webhook source - with a secret: the validation and deliveries need it (query or header); without it 401 and nothing is written", async () => {
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox, { secret: SECRET });
    const topic = egTopic(uniqueTag("secret"));
    await assert.rejects(topic.subscribe({ url, deliverySchema: "eventgrid" }), /401/);
    const viaQuery = await topic.subscribe({ url: `${url}?code=${SECRET}`, deliverySchema: "eventgrid" });
    const viaHeader = await topic.subscribe({ url, deliverySchema: "eventgrid", headers: { "x-cebridge-secret": SECRET } });
    assert.equal(viaQuery.state, "active");
    assert.equal(viaHeader.state, "active");
    const event = { id: "s1", topic: "/t", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z", data: {} };
    const attempts: { u: string; h: Record<string, string> }[] = [{ u: url, h: {} }, { u: `${url}?code=wrong`, h: {} }, { u: url, h: { "x-cebridge-secret": "wrong" } }];
    for (const attempt of attempts) {
      const r = await post(attempt.u, JSON.stringify([event]), attempt.h);
      assert.equal(r.status, 401);
      assert.match(((await r.json()) as { message: string }).message, /secret/);
    }
    await sleep(100);
    assert.equal(inbox.offers.length, 0, "nothing reached the route");
    const ok = await post(`${url}?code=${SECRET}`, JSON.stringify([event]));
    assert.equal(ok.status, 204);
    assert.equal(inbox.offers.length, 1);
  });

  it("azure_eventgrid webhook source - Entra: a token signed by the tenant's key for our audience passes; wrong audience, expired, unknown key, no token → 401; keys unreachable → 503", async () => {
    const audience = "api://cebridge-webhook";
    const jwks = await startJwks(audience);
    after(() => jwks.close());
    const inbox = new FakeInbox();
    const { url } = await webhook(inbox, { entra: { tenant_id: jwks.tenantId, audience, jwks_url: jwks.url } });
    const topic = egTopic(uniqueTag("entra"));
    const sub = await topic.subscribe({ url, deliverySchema: "eventgrid", bearer: () => jwks.token() });
    await publishToTopic(topic, [{ id: "e1", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z", data: {} }]);
    await waitFor(() => sub.delivered.length === 1, 10_000);
    const event = JSON.stringify([{ id: "e2", topic: "/t", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z" }]);
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      jwks.token({ aud: "api://someone-else" }),
      jwks.token({ exp: now - 3600, nbf: now - 7200 }),
      jwks.token({}, { key: jwks.rogueKey }),
      jwks.token({ iss: "https://sts.windows.net/another-tenant/" }),
    ];
    for (const token of bad) assert.equal((await post(url, event, { authorization: `Bearer ${token}` })).status, 401);
    assert.equal((await post(url, event)).status, 401);
    assert.equal(inbox.offers.length, 1);
    const blind = await webhook(new FakeInbox(), { entra: { tenant_id: jwks.tenantId, audience, jwks_url: "http://127.0.0.1:1/keys" } });
    const r = await post(blind.url, event, { authorization: `Bearer ${jwks.token()}` });
    assert.equal(r.status, 503);
    assert.ok(r.headers.get("retry-after"));
  });

  it("azure_eventgrid webhook source - window full → 429, batch over the window → 503 (never 413), permanent sink failure → 422, invalid event → 400, wrong media → 415, body over max_body → 413", async () => {
    const inbox = new FakeInbox({ capacity: 2, script: (m) => (String(m.events[0]!.attributes["id"]) === "perm" ? rejectedOutcome() : "hold") });
    const { url } = await webhook(inbox, { max_body: "4KiB" });
    const ev = (id: string) => ({ id, topic: "/t", subject: "s", eventType: "t", eventTime: "2024-01-01T00:00:00Z" });
    const perm = await post(url, JSON.stringify([ev("perm")]));
    assert.equal(perm.status, 422);
    const held = post(url, JSON.stringify([ev("h1"), ev("h2")]));
    await inbox.waitForOffers(2);
    const full = await post(url, JSON.stringify([ev("f1")]));
    assert.equal(full.status, 429);
    assert.ok(full.headers.get("retry-after"));
    const tooMany = await post(url, JSON.stringify([ev("a"), ev("b"), ev("c")]));
    assert.equal(tooMany.status, 503);
    const invalid = await post(url, JSON.stringify([ev("ok"), { id: "x", topic: "/t", eventType: "t" }]));
    assert.equal(invalid.status, 400);
    assert.match(((await invalid.json()) as { message: string }).message, /event\[1\]/);
    assert.equal((await post(url, "hello", { "content-type": "text/plain" })).status, 415);
    assert.equal((await post(url, JSON.stringify([{ ...ev("big"), data: "x".repeat(5000) }]))).status, 413);
    inbox.releaseHeld();
    assert.equal((await held).status, 204);
  });
});
