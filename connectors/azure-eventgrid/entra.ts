/**
 * Checks the Microsoft Entra token Event Grid sends with webhook deliveries when the subscription
 * uses Entra authentication (`Authorization: Bearer <JWT>`): an RS256 signature by one of the
 * tenant's signing keys (JWKS, fetched from `jwks_url` and cached; fetched again, at most once a
 * minute, for an unknown key id), `aud` equal to the configured audience, `iss` one of the tenant's
 * issuers, and `exp` / `nbf` within the clock skew.
 *
 * A bad or missing token is the sender's fault (401, not retried by Event Grid). Keys that cannot
 * be fetched are ours (a transient error: the source answers 503 and Event Grid retries).
 */
import { createPublicKey, createVerify, type JsonWebKey, type KeyObject } from "node:crypto";
import { BridgeError } from "../../src/core/errors.js";

export interface EntraOptions {
  readonly tenantId: string;
  readonly audience: string;
  readonly jwksUrl?: string | undefined;
  readonly issuers?: readonly string[] | undefined;
  readonly clockSkewMs: number;
  readonly now?: () => number;
}

const REFETCH_AFTER_MS = 60_000;
const KEYS_TTL_MS = 24 * 3_600_000;

function rejected(reason: string): BridgeError {
  return new BridgeError("CEB_UNAUTHORIZED", `Entra token refused: ${reason}`, false);
}

function b64json(part: string, what: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw rejected(`the ${what} is not base64url JSON`);
}

export class EntraVerifier {
  private keys = new Map<string, KeyObject>();
  private fetchedAt = -Infinity;
  private fetching: Promise<void> | undefined;
  private readonly jwksUrl: string;
  private readonly issuers: readonly string[];
  private readonly now: () => number;

  constructor(private readonly opts: EntraOptions) {
    this.jwksUrl = opts.jwksUrl ?? `https://login.microsoftonline.com/${encodeURIComponent(opts.tenantId)}/discovery/v2.0/keys`;
    this.issuers = opts.issuers ?? [`https://sts.windows.net/${opts.tenantId}/`, `https://login.microsoftonline.com/${opts.tenantId}/v2.0`];
    this.now = opts.now ?? Date.now;
  }

  /** Resolves when the header carries a valid token; throws `CEB_UNAUTHORIZED` (permanent) or a transient error. */
  async verify(authorization: string | undefined): Promise<void> {
    if (authorization === undefined || !authorization.startsWith("Bearer ")) throw rejected("no Authorization: Bearer header");
    const parts = authorization.slice(7).trim().split(".");
    if (parts.length !== 3) throw rejected("not a JSON Web Token");
    const [h, p, s] = parts as [string, string, string];
    const header = b64json(h, "header");
    const payload = b64json(p, "payload");
    if (header["alg"] !== "RS256") throw rejected(`algorithm ${String(header["alg"])} is not RS256`);
    const kid = typeof header["kid"] === "string" ? header["kid"] : "";
    const key = await this.key(kid);
    const ok = createVerify("RSA-SHA256").update(`${h}.${p}`).verify(key, Buffer.from(s, "base64url"));
    if (!ok) throw rejected("the signature does not verify");
    const aud = payload["aud"];
    if (!(aud === this.opts.audience || (Array.isArray(aud) && aud.includes(this.opts.audience)))) throw rejected("the audience is not the configured one");
    if (typeof payload["iss"] !== "string" || !this.issuers.includes(payload["iss"])) throw rejected("the issuer is not one of the tenant's");
    const now = this.now() / 1000;
    const skew = this.opts.clockSkewMs / 1000;
    const exp = payload["exp"];
    if (typeof exp !== "number" || exp + skew < now) throw rejected("the token has expired");
    const nbf = payload["nbf"];
    if (typeof nbf === "number" && nbf - skew > now) throw rejected("the token is not valid yet");
  }

  private async key(kid: string): Promise<KeyObject> {
    const stale = this.now() - this.fetchedAt > KEYS_TTL_MS;
    if (stale || (!this.keys.has(kid) && this.now() - this.fetchedAt > REFETCH_AFTER_MS)) {
      try {
        await (this.fetching ??= this.fetchKeys().finally(() => (this.fetching = undefined)));
      } catch (err) {
        // Keep using cached keys while the endpoint is down; without any we cannot decide.
        if (this.keys.size === 0) throw err;
      }
    }
    const key = this.keys.get(kid);
    if (!key) throw rejected("the token is signed with an unknown key");
    return key;
  }

  private async fetchKeys(): Promise<void> {
    let doc: unknown;
    try {
      const res = await fetch(this.jwksUrl, { signal: AbortSignal.timeout(10_000) });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      doc = await res.json();
    } catch (err) {
      throw new BridgeError("CEB_CONNECT", `cannot fetch the Entra signing keys from ${this.jwksUrl}: ${(err as Error).message}`, true);
    }
    const list = (doc as { keys?: unknown }).keys;
    if (!Array.isArray(list)) throw new BridgeError("CEB_CONNECT", `the signing keys at ${this.jwksUrl} have no "keys" array`, true);
    const keys = new Map<string, KeyObject>();
    for (const jwk of list as (JsonWebKey & { kid?: string; use?: string })[]) {
      if (jwk.kty !== "RSA" || typeof jwk.kid !== "string" || (jwk.use !== undefined && jwk.use !== "sig")) continue;
      try {
        keys.set(jwk.kid, createPublicKey({ key: jwk, format: "jwk" }));
      } catch {
        // an unusable key is skipped; tokens signed with it are refused
      }
    }
    this.keys = keys;
    this.fetchedAt = this.now();
  }
}
