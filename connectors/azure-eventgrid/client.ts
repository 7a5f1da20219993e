/**
 * What the Event Grid sinks and the namespace source share around the Azure clients: credentials
 * (key, SAS, or Microsoft Entra through @azure/identity), client options (plain http for emulators,
 * TLS, no client-side retries), a pipeline policy that sends a body we serialized ourselves, and the
 * classification of the clients' errors. Imported only by the lazily loaded implementations.
 *
 * Why our own body: `@azure/eventgrid`'s CloudEvent model rewrites events (adds `time`, cuts it to
 * milliseconds, refuses non-object data) and `@azure/eventgrid-namespaces` 1.0.0 drops extension
 * attributes (docs/clouds.md §3.3b, §3.7). The clients still do the transport, auth and TLS.
 *
 * Why no client retries: the engine already retries each failed write with backoff and Retry-After
 * and the settle batcher retries settles; a second retry layer would multiply attempts and hide
 * failures from the route's deadline.
 */
import { readFileSync } from "node:fs";
import { Agent } from "node:https";
import type { PipelinePolicy } from "@azure/core-rest-pipeline";
import type { Logger } from "../../src/core/logger.js";

/** The request header naming which prepared body the policy puts on the request. */
const BODY_HEADER = "x-cebridge-body";

/** Hands bodies we serialized to the SDK's pipeline, per request. */
export class PreparedBodies {
  private seq = 0;
  private readonly bodies = new Map<string, { readonly body: string; readonly contentType: string }>();

  readonly policy: PipelinePolicy = {
    name: "cebridgePreparedBody",
    sendRequest: async (request, next) => {
      const id = request.headers.get(BODY_HEADER);
      if (id !== undefined) {
        request.headers.delete(BODY_HEADER);
        const prepared = this.bodies.get(id);
        if (prepared) {
          request.body = prepared.body;
          request.headers.set("content-type", prepared.contentType);
        }
      }
      return next(request);
    },
  };

  /** Runs one client call whose request carries `body`; `fn` gets the header to pass along. */
  async send<T>(body: string, contentType: string, fn: (headers: Record<string, string>) => Promise<T>): Promise<T> {
    const id = String(++this.seq);
    this.bodies.set(id, { body, contentType });
    try {
      return await fn({ [BODY_HEADER]: id });
    } finally {
      this.bodies.delete(id);
    }
  }
}

export interface ClientTls {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly insecure_skip_verify?: boolean | undefined;
}

/** Pipeline options every client gets. */
export function clientOptions(endpoint: string, tls: ClientTls | undefined, policies: readonly PipelinePolicy[] = []): Record<string, unknown> {
  const opts: Record<string, unknown> = {
    // The clients refuse http:// without it (docs/clouds.md §3.3); lint warns about plain http.
    allowInsecureConnection: endpoint.startsWith("http://"),
    retryOptions: { maxRetries: 0 },
    userAgentOptions: { userAgentPrefix: "cebridge" },
    additionalPolicies: policies.map((policy) => ({ policy, position: "perRetry" })),
  };
  if (tls) {
    const settings: Record<string, Buffer> = {};
    if (tls.ca) settings["ca"] = readFileSync(tls.ca);
    if (tls.cert) settings["cert"] = readFileSync(tls.cert);
    if (tls.key) settings["key"] = readFileSync(tls.key);
    if (Object.keys(settings).length > 0) opts["tlsOptions"] = settings;
    if (tls.insecure_skip_verify && endpoint.startsWith("https://")) opts["agent"] = new Agent({ keepAlive: true, rejectUnauthorized: false, ...settings });
  }
  return opts;
}

export interface CredentialConfig {
  readonly key?: string | undefined;
  readonly sas_token?: string | undefined;
  readonly credential?: "default" | undefined;
}

/**
 * The credential object for a client. `keyCredential` builds the key credential of the client's own
 * package (the two packages carry different copies of @azure/core-auth).
 */
export async function credentialFor(cfg: CredentialConfig, keyCredential: (key: string) => unknown, sasCredential?: (sas: string) => unknown): Promise<unknown> {
  if (cfg.key !== undefined) return keyCredential(cfg.key);
  if (cfg.sas_token !== undefined && sasCredential) return sasCredential(cfg.sas_token);
  const { DefaultAzureCredential } = await import("@azure/identity");
  return new DefaultAzureCredential();
}

/** What a failed client call means for us. */
export interface Failure {
  readonly retryable: boolean;
  readonly status: number | undefined;
  /** Safe to log: status, the service's error code and message; never request headers. */
  readonly message: string;
  readonly retryAfterMs: number | undefined;
  readonly aborted: boolean;
}

function short(s: unknown): string {
  const text = typeof s === "string" ? s : String(s);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
}

function retryAfterOf(err: { response?: { headers?: { get(name: string): string | undefined } } }): number | undefined {
  const v = err.response?.headers?.get("retry-after");
  if (v === undefined) return undefined;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const at = Date.parse(v);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

/**
 * Splits a client error into transient (no status: network, DNS, TLS, credential chain; 408, 429,
 * 5xx) and permanent (400, 401, 403, 404, 413 and the other 4xx). The RestError itself is never kept:
 * its `request` holds the auth headers.
 */
export function classify(err: unknown): Failure {
  const e = (err ?? {}) as { name?: string; statusCode?: number; code?: string; message?: string; response?: { headers?: { get(name: string): string | undefined } } };
  const status = typeof e.statusCode === "number" ? e.statusCode : undefined;
  const aborted = e.name === "AbortError";
  const detail = `${e.code ? `${e.code}: ` : ""}${short(e.message ?? err)}`;
  if (aborted) return { retryable: true, status, message: "the request was aborted (deadline or shutdown)", retryAfterMs: undefined, aborted };
  if (status === undefined) return { retryable: true, status, message: detail, retryAfterMs: undefined, aborted };
  const retryable = status === 408 || status === 429 || status >= 500;
  return { retryable, status, message: `Event Grid answered ${status} (${detail})`, retryAfterMs: retryable ? retryAfterOf(e) : undefined, aborted };
}

/** Logs once per change of state, so a long outage does not flood the log. */
export class FailureLog {
  private failing = false;
  constructor(
    private readonly log: Logger,
    private readonly what: string,
  ) {}

  failed(f: Failure, attempt: number): void {
    if (!this.failing || attempt % 20 === 0) this.log.warn({ status: f.status, err: f.message, attempt }, `${this.what} failed; retrying`);
    this.failing = true;
  }

  ok(): void {
    if (this.failing) this.log.info({}, `${this.what} works again`);
    this.failing = false;
  }
}
