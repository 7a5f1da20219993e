/**
 * The `subscriptions:` section: the Subscriptions API listener and the named streams consumers may
 * subscribe to (docs/subscriptions-api.md §6). Its schema, its cross-checks for `lint`, and how a
 * stream is wired into its route: the route gets one more target, the virtual sink
 * `subscriptions:<stream>`, which confirms once an event is in every matching subscription's queue.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../core/type.js";
import { Duration, ListenAddress, Secret, Size } from "../core/schema-types.js";
import type { BridgeConfig } from "./schema.js";
import type { RawIssue } from "./validate.js";

/** Protocols a subscription may ask for, as the Subscriptions API spells them (case-sensitive). */
export const SUBSCRIPTION_PROTOCOLS = ["HTTP", "MQTT3", "MQTT5", "NATS", "AMQP"] as const;
export type SubscriptionProtocol = (typeof SUBSCRIPTION_PROTOCOLS)[number];

/** Type of the virtual sink that feeds a stream's subscriptions; never written by users. */
export const STREAM_SINK_TYPE = "subscriptions";

/** Id of the virtual sink of stream `name` (`:` cannot appear in a user's component id). */
export function streamSinkId(name: string): string {
  return `subscriptions:${name}`;
}

const StreamName = "^[A-Za-z0-9_][A-Za-z0-9_.-]*$";

const MemoryQueue = Type.Object(
  {
    type: Type.Literal("memory"),
    max_bytes: Type.Optional(Size({ default: "16MiB", description: "events held per subscription, in bytes (attributes and data)" })),
  },
  { additionalProperties: false, description: "{ type: memory, max_bytes }: lost on a crash or restart" },
);

const DiskQueue = Type.Object(
  {
    type: Type.Literal("disk"),
    max_bytes: Type.Optional(Size({ default: "256MiB", description: "disk space per subscription, in bytes" })),
    fsync: Type.Optional(
      Type.Union([Type.Literal("always"), Type.Literal("interval")], {
        default: "always",
        description: "confirm to the route after fsync (always) or after the write, syncing every second (interval)",
      }),
    ),
  },
  { additionalProperties: false, description: "{ type: disk, max_bytes, fsync }: under state_dir/queues/<id>, kept across restarts" },
);

export const StreamSchema = Type.Object(
  {
    route: Type.String({ minLength: 1, description: "the route that feeds this stream: its events after filter and transform" }),
    protocols: Type.Array(Type.Union(SUBSCRIPTION_PROTOCOLS.map((p) => Type.Literal(p))), {
      minItems: 1,
      uniqueItems: true,
      default: [...SUBSCRIPTION_PROTOCOLS],
      description: "protocols a subscriber may ask for",
    }),
    allowed_sinks: Type.Array(Type.String({ minLength: 1 }), {
      default: [],
      description: "URL prefixes a subscription's sink must start with (scheme, host and port equal, path under the prefix's); empty: none",
    }),
    max_in_flight: Type.Integer({ minimum: 1, maximum: 10_000, default: 16, description: "deliveries in flight per subscription" }),
    queue: Type.Optional(Type.Union([MemoryQueue, DiskQueue], { description: "each subscription's queue: memory (default, 16MiB) or disk" })),
    retry: Type.Object(
      {
        initial: Duration({ default: "1s", description: "first backoff delay" }),
        max: Duration({ default: "1m", description: "largest backoff delay" }),
        max_elapsed: Duration({ default: "1h", description: "after this long a delivery is given up: dead-lettered, or counted failed" }),
      },
      { additionalProperties: false, default: {} },
    ),
    timeout: Duration({ default: "30s", description: "deadline of one delivery attempt" }),
    connect_timeout: Duration({ default: "10s", description: "how long a create or replace waits for the sink to connect (and an HTTP target to grant the handshake)" }),
    dead_letter: Type.Optional(Type.String({ minLength: 1, description: "sink id for deliveries that failed for good" })),
  },
  { additionalProperties: false },
);

export const SubscriptionsSchema = Type.Object(
  {
    listen: ListenAddress({ default: "127.0.0.1:8082", description: "address of the Subscriptions API (not the admin port)" }),
    auth: Type.Optional(
      Type.Object({ bearer: Secret({ description: "token every request must carry as `Authorization: Bearer <token>`" }) }, { additionalProperties: false }),
    ),
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
    state_dir: Type.String({ minLength: 1, description: "directory of the state file (subscriptions.json) and the disk queues" }),
    max_subscriptions: Type.Integer({ minimum: 1, maximum: 10_000, default: 100, description: "subscriptions across every stream" }),
    max_body: Size({ default: "64KiB", description: "largest request body; larger requests get 413" }),
    origin: Type.Optional(
      Type.String({ minLength: 1, pattern: "^[A-Za-z0-9.-]+$", description: "WebHook-Request-Origin in the HTTP handshake (default: engine.instance_id)" }),
    ),
    streams: Type.Record(Type.String({ pattern: StreamName }), StreamSchema, {
      additionalProperties: false,
      description: "stream name (letters, digits, _ . -) → what feeds it and what subscribers may do",
    }),
  },
  { additionalProperties: false, description: "the CloudEvents Subscriptions API" },
);

export type StreamConfig = Static<typeof StreamSchema>;
export type SubscriptionsConfig = Static<typeof SubscriptionsSchema>;

/** The `queue` a stream runs with: the configured one, or the default memory queue. */
export function streamQueue(s: StreamConfig): { type: "memory"; max_bytes: number } | { type: "disk"; max_bytes: number; fsync: "always" | "interval" } {
  const q = s.queue as { type?: string; max_bytes?: unknown; fsync?: "always" | "interval" } | undefined;
  if (q?.type === "disk") return { type: "disk", max_bytes: num(q.max_bytes, 256 * 1024 ** 2), fsync: q.fsync ?? "always" };
  return { type: "memory", max_bytes: num(q?.max_bytes, 16 * 1024 ** 2) };
}

/** The validator fills no defaults inside a union: sizes left unset fall back here. */
function num(v: unknown, fallback: number): number {
  return typeof v === "number" ? v : fallback;
}

interface RawRoute {
  readonly name?: unknown;
}

/**
 * Cross-checks of a `subscriptions:` section that validated against its schema: each stream names a
 * route and, for its dead letters, a sink; the API is protected; sink prefixes are URLs.
 */
export function checkSubscriptions(
  raw: Record<string, unknown>,
  routes: readonly RawRoute[],
  sinks: unknown,
  adminListen: unknown,
): { errors: RawIssue[]; warnings: RawIssue[]; usedSinks: Set<string> } {
  const errors: RawIssue[] = [];
  const warnings: RawIssue[] = [];
  const usedSinks = new Set<string>();
  const at = ["subscriptions"];
  const auth = raw["auth"] as { bearer?: unknown } | undefined;
  const tls = raw["tls"] as { ca?: unknown } | undefined;
  if (auth === undefined && tls?.ca === undefined) {
    errors.push({ code: "CFG_REQUIRED", path: at, message: "the Subscriptions API needs auth.bearer, or tls.ca (clients then authenticate with certificates)" });
  }
  if (typeof raw["listen"] === "string" && raw["listen"] === adminListen) {
    errors.push({ code: "CFG_VALUE", path: [...at, "listen"], message: `"${raw["listen"]}" is also engine.admin.listen: the API needs its own listener` });
  }
  const routeNames = new Set(routes.map((r) => r.name).filter((n): n is string => typeof n === "string"));
  const sinkIds = new Set(sinks !== null && typeof sinks === "object" ? Object.keys(sinks) : []);
  const streams = (raw["streams"] ?? {}) as Record<string, Record<string, unknown>>;
  for (const [name, s] of Object.entries(streams)) {
    if (s === null || typeof s !== "object" || !new RegExp(StreamName).test(name)) continue;
    const sp = [...at, "streams", name];
    if (typeof s["route"] === "string" && !routeNames.has(s["route"])) {
      errors.push({ code: "CFG_REF", path: [...sp, "route"], message: `no route named "${s["route"]}"${routeNames.size ? ` (defined: ${[...routeNames].join(", ")})` : ""}` });
    }
    if (typeof s["dead_letter"] === "string") {
      if (!sinkIds.has(s["dead_letter"])) {
        errors.push({ code: "CFG_REF", path: [...sp, "dead_letter"], message: `no sink named "${s["dead_letter"]}"${sinkIds.size ? ` (defined: ${[...sinkIds].join(", ")})` : " (none are defined)"}` });
      } else usedSinks.add(s["dead_letter"]);
    } else if (s["dead_letter"] === undefined) {
      warnings.push({ code: "CFG_DELIVERY", path: sp, message: "stream has no dead_letter sink: deliveries that fail for good are logged and counted only" });
    }
    const allowed = Array.isArray(s["allowed_sinks"]) ? (s["allowed_sinks"] as unknown[]) : [];
    if (allowed.length === 0) {
      warnings.push({ code: "CFG_VALUE", path: sp, message: "allowed_sinks is empty: no subscription can be created on this stream" });
    }
    allowed.forEach((prefix, i) => {
      if (typeof prefix !== "string") return;
      const problem = prefixProblem(prefix);
      if (problem) errors.push({ code: "CFG_VALUE", path: [...sp, "allowed_sinks", i], message: problem });
    });
  }
  return { errors, warnings, usedSinks };
}

/** Schemes a sink prefix may have, per protocol family. */
const SCHEMES = new Set(["http:", "https:", "mqtt:", "mqtts:", "nats:", "tls:", "amqp:", "amqps:"]);

function prefixProblem(prefix: string): string | undefined {
  let u: URL;
  try {
    u = new URL(prefix);
  } catch {
    return `"${prefix}" is not a URL (write it like https://hooks.example.com/ or nats://nats:4222)`;
  }
  if (!SCHEMES.has(u.protocol)) return `scheme "${u.protocol}" is none of ${[...SCHEMES].join(" ")}`;
  if (u.hostname === "") return `"${prefix}" has no host`;
  if (u.username !== "" || u.password !== "") return "a sink prefix cannot hold credentials; subscribers send theirs in sinkcredential";
  if (u.search !== "" || u.hash !== "") return "a sink prefix cannot have a query or a fragment";
  return undefined;
}

/**
 * Wires each stream into its route: the route also writes to the virtual sink
 * `subscriptions:<stream>` (type `subscriptions`, options `{ stream }`). The engine then runs it like
 * any sink (opened before the source starts, kept or replaced by a reload like the others), and the
 * route's counters and `/status` show it as one more target.
 */
export function wireStreams<C extends { readonly sinks: Readonly<Record<string, { readonly type: string; readonly options: Readonly<Record<string, unknown>> }>>; readonly routes: readonly { readonly name: string; readonly to: readonly string[] }[] }>(
  config: C,
  subscriptions: SubscriptionsConfig,
): C & { readonly subscriptions: SubscriptionsConfig } {
  const sinks = { ...config.sinks };
  const extra = new Map<string, string[]>();
  for (const [name, stream] of Object.entries(subscriptions.streams)) {
    const id = streamSinkId(name);
    sinks[id] = { type: STREAM_SINK_TYPE, options: { stream: name } };
    extra.set(stream.route, [...(extra.get(stream.route) ?? []), id]);
  }
  const routes = config.routes.map((r) => (extra.has(r.name) ? { ...r, to: [...r.to, ...extra.get(r.name)!] } : r));
  return { ...config, sinks, routes, subscriptions };
}

/** Why `next` cannot be applied by a hot reload of a daemon running `running` (it then needs a restart). */
export function subscriptionsReloadProblem(running: BridgeConfig, next: BridgeConfig | undefined): string | undefined {
  if (!next) return undefined;
  const a = running.subscriptions;
  const b = next.subscriptions;
  if (!a && b) return "adding the subscriptions section needs a restart";
  if (a && !b) return "removing the subscriptions section needs a restart (its subscriptions stay in the state file)";
  if (a && b && a.state_dir !== b.state_dir) return "changing state_dir needs a restart";
  return undefined;
}
