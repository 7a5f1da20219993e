/**
 * Reads a subscription request body into a `Subscription`, by hand: the draft's OpenAPI schemas
 * cannot validate (docs/subscriptions-api.md §0, finding 3). Every refusal is a
 * `SubscriptionInvalidError` naming the field as a JSON pointer into the body as sent (and, for a
 * CESQL filter, the offset inside the expression). Pure: no I/O, no clock but the one passed in.
 *
 * Rules beyond the draft (each is in the README):
 * - unknown members are refused, at every level; camelCase spellings of the draft's names are
 *   accepted on input (`sinkCredential`, `protocolSettings`, `topicName`, `accessToken`...), and two
 *   spellings of one name are refused;
 * - `config` must be empty (no keys are defined for this manager);
 * - a sink must start with one of the stream's `allowed_sinks`, carry no user info, and for HTTP
 *   be `https://` unless its host is loopback; `access_token` in its query is refused (send the
 *   token as a credential);
 * - topics and subjects are literal: no wildcards, and no `{` `}` (cebridge topics are templates);
 * - what no connector can do yet is refused: MQTT `expiry` and `userproperties`, HTTP `method`
 *   other than POST, PLAIN credentials over HTTP, REFRESHTOKEN credentials.
 */
import { isIP } from "node:net";
import { SUBSCRIPTION_PROTOCOLS, type SubscriptionProtocol } from "../config/subscriptions.js";
import { SubscriptionInvalidError } from "../core/errors.js";
import { compileFilter, FilterCompileError, type FilterSpec } from "../filter/index.js";
import type { AmqpSettings, HttpSettings, MqttSettings, NatsSettings, ProtocolSettings, SinkCredential, Subscription } from "./model.js";

/** What a stream lets its subscribers do (from its config). */
export interface StreamRules {
  readonly protocols: readonly SubscriptionProtocol[];
  readonly allowedSinks: readonly string[];
}

export interface ReadContext {
  readonly rules: StreamRules;
  /** The server-assigned id (create) or the path's id (replace). */
  readonly id: string;
  /** For a replace: the stored subscription, whose write-only members an absent member keeps. */
  readonly previous?: Subscription | undefined;
  readonly now: Date;
}

const LIMITS = { types: 256, typeLength: 1024, source: 4096, sink: 2048, filters: 64, headers: 64, headerValue: 8192, name: 1024, secret: 8192, depth: 32 };

type Obj = Record<string, unknown>;

/** A JSON pointer segment (RFC 6901). */
function seg(key: string | number): string {
  return `/${String(key).replace(/~/g, "~0").replace(/\//g, "~1")}`;
}

function fail(message: string, field: string, position?: number): never {
  throw new SubscriptionInvalidError(message, field, position);
}

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The members of `value` under lower-cased names, each with the pointer of its name as sent.
 * Refuses members not in `known` and two spellings of one name.
 */
function members(value: unknown, at: string, known: readonly string[], what: string): Map<string, { value: unknown; at: string }> {
  if (!isObj(value)) fail(`${what} must be a JSON object`, at === "" ? "" : at);
  const out = new Map<string, { value: unknown; at: string }>();
  for (const [key, v] of Object.entries(value)) {
    const name = key.toLowerCase();
    const here = at + seg(key);
    if (!known.includes(name)) fail(`unknown member "${clip(key)}"${known.length ? `; allowed: ${known.join(", ")}` : ""}`, here);
    if (out.has(name)) fail(`"${clip(key)}" is given twice (names are case-insensitive here)`, here);
    out.set(name, { value: v, at: here });
  }
  return out;
}

function clip(s: string): string {
  return s.length > 64 ? `${s.slice(0, 64)}...` : s;
}

function str(m: { value: unknown; at: string }, what: string, max: number): string {
  if (typeof m.value !== "string" || m.value.length === 0) fail(`${what} must be a non-empty string`, m.at);
  if (m.value.length > max) fail(`${what} is longer than ${max} characters`, m.at);
  return m.value;
}

/** Nesting depth of a parsed JSON value, iteratively (a hostile body cannot overflow the stack). */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (typeof v !== "object" || v === null) continue;
    if (d > max) max = d;
    if (max > LIMITS.depth) return max;
    for (const c of Object.values(v)) stack.push([c, d + 1]);
  }
  return max;
}

const TOP = ["id", "source", "types", "config", "filters", "sink", "sinkcredential", "protocol", "protocolsettings"] as const;

/** Reads a create (`previous` absent) or replace body. Throws `SubscriptionInvalidError`. */
export function readSubscription(body: unknown, ctx: ReadContext): Subscription {
  if (jsonDepth(body) > LIMITS.depth) fail(`the body is nested deeper than ${LIMITS.depth} levels`, "");
  const m = members(body, "", TOP, "a subscription");
  const id = m.get("id");
  // Create: the draft says a given id MUST be ignored. Replace: it must name the path's subscription.
  if (ctx.previous && id !== undefined && id.value !== ctx.id) fail(`id must be "${ctx.id}", the subscription this path names (or be left out)`, id.at);

  const protocolM = m.get("protocol");
  if (!protocolM) fail("protocol is required (one of " + ctx.rules.protocols.join(", ") + ")", "/protocol");
  if (typeof protocolM.value !== "string" || !(SUBSCRIPTION_PROTOCOLS as readonly string[]).includes(protocolM.value)) {
    fail(`protocol must be one of ${SUBSCRIPTION_PROTOCOLS.join(", ")} (case-sensitive); KAFKA is not supported`, protocolM.at);
  }
  const protocol = protocolM.value as SubscriptionProtocol;
  if (!ctx.rules.protocols.includes(protocol)) fail(`this stream does not offer ${protocol}; it offers ${ctx.rules.protocols.join(", ")}`, protocolM.at);

  const sinkM = m.get("sink");
  if (!sinkM) fail("sink is required", "/sink");
  const sink = readSink(str(sinkM, "sink", LIMITS.sink), protocol, ctx.rules.allowedSinks, sinkM.at);

  const out: { -readonly [K in keyof Subscription]: Subscription[K] } = {
    id: ctx.id,
    sink,
    protocol,
    protocolsettings: readSettings(m.get("protocolsettings"), protocol, sink),
  };
  const source = m.get("source");
  if (source !== undefined) out.source = str(source, "source", LIMITS.source);
  const types = m.get("types");
  if (types !== undefined) out.types = readTypes(types);
  const config = m.get("config");
  if (config !== undefined) {
    if (!isObj(config.value)) fail("config must be a JSON object", config.at);
    const first = Object.keys(config.value)[0];
    if (first !== undefined) fail("this manager defines no config keys (config must be empty)", config.at + seg(first));
  }
  const filters = m.get("filters");
  if (filters !== undefined) out.filters = readFilters(filters);

  const cred = m.get("sinkcredential");
  const credential = cred === undefined ? ctx.previous?.sinkcredential : cred.value === null ? undefined : readCredential(cred, ctx.now);
  if (credential) {
    checkCredentialFits(credential, protocol, cred?.at ?? "/sinkcredential");
    out.sinkcredential = credential;
  }
  // Replace without headers keeps the stored ones (never shown, so a client cannot send them back).
  if (protocol === "HTTP" && ctx.previous?.protocol === "HTTP") {
    const given = (m.get("protocolsettings")?.value as Obj | undefined) ?? {};
    const mentioned = Object.keys(given).some((k) => k.toLowerCase() === "headers");
    const kept = (ctx.previous.protocolsettings as HttpSettings).headers;
    if (!mentioned && kept) out.protocolsettings = { ...(out.protocolsettings as HttpSettings), headers: kept };
  }
  return out;
}

function readTypes(m: { value: unknown; at: string }): string[] {
  if (!Array.isArray(m.value) || m.value.length === 0) fail("types must be a non-empty array of strings", m.at);
  if (m.value.length > LIMITS.types) fail(`types holds more than ${LIMITS.types} entries`, m.at);
  const out: string[] = [];
  m.value.forEach((t, i) => {
    const s = str({ value: t, at: m.at + seg(i) }, "a type", LIMITS.typeLength);
    if (!out.includes(s)) out.push(s);
  });
  return out;
}

function readFilters(m: { value: unknown; at: string }): FilterSpec[] {
  if (!Array.isArray(m.value)) fail("filters must be an array of filter expressions", m.at);
  if (m.value.length > LIMITS.filters) fail(`filters holds more than ${LIMITS.filters} expressions`, m.at);
  m.value.forEach((f, i) => {
    try {
      compileFilter(f as FilterSpec);
    } catch (err) {
      if (!(err instanceof FilterCompileError)) throw err;
      fail(err.message, m.at + seg(i) + err.path.map(seg).join(""), err.position);
    }
  });
  return m.value as FilterSpec[];
}

const SCHEMES: Record<SubscriptionProtocol, readonly string[]> = {
  HTTP: ["https:", "http:"],
  MQTT3: ["mqtt:", "mqtts:"],
  MQTT5: ["mqtt:", "mqtts:"],
  NATS: ["nats:", "tls:"],
  AMQP: ["amqp:", "amqps:"],
};

/** The sink URL, checked for its protocol and against the stream's allowed prefixes. */
function readSink(sink: string, protocol: SubscriptionProtocol, allowed: readonly string[], at: string): string {
  let u: URL;
  try {
    u = new URL(sink);
  } catch {
    fail("sink must be an absolute URL", at);
  }
  if (!SCHEMES[protocol].includes(u.protocol)) fail(`a ${protocol} sink must be a ${SCHEMES[protocol].map((s) => `${s}//`).join(" or ")} URL`, at);
  if (u.hostname === "") fail("sink has no host", at);
  if (u.username !== "" || u.password !== "") fail("sink cannot carry user info; send credentials in sinkcredential", at);
  if (u.hash !== "") fail("sink cannot have a fragment", at);
  if (u.searchParams.has("access_token")) fail("sink cannot carry access_token in its query; send it as an ACCESSTOKEN sinkcredential", at);
  if (protocol === "HTTP" && u.protocol === "http:" && !isLoopback(u.hostname)) fail("an HTTP sink must be https:// unless it is on this machine (loopback)", at);
  if (protocol !== "HTTP" && protocol !== "AMQP" && u.pathname !== "" && u.pathname !== "/") fail(`a ${protocol} sink names a server only (${u.protocol}//host:port); put the ${protocol === "NATS" ? "subject" : "topic"} in protocolsettings`, at);
  if (!allowed.some((p) => underPrefix(u, p))) fail("sink is not under any of this stream's allowed_sinks", at);
  return sink;
}

/** 127.0.0.0/8, ::1 and `localhost`. */
export function isLoopback(hostname: string): boolean {
  const h = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 4) return h.startsWith("127.");
  return h === "::1";
}

/** Same scheme, host and port, and the sink's path under the prefix's (by whole segments). */
export function underPrefix(sink: URL, prefix: string): boolean {
  let p: URL;
  try {
    p = new URL(prefix);
  } catch {
    return false;
  }
  if (p.protocol !== sink.protocol || p.hostname.toLowerCase() !== sink.hostname.toLowerCase() || p.port !== sink.port) return false;
  const base = p.pathname === "" ? "/" : p.pathname;
  const path = sink.pathname === "" ? "/" : sink.pathname;
  if (base.endsWith("/")) return path.startsWith(base) || path === base.slice(0, -1);
  return path === base || path.startsWith(`${base}/`);
}

/** An AMQP sink URL's path as an address (RabbitMQ's `/amq/queue/x` form keeps its leading slash), if it has one. */
function sinkPath(sink: string): string | undefined {
  const path = new URL(sink).pathname;
  if (path === "" || path === "/") return undefined;
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

function readSettings(m: { value: unknown; at: string } | undefined, protocol: SubscriptionProtocol, sink: string): ProtocolSettings {
  const at = m?.at ?? "/protocolsettings";
  const value = m?.value ?? {};
  switch (protocol) {
    case "HTTP": {
      const s = members(value, at, ["headers", "method", "mode"], "protocolsettings");
      const method = s.get("method");
      if (method !== undefined && method.value !== "POST") fail("method must be POST: the CloudEvents web-hook spec delivers by POST only", method.at);
      const out: { -readonly [K in keyof HttpSettings]: HttpSettings[K] } = { method: "POST", mode: readMode(s.get("mode"), "binary") };
      const headers = s.get("headers");
      if (headers !== undefined && headers.value !== null) out.headers = readHeaders(headers);
      return out;
    }
    case "MQTT3":
    case "MQTT5": {
      const s = members(value, at, ["topicname", "qos", "retain", "expiry", "userproperties", "mode"], "protocolsettings");
      for (const name of ["expiry", "userproperties"]) {
        const x = s.get(name);
        if (x !== undefined) fail(`${name} is not supported yet (the MQTT sink cannot set it)`, x.at);
      }
      const topic = s.get("topicname");
      if (!topic) fail("topicname is required for MQTT", `${at}/topicname`);
      const topicname = literalName(str(topic, "topicname", LIMITS.name), topic.at, "topic");
      if (/[+#]/.test(topicname)) fail("topicname cannot contain the wildcards + or #", topic.at);
      if (topicname.startsWith("$")) fail("topics starting with $ are reserved for the broker", topic.at);
      const qosM = s.get("qos");
      const qos = qosM === undefined ? 1 : qosM.value;
      if (qos !== 0 && qos !== 1 && qos !== 2) fail("qos must be 0, 1 or 2", qosM!.at);
      const retainM = s.get("retain");
      if (retainM !== undefined && typeof retainM.value !== "boolean") fail("retain must be true or false", retainM.at);
      const out: { -readonly [K in keyof MqttSettings]: MqttSettings[K] } = { topicname, qos, retain: (retainM?.value as boolean | undefined) ?? false };
      const mode = s.get("mode");
      if (protocol === "MQTT3" && mode !== undefined && mode.value !== "structured") fail("MQTT 3.1.1 has no message properties: only structured mode is possible", mode.at);
      if (protocol === "MQTT5") out.mode = readMode(mode, "binary");
      return out;
    }
    case "AMQP": {
      const s = members(value, at, ["address", "linkname", "sendersettlementmode", "linkproperties", "mode"], "protocolsettings");
      for (const name of ["linkname", "linkproperties"]) {
        const x = s.get(name);
        if (x !== undefined) fail(`${name} is not supported yet (the AMQP sink names and configures its own link)`, x.at);
      }
      const mode = s.get("sendersettlementmode");
      if (mode !== undefined && mode.value !== "unsettled") fail('sendersettlementmode must be "unsettled": a delivery counts once the broker accepted it (settled would be at most once)', mode.at);
      const addressM = s.get("address");
      // The draft: `address` names the node when the sink's path does not.
      const fromPath = sinkPath(sink);
      if (!addressM && fromPath === undefined) fail("address is required for AMQP when the sink URL has no path", `${at}/address`);
      const address = addressM ? literalName(str(addressM, "address", LIMITS.name), addressM.at, "address") : literalName(fromPath!, "/sink", "address");
      const out: AmqpSettings = { address, sendersettlementmode: "unsettled", mode: readMode(s.get("mode"), "binary") };
      return out;
    }
    case "NATS": {
      const s = members(value, at, ["subject", "mode"], "protocolsettings");
      const subjectM = s.get("subject");
      if (!subjectM) fail("subject is required for NATS", `${at}/subject`);
      const subject = literalName(str(subjectM, "subject", LIMITS.name), subjectM.at, "subject");
      if (/[*>]/.test(subject)) fail("subject cannot contain the wildcards * or >", subjectM.at);
      if (/\s/.test(subject)) fail("subject cannot contain whitespace", subjectM.at);
      if (subject.split(".").some((t) => t === "")) fail("subject cannot have empty tokens (leading, trailing or double dots)", subjectM.at);
      const out: NatsSettings = { subject, mode: readMode(s.get("mode"), "structured") };
      return out;
    }
  }
}

function readMode(m: { value: unknown; at: string } | undefined, fallback: "binary" | "structured"): "binary" | "structured" {
  if (m === undefined) return fallback;
  if (m.value !== "binary" && m.value !== "structured") fail('mode must be "binary" or "structured"', m.at);
  return m.value;
}

/** A topic or subject is taken literally; cebridge's `{attr}` templates must not be smuggled in. */
function literalName(name: string, at: string, what: string): string {
  if (/[{}]/.test(name)) fail(`${what} cannot contain { or } (a subscription's ${what} is literal, not a template)`, at);
  if (name.includes("\u0000")) fail(`${what} cannot contain U+0000`, at);
  return name;
}

/** Headers the bridge sets itself, or that would break the request. */
const RESERVED_HEADER = /^(ce-|webhook-)|^(content-type|content-length|host|transfer-encoding|connection|authorization|te|upgrade|keep-alive|expect|trailer)$/i;

function readHeaders(m: { value: unknown; at: string }): Record<string, string> {
  if (!isObj(m.value)) fail("headers must be an object of name → string", m.at);
  const entries = Object.entries(m.value);
  if (entries.length > LIMITS.headers) fail(`headers holds more than ${LIMITS.headers} entries`, m.at);
  const out: Record<string, string> = {};
  for (const [name, value] of entries) {
    const here = m.at + seg(name);
    if (!/^[A-Za-z0-9-]{1,128}$/.test(name)) fail("a header name is letters, digits and - (at most 128)", here);
    if (RESERVED_HEADER.test(name)) fail(`header "${name}" is set by the bridge (credentials go in sinkcredential)`, here);
    if (typeof value !== "string") fail("a header value must be a string", here);
    // eslint-disable-next-line no-control-regex
    if (value.length > LIMITS.headerValue || /[\u0000-\u0008\u000a-\u001f\u007f]/.test(value) || /[^\u0000-\u00ff]/.test(value)) {
      fail(`a header value must be at most ${LIMITS.headerValue} Latin-1 characters without control characters`, here);
    }
    if (Object.keys(out).some((k) => k.toLowerCase() === name.toLowerCase())) fail(`header "${name}" is given twice`, here);
    out[name] = value;
  }
  return out;
}

function readCredential(m: { value: unknown; at: string }, now: Date): SinkCredential {
  const c = members(
    m.value,
    m.at,
    ["credentialtype", "identifier", "secret", "accesstoken", "accesstokenexpiresutc", "accesstokenexpireutc", "accesstokentype", "refreshtoken", "refreshtokenendpoint"],
    "sinkcredential",
  );
  const typeM = c.get("credentialtype");
  if (!typeM) fail("credentialtype is required (PLAIN or ACCESSTOKEN)", `${m.at}/credentialtype`);
  const only = (allowed: string[]) => {
    for (const [name, v] of c) if (name !== "credentialtype" && !allowed.includes(name)) fail(`"${name}" does not belong to a ${String(typeM.value)} credential`, v.at);
  };
  switch (typeM.value) {
    case "PLAIN": {
      only(["identifier", "secret"]);
      const identifier = c.get("identifier");
      const secret = c.get("secret");
      if (!identifier) fail("identifier is required for a PLAIN credential", `${m.at}/identifier`);
      if (!secret) fail("secret is required for a PLAIN credential", `${m.at}/secret`);
      return { credentialtype: "PLAIN", identifier: str(identifier, "identifier", LIMITS.secret), secret: str(secret, "secret", LIMITS.secret) };
    }
    case "ACCESSTOKEN": {
      only(["accesstoken", "accesstokenexpiresutc", "accesstokenexpireutc", "accesstokentype"]);
      const token = c.get("accesstoken");
      if (!token) fail("accesstoken is required for an ACCESSTOKEN credential", `${m.at}/accesstoken`);
      const accesstoken = str(token, "accesstoken", LIMITS.secret);
      if (/[\s\u0000-\u001f\u007f]/.test(accesstoken) || /[^\u0000-\u00ff]/.test(accesstoken)) fail("accesstoken cannot contain whitespace or control characters", token.at);
      const typeT = c.get("accesstokentype");
      if (typeT !== undefined && (typeof typeT.value !== "string" || typeT.value.toLowerCase() !== "bearer")) fail('accesstokentype must be "bearer"', typeT.at);
      if (c.has("accesstokenexpiresutc") && c.has("accesstokenexpireutc")) fail("give accesstokenexpiresutc only once", c.get("accesstokenexpireutc")!.at);
      const exp = c.get("accesstokenexpiresutc") ?? c.get("accesstokenexpireutc");
      const out: { -readonly [K in keyof Extract<SinkCredential, { credentialtype: "ACCESSTOKEN" }>]: Extract<SinkCredential, { credentialtype: "ACCESSTOKEN" }>[K] } = {
        credentialtype: "ACCESSTOKEN",
        accesstoken,
        accesstokentype: "bearer",
      };
      if (exp !== undefined) {
        const text = str(exp, "accesstokenexpiresutc", 64);
        const at = Date.parse(text);
        if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(text) || Number.isNaN(at)) fail("accesstokenexpiresutc must be an RFC 3339 date-time", exp.at);
        if (at <= now.getTime()) fail("the access token has already expired", exp.at);
        out.accesstokenexpiresutc = new Date(at).toISOString();
      }
      return out;
    }
    case "REFRESHTOKEN":
      fail("REFRESHTOKEN credentials are not supported (the bridge does not refresh tokens); send an ACCESSTOKEN", typeM.at);
    // falls through: fail never returns
    default:
      fail("credentialtype must be PLAIN or ACCESSTOKEN", typeM.at);
  }
}

function checkCredentialFits(c: SinkCredential, protocol: SubscriptionProtocol, at: string): void {
  if (protocol === "HTTP" && c.credentialtype === "PLAIN") fail("an HTTP sink takes an ACCESSTOKEN (bearer) credential: the web-hook spec has no user/password scheme", `${at}/credentialtype`);
  if ((protocol === "MQTT3" || protocol === "MQTT5" || protocol === "AMQP") && c.credentialtype === "ACCESSTOKEN") {
    fail(`an ${protocol === "AMQP" ? "AMQP" : "MQTT"} sink takes a PLAIN (user name and password) credential`, `${at}/credentialtype`);
  }
}
