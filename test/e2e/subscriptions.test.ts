/**
 * The Subscriptions API end to end, driven only as a consumer would: over the API of the built
 * daemon, with subscribers on private brokers and loopback webhooks. Events enter through the
 * route's own `http` source.
 *
 * - an HTTP subscription with a CESQL filter: the handshake comes first, matching events arrive
 *   with every attribute and data byte, others do not;
 * - MQTT 3.1.1, MQTT 5 and NATS subscriptions on the same stream all receive;
 * - a dead webhook (grants the handshake, never answers) slows neither the others nor the route's
 *   configured sink;
 * - delete stops deliveries at once and counts what it aborted;
 * - a request without the token gets 401 and changes nothing;
 * - after a restart the subscriptions come back from the state file and deliveries resume.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { ApiClient, mqttReader, natsReader, postEvents, WebhookReceiver, withoutMarkers } from "../support/subscribers.js";
import { sleep, waitFor } from "../support/wait.js";

const INSTANCE = "subs-e2e";
const TOKEN = "api-token-9f2c";
const ACCESS_TOKEN = "subscriber-secret-7d41";
const MQTT_PASSWORD = "mqtt-pass-unused-3a1b";
let nats: BrokerHandle;
let mosq: BrokerHandle;
let daemon: Daemon;
let dir: string;
let admin: string;
let source: string;
let api: ApiClient;
const hook = new WebhookReceiver();
const dead = new WebhookReceiver();
const configured = new WebhookReceiver();
let ports: { admin: number; source: number; api: number };

function yaml(): string {
  return `
engine:
  instance_id: ${INSTANCE}
  admin: { listen: "127.0.0.1:${ports.admin}" }
  shutdown_timeout: 3s
  log: { level: warn }
sources:
  in: { type: http, listen: "127.0.0.1:${ports.source}", path: /events }
sinks:
  configured: { type: http, url: "${configured.url}/route" }
  dlq: { type: file, path: ${dir}/dead-letters.jsonl }
routes:
  - name: orders
    from: in
    to: [configured]
    dead_letter: dlq
subscriptions:
  listen: "127.0.0.1:${ports.api}"
  auth: { bearer: "${TOKEN}" }
  state_dir: ${dir}/state
  max_subscriptions: 10
  streams:
    orders:
      route: orders
      allowed_sinks: ["${hook.url}/", "${dead.url}/", "${mosq.url}", "${nats.url}"]
      max_in_flight: 4
      queue: { type: memory, max_bytes: 256KiB }
      retry: { initial: 100ms, max: 1s, max_elapsed: 30s }
      timeout: 60s
      dead_letter: dlq
`;
}

function event(id: string, type: string, extra: Record<string, string> = {}): CloudEvent {
  return {
    attributes: { specversion: "1.0", id, source: "https://shop.example.com/orders", type, datacontenttype: "application/json", ...extra },
    data: { kind: "bytes", bytes: Buffer.from(JSON.stringify({ id, n: id.length }), "utf8") },
  };
}

async function status(): Promise<any> {
  return (await fetch(`http://${admin}/status`)).json();
}

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://${admin}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(name + " ") || l.startsWith(name + "{") && l.split(" ")[0] === name);
  return line ? Number(line.split(" ").pop()) : 0;
}

function assertDelivered(got: readonly CloudEvent[], want: readonly CloudEvent[], what: string): void {
  const ids = byId(got);
  assert.equal(got.length, want.length, `${what}: ${got.length} events, expected ${want.length}`);
  for (const e of want) {
    const ev = ids.get(String(e.attributes["id"]));
    assert.ok(ev, `${what}: ${String(e.attributes["id"])} arrived`);
    assert.equal(ev.attributes["cebridgevia"], INSTANCE);
    assertSameEvent(withoutMarkers(ev), e, { stringly: true, what });
  }
}

async function startBridge(): Promise<void> {
  daemon = startDaemon(yaml(), { dir });
  await daemon.waitReady(admin, 30_000);
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "cebridge-subs-"));
  nats = await startNats({ jetstream: false });
  mosq = await startMosquitto();
  await Promise.all([hook.start(), dead.start(), configured.start()]);
  dead.hang = true;
  ports = { admin: await freePort(), source: await freePort(), api: await freePort() };
  admin = `127.0.0.1:${ports.admin}`;
  source = `http://127.0.0.1:${ports.source}/events`;
  api = new ApiClient(`http://127.0.0.1:${ports.api}`, TOKEN);
  await startBridge();
});

after(async () => {
  if (daemon) {
    const code = await daemon.stop("SIGTERM");
    if (code !== 0) process.stderr.write(daemon.stderr());
  }
  await Promise.all([hook.close(), dead.close(), configured.close()]);
  await nats?.close();
  await mosq?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("e2e subscriptions API", { timeout: 180_000 }, () => {
  const ids: Record<string, string> = {};
  const readers: { mqtt3?: Awaited<ReturnType<typeof mqttReader>>; mqtt5?: Awaited<ReturnType<typeof mqttReader>>; nats?: Awaited<ReturnType<typeof natsReader>> } = {};

  after(async () => {
    await readers.mqtt3?.client.endAsync();
    await readers.mqtt5?.client.endAsync();
    await readers.nats?.nc.close();
  });

  it("a request without the token (or with a wrong one) gets 401 and changes nothing", async () => {
    const body = { protocol: "HTTP", sink: `${hook.url}/x` };
    const anonymous = new ApiClient(api.base, undefined);
    const wrong = new ApiClient(api.base, "api-token-9f2d");
    for (const c of [anonymous, wrong]) {
      for (const [method, path, b] of [
        ["POST", "/streams/orders/subscriptions", body],
        ["GET", "/streams/orders/subscriptions", undefined],
        ["DELETE", "/streams/orders/subscriptions/x", undefined],
        ["OPTIONS", "/streams/orders/subscriptions", undefined],
        ["GET", "/nowhere", undefined],
      ] as const) {
        const r = await c.request(method, path, b);
        assert.equal(r.status, 401, `${method} ${path}`);
        assert.equal(r.json?.error, "CEB_UNAUTHORIZED");
        assert.match(r.headers.get("www-authenticate") ?? "", /^Bearer/);
      }
    }
    const r = await api.request("POST", "/streams/orders/subscriptions", body, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` });
    assert.equal(r.status, 401, "the token only counts as a bearer token");
    assert.deepEqual((await api.request("GET", "/streams/orders/subscriptions")).json, []);
    assert.equal(existsSync(join(dir, "state", "subscriptions.json")), false, "no state was written");
    assert.equal(hook.requests.length, 0, "nobody was contacted");
  });

  it("an HTTP subscription with a CESQL filter: the handshake comes first, matching events arrive and others do not", async () => {
    const created = await api.create("orders", {
      protocol: "HTTP",
      sink: `${hook.url}/orders?tenant=7`,
      filters: [{ cesql: "type LIKE 'com.example.order.%' AND EXISTS subject" }],
      sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: ACCESS_TOKEN },
    });
    ids["http"] = created.id;
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.equal(created.location, `/streams/orders/subscriptions/${created.id}`);
    assert.deepEqual(created.json, {
      id: created.id,
      filters: [{ cesql: "type LIKE 'com.example.order.%' AND EXISTS subject" }],
      sink: `${hook.url}/orders?tenant=7`,
      protocol: "HTTP",
      protocolsettings: { method: "POST", mode: "binary" },
    });
    // The handshake happened before the 201.
    assert.equal(hook.handshakes.length, 1);
    assert.equal(hook.handshakes[0]!.path, "/orders?tenant=7");
    assert.equal(hook.handshakes[0]!.headers["webhook-request-origin"], INSTANCE);
    assert.equal(hook.handshakes[0]!.headers["authorization"], undefined, "no credentials before consent");

    const matching = [event("m1", "com.example.order.created", { subject: "o/1" }), event("m2", "com.example.order.paid", { subject: "o/2" }), ...richEvents("m3").slice(0, 1)];
    const others = [event("x1", "com.example.invoice.created", { subject: "i/1" }), event("x2", "com.example.order.created"), event("x3", "com.other.order.created", { subject: "z" })];
    const statuses = await postEvents(source, [...others.slice(0, 1), ...matching.slice(0, 2), ...others.slice(1), ...matching.slice(2)]);
    assert.deepEqual(statuses, [204, 204, 204, 204, 204, 204]);
    await waitFor(() => hook.events.length >= 3 && configured.events.length >= 6, 20_000, () => `hook ${hook.events.length}/3, configured ${configured.events.length}/6\n${daemon.stderr()}`);
    await sleep(300);
    assertDelivered(hook.events, matching, "webhook subscriber");
    const posts = hook.requests.filter((r) => r.method === "POST");
    assert.ok(posts.every((p) => p.headers["webhook-request-origin"] === INSTANCE && p.headers["authorization"] === `Bearer ${ACCESS_TOKEN}` && p.path === "/orders?tenant=7"));
    assert.equal(configured.events.length, 6, "the route's own sink got everything");
    hook.events.length = 0;
    configured.events.length = 0;
  });

  it("MQTT 3.1.1, MQTT 5 and NATS subscriptions on the same stream each receive every event", async () => {
    readers.mqtt3 = await mqttReader(mosq.url, "subs/v3/#", "subs-e2e-reader-3");
    readers.mqtt5 = await mqttReader(mosq.url, "subs/v5/#", "subs-e2e-reader-5");
    readers.nats = await natsReader(nats.url, "subs.orders.>");
    ids["mqtt3"] = (await api.create("orders", { protocol: "MQTT3", sink: mosq.url, protocolsettings: { topicname: "subs/v3/orders", qos: 1 } })).id;
    ids["mqtt5"] = (
      await api.create("orders", { protocol: "MQTT5", sink: mosq.url, protocolSettings: { topicName: "subs/v5/orders" }, sinkCredential: { credentialType: "PLAIN", identifier: "subscriber", secret: MQTT_PASSWORD } })
    ).id;
    ids["nats"] = (await api.create("orders", { protocol: "NATS", sink: nats.url, protocolsettings: { subject: "subs.orders.all" } })).id;
    const evs = [...richEvents("par"), ...Array.from({ length: 15 }, (_, i) => event(`par-${i}`, "com.example.order.created", { subject: `o/${i}` }))];
    assert.ok((await postEvents(source, evs)).every((s) => s === 204));
    const all = () => [readers.mqtt3!.events.length, readers.mqtt5!.events.length, readers.nats!.events.length];
    await waitFor(() => all().every((n) => n >= evs.length), 30_000, () => `received ${all().join("/")} of ${evs.length}\n${daemon.stderr()}`);
    assertDelivered(readers.mqtt3.events, evs, "MQTT 3.1.1");
    assertDelivered(readers.mqtt5.events, evs, "MQTT 5");
    assertDelivered(readers.nats.events, evs, "NATS");
    assert.ok(readers.mqtt3.topics.every((t) => t === "subs/v3/orders"));
    // A QoS 1 subscriber can hold an event before the sink has its PUBACK, and only then does the
    // subscription count it: wait for the counters rather than read them once.
    const counted = async () => {
      const st = await status();
      return ["mqtt3", "mqtt5", "nats"].map((k) => st.subscriptions.find((x: { id: string }) => x.id === ids[k]) as { state: string; counters: { delivered: number } });
    };
    let last: number[] = [];
    await waitFor(
      async () => (last = (await counted()).map((s) => s.counters.delivered)).every((n) => n >= evs.length),
      10_000,
      () => `delivered counters ${last.join("/")} of ${evs.length}`,
    );
    for (const [i, s] of (await counted()).entries()) {
      const k = ["mqtt3", "mqtt5", "nats"][i]!;
      assert.equal(s.state, "active", k);
      assert.equal(s.counters.delivered, evs.length, k);
    }
    for (const r of [readers.mqtt3, readers.mqtt5, readers.nats]) r.events.length = 0;
    configured.events.length = 0;
  });

  it("a dead webhook subscriber slows neither the other subscribers nor the route's configured sink", async () => {
    ids["dead"] = (await api.create("orders", { protocol: "HTTP", sink: `${dead.url}/hook` })).id;
    assert.equal(dead.handshakes.length, 1);
    const evs = Array.from({ length: 60 }, (_, i) => event(`dead-${i}`, "com.example.order.created", { subject: `d/${i}` }));
    // Each POST is answered only once every target of the route confirmed: a stream that waited
    // for the dead subscriber (60 s timeout, 4 in flight) would leave these hanging.
    const statuses = await Promise.all(evs.map((e) => postEvents(source, [e]).then((s) => s[0])));
    assert.ok(statuses.every((s) => s === 204), `statuses ${[...new Set(statuses)].join(",")}`);
    await waitFor(
      () => configured.events.length >= 60 && readers.nats!.events.length >= 60 && readers.mqtt5!.events.length >= 60 && hook.events.length >= 60,
      30_000,
      () => `configured ${configured.events.length}, nats ${readers.nats!.events.length}, mqtt5 ${readers.mqtt5!.events.length}, hook ${hook.events.length}`,
    );
    assertDelivered(readers.nats!.events, evs, "NATS beside a dead webhook");
    const st = await status();
    const d = st.subscriptions.find((x: { id: string }) => x.id === ids["dead"]);
    assert.equal(d.state, "active");
    assert.equal(d.in_flight, 4, "the dead subscriber holds its whole window");
    assert.equal(d.counters.delivered, 0);
    assert.equal(d.queued + d.in_flight + d.counters.dropped, 60, `queued ${d.queued}, in flight ${d.in_flight}, dropped ${d.counters.dropped}`);
    assert.equal(dead.requests.filter((r) => r.method === "POST").length, 4, "no more than its window reached the dead subscriber");
    for (const r of [readers.mqtt3!, readers.mqtt5!, readers.nats!]) r.events.length = 0;
    hook.events.length = 0;
    configured.events.length = 0;
  });

  it("delete answers with the subscription, stops deliveries at once, and counts what it aborted", async () => {
    const before = await status();
    const d = before.subscriptions.find((x: { id: string }) => x.id === ids["dead"]);
    const droppedBefore = await metric('cebridge_subscription_dropped_total{stream="orders",reason="unsubscribed"}');
    const del = await api.request("DELETE", `/streams/orders/subscriptions/${ids["dead"]}`);
    assert.equal(del.status, 200);
    assert.equal(del.json.id, ids["dead"]);
    assert.equal(del.json.sink, `${dead.url}/hook`);
    const droppedAfter = await metric('cebridge_subscription_dropped_total{stream="orders",reason="unsubscribed"}');
    await waitFor(async () => (await metric('cebridge_subscription_dropped_total{stream="orders",reason="unsubscribed"}')) >= droppedBefore + d.queued + d.in_flight, 10_000, "aborted events counted");
    assert.ok(droppedAfter >= droppedBefore);

    const delNats = await api.request("DELETE", `/streams/orders/subscriptions/${ids["nats"]}`);
    assert.equal(delNats.status, 200);
    assert.equal((await api.request("GET", `/streams/orders/subscriptions/${ids["nats"]}`)).status, 404);
    assert.equal((await api.request("DELETE", `/streams/orders/subscriptions/${ids["nats"]}`)).status, 404);
    const evs = Array.from({ length: 10 }, (_, i) => event(`after-del-${i}`, "com.example.order.created", { subject: `a/${i}` }));
    assert.ok((await postEvents(source, evs)).every((s) => s === 204));
    await waitFor(() => readers.mqtt5!.events.length >= 10 && readers.mqtt3!.events.length >= 10, 20_000, "MQTT subscribers still receive");
    await sleep(300);
    assert.equal(readers.nats!.events.length, 0, "the deleted NATS subscription got nothing");
    assert.equal(dead.requests.filter((r) => r.method === "POST").length, 4, "the deleted webhook got nothing more");
    const list = (await api.request("GET", "/streams/orders/subscriptions")).json as { id: string }[];
    assert.deepEqual(list.map((s) => s.id).sort(), [ids["http"], ids["mqtt3"], ids["mqtt5"]].sort());
    const st = await status();
    assert.ok(!st.subscriptions.some((s: { id: string }) => s.id === ids["nats"] || s.id === ids["dead"]));
    for (const r of [readers.mqtt3!, readers.mqtt5!]) r.events.length = 0;
    hook.events.length = 0;
  });

  it("no credential appears in a response, /status, /metrics, the logs or a dead letter", async () => {
    const got = await api.request("GET", `/streams/orders/subscriptions/${ids["http"]}`);
    const texts = [got.text, (await api.request("GET", "/streams/orders/subscriptions")).text, JSON.stringify(await status()), await (await fetch(`http://${admin}/metrics`)).text(), daemon.stderr()];
    const dl = join(dir, "dead-letters.jsonl");
    if (existsSync(dl)) texts.push(readFileSync(dl, "utf8"));
    for (const t of texts) {
      assert.ok(!t.includes(ACCESS_TOKEN), "subscriber's access token leaked");
      assert.ok(!t.includes(TOKEN), "API token leaked");
      assert.ok(!t.includes(MQTT_PASSWORD), "MQTT password leaked");
    }
    assert.equal(got.json.sinkcredential, undefined);
  });

  it("after a restart the subscriptions come back from the state file and deliveries resume", async () => {
    const listBefore = (await api.request("GET", "/streams/orders/subscriptions")).json;
    assert.equal(await daemon.stop("SIGTERM"), 0, daemon.stderr());
    const handshakesBefore = hook.handshakes.length;
    await startBridge();
    const listAfter = (await api.request("GET", "/streams/orders/subscriptions")).json;
    assert.deepEqual(listAfter, listBefore);
    const evs = Array.from({ length: 8 }, (_, i) => event(`restart-${i}`, "com.example.order.shipped", { subject: `r/${i}` }));
    assert.ok((await postEvents(source, evs)).every((s) => s === 204));
    await waitFor(
      () => hook.events.length >= 8 && readers.mqtt3!.events.length >= 8 && readers.mqtt5!.events.length >= 8,
      30_000,
      () => `hook ${hook.events.length}, mqtt3 ${readers.mqtt3!.events.length}, mqtt5 ${readers.mqtt5!.events.length}\n${daemon.stderr()}`,
    );
    assert.equal(hook.handshakes.length, handshakesBefore + 1, "the restored webhook asked for consent again before delivering");
    assertDelivered(hook.events, evs, "webhook after restart");
    assertDelivered(readers.mqtt3!.events, evs, "MQTT 3.1.1 after restart");
    assertDelivered(readers.mqtt5!.events, evs, "MQTT 5 after restart");
    const st = await status();
    assert.deepEqual(st.subscriptions.map((s: { id: string }) => s.id).sort(), [ids["http"], ids["mqtt3"], ids["mqtt5"]].sort());
  });
});
