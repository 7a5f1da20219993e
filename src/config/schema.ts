/**
 * The top-level config schema. Components (`sources.*`, `sinks.*`) are checked here only for a
 * `type`; their options are checked against the connector's own schema in a second phase, so that an
 * unknown `type` yields one clear issue instead of a cascade.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../core/type.js";
import { Duration, ListenAddress, RetryOptions } from "../core/schema-types.js";
import { FilterSpecSchema } from "../filter/index.js";
import { BufferSchema } from "./buffer.js";
import { SubscriptionsSchema, type SubscriptionsConfig } from "./subscriptions.js";

const ComponentId = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$";
const AttributeName = "^[a-z0-9]+$";

export const EngineSchema = Type.Object(
  {
    instance_id: Type.Optional(
      Type.String({ minLength: 1, pattern: "^[A-Za-z0-9_.-]+$", description: "names this daemon; default: host name" }),
    ),
    admin: Type.Object(
      {
        listen: Type.Union([ListenAddress(), Type.Literal("off")], {
          default: "127.0.0.1:8081",
          description: "address of /healthz /readyz /metrics /status, or `off`",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    shutdown_timeout: Duration({ default: "30s", description: "how long SIGTERM waits for in-flight events" }),
    log: Type.Object(
      {
        level: Type.Union(
          ["trace", "debug", "info", "warn", "error", "fatal", "silent"].map((l) => Type.Literal(l)),
          { default: "info" },
        ),
        format: Type.Literal("json", { default: "json", description: "JSON lines on stderr" }),
      },
      { additionalProperties: false, default: {} },
    ),
    tracing: Type.Object(
      {
        enabled: Type.Boolean({
          default: false,
          description: "OpenTelemetry spans per delivery, exported as the standard OTEL_* variables say (OTLP over HTTP by default)",
        }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, default: {} },
);

export const TransformSchema = Type.Object(
  {
    set: Type.Optional(
      Type.Record(Type.String({ pattern: AttributeName }), Type.String(), {
        description: "attribute → template (`{attr}`, `{attr:-default}`)",
      }),
    ),
    remove: Type.Optional(Type.Array(Type.String({ pattern: AttributeName }), { description: "attributes to drop" })),
    rename: Type.Optional(
      Type.Record(Type.String({ pattern: AttributeName }), Type.String({ pattern: AttributeName }), {
        description: "old attribute name → new name",
      }),
    ),
    map_type: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { description: "type → new type" })),
    map_source: Type.Optional(Type.Record(Type.String({ minLength: 1 }), Type.String({ minLength: 1 }), { description: "source → new source" })),
  },
  { additionalProperties: false, description: "applied in the order rename, map_type, map_source, set, remove" },
);

export const RouteSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, pattern: ComponentId }),
    from: Type.String({ minLength: 1, description: "a source id" }),
    to: Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: "sink ids; each confirms separately" }),
    filter: Type.Optional(FilterSpecSchema),
    transform: Type.Optional(TransformSchema),
    max_in_flight: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 256, description: "the route's window, in events" }),
    buffer: Type.Optional(BufferSchema),
    retry: Type.Object(RetryOptions.properties, { additionalProperties: false, default: {} }),
    timeout: Duration({ default: "30s", description: "deadline of one sink write (a timeout is transient)" }),
    dead_letter: Type.Optional(Type.String({ minLength: 1, description: "sink id for permanent failures" })),
    max_deliveries: Type.Optional(
      Type.Integer({ minimum: 1, description: "dead-letter instead of releasing once the source's delivery count reaches this" }),
    ),
    loop_prevention: Type.Boolean({ default: true, description: "add and check cebridgevia / cebridgehops" }),
    max_hops: Type.Integer({ minimum: 1, default: 8 }),
    dedupe: Type.Optional(
      Type.Object(
        {
          window: Duration({ default: "10m", description: "how long a delivered source+id is remembered" }),
          max_keys: Type.Integer({ minimum: 1, default: 100_000, description: "the oldest key is forgotten past this many" }),
        },
        { additionalProperties: false, description: "drop redeliveries of events already delivered (key: source + id)" },
      ),
    ),
    ordering: Type.Optional(
      Type.Literal("partitionkey", { description: "deliver events with the same partitionkey in order; keys in parallel" }),
    ),
  },
  { additionalProperties: false },
);

const Component = Type.Object(
  { type: Type.String({ minLength: 1, description: "connector type" }) },
  { additionalProperties: true },
);

export const ConfigSchema = Type.Object(
  {
    engine: EngineSchema,
    // additionalProperties false: an id that breaks the pattern is an error, not silently unchecked.
    sources: Type.Record(Type.String({ pattern: ComponentId }), Component, { default: {}, additionalProperties: false }),
    sinks: Type.Record(Type.String({ pattern: ComponentId }), Component, { default: {}, additionalProperties: false }),
    routes: Type.Array(RouteSchema, { minItems: 1 }),
    subscriptions: Type.Optional(SubscriptionsSchema),
  },
  { additionalProperties: false },
);

export type EngineConfig = Static<typeof EngineSchema>;
export type RouteConfig = Static<typeof RouteSchema>;
export type TransformConfig = Static<typeof TransformSchema>;

/** A component after its connector schema validated it: `type` plus the connector's typed options. */
export interface ComponentConfig {
  readonly type: string;
  readonly options: Readonly<Record<string, unknown>>;
}

/** The validated, frozen config handed to the engine. */
export interface BridgeConfig {
  readonly file: string;
  readonly engine: EngineConfig & { readonly instance_id: string };
  readonly sources: Readonly<Record<string, ComponentConfig>>;
  readonly sinks: Readonly<Record<string, ComponentConfig>>;
  readonly routes: readonly RouteConfig[];
  /**
   * The Subscriptions API, when configured. Each stream's route then also lists the virtual sink
   * `subscriptions:<stream>` in `to`, and `sinks` holds it (type `subscriptions`).
   */
  readonly subscriptions?: SubscriptionsConfig;
}
