/**
 * AWS connectors: `aws_eventbridge` (sink: PutEvents; source: the SQS queue an EventBridge rule
 * targets) and `aws_sqs` (source and sink), DESIGN §3.1, §5.
 *
 * Definitions only: cheap to import, no SDK. The implementations (and `@aws-sdk/*`) load lazily
 * through `load()` when a config uses one of these types.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../../src/core/type.js";
import { defineSink, defineSource, type LintIssue } from "../../src/core/connector.js";
import { Duration, Secret, Size, TlsOptions } from "../../src/core/schema-types.js";

const HTTP_URL = "^https?://[^\\s/]+(/.*)?$";

/** Where and as whom every AWS component talks. */
const connection = {
  region: Type.Optional(
    Type.String({ minLength: 1, description: "AWS region, e.g. eu-west-1 (default: the SDK's chain: AWS_REGION, then the shared config file)" }),
  ),
  endpoint: Type.Optional(
    Type.String({ pattern: HTTP_URL, description: "service endpoint to use instead of AWS's (an emulator, a VPC endpoint), e.g. http://127.0.0.1:4566" }),
  ),
  credentials: Type.Optional(
    Type.Object(
      {
        access_key_id: Secret({ description: "access key id" }),
        secret_access_key: Secret({ description: "secret access key" }),
        session_token: Type.Optional(Secret({ description: "session token of temporary credentials" })),
      },
      { additionalProperties: false, description: "explicit keys (use ${file:} or ${ENV}); without them the SDK's default chain is used" },
    ),
  ),
  role_arn: Type.Optional(
    Type.String({ pattern: "^arn:aws[a-z-]*:iam::\\d{12}:role/.+$", description: "IAM role to assume with STS AssumeRole, using the keys above or the default chain" }),
  ),
  role_session_name: Type.Optional(
    Type.String({ pattern: "^[\\w+=,.@-]{2,64}$", description: "session name for AssumeRole (default: cebridge-<component id>)" }),
  ),
  external_id: Type.Optional(Secret({ description: "external id the role's trust policy asks for" })),
  sts_endpoint: Type.Optional(Type.String({ pattern: HTTP_URL, description: "STS endpoint for AssumeRole (default: the region's STS endpoint)" })),
  tls: Type.Optional(TlsOptions),
};

const batching = {
  linger: Duration({ default: "5ms", description: "how long the first event of a batch waits for more before the call is made" }),
  max_concurrent: Type.Integer({ minimum: 1, maximum: 64, default: 8, description: "batch calls in flight at once" }),
};

export const SqsSourceSchema = Type.Object(
  {
    queue_url: Type.String({ pattern: HTTP_URL, description: "URL of the queue, e.g. https://sqs.eu-west-1.amazonaws.com/123456789012/orders" }),
    ...connection,
    wait_time: Duration({ default: "20s", description: "long-poll wait of each receive (at most 20s)" }),
    visibility_timeout: Duration({
      default: "30s",
      description: "how long a received message stays hidden from other consumers; extended while its delivery is slow (whole seconds, 1s to 12h)",
    }),
    max_messages: Type.Integer({ minimum: 1, maximum: 10, default: 10, description: "messages per receive (SQS allows 1 to 10)" }),
    receivers: Type.Integer({
      minimum: 1,
      maximum: 64,
      default: 4,
      description: "long polls in parallel; together they never hold more messages than the route's window",
    }),
  },
  { additionalProperties: false },
);
export type SqsSourceConfig = Static<typeof SqsSourceSchema>;

export const EventBridgeSinkSchema = Type.Object(
  {
    event_bus: Type.String({ minLength: 1, default: "default", description: "event bus name or ARN" }),
    ...connection,
    detail: Type.Union([Type.Literal("event"), Type.Literal("data")], {
      default: "event",
      description: "event: the whole CloudEvent (JSON format) as Detail, so nothing is lost; data: only the data, which must be a JSON object",
    }),
    max_batch_bytes: Size({
      default: "256KiB",
      description: "largest PutEvents call, entry sizes counted as AWS does; a single bigger event fails permanently (AWS allows up to 1 MiB on current buses)",
    }),
    ...batching,
  },
  { additionalProperties: false },
);
export type EventBridgeSinkConfig = Static<typeof EventBridgeSinkSchema>;

export const SqsSinkSchema = Type.Object(
  {
    queue_url: Type.String({ pattern: HTTP_URL, description: "URL of the queue; a name ending in .fifo is a FIFO queue" }),
    ...connection,
    mode: Type.Union([Type.Literal("binary"), Type.Literal("structured")], {
      default: "binary",
      description: "binary: data as the body, attributes as ce- message attributes (structured when they exceed 10 or the data is not text); structured: the JSON event as the body",
    }),
    message_group_id: Type.Optional(Type.String({ pattern: "^[!-~]{1,128}$", description: "FIFO: MessageGroupId of events without a partitionkey" })),
    max_batch_bytes: Size({
      default: "256KiB",
      description: "largest SendMessageBatch call (body and attributes counted as SQS does); a single bigger event fails permanently",
    }),
    ...batching,
  },
  { additionalProperties: false },
);
export type SqsSinkConfig = Static<typeof SqsSinkSchema>;

/** Options every AWS component shares, as the implementation reads them. */
export type AwsConnectionConfig = Pick<SqsSourceConfig, "region" | "endpoint" | "credentials" | "role_arn" | "role_session_name" | "external_id" | "sts_endpoint" | "tls">;

function lintConnection(cfg: AwsConnectionConfig): LintIssue[] {
  const out: LintIssue[] = [];
  if (cfg.role_arn === undefined) {
    for (const key of ["role_session_name", "external_id", "sts_endpoint"] as const) {
      if (cfg[key] !== undefined) out.push({ level: "warning", path: [key], message: "only used with role_arn" });
    }
  }
  if (cfg.tls !== undefined && cfg.endpoint?.startsWith("http://")) {
    out.push({ level: "warning", path: ["tls"], message: "the endpoint is plain http://, so tls has no effect" });
  }
  return out;
}

function lintSource(cfg: SqsSourceConfig): LintIssue[] {
  const out = lintConnection(cfg);
  if (cfg.wait_time > 20_000) out.push({ level: "error", path: ["wait_time"], message: "SQS long polls wait at most 20s" });
  if (cfg.visibility_timeout < 1_000 || cfg.visibility_timeout > 43_200_000) {
    out.push({ level: "error", path: ["visibility_timeout"], message: "must be between 1s and 12h" });
  } else if (cfg.visibility_timeout % 1000 !== 0) {
    out.push({ level: "warning", path: ["visibility_timeout"], message: "SQS counts whole seconds: rounded up" });
  }
  return out;
}

export const eventBridgeSource = defineSource({
  kind: "source",
  type: "aws_eventbridge",
  summary: "Receives EventBridge events from the SQS queue a rule targets (at least once: delete after delivery, visibility extended, released on failure)",
  stability: "beta",
  schema: SqsSourceSchema,
  lint: lintSource,
  pausable: () => true,
  load: async () => (await import("./sqs-source.js")).createEventBridgeSource,
});

export const sqsSource = defineSource({
  kind: "source",
  type: "aws_sqs",
  summary: "Receives SQS messages: plain, SNS notifications, EventBridge events and CloudEvents (at least once)",
  stability: "beta",
  schema: SqsSourceSchema,
  lint: lintSource,
  pausable: () => true,
  load: async () => (await import("./sqs-source.js")).createSqsSource,
});

export const eventBridgeSink = defineSink({
  kind: "sink",
  type: "aws_eventbridge",
  summary: "Publishes to an EventBridge bus with PutEvents in batches; every entry's result is read",
  stability: "beta",
  schema: EventBridgeSinkSchema,
  lint: (cfg) => lintConnection(cfg),
  guarantee: () => "confirmed",
  load: async () => (await import("./eventbridge-sink.js")).createEventBridgeSink,
});

export const sqsSink = defineSink({
  kind: "sink",
  type: "aws_sqs",
  summary: "Sends to an SQS queue with SendMessageBatch (FIFO group and deduplication ids from the event)",
  stability: "beta",
  schema: SqsSinkSchema,
  lint: (cfg) => {
    const out = lintConnection(cfg);
    if (/\.fifo\/?$/.test(cfg.queue_url) && cfg.message_group_id === undefined) {
      out.push({ level: "warning", path: ["message_group_id"], message: "a FIFO queue: events without a partitionkey will fail unless message_group_id is set" });
    }
    if (!/\.fifo\/?$/.test(cfg.queue_url) && cfg.message_group_id !== undefined) {
      out.push({ level: "warning", path: ["message_group_id"], message: "only used with a FIFO queue (a URL ending in .fifo)" });
    }
    return out;
  },
  guarantee: () => "confirmed",
  load: async () => (await import("./sqs-sink.js")).createSqsSink,
});
