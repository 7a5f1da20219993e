/**
 * Google Cloud Pub/Sub connectors: `gcp_pubsub` source (a subscription, streaming pull) and sink
 * (a topic, confirmed by the message id).
 *
 * Definitions only: cheap to import, no SDK. The implementations (and `@google-cloud/pubsub`, which
 * takes a noticeable time to import) load lazily through `load()` when a config uses these types.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../../src/core/type.js";
import { defineSink, defineSource, type LintIssue } from "../../src/core/connector.js";
import { Duration, Size, TlsOptions } from "../../src/core/schema-types.js";

const RESOURCE_ID = "^[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$";
const RESOURCE_NAME = (kind: string) => `^projects/[^/\\s]+/${kind}/[A-Za-z][-A-Za-z0-9_.~+%]{2,254}$`;

/** Connection and credential options shared by the source and the sink. */
const connection = {
  project: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "Google Cloud project id of the subscription or topic (default: the credentials' project, or GOOGLE_CLOUD_PROJECT / PUBSUB_PROJECT_ID); not needed when the name is a full resource name",
    }),
  ),
  endpoint: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "host:port of the Pub/Sub API (default pubsub.googleapis.com:443, or PUBSUB_EMULATOR_HOST when set). A host outside *.googleapis.com is an emulator (plaintext, no credentials) unless `tls` is set",
    }),
  ),
  credentials_file: Type.Optional(
    Type.String({
      minLength: 1,
      description:
        "path to a service account key or other credentials JSON file; without it, application default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's ADC file, the metadata server / workload identity)",
    }),
  ),
  tls: Type.Optional(TlsOptions),
};

const subscriptionName = Type.String({
  minLength: 1,
  description: "subscription id (with `project`) or full name projects/P/subscriptions/S",
});

export const PubSubSourceSchema = Type.Object(
  {
    ...connection,
    subscription: subscriptionName,
    mapping: Type.Union([Type.Literal("message_published"), Type.Literal("raw")], {
      default: "message_published",
      description:
        "plain (non-CloudEvents) messages become Google's messagePublished event (message_published) or keep their data bytes with attributes as extensions (raw)",
    }),
    raw_type: Type.String({ minLength: 1, default: "com.google.cloud.pubsub.message", description: "`type` of events mapped with `mapping: raw`" }),
    topic: Type.Optional(
      Type.String({
        minLength: 1,
        pattern: RESOURCE_NAME("topics"),
        description:
          "projects/P/topics/T for the `source` of mapped events, when the credentials may not read the subscription (pubsub.subscriptions.get); default: read from the subscription",
      }),
    ),
    streams: Type.Integer({ minimum: 1, maximum: 32, default: 1, description: "parallel StreamingPull streams (the route window is shared by all of them)" }),
    max_bytes: Size({ default: "100MiB", description: "flow control: most message bytes held at once, on top of the route's window (counted in messages)" }),
    max_lease: Duration({ default: "60m", description: "how long a slow message keeps its lease extended; after that Pub/Sub redelivers it" }),
    max_payload: Type.Optional(Size({ description: "larger message data is dead-lettered as CEB_TOO_LARGE (default: Pub/Sub's 10 MB)" })),
  },
  { additionalProperties: false },
);
export type PubSubSourceConfig = Static<typeof PubSubSourceSchema>;

export const PubSubSinkSchema = Type.Object(
  {
    ...connection,
    topic: Type.String({ minLength: 1, description: "topic id (with `project`) or full name projects/P/topics/T" }),
    mode: Type.Union([Type.Literal("binary"), Type.Literal("structured")], {
      default: "binary",
      description:
        "binary: data as message data and attributes as ce- message attributes (structured when they exceed Pub/Sub's attribute limits); structured: the JSON event as data",
    }),
    ordering: Type.Boolean({
      default: false,
      description: "publish with the event's `partitionkey` as ordering key (pair it with the route's `ordering: partitionkey`)",
    }),
    batch: Type.Object(
      {
        max_events: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: "messages per Publish call" }),
        max_bytes: Size({ default: "1MiB", description: "bytes per Publish call (at most 9 MiB)" }),
        linger: Duration({ default: "10ms", description: "how long a Publish call waits for more messages" }),
      },
      { additionalProperties: false, default: {}, description: "publish batching (the client's batching settings)" },
    ),
  },
  { additionalProperties: false },
);
export type PubSubSinkConfig = Static<typeof PubSubSinkSchema>;

function lintName(cfg: { project?: string | undefined }, key: string, name: string, kind: string): LintIssue[] {
  if (name.startsWith("projects/")) {
    if (!new RegExp(RESOURCE_NAME(kind)).test(name)) return [{ level: "error", path: [key], message: `not a valid ${kind} name projects/PROJECT/${kind}/ID` }];
    const project = name.split("/")[1];
    if (cfg.project !== undefined && cfg.project !== project) {
      return [{ level: "error", path: ["project"], message: `\`${key}\` names project "${project}", not "${cfg.project}"` }];
    }
    return [];
  }
  if (!new RegExp(RESOURCE_ID).test(name)) {
    return [{ level: "error", path: [key], message: "a Pub/Sub id starts with a letter and has 3-255 letters, digits or - _ . ~ + %" }];
  }
  return name.startsWith("goog") ? [{ level: "error", path: [key], message: "a Pub/Sub id must not start with goog" }] : [];
}

function lintTls(cfg: { tls?: { cert?: string; key?: string } | undefined }): LintIssue[] {
  if (cfg.tls && (cfg.tls.cert === undefined) !== (cfg.tls.key === undefined)) {
    return [{ level: "error", path: ["tls", cfg.tls.cert === undefined ? "cert" : "key"], message: "mutual TLS needs both tls.cert and tls.key" }];
  }
  return [];
}

export const pubsubSource = defineSource({
  kind: "source",
  type: "gcp_pubsub",
  summary: "Consumes a Google Cloud Pub/Sub subscription by streaming pull (at least once: ack, nack, lease extension)",
  stability: "beta",
  schema: PubSubSourceSchema,
  lint: (cfg) => [...lintName(cfg, "subscription", cfg.subscription, "subscriptions"), ...lintTls(cfg)],
  pausable: () => true,
  load: async () => (await import("./source.js")).createPubSubSource,
});

export const pubsubSink = defineSink({
  kind: "sink",
  type: "gcp_pubsub",
  summary: "Publishes to a Google Cloud Pub/Sub topic and confirms on the message id",
  stability: "beta",
  schema: PubSubSinkSchema,
  lint: (cfg) => {
    const out = [...lintName(cfg, "topic", cfg.topic, "topics"), ...lintTls(cfg)];
    if (cfg.batch.max_bytes > 9 * 1024 * 1024) out.push({ level: "error", path: ["batch", "max_bytes"], message: "the client sends at most 9 MiB per Publish call" });
    return out;
  },
  guarantee: () => "confirmed",
  load: async () => (await import("./sink.js")).createPubSubSink,
});
