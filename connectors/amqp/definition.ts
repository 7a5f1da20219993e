/**
 * `amqp` connectors (AMQP 1.0: RabbitMQ with its AMQP 1.0 plugin, ActiveMQ Artemis, Qpid, Solace,
 * Azure Service Bus and Event Hubs). Definitions only; the implementation and `rhea` load lazily.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../../src/core/type.js";
import { defineSink, defineSource, type LintIssue } from "../../src/core/connector.js";
import { Duration, EventFormatOption, lintFormat, Secret, Size, TlsOptions } from "../../src/core/schema-types.js";

const common = {
  url: Type.String({
    pattern: "^amqps?://",
    default: "amqp://127.0.0.1:5672",
    description: "broker URL: amqp://host:5672 or amqps://host:5671 (TLS); credentials go in username/password, not here",
  }),
  hostname: Type.Optional(
    Type.String({
      minLength: 1,
      description: "hostname sent in the AMQP open frame (default: the URL's host); RabbitMQ selects a virtual host with vhost:<name>",
    }),
  ),
  username: Type.Optional(Type.String({ minLength: 1, description: "user name (SASL PLAIN)" })),
  password: Type.Optional(Secret({ description: "password (SASL PLAIN)" })),
  sasl: Type.Optional(
    Type.Union([Type.Literal("ANONYMOUS"), Type.Literal("PLAIN"), Type.Literal("EXTERNAL")], {
      description: "SASL mechanism (default PLAIN with a username, else ANONYMOUS); EXTERNAL authenticates with the TLS client certificate",
    }),
  ),
  tls: Type.Optional(TlsOptions),
  idle_timeout: Duration({ default: "30s", description: "AMQP idle timeout: a silent connection is considered dead after twice this" }),
  max_message_size: Size({
    default: "1MiB",
    description: "largest message body accepted (source: dead-lettered as CEB_TOO_LARGE) or sent (sink: permanent failure)",
  }),
};

export const AmqpSourceSchema = Type.Object(
  {
    ...common,
    address: Type.String({
      minLength: 1,
      description: "source address, e.g. /amq/queue/orders (RabbitMQ: an existing queue), a queue name, or the broker's own form",
    }),
  },
  { additionalProperties: false },
);
export type AmqpSourceConfig = Static<typeof AmqpSourceSchema>;

export const AmqpSinkSchema = Type.Object(
  {
    ...common,
    address: Type.String({
      minLength: 1,
      description: "target address template over CloudEvent attributes, e.g. /exchange/events/{type}; / inside a value becomes _",
    }),
    mode: Type.Union([Type.Literal("binary"), Type.Literal("structured")], {
      default: "binary",
      description: "binary: data as the body, attributes as application properties; structured: the whole event as the body",
    }),
    format: EventFormatOption,
    prefix: Type.Union([Type.Literal("cloudEvents:"), Type.Literal("cloudEvents_")], {
      default: "cloudEvents:",
      description: "binary-mode application property prefix: cloudEvents: (what the official SDKs read) or cloudEvents_ (JMS brokers and selectors)",
    }),
    durable: Type.Boolean({ default: true, description: "send durable messages (kept by the broker across its restarts)" }),
  },
  { additionalProperties: false },
);
export type AmqpSinkConfig = Static<typeof AmqpSinkSchema>;

function lintCommon(cfg: Static<typeof AmqpSourceSchema> | Static<typeof AmqpSinkSchema>): LintIssue[] {
  const out: LintIssue[] = [];
  try {
    const u = new URL(cfg.url);
    if (u.username !== "" || u.password !== "") {
      out.push({ level: "error", path: ["url"], message: "credentials in the URL would be logged; use username and password" });
    }
    if (u.pathname !== "" && u.pathname !== "/") out.push({ level: "error", path: ["url"], message: "the URL takes no path; put the address in `address`" });
  } catch {
    out.push({ level: "error", path: ["url"], message: "not a valid URL" });
  }
  if (cfg.password !== undefined && cfg.username === undefined) out.push({ level: "error", path: ["password"], message: "password needs username" });
  if (cfg.sasl === "PLAIN" && (cfg.username === undefined || cfg.password === undefined)) {
    out.push({ level: "error", path: ["sasl"], message: "PLAIN needs username and password" });
  }
  if (cfg.sasl === "EXTERNAL" && (cfg.tls?.cert === undefined || cfg.tls?.key === undefined)) {
    out.push({ level: "error", path: ["sasl"], message: "EXTERNAL authenticates with the TLS client certificate: set tls.cert and tls.key" });
  }
  if (cfg.sasl === "ANONYMOUS" && cfg.password !== undefined) {
    out.push({ level: "warning", path: ["password"], message: "ANONYMOUS sends no password" });
  }
  return out;
}

export const amqpSource = defineSource({
  kind: "source",
  type: "amqp",
  summary: "Receives from an AMQP 1.0 address; accepts only after delivery, releases for redelivery, credit bounded by the window",
  stability: "beta",
  schema: AmqpSourceSchema,
  lint: (cfg) => {
    const out = lintCommon(cfg);
    if (/^\/(exchange|topic)\//.test(cfg.address)) {
      out.push({
        level: "warning",
        path: ["address"],
        message: "RabbitMQ receives from an exchange through a temporary queue: messages sent while cebridge is away are lost; use /amq/queue/<name>",
      });
    }
    return out;
  },
  pausable: () => true,
  load: async () => (await import("./source.js")).createAmqpSource,
});

export const amqpSink = defineSink({
  kind: "sink",
  type: "amqp",
  summary: "Sends to an AMQP 1.0 address; a write resolves on the broker's accepted outcome",
  stability: "beta",
  schema: AmqpSinkSchema,
  lint: (cfg) => {
    const out = [...lintCommon(cfg), ...lintFormat(cfg, "binary")];
    if (!cfg.durable) out.push({ level: "warning", path: ["durable"], message: "non-durable messages are lost when the broker restarts" });
    return out;
  },
  guarantee: () => "confirmed",
  load: async () => (await import("./sink.js")).createAmqpSink,
});
