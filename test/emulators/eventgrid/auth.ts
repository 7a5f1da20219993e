/**
 * Credentials the emulator accepts, checked the way the service does:
 *
 * - basic topics and domains: `aeg-sas-key: <key>`, `aeg-sas-token: r=…&e=…&s=…` (HMAC-SHA256 with
 *   the base64-decoded key over `r=…&e=…`, `r` = the endpoint URL plus `?apiVersion=…`, expiry in the
 *   .NET en-US format `M/d/yyyy h:mm:ss AM|PM` UTC), or `Authorization: Bearer <token>` (https only);
 * - namespaces: `Authorization: SharedAccessKey <key>` or `Authorization: Bearer <token>`.
 *
 * `makeSasToken` builds a token the same way `generateSharedAccessSignature` of `@azure/eventgrid`
 * does, so tests can check both against each other.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { header } from "./http.js";

export interface Credentials {
  /** Access keys (base64 strings, as Azure hands them out). */
  readonly keys: readonly string[];
  /** Entra tokens accepted as `Authorization: Bearer`. */
  readonly bearerTokens: readonly string[];
}

export type AuthResult = { ok: true; method: "key" | "sas" | "bearer" } | { ok: false; reason: string };

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** `M/d/yyyy h:mm:ss AM|PM` in UTC, the format the service expects in `e=`. */
export function serviceTime(d: Date): string {
  const h = d.getUTCHours();
  const hour = h === 0 || h === 12 ? 12 : h % 12;
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  const ss = String(d.getUTCSeconds()).padStart(2, "0");
  return `${d.getUTCMonth() + 1}/${d.getUTCDate()}/${d.getUTCFullYear()} ${hour}:${mm}:${ss} ${h >= 12 ? "PM" : "AM"}`;
}

function parseServiceTime(s: string): number | undefined {
  const m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) (AM|PM)$/.exec(s);
  if (!m) return undefined;
  let hour = Number(m[4]) % 12;
  if (m[7] === "PM") hour += 12;
  return Date.UTC(Number(m[3]), Number(m[1]) - 1, Number(m[2]), hour, Number(m[5]), Number(m[6]));
}

function sign(key: string, unsigned: string): string {
  return createHmac("sha256", Buffer.from(key, "base64")).update(unsigned).digest("base64");
}

/** A SAS token for `endpoint` valid until `expires`. */
export function makeSasToken(endpoint: string, key: string, expires: Date, apiVersion = "2018-01-01"): string {
  const unsigned = `r=${encodeURIComponent(`${endpoint}?apiVersion=${apiVersion}`)}&e=${encodeURIComponent(serviceTime(expires))}`;
  return `${unsigned}&s=${encodeURIComponent(sign(key, unsigned))}`;
}

/** Checks a SAS token for a resource under `endpoint` against the keys. */
export function checkSasToken(token: string, endpoint: string, keys: readonly string[], now = Date.now()): AuthResult {
  const parts = new Map<string, string>();
  for (const kv of token.split("&")) {
    const i = kv.indexOf("=");
    if (i > 0) parts.set(kv.slice(0, i), kv.slice(i + 1));
  }
  const r = parts.get("r");
  const e = parts.get("e");
  const s = parts.get("s");
  if (r === undefined || e === undefined || s === undefined) return { ok: false, reason: "the SAS token lacks r, e or s" };
  let resource: string;
  let expiry: string;
  let signature: string;
  try {
    resource = decodeURIComponent(r);
    expiry = decodeURIComponent(e);
    signature = decodeURIComponent(s);
  } catch {
    return { ok: false, reason: "the SAS token is not percent-encoded properly" };
  }
  const expiresAt = parseServiceTime(expiry);
  if (expiresAt === undefined) return { ok: false, reason: `the SAS expiry "${expiry}" is not in the M/d/yyyy h:mm:ss AM/PM format` };
  if (expiresAt <= now) return { ok: false, reason: "the SAS token has expired" };
  const base = resource.split("?", 1)[0]!.toLowerCase();
  if (!endpoint.toLowerCase().startsWith(base)) return { ok: false, reason: `the SAS token is for ${base}, not for this topic` };
  const unsigned = `r=${r}&e=${e}`;
  if (!keys.some((k) => same(sign(k, unsigned), signature))) return { ok: false, reason: "the SAS signature does not match any key" };
  return { ok: true, method: "sas" };
}

/** Basic topic / domain authentication. `endpoint` is the full publish URL without the query. */
export function checkTopicAuth(req: IncomingMessage, endpoint: string, creds: Credentials, secure: boolean): AuthResult {
  const key = header(req, "aeg-sas-key");
  if (key !== undefined) return creds.keys.some((k) => same(k, key)) ? { ok: true, method: "key" } : { ok: false, reason: "the aeg-sas-key is not a key of this topic" };
  const sas = header(req, "aeg-sas-token");
  if (sas !== undefined) return checkSasToken(sas, endpoint, creds.keys);
  return checkBearer(req, creds, secure);
}

/** Namespace authentication: `SharedAccessKey <key>` or a bearer token. */
export function checkNamespaceAuth(req: IncomingMessage, creds: Credentials, secure: boolean): AuthResult {
  const auth = header(req, "authorization") ?? "";
  if (auth.startsWith("SharedAccessKey ")) {
    const key = auth.slice("SharedAccessKey ".length);
    return creds.keys.some((k) => same(k, key)) ? { ok: true, method: "key" } : { ok: false, reason: "the SharedAccessKey is not a key of this namespace" };
  }
  return checkBearer(req, creds, secure);
}

function checkBearer(req: IncomingMessage, creds: Credentials, secure: boolean): AuthResult {
  const auth = header(req, "authorization") ?? "";
  if (!auth.startsWith("Bearer ")) return { ok: false, reason: "no credentials: send aeg-sas-key, aeg-sas-token or Authorization" };
  if (!secure) return { ok: false, reason: "bearer tokens are only accepted over https" };
  const token = auth.slice(7);
  return creds.bearerTokens.some((t) => same(t, token)) ? { ok: true, method: "bearer" } : { ok: false, reason: "the bearer token is not valid for this resource" };
}
