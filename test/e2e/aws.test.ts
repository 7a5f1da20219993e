/**
 * End to end through the built daemon, the AWS emulator and private brokers:
 *   HTTP → aws_eventbridge sink → bus → rule → SQS → aws_eventbridge source → NATS
 *   NATS → aws_sqs sink → SQS → aws_sqs source → MQTT 5
 * A CloudEvent keeps every attribute, extension and data value across EventBridge; an HTTP client's
 * W3C trace (tracing off) rides EventBridge TraceHeader → the rule's AWSTraceHeader → the NATS
 * `traceparent` header, and the extension added at the first hop arrives unchanged; per-entry
 * throttling is retried for the throttled events alone, each accepted once; a permanent entry error
 * is dead-lettered with AWS's code; keys read through ${file:} and the role's temporary keys never
 * appear in the logs, /status or the dead letters; the SDK's Node version warning is silenced.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectAsync, type MqttClient } from "mqtt";
import { decodeMqttMessage, type UserProperties } from "../../connectors/mqtt/mapping.js";
import { decodeNatsMessage, encodeNatsMessage } from "../../connectors/nats/mapping.js";
import { headerEntries } from "../../connectors/nats/inbound.js";
import { serializeStructured, type CloudEvent, type TraceContext } from "../../src/cloudevents/index.js";
import { startAwsEmulator, type AwsEmulator } from "../emulators/aws/index.js";
import { eventBridgeClient, ruleToQueue } from "../support/aws.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { readJsonl } from "../support/counting.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { assertSameEvent, byId, richEvents, sampleEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const INSTANCE = "e2e-aws";
const KEY_ID = "AKIDE2EBRIDGE";
const SECRET = "e2e/Secret+Key=MustNotLeak";
const ROLE = "arn:aws:iam::000000000000:role/cebridge-e2e";
let aws: AwsEmulator;
let nats: BrokerHandle;
let mosq: BrokerHandle;
let nc: NatsConnection;
let mqtt: MqttClient;
let daemon: Daemon;
let admin: string;
let httpPort: number;
let dir: string;
const natsOut: CloudEvent[] = [];
/** The transport trace context of each NATS message (its W3C headers), by event id. */
const natsTraces = new Map<string, TraceContext | undefined>();
const mqttOut: CloudEvent[] = [];

function yaml(): string {
  const creds = `credentials: { access_key_id: "${KEY_ID}", secret_access_key: "\${file:${join(dir, "aws-secret")}}" }`;
  const common = `endpoint: "${aws.url}", region: ${aws.region}, ${creds}`;
  return `
engine:
  instance_id: ${INSTANCE}
  admin: { listen: "${admin}" }
  shutdown_timeout: 5s
  log: { level: debug }
sources:
  hooks: { type: http, listen: "127.0.0.1:${httpPort}", path: /events }
  bus_queue: { type: aws_eventbridge, queue_url: "${aws.url}/${aws.accountId}/eb-target", ${common}, role_arn: "${ROLE}", sts_endpoint: "${aws.url}", visibility_timeout: 5s }
  nats_in: { type: nats, servers: ["${nats.url}"], subject: "e2e.aws.in.>" }
  sqs_in: { type: aws_sqs, queue_url: "${aws.url}/${aws.accountId}/plain", ${common}, visibility_timeout: 5s }
sinks:
  bus: { type: aws_eventbridge, event_bus: orders, ${common} }
  nats_out: { type: nats, servers: ["${nats.url}"], subject: "e2e.aws.out.{type}" }
  sqs_out: { type: aws_sqs, queue_url: "${aws.url}/${aws.accountId}/plain", ${common} }
  mqtt_out: { type: mqtt, url: "${mosq.url}", topic: "e2e/aws/{type}" }
  dead: { type: file, path: "${join(dir, "dead.jsonl")}" }
routes:
  - { name: http-to-bus, from: hooks, to: [bus], dead_letter: dead }
  # One daemon plays both bridges: the second hop must not take the first hop's marker for a loop.
  - { name: bus-to-nats, from: bus_queue, to: [nats_out], loop_prevention: false, dead_letter: dead }
  - { name: nats-to-sqs, from: nats_in, to: [sqs_out], dead_letter: dead }
  - { name: sqs-to-mqtt, from: sqs_in, to: [mqtt_out], loop_prevention: false, dead_letter: dead }
`;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), "cebridge-e2e-aws-"));
  writeFileSync(join(dir, "aws-secret"), `${SECRET}\n`);
  aws = await startAwsEmulator({ credentials: { [KEY_ID]: SECRET }, roles: [ROLE], maxEntryBytes: 256 * 1024 });
  aws.events.buses.add("orders");
  const target = aws.sqs.createQueue("eb-target", { VisibilityTimeout: "5" });
  aws.sqs.createQueue("plain");
  const eb = eventBridgeClient({ endpoint: aws.url, region: aws.region, credentials: { accessKeyId: KEY_ID, secretAccessKey: SECRET } });
  await ruleToQueue(eb, "all-orders", target.arn, { bus: "orders" });
  eb.destroy();
  nats = await startNats();
  mosq = await startMosquitto();
  nc = await connect({ servers: nats.url });
  const sub = nc.subscribe("e2e.aws.out.>");
  void (async () => {
    for await (const m of sub) {
      const d = decodeNatsMessage({ subject: m.subject, headers: headerEntries(m.headers), payload: m.data }, { plainSource: "x", plainType: "x", server: "x:1", now: () => new Date(), newId: () => "n" });
      assert.equal(d.invalid, undefined, d.invalid?.message);
      natsTraces.set(String(d.event.attributes["id"]), d.trace);
      natsOut.push(d.event);
    }
  })();
  mqtt = await connectAsync(mosq.url, { protocolVersion: 5, clientId: "e2e-aws-reader" });
  mqtt.on("message", (topic, payload, packet) => {
    const d = decodeMqttMessage(
      { topic, payload, protocolVersion: 5, contentType: packet.properties?.contentType, userProperties: packet.properties?.userProperties as UserProperties | undefined },
      { source: "mqtt://x:1", now: () => new Date(), newId: () => "n" },
    );
    assert.equal(d.invalid, undefined, d.invalid?.message);
    mqttOut.push(d.event);
  });
  await mqtt.subscribeAsync("e2e/aws/#", { qos: 1 });
  admin = `127.0.0.1:${await freePort()}`;
  httpPort = await freePort();
  daemon = startDaemon(yaml());
  await daemon.waitReady(admin, 30_000);
});

after(async () => {
  if (daemon) {
    const code = await daemon.stop("SIGTERM");
    if (code !== 0) process.stderr.write(daemon.stderr().slice(-4000));
  }
  await mqtt?.endAsync();
  await nc?.close();
  await nats?.close();
  await mosq?.close();
  await aws?.close();
});

function postStructured(ev: CloudEvent): Promise<Response> {
  return fetch(`http://127.0.0.1:${httpPort}/events`, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body: serializeStructured(ev) });
}

/** The event as the first hop's sink wrote it: with the daemon's loop markers. */
function withMarkers(ev: CloudEvent): CloudEvent {
  return { attributes: { ...ev.attributes, cebridgevia: INSTANCE, cebridgehops: 1 }, ...(ev.data ? { data: ev.data } : {}) };
}

describe("e2e aws", { timeout: 120_000 }, () => {
  it("e2e aws - HTTP → EventBridge → rule → SQS → aws_eventbridge source → NATS: every attribute, extension and data value unchanged", async () => {
    const evs = [...richEvents("eb"), ...sampleEvents(20, "eb")];
    const answers = await Promise.all(evs.map((e) => postStructured(e)));
    assert.deepEqual(answers.map((r) => r.status).filter((s) => s >= 300), [], "every POST answered 2xx once delivered to EventBridge");
    await waitFor(() => natsOut.filter((e) => String(e.attributes["id"]).startsWith("eb-")).length >= evs.length, 30_000, () => `${natsOut.length} on NATS\n${daemon.stderr().slice(-3000)}`);
    const got = byId(natsOut);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]));
      assert.ok(ev, `event ${String(e.attributes["id"])} arrived`);
      assertSameEvent(ev, withMarkers(e));
      assert.deepEqual(ev.attributes, withMarkers(e).attributes, "JSON types of the attributes kept");
    }
    assert.ok(aws.sts.assumed.some((a) => a.roleArn === ROLE), "the EventBridge source assumed its role");
  });

  it("e2e aws - tracing off: an HTTP client's trace rides TraceHeader and the rule's AWSTraceHeader to the NATS traceparent header; the extension added at the first hop arrives unchanged", async () => {
    const tp = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
    const res = await fetch(`http://127.0.0.1:${httpPort}/events`, {
      method: "POST",
      headers: { "ce-specversion": "1.0", "ce-id": "eb-traced", "ce-source": "/client", "ce-type": "demo.traced", "content-type": "application/json", traceparent: tp, tracestate: "vendor=1" },
      body: '{"hello":"x-ray"}',
    });
    assert.equal(res.status, 204, await res.text());
    const entry = aws.events.putEventsCalls.flat().find((e) => String(e["Detail"]).includes('"eb-traced"'));
    assert.equal(entry?.["TraceHeader"], "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", "the forwarded hop, in X-Ray form");
    await waitFor(() => natsOut.some((e) => e.attributes["id"] === "eb-traced"), 30_000, () => daemon.stderr().slice(-3000));
    const ev = natsOut.find((e) => e.attributes["id"] === "eb-traced")!;
    assert.equal(ev.attributes["traceparent"], tp, "the extension, added at the HTTP hop, carried in Detail");
    assert.equal(ev.attributes["tracestate"], "vendor=1");
    assert.deepEqual(natsTraces.get("eb-traced"), { traceparent: tp }, "the W3C header on NATS: the same context, through X-Ray (which has no tracestate)");
  });

  it("e2e aws - NATS → aws_sqs sink → SQS → aws_sqs source → MQTT 5: every attribute and data byte", async () => {
    const evs = [...richEvents("sq"), ...sampleEvents(20, "sq")];
    for (const e of evs) {
      const out = encodeNatsMessage(e, "structured");
      nc.publish("e2e.aws.in.x", out.payload, { headers: undefined });
    }
    await nc.flush();
    await waitFor(() => mqttOut.filter((e) => String(e.attributes["id"]).startsWith("sq-")).length >= evs.length, 30_000, () => `${mqttOut.length} on MQTT\n${daemon.stderr().slice(-3000)}`);
    const got = byId(mqttOut);
    for (const e of evs) {
      const ev = got.get(String(e.attributes["id"]));
      assert.ok(ev, `event ${String(e.attributes["id"])} arrived`);
      assertSameEvent(ev, withMarkers(e), { stringly: true });
    }
  });

  it("e2e aws - throttled PutEvents entries are resent alone and every event is accepted exactly once", async () => {
    const evs = sampleEvents(20, "thr");
    const throttled = new Set(evs.filter((_, i) => i % 4 === 1).map((e) => String(e.attributes["id"])));
    const hit = new Set<string>();
    aws.faults.entries((op, entry) => {
      if (op !== "PutEvents") return undefined;
      const id = String((JSON.parse(String(entry["Detail"])) as { id: string }).id);
      if (!throttled.has(id) || hit.has(id)) return undefined;
      hit.add(id);
      return { code: "ThrottlingException", message: "Rate exceeded" };
    });
    const callsBefore = aws.events.putEventsCalls.length;
    try {
      const answers = await Promise.all(evs.map((e) => postStructured(e)));
      assert.deepEqual(answers.map((r) => r.status).filter((s) => s >= 300), []);
    } finally {
      aws.faults.clear();
    }
    assert.deepEqual([...hit].sort(), [...throttled].sort(), "each throttled event was refused once");
    const ids = (entries: readonly Record<string, unknown>[]) => entries.map((e) => String((JSON.parse(String(e["Detail"])) as { id: string }).id));
    const sentCount = new Map<string, number>();
    for (const call of aws.events.putEventsCalls.slice(callsBefore)) for (const id of ids(call)) sentCount.set(id, (sentCount.get(id) ?? 0) + 1);
    for (const e of evs) {
      const id = String(e.attributes["id"]);
      assert.equal(sentCount.get(id), throttled.has(id) ? 2 : 1, `PutEvents carried ${id}`);
    }
    const accepted = aws.events.accepted.map((env) => String(env.detail["id"])).filter((id) => id.startsWith("thr-"));
    assert.deepEqual(accepted.sort(), evs.map((e) => String(e.attributes["id"])).sort(), "each accepted once");
  });

  it("e2e aws - a permanent entry error is dead-lettered with AWS's code and message", async () => {
    const bad: CloudEvent = { attributes: { specversion: "1.0", id: "dl-1", source: "aws.ec2", type: "EC2 Instance State-change Notification" }, data: { kind: "json", value: { state: "x" } } };
    const res = await postStructured(bad);
    assert.equal(res.status < 300, true, `answered ${res.status}: dead-lettered counts as settled`);
    const dead = await (async () => {
      let found: Record<string, unknown> | undefined;
      await waitFor(() => (found = readJsonl(join(dir, "dead.jsonl")).find((d) => d["id"] === "dl-1")) !== undefined, 10_000);
      return found!;
    })();
    assert.equal(dead["cebridgeerror"], "CEB_SINK_PERMANENT");
    assert.equal(dead["cebridgesink"], "bus");
    assert.equal(dead["cebridgeroute"], "http-to-bus");
    assert.equal(dead["cebridgereason"], "EventBridge refused the entry: NotAuthorizedForSourceException: Not authorized for the source aws.ec2.");
    assert.equal(dead["source"], "aws.ec2");
  });

  it("e2e aws - no key, secret or session token in the logs, /status or dead letters; no SDK Node version warning", async () => {
    const status = await (await fetch(`http://${admin}/status`)).text();
    const metrics = await (await fetch(`http://${admin}/metrics`)).text();
    const dead = readJsonl(join(dir, "dead.jsonl")).map((d) => JSON.stringify(d)).join("\n");
    const logs = daemon.stderr();
    const secrets = [SECRET, ...aws.sts.assumed.flatMap((a) => [a.secretAccessKey, a.sessionToken])];
    assert.ok(aws.sts.assumed.length > 0);
    for (const [what, text] of [["logs", logs], ["/status", status], ["/metrics", metrics], ["dead letters", dead]] as const) {
      for (const s of secrets) assert.ok(!text.includes(s), `a secret appears in ${what}`);
    }
    assert.ok(!logs.includes("NodeVersionSupportWarning"), "the SDK's Node version warning is silenced");
    assert.ok(logs.length > 0, "the daemon logged at debug level");
  });
});
