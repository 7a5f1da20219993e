/**
 * `azure_eventgrid` and `azure_eventgrid_namespace` sinks against the emulator with the real clients:
 * the shared sink conformance suite, exact extensions / binary data / nanosecond times, the Event
 * Grid schema mapping with domains, batching within 1 MiB, the classification of every failure the
 * issue names, SAS tokens, and `credential: default` through @azure/identity (managed identity on
 * loopback, Bearer over https with a test CA).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { eventGridSink, namespaceSink } from "../../connectors/azure-eventgrid/definition.js";
import { eventGridToCloudEvent } from "../../connectors/azure-eventgrid/mapping.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { SinkError, TemplateError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { makeSasToken, startEventGridEmulator } from "../emulators/eventgrid/index.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { sinkFactory } from "../support/component.js";
import { sinkConformance, uniqueTag } from "../support/conformance.js";
import { testContext } from "../support/context.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { TEST_KEY, acceptedEvents, startManagedIdentity, topicReader } from "../support/eventgrid.js";

const emu = await startEventGridEmulator();
emu.namespaceAuth({ keys: [TEST_KEY] });
after(() => emu.close());
const topicSink = await sinkFactory(eventGridSink);
const nsSink = await sinkFactory(namespaceSink);

function oversize(tag: string): CloudEvent {
  return {
    attributes: { specversion: "1.0", id: `${tag}-huge`, source: "urn:cebridge:test", type: "dev.cebridge.test.huge", datacontenttype: "application/octet-stream" },
    data: { kind: "bytes", bytes: Buffer.alloc(1_100_000, 7) },
  };
}

async function writeAll(sink: Sink, events: readonly CloudEvent[]): Promise<PromiseSettledResult<void>[]> {
  return Promise.allSettled(events.map((e) => sink.write(e, AbortSignal.timeout(15_000))));
}

sinkConformance("azure_eventgrid (CloudEvents schema)", {
  async fresh(tag) {
    const topic = emu.topic(`ce-${tag}`, { schema: "cloudevents", keys: [TEST_KEY] });
    return {
      make: () => topicSink({ endpoint: topic.endpoint, key: TEST_KEY }, testContext()),
      reader: async () => topicReader(topic),
      unroutable: oversize(tag),
    };
  },
});

sinkConformance("azure_eventgrid_namespace", {
  async fresh(tag) {
    const topic = emu.namespaceTopic(`ns-${tag}`);
    return {
      make: () => nsSink({ endpoint: emu.url, topic: topic.name, key: TEST_KEY }, testContext()),
      reader: async () => topicReader(topic),
      unroutable: oversize(tag),
    };
  },
});

describe("azure_eventgrid sink", { timeout: 60_000 }, () => {
  it("azure_eventgrid sink - CloudEvents schema keeps every attribute with its JSON type, every extension, every data byte and a nanosecond time", async () => {
    const tag = uniqueTag("rich");
    const topic = emu.topic(`rich-${tag}`, { schema: "cloudevents", keys: [TEST_KEY] });
    const sink = topicSink({ endpoint: topic.endpoint, key: TEST_KEY }, testContext());
    await sink.open();
    const evs = richEvents(tag);
    const results = await writeAll(sink, evs);
    assert.deepEqual(results.map((r) => r.status), evs.map(() => "fulfilled"));
    const got = byId(acceptedEvents(topic));
    for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e);
    assert.equal(got.get(`${tag}-ext`)!.attributes["time"], "2024-05-06T07:08:09.123456789+02:00");
    assert.ok(topic.publishes.every((p) => p.contentType === "application/cloudevents-batch+json; charset=utf-8" && p.auth === "key"));
    await sink.close();
  });

  it("azure_eventgrid sink - namespace sink keeps extensions and binary data exactly too", async () => {
    const tag = uniqueTag("nsrich");
    const topic = emu.namespaceTopic(`nsrich-${tag}`);
    const sink = nsSink({ endpoint: emu.url, topic: topic.name, key: TEST_KEY }, testContext());
    await sink.open();
    const evs = richEvents(tag);
    assert.ok((await writeAll(sink, evs)).every((r) => r.status === "fulfilled"));
    const got = byId(acceptedEvents(topic));
    for (const e of evs) assertSameEvent(got.get(String(e.attributes["id"]))!, e);
    await sink.close();
  });

  it("azure_eventgrid sink - Event Grid schema: the documented mapping, dataversion → dataVersion, domain topic from a template; an event lacking its attribute fails alone", async () => {
    const tag = uniqueTag("eg");
    const domain = emu.topic(`dom-${tag}`, { schema: "eventgrid", domain: true, keys: [TEST_KEY] });
    const sink = topicSink({ endpoint: domain.endpoint, key: TEST_KEY, schema: "eventgrid", domain_topic: "tenant-{tenant}" }, testContext());
    await sink.open();
    const good: CloudEvent = {
      attributes: { specversion: "1.0", id: `${tag}-1`, source: "urn:shop", type: "com.example.order", subject: "orders/1", time: "2024-05-06T07:08:09.1234567Z", datacontenttype: "application/json", dataversion: "2.0", tenant: "a" },
      data: { kind: "bytes", bytes: Buffer.from('{"total":12.5,"items":["é"]}') },
    };
    const missing: CloudEvent = { attributes: { specversion: "1.0", id: `${tag}-2`, source: "urn:shop", type: "t" } };
    const [ok, bad] = await writeAll(sink, [good, missing]);
    assert.equal(ok!.status, "fulfilled");
    assert.ok(bad?.status === "rejected" && bad.reason instanceof TemplateError);
    assert.equal(domain.published.length, 1);
    assert.equal(domain.published[0]!.domainTopic, "tenant-a");
    assert.deepEqual(domain.published[0]!.event, {
      id: `${tag}-1`,
      subject: "orders/1",
      eventType: "com.example.order",
      eventTime: "2024-05-06T07:08:09.1234567Z",
      data: { total: 12.5, items: ["é"] },
      dataVersion: "2.0",
      topic: "tenant-a",
    });
    assert.equal(domain.publishes[0]!.contentType, "application/json; charset=utf-8");
    // Read back as a subscriber would get it: the mapped attributes survive, source becomes the topic.
    const back = eventGridToCloudEvent({ ...domain.published[0]!.event, topic: "/x/domains/d/topics/tenant-a", metadataVersion: "1" });
    assert.deepEqual(back.attributes, { specversion: "1.0", id: `${tag}-1`, source: "/x/domains/d/topics/tenant-a", type: "com.example.order", subject: "orders/1", time: "2024-05-06T07:08:09.1234567Z", datacontenttype: "application/json", dataversion: "2.0", metadataversion: "1" });
    await sink.close();
  });

  it("azure_eventgrid sink - batches concurrent writes: 250 small events in a few requests, 12 events of 100 KiB in requests of at most 1 MiB", async () => {
    const tag = uniqueTag("batch");
    const topic = emu.topic(`batch-${tag}`, { schema: "cloudevents", keys: [TEST_KEY] });
    const sink = topicSink({ endpoint: topic.endpoint, key: TEST_KEY, batch: { max_events: 100, linger: "20ms" } }, testContext());
    await sink.open();
    assert.ok((await writeAll(sink, sampleEvents(250, tag))).every((r) => r.status === "fulfilled"));
    assert.ok(topic.publishes.length >= 3 && topic.publishes.length <= 6, `${topic.publishes.length} requests`);
    assert.ok(topic.publishes.every((p) => p.events <= 100));
    const big = Array.from({ length: 12 }, (_, i) => ({
      attributes: { specversion: "1.0", id: `${tag}-big-${i}`, source: "urn:s", type: "t", datacontenttype: "application/octet-stream" },
      data: { kind: "bytes" as const, bytes: Buffer.alloc(100 * 1024, i) },
    }));
    const before = topic.publishes.length;
    assert.ok((await writeAll(sink, big)).every((r) => r.status === "fulfilled"));
    const requests = topic.publishes.slice(before);
    assert.ok(requests.length >= 2, "12 × 136 KiB of base64 cannot fit one request");
    assert.ok(requests.every((p) => p.status === 200 && p.bytes <= 1024 * 1024), JSON.stringify(requests.map((r) => r.bytes)));
    assert.equal(topic.published.length, 262);
    await sink.close();
  });

  it("azure_eventgrid sink - failures: 429 and 503 transient with Retry-After, 500 and timeouts transient; 400, 401, 403, 404, 413 permanent", async () => {
    const tag = uniqueTag("fail");
    const topic = emu.topic(`fail-${tag}`, { schema: "cloudevents", keys: [TEST_KEY], maxRequestBytes: 4096 });
    const sink = topicSink({ endpoint: topic.endpoint, key: TEST_KEY, timeout: "300ms", batch: { linger: "1ms" } }, testContext());
    await sink.open();
    const one = (i: string, size = 10): CloudEvent => ({ attributes: { specversion: "1.0", id: `${tag}-${i}`, source: "urn:s", type: "t", datacontenttype: "text/plain" }, data: { kind: "bytes", bytes: Buffer.alloc(size, 65) } });
    const cases: { fault?: { status?: number; retryAfterSeconds?: number; delayMs?: number }; size?: number; retryable: boolean; retryAfterMs?: number; code?: string; status: RegExp }[] = [
      { fault: { status: 429, retryAfterSeconds: 3 }, retryable: true, retryAfterMs: 3000, status: /429/ },
      { fault: { status: 503, retryAfterSeconds: 1 }, retryable: true, retryAfterMs: 1000, status: /503/ },
      { fault: { status: 500 }, retryable: true, status: /500/ },
      { fault: { delayMs: 1000 }, retryable: true, code: "CEB_SINK_TIMEOUT", status: /aborted|timeout/i },
      { fault: { status: 400 }, retryable: false, status: /400/ },
      { fault: { status: 401 }, retryable: false, status: /401/ },
      { fault: { status: 403 }, retryable: false, status: /403/ },
      { fault: { status: 404 }, retryable: false, status: /404/ },
      { size: 5000, retryable: false, code: "CEB_TOO_LARGE", status: /413/ },
    ];
    for (const [i, c] of cases.entries()) {
      if (c.fault) emu.inject({ op: "topic.publish", topic: topic.name, ...c.fault });
      const err = await sink.write(one(String(i), c.size), AbortSignal.timeout(10_000)).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(err instanceof SinkError, `case ${i}: ${String(err)}`);
      assert.equal(err.retryable, c.retryable, `case ${i}: ${err.message}`);
      assert.match(err.message, c.status, `case ${i}`);
      if (c.retryAfterMs !== undefined) assert.equal(err.retryAfterMs, c.retryAfterMs, `case ${i}`);
      if (c.code !== undefined) assert.equal(err.code, c.code, `case ${i}`);
      assert.doesNotMatch(err.message, new RegExp(TEST_KEY.replace(/[+/=]/g, "\\$&")), "the key never appears in an error");
    }
    await sink.write(one("ok"), AbortSignal.timeout(10_000));
    assert.equal(topic.published.length, 1);
    await sink.close();

    const wrongKey = topicSink({ endpoint: topic.endpoint, key: Buffer.from("wrong").toString("base64") }, testContext());
    await wrongKey.open();
    await assert.rejects(wrongKey.write(one("k"), AbortSignal.timeout(10_000)), (e: SinkError) => !e.retryable && /401/.test(e.message));
    await wrongKey.close();
    const missingTopic = topicSink({ endpoint: `${emu.url}/no-such-topic/api/events`, key: TEST_KEY }, testContext());
    await missingTopic.open();
    await assert.rejects(missingTopic.write(one("m"), AbortSignal.timeout(10_000)), (e: SinkError) => !e.retryable && /404/.test(e.message));
    await missingTopic.close();
  });

  it("azure_eventgrid sink - a SAS token is sent as aeg-sas-token and checked; an expired one is refused for good", async () => {
    const tag = uniqueTag("sas");
    const topic = emu.topic(`sas-${tag}`, { schema: "cloudevents", keys: [TEST_KEY] });
    const sas = makeSasToken(topic.endpoint, TEST_KEY, new Date(Date.now() + 600_000));
    const sink = topicSink({ endpoint: topic.endpoint, sas_token: sas }, testContext());
    await sink.open();
    await sink.write(sampleEvents(1, tag)[0]!, AbortSignal.timeout(10_000));
    assert.equal(topic.publishes[0]!.auth, "sas");
    await sink.close();
    const old = topicSink({ endpoint: topic.endpoint, sas_token: makeSasToken(topic.endpoint, TEST_KEY, new Date(Date.now() - 1000)) }, testContext());
    await old.open();
    await assert.rejects(old.write(sampleEvents(1, `${tag}x`)[0]!, AbortSignal.timeout(10_000)), (e: SinkError) => !e.retryable && /expired/.test(e.message));
    await old.close();
  });

  it("azure_eventgrid sink - lint: one credential, no Entra over http, domain_topic only with the Event Grid schema, at most 1 MiB per request", () => {
    const lint = (cfg: Record<string, unknown>) => (eventGridSink.lint?.({ schema: "cloudevents", batch: { max_bytes: 1024 }, ...cfg } as never) ?? []).map((l) => `${l.level} ${l.path.join(".")}`);
    assert.deepEqual(lint({ endpoint: "https://t.example/api/events" }), ["error key"]);
    assert.deepEqual(lint({ endpoint: "https://t.example/api/events", key: "k", sas_token: "s" }), ["error sas_token"]);
    assert.deepEqual(lint({ endpoint: "http://127.0.0.1/api/events", credential: "default" }), ["error credential"]);
    assert.deepEqual(lint({ endpoint: "http://127.0.0.1/api/events", key: "k" }), ["warning endpoint"]);
    assert.deepEqual(lint({ endpoint: "https://t.example/api/events", key: "k", domain_topic: "{subject}" }), ["error domain_topic"]);
    assert.deepEqual(lint({ endpoint: "https://t.example/api/events", key: "k", batch: { max_bytes: 2 * 1024 * 1024 } }), ["error batch.max_bytes"]);
  });
});

describe("azure_eventgrid sink - credential: default over https", { timeout: 60_000 }, () => {
  let certs: TestCerts;
  let secure: Awaited<ReturnType<typeof startEventGridEmulator>>;
  let msi: Awaited<ReturnType<typeof startManagedIdentity>>;
  const saved: Record<string, string | undefined> = {};
  before(async () => {
    certs = makeTestCerts();
    secure = await startEventGridEmulator({ tls: certs.server });
    msi = await startManagedIdentity();
    for (const [k, v] of Object.entries(msi.env)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  after(async () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await secure.close();
    await msi.close();
    certs.cleanup();
  });

  it("azure_eventgrid sink - DefaultAzureCredential gets a token for https://eventgrid.azure.net and the topic and namespace accept it as Bearer", async () => {
    const topic = secure.topic("entra", { schema: "cloudevents", bearerTokens: [msi.token] });
    secure.namespaceAuth({ bearerTokens: [msi.token] });
    const nsTopic = secure.namespaceTopic("entra-ns");
    const sink = topicSink({ endpoint: topic.endpoint, credential: "default", tls: { ca: certs.ca.cert } }, testContext());
    const ns = nsSink({ endpoint: secure.url, topic: nsTopic.name, credential: "default", tls: { ca: certs.ca.cert } }, testContext());
    await sink.open();
    await ns.open();
    const [a, b] = sampleEvents(2, uniqueTag("entra"));
    await sink.write(a!, AbortSignal.timeout(15_000));
    await ns.write(b!, AbortSignal.timeout(15_000));
    assert.equal(topic.publishes[0]!.auth, "bearer");
    assert.equal(nsTopic.published.length, 1);
    assert.ok(msi.requests.length >= 1 && msi.requests.every((r) => r.resource === "https://eventgrid.azure.net"));
    await sink.close();
    await ns.close();
  });

  it("azure_eventgrid sink - a certificate the sink does not trust fails transiently (TLS), never silently", async () => {
    const topic = secure.topic("untrusted", { schema: "cloudevents", keys: [TEST_KEY] });
    const sink = topicSink({ endpoint: topic.endpoint, key: TEST_KEY }, testContext());
    await sink.open();
    await assert.rejects(sink.write(sampleEvents(1, "tls")[0]!, AbortSignal.timeout(10_000)), (e: SinkError) => e.retryable && /certificate|self.signed|issuer/i.test(e.message));
    await sink.close();
  });
});
