/**
 * SDK client configuration shared by every AWS component: region, endpoint, credentials (explicit
 * keys, the SDK's default chain, or a role assumed through STS), TLS, timeouts. Loaded lazily with
 * the implementations, so a config without AWS components never loads the SDK.
 */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@aws-sdk/types";
import type { ConnectorContext } from "../../src/core/connector.js";
import type { AwsConnectionConfig } from "./definition.js";

// The SDK warns once, on the first client, that it will need Node 22 from 2027. The daemon supports
// Node 20 on purpose (DESIGN §1); users cannot act on the warning, so it is silenced unless they
// set the variable themselves. It must be set before any client is made.
process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

/** What every client constructor takes from us. */
export interface CommonClientConfig {
  readonly region?: string;
  readonly endpoint?: string;
  readonly credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  readonly requestHandler: {
    readonly httpAgent: HttpAgent;
    readonly httpsAgent: HttpsAgent;
    readonly connectionTimeout: number;
    readonly requestTimeout: number;
  };
  readonly maxAttempts: number;
}

export interface ClientOptions {
  /** Longest a single request may take (a long poll needs its wait time and more). */
  readonly requestTimeoutMs: number;
  /** Sockets per agent: concurrent requests to the service. */
  readonly maxSockets: number;
  /** SDK attempts per call (its own retry for 5xx, throttling, network errors). */
  readonly maxAttempts: number;
}

/** The secrets in a component's config, for scrubbing error messages (see `aws-errors.ts`). */
export function secretsOf(cfg: AwsConnectionConfig): string[] {
  return [cfg.credentials?.secret_access_key, cfg.credentials?.session_token, cfg.credentials?.access_key_id, cfg.external_id].filter(
    (s): s is string => typeof s === "string" && s.length >= 4,
  );
}

function agents(cfg: AwsConnectionConfig, maxSockets: number): { httpAgent: HttpAgent; httpsAgent: HttpsAgent } {
  const tls = cfg.tls;
  const read = (path: string | undefined) => (path === undefined ? undefined : readFileSync(path));
  return {
    httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
    httpsAgent: new HttpsAgent({
      keepAlive: true,
      maxSockets,
      ...(tls?.ca !== undefined ? { ca: read(tls.ca) } : {}),
      ...(tls?.cert !== undefined ? { cert: read(tls.cert) } : {}),
      ...(tls?.key !== undefined ? { key: read(tls.key) } : {}),
      rejectUnauthorized: tls?.insecure_skip_verify !== true,
    }),
  };
}

/**
 * Builds the client configuration. Reads the TLS files (so call it from `open`/`start`, never from a
 * constructor). With `role_arn`, credentials come from STS AssumeRole through
 * `fromTemporaryCredentials`, signed with the explicit keys or the default chain, and are refreshed
 * before they expire.
 */
export async function clientConfig(cfg: AwsConnectionConfig, ctx: ConnectorContext, opts: ClientOptions): Promise<CommonClientConfig> {
  const handler = { ...agents(cfg, opts.maxSockets), connectionTimeout: 5_000, requestTimeout: opts.requestTimeoutMs };
  const explicit: AwsCredentialIdentity | undefined = cfg.credentials
    ? {
        accessKeyId: cfg.credentials.access_key_id,
        secretAccessKey: cfg.credentials.secret_access_key,
        ...(cfg.credentials.session_token !== undefined ? { sessionToken: cfg.credentials.session_token } : {}),
      }
    : undefined;
  let credentials: AwsCredentialIdentity | AwsCredentialIdentityProvider | undefined = explicit;
  if (cfg.role_arn !== undefined) {
    const { fromTemporaryCredentials } = await import("@aws-sdk/credential-providers");
    credentials = fromTemporaryCredentials({
      params: {
        RoleArn: cfg.role_arn,
        RoleSessionName: cfg.role_session_name ?? sessionName(ctx.id),
        ...(cfg.external_id !== undefined ? { ExternalId: cfg.external_id } : {}),
      },
      ...(explicit ? { masterCredentials: explicit } : {}),
      clientConfig: {
        ...(cfg.region !== undefined ? { region: cfg.region } : {}),
        ...(cfg.sts_endpoint !== undefined ? { endpoint: cfg.sts_endpoint } : {}),
        requestHandler: { ...agents(cfg, 4), connectionTimeout: 5_000, requestTimeout: 30_000 },
      },
    });
  }
  return {
    ...(cfg.region !== undefined ? { region: cfg.region } : {}),
    ...(cfg.endpoint !== undefined ? { endpoint: cfg.endpoint } : {}),
    ...(credentials !== undefined ? { credentials } : {}),
    requestHandler: handler,
    maxAttempts: opts.maxAttempts,
  };
}

/** `cebridge-<component id>`, reduced to what STS allows in a session name. */
function sessionName(id: string): string {
  return `cebridge-${id}`.replace(/[^\w+=,.@-]/g, "_").slice(0, 64);
}

/** The region a queue URL names (`https://sqs.<region>.amazonaws.com/...`, legacy `<region>.queue.amazonaws.com`). */
export function regionOfQueueUrl(url: string): string | undefined {
  const host = new URL(url).hostname;
  return /^sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ?? /^([a-z0-9-]+)\.queue\.amazonaws\.com(\.cn)?$/.exec(host)?.[1];
}
