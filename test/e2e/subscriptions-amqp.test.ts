/**
 * An AMQP 1.0 subscription through the built daemon, on a private RabbitMQ: created over the API
 * (the address in protocolsettings, or in the sink's path), with a PLAIN credential; matching events
 * arrive in the queue with every attribute and data byte, others do not; delete stops them.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { amqpClient, type AmqpTestClient } from "../support/amqp-client.js";
import { declareQueue, startRabbitMq, type RabbitHandle } from "../support/rabbitmq.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { ApiClient, postEvents, withoutMarkers } from "../support/subscribers.js";
import { sleep, waitFor } from "../support/wait.js";

const TOKEN = "amqp-subs";

describe("e2e subscriptions - AMQP", { timeout: 180_000 }, () => {
  let rabbit: RabbitHandle;
  let client: AmqpTestClient;
  let daemon: Daemon;
  let dir: string;
  let api: ApiClient;
  let source: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cebridge-subs-amqp-"));
    rabbit = await startRabbitMq();
    client = await amqpClient(rabbit.url);
    await declareQueue(rabbit.url, "subs-a");
    await declareQueue(rabbit.url, "subs-b");
    const p = { admin: await freePort(), source: await freePort(), api: await freePort() };
    source = `http://127.0.0.1:${p.source}/e`;
    api = new ApiClient(`http://127.0.0.1:${p.api}`, TOKEN);
    daemon = startDaemon(
      `
engine:
  instance_id: amqp-subs
  admin: { listen: "127.0.0.1:${p.admin}" }
  log: { level: warn }
sources:
  in: { type: http, listen: "127.0.0.1:${p.source}", path: /e }
sinks:
  out: { type: file, path: ${dir}/out.jsonl }
  dlq: { type: file, path: ${dir}/dlq.jsonl }
routes:
  - { name: r, from: in, to: [out], dead_letter: dlq }
subscriptions:
  listen: "127.0.0.1:${p.api}"
  auth: { bearer: "${TOKEN}" }
  state_dir: ${dir}/state
  streams:
    orders: { route: r, protocols: [AMQP], allowed_sinks: ["${rabbit.url}"], dead_letter: dlq }
`,
      { dir },
    );
    await daemon.waitReady(`127.0.0.1:${p.admin}`, 30_000);
  });

  after(async () => {
    await daemon?.stop("SIGTERM");
    await client?.close();
    await rabbit?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("matching events arrive on both AMQP subscriptions with every attribute and data byte; delete stops them", async () => {
    const a = await api.create("orders", {
      protocol: "AMQP",
      sink: rabbit.url,
      types: ["com.example.order.created", "com.example.order.created.ext", ...richEvents("amqp").map((e) => String(e.attributes["type"]))],
      protocolsettings: { address: "/amq/queue/subs-a" },
      sinkcredential: { credentialtype: "PLAIN", identifier: "guest", secret: "guest" },
    });
    assert.deepEqual(a.json.protocolsettings, { address: "/amq/queue/subs-a", sendersettlementmode: "unsettled", mode: "binary" });
    const b = await api.create("orders", {
      protocol: "AMQP",
      sink: `${rabbit.url}/amq/queue/subs-b`,
      filters: [{ sql: "type = 'com.example.order.created'" }],
      protocolSettings: { mode: "structured" },
      sinkCredential: { credentialType: "PLAIN", identifier: "guest", secret: "guest" },
    });
    const readerA = await client.reader("/amq/queue/subs-a");
    const readerB = await client.reader("/amq/queue/subs-b");
    const order = (id: string): CloudEvent => ({ attributes: { specversion: "1.0", id, source: "urn:shop", type: "com.example.order.created" }, data: { kind: "bytes", bytes: Buffer.from(`{"id":"${id}"}`) } });
    const evs = [...richEvents("amqp"), order("o-1"), order("o-2")];
    const other: CloudEvent = { attributes: { specversion: "1.0", id: "x-1", source: "urn:shop", type: "com.example.invoice" } };
    assert.ok((await postEvents(source, [...evs, other])).every((s) => s === 204));
    await waitFor(() => readerA.events.length >= evs.length && readerB.events.length >= 3, 30_000, () => `a ${readerA.events.length}/${evs.length}, b ${readerB.events.length}/3\n${daemon.stderr()}`);
    await sleep(300);
    assert.equal(readerA.events.length, evs.length);
    const got = byId(readerA.events);
    for (const e of evs) assertSameEvent(withoutMarkers(got.get(String(e.attributes["id"]))!), e, { stringly: true });
    // richEvents' first event is a com.example.order.created too.
    assert.deepEqual(readerB.events.map((e) => e.attributes["id"]).sort(), ["amqp-ext", "o-1", "o-2"]);
    assert.ok(readerB.raw.every((m) => String(m.content_type ?? "").startsWith("application/cloudevents+json")), "structured mode");

    assert.equal((await api.request("DELETE", `/streams/orders/subscriptions/${a.id}`)).status, 200);
    assert.ok((await postEvents(source, [order("o-3")])).every((s) => s === 204));
    await waitFor(() => readerB.events.length >= 4, 20_000, "b still receives");
    await sleep(300);
    assert.equal(readerA.events.length, evs.length, "nothing more after the delete");
    assert.ok(!daemon.stderr().includes('"guest"'), "no credential in the logs");
    await readerA.close();
    await readerB.close();
    assert.equal((await api.request("DELETE", `/streams/orders/subscriptions/${b.id}`)).status, 200);
  });
});
