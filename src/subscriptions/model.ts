/**
 * The subscription resource (docs/subscriptions-api.md §1): what a subscriber sends, what we store,
 * and what we show back. Names are the lower-case ones of the current draft; `validate.ts` also
 * accepts the camelCase spellings older clients (CAMARA) send.
 *
 * Secrets are write-only: `sinkcredential` and `protocolsettings.headers` are stored (they are
 * needed to deliver) but never appear in `publicView`, so never in a response, `/status`, a log or
 * a metric.
 */
import type { SubscriptionProtocol } from "../config/subscriptions.js";
import type { FilterSpec } from "../filter/index.js";

export type { SubscriptionProtocol };

export interface HttpSettings {
  /** Always POST: the web-hook spec requires it (echoed because the spec's default is shown). */
  readonly method: "POST";
  /** Extra request headers; write-only (values may be credentials). */
  readonly headers?: Readonly<Record<string, string>>;
  /** cebridge extension: the HTTP binding mode. */
  readonly mode: "binary" | "structured";
}

export interface MqttSettings {
  readonly topicname: string;
  readonly qos: 0 | 1 | 2;
  readonly retain: boolean;
  /** cebridge extension, MQTT 5 only (3.1.1 is always structured). */
  readonly mode?: "binary" | "structured";
}

export interface NatsSettings {
  readonly subject: string;
  /** cebridge extension: structured (NATS binding 1.0.2, the default) or binary (1.0.3 draft). */
  readonly mode: "binary" | "structured";
}

export interface AmqpSettings {
  /** The target node (queue, exchange, topic) in the broker's own form, e.g. RabbitMQ's `/amq/queue/orders`. */
  readonly address: string;
  /** Only `unsettled`: a delivery counts once the broker accepted it. */
  readonly sendersettlementmode: "unsettled";
  /** cebridge extension: binary (default) or structured. */
  readonly mode: "binary" | "structured";
}

export type ProtocolSettings = HttpSettings | MqttSettings | NatsSettings | AmqpSettings;

export type SinkCredential =
  | { readonly credentialtype: "PLAIN"; readonly identifier: string; readonly secret: string }
  | { readonly credentialtype: "ACCESSTOKEN"; readonly accesstoken: string; readonly accesstokentype: "bearer"; readonly accesstokenexpiresutc?: string };

/** A validated subscription with the defaults applied ("the realized object"), secrets included. */
export interface Subscription {
  readonly id: string;
  readonly source?: string;
  readonly types?: readonly string[];
  readonly filters?: readonly FilterSpec[];
  readonly sink: string;
  readonly protocol: SubscriptionProtocol;
  readonly protocolsettings: ProtocolSettings;
  readonly sinkcredential?: SinkCredential;
}

/** One line of the state file. */
export interface StoredSubscription {
  readonly stream: string;
  readonly createdat: string;
  readonly subscription: Subscription;
}

/** What a response shows: the subscription without anything write-only. */
export function publicView(s: Subscription): Record<string, unknown> {
  const out: Record<string, unknown> = { id: s.id };
  if (s.source !== undefined) out["source"] = s.source;
  if (s.types !== undefined) out["types"] = [...s.types];
  if (s.filters !== undefined) out["filters"] = structuredClone(s.filters);
  out["sink"] = s.sink;
  out["protocol"] = s.protocol;
  const { headers: _hidden, ...settings } = s.protocolsettings as HttpSettings;
  out["protocolsettings"] = { ...settings };
  return out;
}

/** Every secret value a subscription holds, to scrub from error texts before they are shown. */
export function secretValues(s: Subscription): string[] {
  const out: string[] = [];
  const c = s.sinkcredential;
  if (c?.credentialtype === "PLAIN") out.push(c.secret, c.identifier);
  if (c?.credentialtype === "ACCESSTOKEN") out.push(c.accesstoken);
  const headers = (s.protocolsettings as HttpSettings).headers;
  if (headers) out.push(...Object.values(headers));
  return out.filter((v) => v.length >= 3);
}

/** The sink URL as `/status` and logs show it: no user info, no query, no fragment. */
export function displaySink(sink: string): string {
  try {
    const u = new URL(sink);
    return `${u.protocol}//${u.host}${u.pathname === "/" && !sink.endsWith("/") ? "" : u.pathname}`;
  } catch {
    return "(unparseable)";
  }
}

/** Replaces every occurrence of a secret in `text`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (out.includes(s)) out = out.split(s).join("[redacted]");
  return out;
}
