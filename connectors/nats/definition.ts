/**
 * NATS connectors: `nats` (core NATS, best-effort) and `nats_jetstream` (durable, at-least-once).
 *
 * Definitions only: cheap to import, no SDK. The implementations (and `@nats-io/*`) load lazily
 * through `load()` when a config uses one of these types.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../../src/core/type.js";
import { defineSink, defineSource, type LintIssue } from "../../src/core/connector.js";
import { Duration, EventFormatOption, lintFormat, Secret, Size, TlsOptions } from "../../src/core/schema-types.js";
import { checkNatsPublishTemplate } from "./names.js";

/** Connection and auth options shared by every NATS component. */
const connection = {
  servers: Type.Union([Type.String({ minLength: 1 }), Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })], {
    default: ["nats://127.0.0.1:4222"],
    description: "NATS server URL(s), e.g. nats://nats:4222. The client reconnects forever, trying each in turn.",
  }),
  user: Type.Optional(Type.String({ minLength: 1, description: "user name (with password)" })),
  password: Type.Optional(Secret({ description: "password for `user`" })),
  token: Type.Optional(Secret({ description: "authentication token" })),
  nkey: Type.Optional(Secret({ description: "NKey seed (starts with SU), for NKey authentication" })),
  creds: Type.Optional(Type.String({ minLength: 1, description: "path to a .creds file (JWT + NKey seed)" })),
  tls: Type.Optional(TlsOptions),
};

const plain = Type.Object(
  {
    source: Type.String({
      minLength: 1,
      default: "nats://{server}/{subject}",
      description:
        "`source` of events mapped from plain (non-CloudEvents) messages. Placeholders: {server} (host:port of the first configured server), {subject} (the message subject), {stream} (JetStream only).",
    }),
    type: Type.String({ minLength: 1, default: "io.nats.message", description: "`type` of events mapped from plain messages" }),
  },
  { additionalProperties: false, default: {}, description: "mapping of plain NATS messages that are not CloudEvents" },
);

const sourceMaxPayload = Size({
  description: "largest message payload accepted; bigger messages are dead-lettered as CEB_TOO_LARGE (default: no limit beyond the server's)",
});

const sinkMaxPayload = Size({
  description: "largest payload this sink publishes; a bigger event fails permanently (default: the server's max_payload)",
});

const mode = Type.Union([Type.Literal("structured"), Type.Literal("binary")], {
  default: "structured",
  description:
    "structured: the JSON event as payload (NATS binding 1.0.2, readable by every consumer); binary: data as payload and attributes as percent-encoded ce- headers (binding 1.0.3 draft, needs NATS ≥ 2.2)",
});

const subjectTemplate = Type.String({
  minLength: 1,
  description:
    "subject template over CloudEvent attributes, e.g. ce.{type}; a value keeps its dots, while *, >, whitespace and empty tokens become _",
});

export const NatsSourceSchema = Type.Object(
  {
    ...connection,
    subject: Type.String({ minLength: 1, description: "subject to subscribe to; wildcards * and > allowed" }),
    queue: Type.Optional(Type.String({ minLength: 1, description: "queue group: replicas in one group share the messages" })),
    plain,
    max_payload: Type.Optional(sourceMaxPayload),
  },
  { additionalProperties: false },
);
export type NatsSourceConfig = Static<typeof NatsSourceSchema>;

export const NatsSinkSchema = Type.Object(
  {
    ...connection,
    subject: subjectTemplate,
    mode,
    format: EventFormatOption,
    max_payload: Type.Optional(sinkMaxPayload),
  },
  { additionalProperties: false },
);
export type NatsSinkConfig = Static<typeof NatsSinkSchema>;

export const JetStreamSourceSchema = Type.Object(
  {
    ...connection,
    stream: Type.String({ minLength: 1, description: "stream name" }),
    consumer: Type.String({
      minLength: 1,
      pattern: "^[^.*>\\s]+$",
      description: "durable pull consumer name; replicas bound to one durable share the messages",
    }),
    filter_subject: Type.Optional(Type.String({ minLength: 1, description: "only messages on this subject (wildcards allowed), when creating the consumer" })),
    create: Type.Boolean({
      default: false,
      description:
        "create the consumer if missing (explicit ack, deliver all, `max_ack_pending`), and the stream from `subjects` if missing",
    }),
    max_ack_pending: Type.Optional(
      Type.Integer({
        minimum: 1,
        description:
          "unacknowledged messages the server allows across ALL replicas of the durable, when `create` makes it (default: the route's window; set it to window × replicas to scale out)",
      }),
    ),
    subjects: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "subjects of the stream, when `create` makes it" })),
    ack_wait: Duration({ default: "30s", description: "how long the server waits for an ack before redelivering" }),
    max_deliver: Type.Optional(
      Type.Integer({ minimum: 1, description: "deliveries before the server gives up on a message (default: unlimited)" }),
    ),
    plain,
    max_payload: Type.Optional(sourceMaxPayload),
  },
  { additionalProperties: false },
);
export type JetStreamSourceConfig = Static<typeof JetStreamSourceSchema>;

export const JetStreamSinkSchema = Type.Object(
  {
    ...connection,
    subject: subjectTemplate,
    mode,
    format: EventFormatOption,
    stream: Type.Optional(
      Type.String({ minLength: 1, description: "expected stream: a publish that lands in another stream fails (required with `create`)" }),
    ),
    create: Type.Boolean({ default: false, description: "create the stream from `subjects` if it does not exist" }),
    subjects: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "subjects of the stream, when `create` makes it" })),
    duplicate_window: Duration({
      default: "5m",
      description:
        "when `create` makes the stream: how long JetStream remembers Nats-Msg-Id for deduplication (keep it ≥ the route's retry max_elapsed; at least 2m)",
    }),
    max_payload: Type.Optional(sinkMaxPayload),
  },
  { additionalProperties: false },
);
export type JetStreamSinkConfig = Static<typeof JetStreamSinkSchema>;

/** Auth options that cannot be combined. */
function lintAuth(cfg: { user?: string; password?: string; token?: string; nkey?: string; creds?: string }): LintIssue[] {
  const out: LintIssue[] = [];
  const methods = [cfg.user !== undefined && "user", cfg.token !== undefined && "token", cfg.nkey !== undefined && "nkey", cfg.creds !== undefined && "creds"].filter(
    (m): m is string => typeof m === "string",
  );
  if (methods.length > 1) {
    out.push({ level: "error", path: [methods[1]!], message: `choose one authentication method, not ${methods.join(" and ")}` });
  }
  if (cfg.password !== undefined && cfg.user === undefined) {
    out.push({ level: "error", path: ["password"], message: "password needs user" });
  }
  if (cfg.user !== undefined && cfg.password === undefined) {
    out.push({ level: "warning", path: ["user"], message: "user without password" });
  }
  return out;
}

function lintSubject(template: string): LintIssue[] {
  const problem = checkNatsPublishTemplate(template);
  return problem ? [{ level: "error", path: ["subject"], message: problem }] : [];
}

export const natsSource = defineSource({
  kind: "source",
  type: "nats",
  summary: "Subscribes to a core NATS subject (at most once: cannot pause or redeliver)",
  stability: "beta",
  schema: NatsSourceSchema,
  lint: (cfg) => lintAuth(cfg),
  pausable: () => false,
  load: async () => (await import("./core-source.js")).createCoreSource,
});

export const natsSink = defineSink({
  kind: "sink",
  type: "nats",
  summary: "Publishes to core NATS (best-effort: no confirmation)",
  stability: "beta",
  schema: NatsSinkSchema,
  lint: (cfg) => [...lintAuth(cfg), ...lintSubject(cfg.subject), ...lintFormat(cfg, "structured")],
  guarantee: () => "best-effort",
  load: async () => (await import("./core-sink.js")).createCoreSink,
});

export const jetstreamSource = defineSource({
  kind: "source",
  type: "nats_jetstream",
  summary: "Consumes a JetStream durable pull consumer (at least once: ack, nak, term)",
  stability: "beta",
  schema: JetStreamSourceSchema,
  lint: (cfg) => {
    const out = lintAuth(cfg);
    if (cfg.create && cfg.subjects === undefined) {
      out.push({ level: "warning", path: ["create"], message: "without `subjects`, `create` can make the consumer but not a missing stream" });
    }
    if (!cfg.create && (cfg.subjects !== undefined || cfg.filter_subject !== undefined)) {
      out.push({
        level: "warning",
        path: [cfg.subjects !== undefined ? "subjects" : "filter_subject"],
        message: "only used when `create: true` makes the stream or consumer",
      });
    }
    return out;
  },
  pausable: () => true,
  load: async () => (await import("./jetstream-source.js")).createJetStreamSource,
});

export const jetstreamSink = defineSink({
  kind: "sink",
  type: "nats_jetstream",
  summary: "Publishes to JetStream and waits for the stream's acknowledgement (deduplicated by Nats-Msg-Id)",
  stability: "beta",
  schema: JetStreamSinkSchema,
  lint: (cfg) => {
    const out = [...lintAuth(cfg), ...lintSubject(cfg.subject), ...lintFormat(cfg, "structured")];
    if (cfg.create && cfg.stream === undefined) out.push({ level: "error", path: ["stream"], message: "`create: true` needs the stream name" });
    if (cfg.create && cfg.subjects === undefined) out.push({ level: "error", path: ["subjects"], message: "`create: true` needs the stream's subjects" });
    if (cfg.duplicate_window < 120_000) {
      out.push({ level: "warning", path: ["duplicate_window"], message: "below 2m: retried publishes may no longer be deduplicated" });
    }
    return out;
  },
  guarantee: () => "confirmed",
  load: async () => (await import("./jetstream-sink.js")).createJetStreamSink,
});
