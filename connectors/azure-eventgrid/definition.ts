/**
 * Azure Event Grid connectors:
 * - `azure_eventgrid` source: the webhook endpoint Event Grid pushes to (basic topics, domains,
 *   system topics), both delivery schemas, both handshakes;
 * - `azure_eventgrid` sink: publishes to a basic topic or domain (CloudEvents or Event Grid schema);
 * - `azure_eventgrid_namespace` source: pull delivery from a namespace topic subscription (receive
 *   with a lock, acknowledge, release, reject, renew);
 * - `azure_eventgrid_namespace` sink: publishes to a namespace topic.
 *
 * Definitions only: cheap to import, no SDK. `@azure/eventgrid`, `@azure/eventgrid-namespaces` and
 * `@azure/identity` load lazily through `load()` when a config uses one of these types.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../../src/core/type.js";
import { defineSink, defineSource, type LintIssue } from "../../src/core/connector.js";
import { Duration, ListenAddress, Secret, Size, TlsOptions } from "../../src/core/schema-types.js";

/** Event Grid's request limit for both tiers: 1 MB per request and per event. */
export const EVENT_GRID_MAX_REQUEST = 1024 * 1024;

const endpoint = (description: string) => Type.String({ pattern: "^https?://[^\\s]+$", description });

const credential = Type.Optional(
  Type.Literal("default", {
    description: "Microsoft Entra ID through @azure/identity's DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI…); https only",
  }),
);

const timeout = Duration({ default: "30s", description: "deadline of one request to Event Grid (a timeout is transient)" });

const batch = Type.Object(
  {
    max_events: Type.Integer({ minimum: 1, maximum: 5000, default: 100, description: "events per publish request" }),
    max_bytes: Size({ default: "1MiB", description: "bytes per publish request (Event Grid refuses more than 1 MiB)" }),
    linger: Duration({ default: "5ms", description: "how long a batch waits to fill up" }),
    max_requests: Type.Integer({ minimum: 1, maximum: 64, default: 4, description: "publish requests in flight at once" }),
  },
  { additionalProperties: false, default: {} },
);

export const EventGridSinkSchema = Type.Object(
  {
    endpoint: endpoint("topic or domain endpoint, e.g. https://<topic>.<region>-1.eventgrid.azure.net/api/events"),
    schema: Type.Union([Type.Literal("cloudevents"), Type.Literal("eventgrid")], {
      default: "cloudevents",
      description: "input schema of the topic: cloudevents (lossless) or eventgrid (mapped, see the README)",
    }),
    key: Type.Optional(Secret({ description: "topic access key, sent as aeg-sas-key" })),
    sas_token: Type.Optional(Secret({ description: "shared access signature, sent as aeg-sas-token" })),
    credential,
    domain_topic: Type.Optional(
      Type.String({ minLength: 1, description: "domain topic template over CloudEvent attributes (Event Grid schema domains), e.g. {subject}" }),
    ),
    timeout,
    batch,
    tls: Type.Optional(TlsOptions),
  },
  { additionalProperties: false },
);
export type EventGridSinkConfig = Static<typeof EventGridSinkSchema>;

export const EventGridSourceSchema = Type.Object(
  {
    listen: ListenAddress({ default: "127.0.0.1:8080", description: "host:port to listen on" }),
    path: Type.String({ pattern: "^/", default: "/", description: "path of the webhook (other paths answer 404)" }),
    max_body: Size({ default: "2MiB", description: "largest request body; larger requests get 413 (Event Grid sends at most about 1 MiB)" }),
    max_depth: Type.Integer({ minimum: 1, maximum: 1000, default: 64, description: "deepest JSON nesting accepted per event" }),
    allowed_origins: Type.Array(Type.String({ minLength: 1 }), {
      default: ["eventgrid.azure.net"],
      description: "origins granted in the CloudEvents OPTIONS handshake; `*` allows any",
    }),
    secret: Type.Optional(Secret({ description: "shared secret every POST must carry, in the `secret_query` parameter or the `secret_header` header" })),
    secret_query: Type.String({ minLength: 1, default: "code", description: "query parameter that carries `secret` (put it in the subscription's endpoint URL)" }),
    secret_header: Type.String({ pattern: "^[A-Za-z0-9-]+$", default: "x-cebridge-secret", description: "header that carries `secret` (a delivery property of the subscription)" }),
    entra: Type.Optional(
      Type.Object(
        {
          tenant_id: Type.String({ minLength: 1, description: "Microsoft Entra tenant of the tokens" }),
          audience: Type.String({ minLength: 1, description: "expected `aud`: the application id or id URI the subscription names" }),
          jwks_url: Type.Optional(Type.String({ pattern: "^https?://", description: "signing keys (default https://login.microsoftonline.com/<tenant_id>/discovery/v2.0/keys)" })),
          issuers: Type.Optional(
            Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "accepted `iss` (default the tenant's v1 and v2 issuers)" }),
          ),
          clock_skew: Duration({ default: "5m", description: "tolerance for `exp` and `nbf`" }),
        },
        { additionalProperties: false, description: "check the Entra token Event Grid sends as Authorization: Bearer" },
      ),
    ),
    validation: Type.Union([Type.Literal("sync"), Type.Literal("url")], {
      default: "sync",
      description: "Event Grid schema handshake: answer the validation code (sync) or GET the validation URL after answering 200 (url)",
    }),
    validation_hosts: Type.Array(Type.String({ minLength: 1 }), {
      default: ["*.eventgrid.azure.net"],
      description: "hosts a validation URL may point to (`*.` matches subdomains); others are not visited",
    }),
    retry_after: Duration({ default: "10s", description: "Retry-After sent with 429 (window full) and 503" }),
    tls: Type.Optional(
      Type.Object(
        {
          cert: Type.String({ description: "PEM certificate chain of this server" }),
          key: Type.String({ description: "PEM private key of this server", writeOnly: true }),
          ca: Type.Optional(Type.String({ description: "PEM CA bundle: when set, clients must present a certificate it signed (mutual TLS)" })),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type EventGridSourceConfig = Static<typeof EventGridSourceSchema>;

const namespaceConnection = {
  endpoint: endpoint("namespace endpoint, e.g. https://<namespace>.<region>-1.eventgrid.azure.net"),
  topic: Type.String({ minLength: 1, description: "namespace topic" }),
  key: Type.Optional(Secret({ description: "namespace access key, sent as Authorization: SharedAccessKey" })),
  credential,
  timeout,
  tls: Type.Optional(TlsOptions),
};

export const NamespaceSourceSchema = Type.Object(
  {
    ...namespaceConnection,
    subscription: Type.String({ minLength: 1, description: "event subscription of the topic (pull delivery)" }),
    max_events: Type.Integer({ minimum: 1, maximum: 100, default: 100, description: "events per receive call (never more than the route's free window)" }),
    max_wait: Duration({ default: "10s", description: "how long a receive call waits for events (the service takes 10s–120s)" }),
    lock_duration: Duration({
      default: "60s",
      description: "the subscription's receiveLockDurationInSeconds: locks are renewed before half of it has passed",
    }),
    receivers: Type.Integer({ minimum: 1, maximum: 16, default: 1, description: "receive calls in parallel (they share the route's window)" }),
  },
  { additionalProperties: false },
);
export type NamespaceSourceConfig = Static<typeof NamespaceSourceSchema>;

export const NamespaceSinkSchema = Type.Object({ ...namespaceConnection, batch }, { additionalProperties: false });
export type NamespaceSinkConfig = Static<typeof NamespaceSinkSchema>;

/** Exactly one way to authenticate; Bearer tokens need https (the Azure clients refuse them on http). */
function lintAuth(cfg: { endpoint: string; key?: string; sas_token?: string; credential?: string }, keys: readonly ("key" | "sas_token" | "credential")[]): LintIssue[] {
  const given = keys.filter((k) => cfg[k] !== undefined);
  const out: LintIssue[] = [];
  if (given.length === 0) out.push({ level: "error", path: [keys[0]!], message: `set one of ${keys.join(", ")}` });
  if (given.length > 1) out.push({ level: "error", path: [given[1]!], message: `choose one of ${given.join(" and ")}` });
  const plain = cfg.endpoint.startsWith("http://");
  if (plain && cfg.credential !== undefined) {
    out.push({ level: "error", path: ["credential"], message: "Microsoft Entra tokens are only sent over https; the endpoint is http://" });
  } else if (plain) {
    out.push({ level: "warning", path: ["endpoint"], message: "plain http: the key travels unencrypted (emulators and tests only)" });
  }
  return out;
}

function lintBatch(b: { max_bytes: number }): LintIssue[] {
  return b.max_bytes > EVENT_GRID_MAX_REQUEST
    ? [{ level: "error", path: ["batch", "max_bytes"], message: `Event Grid refuses requests over 1 MiB (${EVENT_GRID_MAX_REQUEST} bytes)` }]
    : [];
}

export const eventGridSource = defineSource({
  kind: "source",
  type: "azure_eventgrid",
  summary: "Webhook Event Grid pushes to (both schemas, both handshakes); answers 2xx only after every sink confirmed",
  stability: "beta",
  schema: EventGridSourceSchema,
  lint: (cfg) => {
    const out: LintIssue[] = [];
    if (cfg.validation === "url" && cfg.validation_hosts.length === 0) {
      out.push({ level: "error", path: ["validation_hosts"], message: "`validation: url` needs at least one host the validation URL may point to" });
    }
    if (cfg.allowed_origins.includes("*")) {
      out.push({ level: "warning", path: ["allowed_origins"], message: "`*` lets any sender complete the OPTIONS handshake" });
    }
    return out;
  },
  pausable: () => true,
  load: async () => (await import("./webhook-source.js")).createEventGridSource,
});

export const eventGridSink = defineSink({
  kind: "sink",
  type: "azure_eventgrid",
  summary: "Publishes to an Event Grid topic or domain in batches and confirms on 200",
  stability: "beta",
  schema: EventGridSinkSchema,
  lint: (cfg) => {
    const out = [...lintAuth(cfg, ["key", "sas_token", "credential"]), ...lintBatch(cfg.batch)];
    if (cfg.domain_topic !== undefined && cfg.schema === "cloudevents") {
      out.push({
        level: "error",
        path: ["domain_topic"],
        message: "in the CloudEvents schema a domain takes the domain topic from each event's `source`; domain_topic is for the Event Grid schema",
      });
    }
    return out;
  },
  guarantee: () => "confirmed",
  load: async () => (await import("./topic-sink.js")).createEventGridSink,
});

export const namespaceSource = defineSource({
  kind: "source",
  type: "azure_eventgrid_namespace",
  summary: "Pulls from an Event Grid namespace subscription (at least once: acknowledge, release, reject, renewed locks)",
  stability: "beta",
  schema: NamespaceSourceSchema,
  lint: (cfg) => {
    const out = lintAuth(cfg, ["key", "credential"]);
    if (cfg.lock_duration < 60_000 || cfg.lock_duration > 300_000) {
      out.push({ level: "warning", path: ["lock_duration"], message: "Event Grid lock durations are 60s–300s; set the subscription's value" });
    }
    if (cfg.max_wait < 10_000 || cfg.max_wait > 120_000) {
      out.push({ level: "warning", path: ["max_wait"], message: "Event Grid takes a receive wait of 10s–120s" });
    }
    return out;
  },
  pausable: () => true,
  load: async () => (await import("./namespace-source.js")).createNamespaceSource,
});

export const namespaceSink = defineSink({
  kind: "sink",
  type: "azure_eventgrid_namespace",
  summary: "Publishes CloudEvents to an Event Grid namespace topic in batches and confirms on 200",
  stability: "beta",
  schema: NamespaceSinkSchema,
  lint: (cfg) => [...lintAuth(cfg, ["key", "credential"]), ...lintBatch(cfg.batch)],
  guarantee: () => "confirmed",
  load: async () => (await import("./namespace-sink.js")).createNamespaceSink,
});
