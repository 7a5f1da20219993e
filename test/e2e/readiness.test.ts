/**
 * Readiness of the built daemon while its brokers die and come back. Two routes:
 *   HTTP source `web`      → core NATS sink `nats_out`
 *   JetStream source `js_in` → MQTT sink `mqtt_out`
 * `/readyz` must be 200 once everything is connected, turn 503 within DOWN_MS of a broker being
 * killed (with `/status` showing the affected components `up: false` and
 * `cebridge_connector_up{component="…"} 0`), and return to 200 / `1` once the broker is back; the
 * routes then carry events again.
 *
 * A second daemon has a NATS sink whose token the server refuses: it must stay not ready, say why in
 * its log, and never show the token.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { connectAsync, type IPublishPacket } from "mqtt";
import { decodeMqttMessage, type UserProperties } from "../../connectors/mqtt/mapping.js";
import { decodeNatsMessage } from "../../connectors/nats/mapping.js";
import { headerEntries } from "../../connectors/nats/inbound.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { serializeStructured } from "../../src/cloudevents/json-format.js";
import { startMosquitto, startNats, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { startNatsWithConfig, type SecureBrokerHandle } from "../support/secure-brokers.js";
import { sampleEvents } from "../support/events.js";
import { freePort } from "../support/ports.js";
import { sleep, withTimeout } from "../support/wait.js";

/** A killed broker must show in /readyz, /status and /metrics within this. */
const DOWN_MS = 5000;
/** A restarted broker must be reconnected within this (nats.js waits ~1–1.5 s between attempts). */
const UP_MS = 10_000;
const STEP_MS = 10_000;

let nats: BrokerHandle;
let mosq: BrokerHandle;
let daemon: Daemon;
let admin: string;
let httpPort: number;

function yaml(): string {
  return `
engine:
  instance_id: readiness-e2e
  admin: { listen: "${admin}" }
  shutdown_timeout: 2s
  log: { level: info }
sources:
  web:
    type: http
    listen: "127.0.0.1:${httpPort}"
    path: /events
  js_in:
    type: nats_jetstream
    servers: ["${nats.url}"]
    stream: READY_IN
    consumer: bridge
    create: true
    subjects: ["ready.js.>"]
    ack_wait: 5s
sinks:
  nats_out:
    type: nats
    servers: ["${nats.url}"]
    subject: "ready.out.{subject}"
  mqtt_out:
    type: mqtt
    url: "${mosq.url}"
    topic: "ready/out/{subject}"
routes:
  - name: http-to-nats
    from: web
    to: [nats_out]
    retry: { initial: 100ms, max: 1s, max_elapsed: 5s }
  - name: jetstream-to-mqtt
    from: js_in
    to: [mqtt_out]
`;
}

// ---------------------------------------------------------------------------------------------
// Admin endpoints

interface Snapshot {
  readyz: number;
  down: string[];
  /** `up` of each component on /status, by `kind:id`. */
  status: Record<string, boolean>;
  /** `cebridge_connector_up` by component label. */
  metric: Record<string, number>;
}

async function snapshot(): Promise<Snapshot> {
  const [r, s, m] = await Promise.all([
    fetch(`http://${admin}/readyz`, { signal: AbortSignal.timeout(2000) }),
    fetch(`http://${admin}/status`, { signal: AbortSignal.timeout(2000) }),
    fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(2000) }),
  ]);
  const readyBody = (await r.json()) as { ready: boolean; down?: string[] };
  const statusBody = (await s.json()) as { components: { id: string; kind: string; up: boolean }[] };
  const text = await m.text();
  const metric: Record<string, number> = {};
  for (const match of text.matchAll(/^cebridge_connector_up\{component="([^"]+)"\} (\S+)$/gm)) metric[match[1]!] = Number(match[2]);
  return {
    readyz: r.status,
    down: readyBody.down ?? [],
    status: Object.fromEntries(statusBody.components.map((c) => [`${c.kind}:${c.id}`, c.up])),
    metric,
  };
}

/** Polls the admin endpoints until `ok` holds; fails after `timeoutMs` with the last snapshot. */
async function waitSnapshot(what: string, ok: (s: Snapshot) => boolean, timeoutMs: number): Promise<Snapshot> {
  const started = Date.now();
  let last: Snapshot | string = "no answer yet";
  while (Date.now() - started <= timeoutMs) {
    try {
      const s = await snapshot();
      if (ok(s)) return s;
      last = s;
    } catch (err) {
      last = `admin request failed: ${(err as Error).message}`;
    }
    await sleep(100);
  }
  throw new Error(`${what}: not within ${timeoutMs} ms; last seen: ${JSON.stringify(last)}\ndaemon stderr (tail):\n${daemon.stderr().slice(-3000)}`);
}

const ALL = ["source:web", "source:js_in", "sink:nats_out", "sink:mqtt_out"];

function allUp(s: Snapshot): boolean {
  return s.readyz === 200 && ALL.every((c) => s.status[c] === true && s.metric[c] === 1);
}

/** 503, and exactly `down` are down on /readyz, /status and /metrics; the others stay up. */
function onlyDown(down: readonly string[]) {
  return (s: Snapshot): boolean =>
    s.readyz === 503 &&
    ALL.every((c) => {
      const expectUp = !down.includes(c);
      return s.status[c] === expectUp && s.metric[c] === (expectUp ? 1 : 0) && s.down.includes(c) === !expectUp;
    });
}

// ---------------------------------------------------------------------------------------------
// Event flow checks, each with fresh test clients

let seq = 0;
function nextEvent(): CloudEvent {
  const ev = sampleEvents(1, `ready${++seq}`)[0]!;
  return ev;
}

/** POSTs an event to the HTTP source and reads it back from NATS. */
async function httpToNats(): Promise<void> {
  const nc: NatsConnection = await connect({ servers: nats.url, timeout: 5000 });
  try {
    const ev = nextEvent();
    const got: CloudEvent[] = [];
    nc.subscribe("ready.out.>", {
      callback: (_e, msg) => {
        const d = decodeNatsMessage(
          { subject: msg.subject, headers: headerEntries(msg.headers), payload: msg.data },
          { plainSource: "x", plainType: "x", server: "x:1", now: () => new Date(), newId: () => "n" },
        );
        got.push(d.event);
      },
    });
    await nc.flush();
    const res = await fetch(`http://127.0.0.1:${httpPort}/events`, {
      method: "POST",
      headers: { "content-type": "application/cloudevents+json" },
      body: serializeStructured(ev),
      signal: AbortSignal.timeout(STEP_MS),
    });
    assert.equal(res.status, 204, `POST answered ${res.status}: ${await res.text()}`);
    await waitUntil(() => got.some((e) => e.attributes["id"] === ev.attributes["id"]), STEP_MS, "the event on NATS");
  } finally {
    await nc.close();
  }
}

/** Publishes an event to the JetStream stream and reads it back from MQTT. */
async function jetstreamToMqtt(): Promise<void> {
  const reader = await connectAsync(mosq.url, { protocolVersion: 5, clientId: `ready-reader-${process.pid}-${seq}`, reconnectPeriod: 0, connectTimeout: 5000 });
  const nc = await connect({ servers: nats.url, timeout: 5000 });
  try {
    const ids: string[] = [];
    reader.on("message", (topic: string, payload: Buffer, packet: IPublishPacket) => {
      const d = decodeMqttMessage(
        { topic, payload, protocolVersion: 5, contentType: packet.properties?.contentType, userProperties: packet.properties?.userProperties as UserProperties | undefined },
        { source: "mqtt://x:1", now: () => new Date(), newId: () => "n" },
      );
      ids.push(String(d.event.attributes["id"]));
    });
    await reader.subscribeAsync("ready/out/#", { qos: 1 });
    const ev = nextEvent();
    await jetstream(nc).publish("ready.js.in", serializeStructured(ev), { timeout: 5000 });
    await waitUntil(() => ids.includes(String(ev.attributes["id"])), STEP_MS, "the event on MQTT");
  } finally {
    await nc.close();
    await reader.endAsync(true);
  }
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms\ndaemon stderr (tail):\n${daemon.stderr().slice(-3000)}`);
    await sleep(25);
  }
}

// ---------------------------------------------------------------------------------------------

before(async () => {
  [nats, mosq] = await Promise.all([startNats({ jetstream: true }), startMosquitto()]);
  admin = `127.0.0.1:${await freePort()}`;
  httpPort = await freePort();
  daemon = startDaemon(yaml());
});

after(async () => {
  if (daemon) {
    const code = await withTimeout(daemon.stop("SIGTERM"), 15_000, "daemon stop").catch((err: Error) => {
      daemon.proc.kill("SIGKILL");
      return err.message;
    });
    if (code !== 0) process.stderr.write(`daemon stop: ${String(code)}\n${daemon.stderr()}`);
  }
  await nats?.close();
  await mosq?.close();
});

describe("e2e readiness", { timeout: 60_000 }, () => {
  it("readiness - /readyz is 200 once every connector is connected; /status and /metrics agree", async () => {
    await daemon.waitReady(admin, 20_000);
    await waitSnapshot("all components up", allUp, STEP_MS);
    await httpToNats();
    await jetstreamToMqtt();
  });

  it("readiness - nats-server killed: 503 and sink:nats_out / source:js_in down within 5 s; restarted: 200 and up again", async () => {
    await waitSnapshot("all components up before the kill", allUp, STEP_MS);
    await nats.stop();
    const down = await waitSnapshot("NATS components reported down", onlyDown(["sink:nats_out", "source:js_in"]), DOWN_MS);
    assert.deepEqual([...down.down].sort(), ["sink:nats_out", "source:js_in"]);
    await nats.restart();
    await waitSnapshot("NATS components back up", allUp, UP_MS);
    await httpToNats();
    await jetstreamToMqtt();
  });

  it("readiness - mosquitto killed: 503 and sink:mqtt_out down within 5 s; restarted: 200 and up again", async () => {
    await waitSnapshot("all components up before the kill", allUp, STEP_MS);
    await mosq.stop();
    const down = await waitSnapshot("MQTT sink reported down", onlyDown(["sink:mqtt_out"]), DOWN_MS);
    assert.deepEqual(down.down, ["sink:mqtt_out"]);
    await mosq.restart();
    await waitSnapshot("MQTT sink back up", allUp, UP_MS);
    await jetstreamToMqtt();
    await httpToNats();
  });

  it("readiness - SIGTERM: the daemon stops cleanly (exit 0)", async () => {
    const code = await withTimeout(daemon.stop("SIGTERM"), 15_000, "daemon stop");
    assert.equal(code, 0, daemon.stderr().slice(-3000));
  });
});

describe("e2e readiness with refused credentials", { timeout: 60_000 }, () => {
  const token = `right-${process.pid}-${Date.now()}`;
  const wrongToken = `wrong-${process.pid}-${Date.now()}`;
  let secured: SecureBrokerHandle;
  let d: Daemon;
  let adminAddr: string;
  let daemonStarted = 0;

  before(async () => {
    secured = await startNatsWithConfig(() => `authorization { token: "${token}" }`);
    adminAddr = `127.0.0.1:${await freePort()}`;
    d = startDaemon(`
engine:
  instance_id: readiness-auth
  admin: { listen: "${adminAddr}" }
  shutdown_timeout: 2s
  log: { level: info }
sources:
  hook: { type: http, listen: "127.0.0.1:${await freePort()}" }
sinks:
  nats_auth: { type: nats, servers: ["${secured.url}"], subject: "x", token: "${wrongToken}" }
routes:
  - { name: hook-to-nats, from: hook, to: [nats_auth] }
`);
    daemonStarted = Date.now();
  });

  after(async () => {
    if (d && d.proc.exitCode === null) {
      await withTimeout(d.stop("SIGTERM"), 15_000, "daemon stop").catch(() => d.proc.kill("SIGKILL"));
    }
    await secured?.close();
  });

  it("readiness - a NATS sink whose token is refused: /readyz stays 503 naming it; the token appears nowhere", async () => {
    const readyz = async (): Promise<{ status: number; down: string[] } | undefined> => {
      if (d.proc.exitCode !== null) assert.fail(`daemon exited with ${d.proc.exitCode}:\n${d.stderr()}`);
      try {
        const r = await fetch(`http://${adminAddr}/readyz`, { signal: AbortSignal.timeout(2000) });
        return { status: r.status, down: ((await r.json()) as { down?: string[] }).down ?? [] };
      } catch {
        return undefined; // admin server not listening yet
      }
    };
    // The components register shortly after the admin server starts (down is [] until then).
    const started = Date.now();
    let last: { status: number; down: string[] } | undefined;
    while (!(last?.down.includes("sink:nats_auth") ?? false)) {
      if (Date.now() - started > STEP_MS) assert.fail(`sink:nats_auth never listed as down; last /readyz: ${JSON.stringify(last)}`);
      last = await readyz();
      await sleep(100);
    }
    // From then on it stays not ready for the whole window.
    const watchUntil = Date.now() + DOWN_MS;
    while (Date.now() < watchUntil) {
      last = await readyz();
      assert.ok(last === undefined || (last.status === 503 && last.down.includes("sink:nats_auth")), `never ready: ${JSON.stringify(last)}`);
      await sleep(200);
    }
    assert.equal(last?.status, 503, "the admin server answered");
    const status = await (await fetch(`http://${adminAddr}/status`, { signal: AbortSignal.timeout(2000) })).text();
    for (const text of [status, d.stderr()]) {
      assert.ok(!text.includes(wrongToken) && !text.includes(token), "the token must not appear in /status or the logs");
    }
    assert.match(secured.output(), /authentication error/, "the server did refuse the token");
  });

  it("readiness - a NATS sink whose token is refused: the daemon logs why within 5 s", async () => {
    // 5 s after the components registered (they do within ~1 s of the start).
    const deadline = Math.max(Date.now(), daemonStarted + DOWN_MS + 1000);
    const reason = /authori[sz]ation violation|authentication/i;
    while (!reason.test(d.stderr()) && Date.now() < deadline) await sleep(100);
    assert.match(d.stderr(), reason, `no log line says why sink:nats_auth is down; stderr was:\n${d.stderr().slice(-2000)}`);
  });
});
