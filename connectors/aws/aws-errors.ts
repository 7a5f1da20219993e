/**
 * AWS SDK errors → the bridge's error classes. One place decides what is transient (throttling,
 * 5xx, network, expired or refused credentials: retrying may help) and what is permanent (a request
 * AWS will never take), and every message is scrubbed of the component's secrets before it can
 * reach a log line, `/status` or a dead letter.
 */
import { BridgeError, SinkError } from "../../src/core/errors.js";

/** Codes AWS uses for throttling (the SDK's own list, and the SQS and STS spellings). */
const THROTTLING = new Set([
  "ThrottlingException",
  "Throttling",
  "ThrottledException",
  "RequestThrottled",
  "RequestThrottledException",
  "TooManyRequestsException",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "LimitExceededException",
  "SlowDown",
]);

/** Codes that mean the credentials or the signature were refused: fix the config, the events are fine. */
const AUTH = new Set([
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
  "MissingAuthenticationToken",
  "ExpiredToken",
  "ExpiredTokenException",
  "RequestExpired",
  "CredentialsProviderError",
  "AccessDenied",
  "AccessDeniedException",
  "AuthFailure",
]);

/** PutEvents per-entry codes that a later attempt may get through (docs/clouds.md §1.2). */
export const TRANSIENT_ENTRY_CODES: ReadonlySet<string> = new Set(["ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable", "InternalError"]);

interface SdkErrorShape {
  readonly name?: string;
  readonly message?: string;
  readonly code?: string;
  readonly Code?: string;
  readonly $fault?: "client" | "server";
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $retryable?: unknown;
}

/** Replaces every occurrence of a secret with `[redacted]`. */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s !== "" && out.includes(s)) out = out.split(s).join("[redacted]");
  return out;
}

/** What kind of failure an SDK error is. */
export function classify(err: unknown): { kind: "abort" | "throttled" | "auth" | "transient" | "permanent"; code: string; status: number | undefined; message: string } {
  const e = (typeof err === "object" && err !== null ? err : {}) as SdkErrorShape;
  const code = e.name && e.name !== "Error" ? e.name : (e.code ?? e.Code ?? "Error");
  const status = e.$metadata?.httpStatusCode;
  const message = e.message ?? String(err);
  if (code === "AbortError") return { kind: "abort", code, status, message };
  if (THROTTLING.has(code) || status === 429) return { kind: "throttled", code, status, message };
  if (AUTH.has(code) || status === 401) return { kind: "auth", code, status, message };
  if (status === undefined || status >= 500 || status === 408 || e.$fault === "server" || e.$retryable !== undefined) return { kind: "transient", code, status, message };
  return { kind: "permanent", code, status, message };
}

/**
 * A sink's request-level failure as a `SinkError`: `<what> failed: <code>: <message>`. Throttling,
 * 5xx, network and credential problems are transient (credentials: code CEB_UNAUTHORIZED); other
 * 4xx are permanent.
 */
export function sinkErrorOf(err: unknown, what: string, secrets: readonly string[]): BridgeError {
  if (err instanceof BridgeError) return err;
  const c = classify(err);
  const text = scrub(`${what} failed: ${c.code}${c.status !== undefined ? ` (HTTP ${c.status})` : ""}: ${c.message}`, secrets);
  if (c.kind === "auth") return new SinkError(text, true, { code: "CEB_UNAUTHORIZED" });
  return new SinkError(text, c.kind !== "permanent");
}

/** A failure of a source's own call (receive, delete, visibility), as a `BridgeError` with `code`. */
export function callErrorOf(err: unknown, what: string, code: "CEB_CONNECT" | "CEB_SETTLE" | "CEB_LEASE_LOST", secrets: readonly string[]): BridgeError {
  if (err instanceof BridgeError) return err;
  const c = classify(err);
  const text = scrub(`${what} failed: ${c.code}${c.status !== undefined ? ` (HTTP ${c.status})` : ""}: ${c.message}`, secrets);
  return new BridgeError(c.kind === "auth" ? "CEB_UNAUTHORIZED" : code, text, c.kind !== "permanent");
}
