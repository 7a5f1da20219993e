/**
 * Helpers for the Event Grid tests: publishing natively with the real namespace client (our own JSON
 * body, as the 1.0.0 client would drop extensions), reading what a topic or namespace received as
 * CloudEvents, a loopback Entra signing-key endpoint that signs test tokens, and a loopback managed
 * identity endpoint (App Service style) that @azure/identity's DefaultAzureCredential accepts.
 */
import { createSign, generateKeyPairSync, randomUUID, type KeyObject } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { AzureKeyCredential, EventGridSenderClient } from "@azure/eventgrid-namespaces";
import { eventFromJson, serializeStructured, type CloudEvent } from "../../src/cloudevents/index.js";
import type { BasicTopic, EventGridEmulator, NamespaceTopic } from "../emulators/eventgrid/index.js";

export const TEST_KEY = Buffer.from("cebridge-eventgrid-test-key-0123456789").toString("base64");

/** Publishes `events` to a namespace topic as one CloudEvents batch, through the real client. */
export async function publishToNamespace(emu: EventGridEmulator, topic: string, events: readonly CloudEvent[], key = TEST_KEY): Promise<void> {
  const body = `[${events.map((e) => serializeStructured(e)).join(",")}]`;
  const policy = {
    name: "testBody",
    sendRequest: async (req: { body?: unknown; headers: { set(n: string, v: string): void } }, next: (r: unknown) => Promise<unknown>) => {
      req.body = body;
      req.headers.set("content-type", "application/cloudevents-batch+json; charset=utf-8");
      return next(req);
    },
  };
  const sender = new EventGridSenderClient(emu.url, new AzureKeyCredential(key), topic, {
    allowInsecureConnection: emu.url.startsWith("http:"),
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [{ policy: policy as never, position: "perRetry" }],
  });
  for (let i = 0; i < 3; i++) {
    try {
      await sender.sendEvents([]);
      return;
    } catch (err) {
      if (i === 2) throw err;
    }
  }
}

/** What a basic topic or namespace topic accepted so far, as CloudEvents (CloudEvents schema). */
export function acceptedEvents(topic: BasicTopic | NamespaceTopic): CloudEvent[] {
  const raw = "endpoint" in topic ? topic.published.map((p) => p.event) : topic.published;
  return raw.map((o) => eventFromJson(o));
}

/** A live reader over a topic's accepted events, for the sink conformance suite. */
export function topicReader(topic: BasicTopic | NamespaceTopic): { readonly events: CloudEvent[]; close(): Promise<void> } {
  const start = topic.published.length;
  return {
    get events() {
      const raw = "endpoint" in topic ? topic.published.slice(start).map((p) => p.event) : topic.published.slice(start);
      return raw.map((o) => eventFromJson(o));
    },
    close: async () => {},
  };
}

export interface Jwks {
  readonly url: string;
  readonly tenantId: string;
  readonly issuer: string;
  /** Signs a token with the published key (claims merged over valid defaults). */
  token(claims?: Record<string, unknown>, opts?: { kid?: string; key?: KeyObject }): string;
  /** A key that is not published. */
  readonly rogueKey: KeyObject;
  readonly requests: number;
  close(): Promise<void>;
}

/** A loopback JWKS endpoint with one RSA signing key, and a signer for tokens of `audience`. */
export async function startJwks(audience: string): Promise<Jwks> {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rogue = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
  const kid = `kid-${randomUUID().slice(0, 8)}`;
  const tenantId = randomUUID();
  const issuer = `https://sts.windows.net/${tenantId}/`;
  let requests = 0;
  const server: Server = createServer((_req, res) => {
    requests++;
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [{ ...publicKey.export({ format: "jwk" }), kid, use: "sig", alg: "RS256" }] }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/keys`;
  return {
    url,
    tenantId,
    issuer,
    rogueKey: rogue,
    get requests() {
      return requests;
    },
    token(claims = {}, opts = {}) {
      const now = Math.floor(Date.now() / 1000);
      const header = Buffer.from(JSON.stringify({ alg: "RS256", typ: "JWT", kid: opts.kid ?? kid })).toString("base64url");
      const payload = Buffer.from(JSON.stringify({ aud: audience, iss: issuer, iat: now, nbf: now - 10, exp: now + 3600, appid: "eventgrid", ...claims })).toString("base64url");
      const sig = createSign("RSA-SHA256").update(`${header}.${payload}`).sign(opts.key ?? privateKey).toString("base64url");
      return `${header}.${payload}.${sig}`;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export interface ManagedIdentity {
  /** Environment that makes DefaultAzureCredential ask this endpoint (and nothing else). */
  readonly env: Record<string, string>;
  readonly token: string;
  readonly requests: { readonly resource: string | null }[];
  close(): Promise<void>;
}

/** A loopback App Service managed identity endpoint handing out `token`. */
export async function startManagedIdentity(token = `msi-${randomUUID()}`): Promise<ManagedIdentity> {
  const header = randomUUID();
  const requests: { resource: string | null }[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://x");
    requests.push({ resource: url.searchParams.get("resource") });
    if (req.headers["x-identity-header"] !== header) return void res.writeHead(401).end();
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({ access_token: token, expires_on: String(Math.floor(Date.now() / 1000) + 3600), resource: url.searchParams.get("resource"), token_type: "Bearer" }),
    );
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/msi/token`;
  return {
    env: { AZURE_TOKEN_CREDENTIALS: "ManagedIdentityCredential", IDENTITY_ENDPOINT: endpoint, IDENTITY_HEADER: header },
    token,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Publishes raw JSON events to a basic topic through the real publisher client (its input schema decides the content type). */
export async function publishToTopic(topic: BasicTopic, events: readonly Record<string, unknown>[] | readonly CloudEvent[], key = TEST_KEY): Promise<void> {
  const { EventGridPublisherClient, AzureKeyCredential: TopicKey } = await import("@azure/eventgrid");
  const ce = topic.opts.schema === "cloudevents";
  const body = `[${events.map((e) => ("attributes" in e && typeof e.attributes === "object" ? serializeStructured(e as CloudEvent) : JSON.stringify(e))).join(",")}]`;
  const policy = {
    name: "testBody",
    sendRequest: async (req: { body?: unknown; headers: { set(n: string, v: string): void } }, next: (r: unknown) => Promise<unknown>) => {
      req.body = body;
      req.headers.set("content-type", ce ? "application/cloudevents-batch+json; charset=utf-8" : "application/json; charset=utf-8");
      return next(req);
    },
  };
  const client = new EventGridPublisherClient(topic.endpoint, "Custom", new TopicKey(key), {
    allowInsecureConnection: topic.endpoint.startsWith("http:"),
    retryOptions: { maxRetries: 0 },
    additionalPolicies: [{ policy: policy as never, position: "perRetry" }],
  });
  await client.send([]);
}
