/**
 * `mqtt` connectors (MQTT 5 and 3.1.1). Definitions only; the implementation and `mqtt` load lazily.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../../src/core/type.js";
import { defineSink, defineSource, type LintIssue } from "../../src/core/connector.js";
import { Duration, EventFormatOption, lintFormat, Secret, Size, TlsOptions } from "../../src/core/schema-types.js";
import { checkMqttFilter, checkMqttPublishTemplate, isSharedFilter } from "./names.js";

const common = {
  url: Type.String({
    minLength: 1,
    default: "mqtt://127.0.0.1:1883",
    description: "broker URL: mqtt://host:1883 or mqtts://host:8883 (tcp:// and ssl:// also accepted)",
  }),
  qos: Type.Union([Type.Literal(0), Type.Literal(1), Type.Literal(2)], {
    default: 1,
    description: "QoS. 1 (default) is at least once; 0 is best-effort (a source drops on a full window, a sink cannot confirm)",
  }),
  client_id: Type.Optional(
    Type.String({ minLength: 1, maxLength: 128, description: "client id (default cebridge-<component>-<instance_id>)" }),
  ),
  protocol_version: Type.Union([Type.Literal(5), Type.Literal(4)], {
    default: 5,
    description: "5 = MQTT 5 (binary and structured mode), 4 = MQTT 3.1.1 (structured mode only)",
  }),
  username: Type.Optional(Type.String({ minLength: 1, description: "user name" })),
  password: Type.Optional(Secret({ description: "password" })),
  tls: Type.Optional(TlsOptions),
  max_payload: Type.Optional(
    Size({ description: "largest payload accepted (source: dead-lettered as CEB_TOO_LARGE) or published (sink: permanent failure)" }),
  ),
};

export const MqttSourceSchema = Type.Object(
  {
    ...common,
    topic: Type.String({
      minLength: 1,
      description: "topic filter; wildcards + and #; $share/<group>/<filter> splits the messages among the group's clients",
    }),
    session_expiry: Duration({
      default: "1h",
      description: "MQTT 5: how long the broker keeps the session (and unacknowledged messages) after a disconnect",
    }),
    connections: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 1,
      description:
        "connections in one shared subscription (needs a $share/ topic). Each has up to the route window of QoS 1 messages in flight (QoS 2: one)",
    }),
  },
  { additionalProperties: false },
);
export type MqttSourceConfig = Static<typeof MqttSourceSchema>;

export const MqttSinkSchema = Type.Object(
  {
    ...common,
    topic: Type.String({
      minLength: 1,
      description: "topic template over CloudEvent attributes, e.g. events/{type}; /, + and # inside a value become _",
    }),
    mode: Type.Optional(
      Type.Union([Type.Literal("binary"), Type.Literal("structured")], {
        description:
          "binary (default on MQTT 5): data as payload, attributes as user properties, datacontenttype as the content type; structured (the only mode on 3.1.1): the JSON event",
      }),
    ),
    format: EventFormatOption,
    retain: Type.Boolean({ default: false, description: "publish with the retain flag" }),
  },
  { additionalProperties: false },
);
export type MqttSinkConfig = Static<typeof MqttSinkSchema>;

function lintCommon(cfg: { url: string; username?: string; password?: string }): LintIssue[] {
  const out: LintIssue[] = [];
  if (!/^(mqtts?|tcp|ssl|tls|wss?):\/\//.test(cfg.url)) {
    out.push({ level: "error", path: ["url"], message: "must start with mqtt://, mqtts://, tcp://, ssl://, ws:// or wss://" });
  }
  if (cfg.password !== undefined && cfg.username === undefined) out.push({ level: "error", path: ["password"], message: "password needs username" });
  return out;
}

export const mqttSource = defineSource({
  kind: "source",
  type: "mqtt",
  summary: "Subscribes to an MQTT topic with a persistent session; PUBACK only after delivery (QoS 1)",
  stability: "beta",
  schema: MqttSourceSchema,
  lint: (cfg) => {
    const out = lintCommon(cfg);
    const problem = checkMqttFilter(cfg.topic);
    if (problem) out.push({ level: "error", path: ["topic"], message: problem });
    if (cfg.connections > 1 && !isSharedFilter(cfg.topic)) {
      out.push({
        level: "error",
        path: ["connections"],
        message: "several connections need a shared subscription ($share/<group>/<filter>); otherwise each one receives every message",
      });
    }
    if (cfg.connections > 1 && cfg.client_id !== undefined && cfg.client_id.length > 20 && cfg.protocol_version === 4) {
      out.push({ level: "warning", path: ["client_id"], message: "MQTT 3.1.1 brokers may refuse client ids over 23 characters (a -N suffix is added)" });
    }
    if (cfg.qos === 2) {
      out.push({
        level: "warning",
        path: ["qos"],
        message: "with QoS 2 the broker considers a message received (PUBREC) before it is delivered: a crash can lose it; use 1",
      });
    }
    return out;
  },
  pausable: (cfg) => cfg.qos >= 1,
  load: async () => (await import("./source.js")).createMqttSource,
});

export const mqttSink = defineSink({
  kind: "sink",
  type: "mqtt",
  summary: "Publishes to MQTT; with QoS 1/2 a write resolves on the broker's acknowledgement",
  stability: "beta",
  schema: MqttSinkSchema,
  lint: (cfg) => {
    const out = lintCommon(cfg);
    const problem = checkMqttPublishTemplate(cfg.topic);
    if (problem) out.push({ level: "error", path: ["topic"], message: problem });
    if (cfg.protocol_version === 4 && cfg.mode === "binary") {
      out.push({ level: "error", path: ["mode"], message: "MQTT 3.1.1 has no message properties: only structured mode is possible" });
    }
    if (cfg.protocol_version === 4 && cfg.format === "protobuf") {
      out.push({ level: "error", path: ["format"], message: "MQTT 3.1.1 has no Content Type to announce a Protobuf event: use protocol_version 5 or format json" });
    } else if (cfg.protocol_version !== 4) out.push(...lintFormat(cfg, "binary"));
    return out;
  },
  guarantee: (cfg) => (cfg.qos === 0 ? "best-effort" : "confirmed"),
  load: async () => (await import("./sink.js")).createMqttSink,
});
