/**
 * Protocol → sink: the options each protocol's subscription gives the existing connector, checked
 * against that connector's own schema and lint (so the rules are the config file's).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { builtinRegistry } from "../../../connectors/index.js";
import { SubscriptionInvalidError } from "../../../src/core/errors.js";
import { checkPlan } from "../../../src/subscriptions/connector.js";
import type { Subscription } from "../../../src/subscriptions/model.js";
import { mqttClientId, planSink } from "../../../src/subscriptions/sink-plan.js";

const registry = builtinRegistry();
const ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const ctx = { origin: "bridge.example.com", timeoutMs: 5000 };

test("sink plan - fixture table: protocol and settings → connector options (after its schema's defaults)", () => {
  const rows: { s: Subscription; type: string; want: Record<string, unknown> }[] = [
    {
      s: {
        id: ID,
        protocol: "HTTP",
        sink: "https://hooks.example.com/x",
        protocolsettings: { method: "POST", mode: "structured", headers: { "X-A": "1" } },
        sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "tok", accesstokentype: "bearer" },
      },
      type: "http",
      want: { url: "https://hooks.example.com/x", mode: "structured", headers: { "X-A": "1" }, auth: { bearer: "tok" }, timeout: 5000, handshake: { origin: "bridge.example.com" }, max_connections: 8 },
    },
    {
      s: { id: ID, protocol: "MQTT3", sink: "mqtt://broker:1883", protocolsettings: { topicname: "a/b", qos: 2, retain: true }, sinkcredential: { credentialtype: "PLAIN", identifier: "u", secret: "p" } },
      type: "mqtt",
      want: { url: "mqtt://broker:1883", topic: "a/b", qos: 2, retain: true, protocol_version: 4, client_id: "cbs0a1b2c3d4e5f4a6b8c7d", username: "u", password: "p" },
    },
    {
      s: { id: ID, protocol: "MQTT5", sink: "mqtts://broker:8883", protocolsettings: { topicname: "t", qos: 1, retain: false, mode: "binary" } },
      type: "mqtt",
      want: { url: "mqtts://broker:8883", topic: "t", qos: 1, retain: false, protocol_version: 5, mode: "binary", client_id: "cbs0a1b2c3d4e5f4a6b8c7d" },
    },
    {
      s: { id: ID, protocol: "NATS", sink: "nats://nats:4222", protocolsettings: { subject: "ce.x", mode: "structured" }, sinkcredential: { credentialtype: "ACCESSTOKEN", accesstoken: "nt", accesstokentype: "bearer" } },
      type: "nats",
      want: { servers: ["nats://nats:4222"], subject: "ce.x", mode: "structured", token: "nt" },
    },
    {
      s: { id: ID, protocol: "NATS", sink: "nats://nats:4222", protocolsettings: { subject: "s", mode: "binary" }, sinkcredential: { credentialtype: "PLAIN", identifier: "nu", secret: "np" } },
      type: "nats",
      want: { servers: ["nats://nats:4222"], subject: "s", mode: "binary", user: "nu", password: "np" },
    },
    {
      s: { id: ID, protocol: "AMQP", sink: "amqps://rabbit:5671/amq/queue/x", protocolsettings: { address: "/amq/queue/x", sendersettlementmode: "unsettled", mode: "binary" }, sinkcredential: { credentialtype: "PLAIN", identifier: "guest", secret: "pw" } },
      type: "amqp",
      want: { url: "amqps://rabbit:5671", address: "/amq/queue/x", mode: "binary", username: "guest", password: "pw" },
    },
  ];
  for (const { s, type, want } of rows) {
    const plan = planSink(s, ctx);
    assert.equal(plan.type, type);
    assert.deepEqual(plan.options, want, s.protocol);
    const typed = checkPlan(registry, plan);
    for (const [k, v] of Object.entries(want)) assert.deepEqual(typed[k], v, `${s.protocol} ${k}`);
  }
});

test("sink plan - the MQTT client id fits MQTT 3.1.1's 23 characters and differs per subscription", () => {
  assert.equal(mqttClientId(ID).length, 23);
  assert.notEqual(mqttClientId(ID), mqttClientId("ffffffff-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
});

test("sink plan - a connector's own rule refuses, naming the subscription member", () => {
  const plan = planSink({ id: ID, protocol: "MQTT5", sink: "mqtt://broker:1883", protocolsettings: { topicname: "$SYS/x", qos: 1, retain: false } }, ctx);
  assert.throws(
    () => checkPlan(registry, plan),
    (err: SubscriptionInvalidError) => err instanceof SubscriptionInvalidError && err.field === "/protocolsettings/topicname" && /reserved/.test(err.message),
  );
});
