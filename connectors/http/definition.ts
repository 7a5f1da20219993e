import { Type } from "../../src/core/type.js";
import { defineSink, defineSource } from "../../src/core/connector.js";
import { Duration, EventFormatOption, lintFormat, ListenAddress, Secret, Size, TlsOptions } from "../../src/core/schema-types.js";

export const httpSourceSchema = Type.Object(
  {
    listen: ListenAddress({ default: "127.0.0.1:8080", description: "host:port to listen on" }),
    path: Type.String({ pattern: "^/", default: "/", description: "path that accepts events (other paths answer 404)" }),
    max_body: Size({ default: "1MiB", description: "largest request body; larger requests get 413" }),
    max_depth: Type.Integer({ minimum: 1, maximum: 1000, default: 64, description: "deepest JSON nesting accepted" }),
    auth: Type.Optional(
      Type.Object(
        { bearer: Secret({ description: "token expected as `Authorization: Bearer <token>` or `?access_token=`" }) },
        { additionalProperties: false },
      ),
    ),
    allowed_origins: Type.Array(Type.String({ minLength: 1 }), {
      default: ["*"],
      description: "origins granted in the webhook abuse-protection handshake (OPTIONS); `*` allows any",
    }),
    plain: Type.Optional(
      Type.Object(
        {
          type: Type.String({ minLength: 1, description: "`type` of the wrapped event" }),
          source: Type.String({ minLength: 1, description: "`source` of the wrapped event" }),
          id_header: Type.Optional(Type.String({ minLength: 1, description: "request header whose value becomes `id` (else a new UUID)" })),
        },
        { additionalProperties: false, description: "wrap non-CloudEvents requests instead of answering 415" },
      ),
    ),
    retry_after: Duration({ default: "1s", description: "Retry-After sent with 429 (window full) and 503" }),
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

export const httpSinkSchema = Type.Object(
  {
    url: Type.String({ pattern: "^https?://", description: "where to POST events" }),
    mode: Type.Union([Type.Literal("binary"), Type.Literal("structured"), Type.Literal("batch")], {
      default: "binary",
      description: "CloudEvents HTTP binding mode",
    }),
    format: EventFormatOption,
    headers: Type.Record(Type.String({ pattern: "^[A-Za-z0-9-]+$" }), Type.String(), {
      default: {},
      writeOnly: true,
      description: "extra request headers (values are treated as secrets)",
    }),
    auth: Type.Optional(Type.Object({ bearer: Secret({ description: "sent as `Authorization: Bearer <token>`" }) }, { additionalProperties: false })),
    timeout: Duration({ default: "30s", description: "deadline of one request" }),
    max_connections: Type.Integer({ minimum: 1, default: 64, description: "concurrent connections to the receiver" }),
    batch: Type.Object(
      {
        max_events: Type.Integer({ minimum: 1, default: 100 }),
        max_bytes: Size({ default: "1MiB" }),
        linger: Duration({ default: "5ms", description: "how long a batch waits to fill up" }),
      },
      { additionalProperties: false, default: {} },
    ),
    tls: Type.Optional(TlsOptions),
    handshake: Type.Optional(
      Type.Object(
        {
          origin: Type.Optional(
            Type.String({ minLength: 1, pattern: "^[A-Za-z0-9.-]+$", description: "WebHook-Request-Origin: the DNS name this sender gives (default: engine.instance_id)" }),
          ),
          rate: Type.Optional(Type.Integer({ minimum: 1, description: "requests per minute asked for (WebHook-Request-Rate); the granted WebHook-Allowed-Rate is honoured either way" })),
        },
        {
          additionalProperties: false,
          description: "ask the receiver for consent (the CloudEvents webhook abuse-protection handshake, OPTIONS) before the first delivery",
        },
      ),
    ),
  },
  { additionalProperties: false },
);

/** Receives CloudEvents over HTTP (binary, structured and batch mode): the webhook side. */
export const httpSource = defineSource({
  kind: "source",
  type: "http",
  summary: "Receives CloudEvents by HTTP POST; answers 2xx only after every sink confirmed",
  stability: "stable",
  schema: httpSourceSchema,
  pausable: () => true,
  load: async () => (await import("./server-source.js")).createHttpSource,
});

/** Sends CloudEvents by HTTP POST (binary, structured or batch mode). */
export const httpSink = defineSink({
  kind: "sink",
  type: "http",
  summary: "POSTs each event (or batch) and confirms on 2xx; retries 408, 429, 5xx and network errors",
  stability: "stable",
  schema: httpSinkSchema,
  lint: (cfg) => lintFormat(cfg, "binary"),
  guarantee: () => "confirmed",
  load: async () => (await import("./client-sink.js")).createHttpSink,
});
