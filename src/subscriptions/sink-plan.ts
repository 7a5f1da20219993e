/**
 * Protocol → sink (docs/subscriptions-api.md §6, "Protocol to sink mapping"): which existing sink
 * connector delivers a subscription, with which options. Pure; the result is validated against the
 * connector's own schema and lint (see `connector.ts`), so one set of rules holds for sinks in the
 * config file and sinks made by subscribers.
 *
 * | protocol | sink | settings |
 * |---|---|---|
 * | HTTP | `http` | `url` = sink, `headers`, ACCESSTOKEN → `auth.bearer`, `mode`; the abuse-protection handshake always |
 * | MQTT3 / MQTT5 | `mqtt` | `protocol_version` 4 / 5, `url` = sink, `topic` = topicname (literal), `qos`, `retain`; PLAIN → `username`/`password` |
 * | NATS | `nats` | `servers` = [sink], `subject`, `mode`; PLAIN → `user`/`password`, ACCESSTOKEN → `token` |
 * | AMQP | `amqp` | `url` = the sink's scheme, host and port; `address` (literal: `{` `}` refused before); `mode`; PLAIN → `username`/`password` |
 */
import type { AmqpSettings, HttpSettings, MqttSettings, NatsSettings, Subscription } from "./model.js";

export interface SinkPlan {
  /** The connector type in the registry. */
  readonly type: "http" | "mqtt" | "nats" | "amqp";
  /** Raw options, before the connector's schema fills its defaults. */
  readonly options: Record<string, unknown>;
  /** Option key → the JSON pointer of the subscription member it came from (for error messages). */
  readonly fields: Readonly<Record<string, string>>;
}

export interface PlanContext {
  /** `WebHook-Request-Origin` of the handshake. */
  readonly origin: string;
  /** Deadline of one delivery attempt (the stream's `timeout`), in ms. */
  readonly timeoutMs: number;
}

/**
 * An MQTT client id from the subscription id: 23 characters at most, so that MQTT 3.1.1 brokers
 * holding to the spec's limit take it, and unique per subscription (80 bits of its UUID).
 */
export function mqttClientId(subscriptionId: string): string {
  return `cbs${subscriptionId.replace(/-/g, "").slice(0, 20)}`;
}

export function planSink(s: Subscription, ctx: PlanContext): SinkPlan {
  const cred = s.sinkcredential;
  switch (s.protocol) {
    case "HTTP": {
      const p = s.protocolsettings as HttpSettings;
      const options: Record<string, unknown> = {
        url: s.sink,
        mode: p.mode,
        headers: { ...(p.headers ?? {}) },
        timeout: ctx.timeoutMs,
        handshake: { origin: ctx.origin },
        // One subscriber gets a few connections, not the sink's default 64.
        max_connections: 8,
      };
      if (cred?.credentialtype === "ACCESSTOKEN") options["auth"] = { bearer: cred.accesstoken };
      return { type: "http", options, fields: { url: "/sink", mode: "/protocolsettings/mode", headers: "/protocolsettings/headers", auth: "/sinkcredential" } };
    }
    case "MQTT3":
    case "MQTT5": {
      const p = s.protocolsettings as MqttSettings;
      const options: Record<string, unknown> = {
        url: s.sink,
        topic: p.topicname,
        qos: p.qos,
        retain: p.retain,
        protocol_version: s.protocol === "MQTT3" ? 4 : 5,
        client_id: mqttClientId(s.id),
      };
      if (s.protocol === "MQTT5" && p.mode !== undefined) options["mode"] = p.mode;
      if (cred?.credentialtype === "PLAIN") {
        options["username"] = cred.identifier;
        options["password"] = cred.secret;
      }
      return {
        type: "mqtt",
        options,
        fields: { url: "/sink", topic: "/protocolsettings/topicname", qos: "/protocolsettings/qos", retain: "/protocolsettings/retain", mode: "/protocolsettings/mode", username: "/sinkcredential", password: "/sinkcredential" },
      };
    }
    case "AMQP": {
      const p = s.protocolsettings as AmqpSettings;
      const u = new URL(s.sink);
      const options: Record<string, unknown> = { url: `${u.protocol}//${u.host}`, address: p.address, mode: p.mode };
      if (cred?.credentialtype === "PLAIN") {
        options["username"] = cred.identifier;
        options["password"] = cred.secret;
      }
      return { type: "amqp", options, fields: { url: "/sink", address: "/protocolsettings/address", mode: "/protocolsettings/mode", username: "/sinkcredential", password: "/sinkcredential", sasl: "/sinkcredential" } };
    }
    case "NATS": {
      const p = s.protocolsettings as NatsSettings;
      const options: Record<string, unknown> = { servers: [s.sink], subject: p.subject, mode: p.mode };
      if (cred?.credentialtype === "PLAIN") {
        options["user"] = cred.identifier;
        options["password"] = cred.secret;
      }
      if (cred?.credentialtype === "ACCESSTOKEN") options["token"] = cred.accesstoken;
      return { type: "nats", options, fields: { servers: "/sink", subject: "/protocolsettings/subject", mode: "/protocolsettings/mode", user: "/sinkcredential", password: "/sinkcredential", token: "/sinkcredential" } };
    }
  }
}
