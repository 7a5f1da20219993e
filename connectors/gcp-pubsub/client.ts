/**
 * Builds the `@google-cloud/pubsub` client for a source or sink, and classifies its errors.
 *
 * Endpoint: `endpoint`, else `PUBSUB_EMULATOR_HOST` (read by the client itself), else Google's.
 * - A host outside `*.googleapis.com` without `tls` is an emulator: plaintext h2c and no credentials
 *   (the client's own rule). We also give the client a universe domain so it does not probe the GCE
 *   metadata server (169.254.169.254) for one, which it otherwise does even for an emulator.
 * - With `tls` the connection is TLS with the given CA (and client certificate for mutual TLS) and
 *   carries the credentials as call credentials, like the client does for Google's endpoint.
 * Credentials: `credentials_file` is read and parsed here, so that a malformed file is reported by
 * path only (JSON.parse errors quote the text, which would put key material in a log line); without
 * it, application default credentials. `redact` scrubs PEM blocks, private-key members and bearer
 * tokens from any SDK error text before it reaches a log, an error, `/status` or a dead letter.
 */
import { readFile } from "node:fs/promises";
import type { ClientConfig, PubSub } from "@google-cloud/pubsub";
import { ConnectError, SinkError, type ErrorCode } from "../../src/core/errors.js";

export interface ConnectionConfig {
  readonly project?: string | undefined;
  readonly endpoint?: string | undefined;
  readonly credentials_file?: string | undefined;
  readonly tls?: { readonly ca?: string; readonly cert?: string; readonly key?: string; readonly insecure_skip_verify?: boolean } | undefined;
}

/** Removes key material and tokens from text that came out of the SDK. */
export function redact(text: string): string {
  return text
    .replace(/-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g, "[redacted PEM]")
    .replace(/("?private_key(?:_id)?"?\s*[:=]\s*)("[^"]*"?|'[^']*'?|\S+)/gi, "$1[redacted]")
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/gi, "$1[redacted]");
}

/** The message of an SDK error, scrubbed, with the gRPC status name when there is one. */
export function describeError(err: unknown): string {
  const e = err as { code?: unknown; details?: unknown; message?: unknown };
  const text = typeof e?.message === "string" ? e.message : String(err);
  return redact(text);
}

/** gRPC status code of an SDK error, if any. */
export function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "number" ? code : undefined;
}

/**
 * Codes that say the request itself is wrong (a retry sends the same thing): INVALID_ARGUMENT,
 * NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, OUT_OF_RANGE, UNIMPLEMENTED. Everything else is
 * transient, including PERMISSION_DENIED and UNAUTHENTICATED: missing IAM grants or an expired
 * credential are fixed without touching the event, and dead-lettering every event meanwhile would be
 * wrong (the route retries, then the source redelivers).
 */
const PERMANENT = new Set([3, 5, 6, 9, 11, 12]);

export function isPermanent(code: number | undefined): boolean {
  return code !== undefined && PERMANENT.has(code);
}

/** A failed publish as a SinkError (transient or permanent by its gRPC code). */
export function publishError(err: unknown, topic: string): SinkError {
  const code = grpcCode(err);
  const permanent = isPermanent(code);
  const errorCode: ErrorCode = permanent ? "CEB_SINK_PERMANENT" : "CEB_SINK_TRANSIENT";
  return new SinkError(`Pub/Sub publish to ${topic} failed${code !== undefined ? ` (gRPC ${code})` : ""}: ${describeError(err)}`, !permanent, { code: errorCode });
}

/** `host[:port]` of an endpoint given as host, host:port or URL. */
function hostOf(endpoint: string): string {
  return endpoint.replace(/^https?:\/\//, "").replace(/\/+$/, "").split(":")[0]!;
}

export interface ClientPlan {
  readonly options: ClientConfig;
  /** Plaintext without credentials (an emulator). */
  readonly emulator: boolean;
  readonly endpoint: string | undefined;
}

async function readCredentials(path: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    throw new ConnectError(`credentials_file ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConnectError(`credentials_file ${path}: not a JSON credentials file`);
  }
  if (typeof json !== "object" || json === null || typeof (json as { type?: unknown }).type !== "string") {
    throw new ConnectError(`credentials_file ${path}: a credentials file is a JSON object with a "type" member`);
  }
  return json as Record<string, unknown>;
}

/** Client options from the connector config. Reads `credentials_file`; does not connect. */
export async function planClient(cfg: ConnectionConfig, env: NodeJS.ProcessEnv = process.env): Promise<ClientPlan> {
  const endpoint = cfg.endpoint ?? env["PUBSUB_EMULATOR_HOST"] ?? undefined;
  const emulator = endpoint !== undefined && !hostOf(endpoint).endsWith(".googleapis.com") && cfg.tls === undefined;
  const options: ClientConfig = {};
  const project = cfg.project ?? (emulator ? env["PUBSUB_PROJECT_ID"] : undefined);
  if (project !== undefined) options.projectId = project;
  if (endpoint !== undefined) options.apiEndpoint = endpoint;
  if (emulator) {
    options.emulatorMode = true;
    options.universeDomain = "googleapis.com";
  } else if (cfg.tls !== undefined) {
    options.emulatorMode = false;
  }
  if (cfg.credentials_file !== undefined && !emulator) options.credentials = (await readCredentials(cfg.credentials_file)) as ClientConfig["credentials"];
  return { options, emulator, endpoint };
}

/**
 * With `tls`: replaces the client's channel credentials with TLS over our CA (and client pair),
 * combined with the client's own Google credentials as call credentials.
 */
export async function applyTls(ps: PubSub, tls: NonNullable<ConnectionConfig["tls"]>): Promise<void> {
  const { grpc } = await import("google-gax");
  const read = async (p: string | undefined) => (p === undefined ? null : await readFile(p));
  const ssl = grpc.credentials.createSsl(await read(tls.ca), await read(tls.key), await read(tls.cert), tls.insecure_skip_verify ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : {});
  const auth = ps.auth;
  const call = grpc.credentials.createFromGoogleCredential({
    getRequestHeaders: async (url?: string) => {
      const headers = await (await auth.getClient()).getRequestHeaders(url);
      const out: Record<string, string> = {};
      headers.forEach((v: string, k: string) => (out[k] = v));
      return out;
    },
  } as never);
  // The GAPIC clients read these options lazily, on their first call. Sharing `auth` lets them set
  // self-signed JWT access (no token exchange) on the same instance our call credentials use.
  const options = ps.options as Record<string, unknown>;
  options["auth"] = auth;
  options.sslCreds = grpc.credentials.combineChannelCredentials(ssl, call) as never;
}
