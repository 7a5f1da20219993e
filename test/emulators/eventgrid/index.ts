/**
 * A loopback Event Grid that the real `@azure/eventgrid` and `@azure/eventgrid-namespaces` clients
 * accept (docs/clouds.md §3, §5.3). One `node:http` (or, with `tls`, `node:https`) server:
 *
 * - basic topics and domains: `POST /<name>/api/events?api-version=2018-01-01`, Event Grid or
 *   CloudEvents input schema, `aeg-sas-key` / `aeg-sas-token` / Bearer (https only) checks, schema
 *   validation (400), 1 MB request and event limits (413), push to webhook subscriptions (push.ts);
 * - namespaces: `POST /topics/<t>:publish`, `/topics/<t>/eventsubscriptions/<s>:receive|acknowledge|
 *   release|reject|renewLock` (namespaces.ts), `Authorization: SharedAccessKey` or Bearer;
 * - fault injection per operation (faults.ts) and a log of every request for assertions.
 *
 * Plain http needs `allowInsecureConnection: true` in the clients; Bearer tokens need https (the
 * clients refuse them on http), so start the emulator with a certificate from test/support/certs.ts.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { checkNamespaceAuth, checkTopicAuth, type Credentials } from "./auth.js";
import { Faults, codeFor, type Fault, type Operation } from "./faults.js";
import { ONE_MB, essence, header, isObject, readBody, sendError, sendJson } from "./http.js";
import { NamespaceTopic, RELEASE_DELAYS_S, type SettleVerb } from "./namespaces.js";
import { PushSubscription, type WebhookOptions } from "./push.js";
import { checkCloudEvent, checkEventGridEvent, resourceIdOf, toDeliverySchema, type JsonObject, type Schema } from "./schemas.js";

export { makeSasToken } from "./auth.js";
export type { Fault } from "./faults.js";
export { NamespaceSubscription, NamespaceTopic } from "./namespaces.js";
export { PushSubscription, RETRY_SCHEDULE_MS } from "./push.js";
export type { WebhookOptions } from "./push.js";

export interface EmulatorOptions {
  /** PEM files: serve https with this certificate. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Multiplies the push retry schedule, the validation URL lifetime and release delays (default 1). */
  readonly timeScale?: number;
}

export interface TopicOptions {
  readonly schema: Schema;
  /** A domain: events name their domain topic (`topic` in the Event Grid schema, `source` in CloudEvents). */
  readonly domain?: boolean;
  readonly keys?: readonly string[];
  readonly bearerTokens?: readonly string[];
  /** Request limit in bytes (default 1 MB, as the service). */
  readonly maxRequestBytes?: number;
}

export interface PublishRecord {
  readonly auth: string;
  readonly contentType: string;
  readonly events: number;
  readonly bytes: number;
  readonly status: number;
}

export class BasicTopic {
  readonly endpoint: string;
  readonly resourceId: string;
  /** Accepted events as published (domain topic name alongside for domains). */
  readonly published: { readonly domainTopic?: string; readonly event: JsonObject }[] = [];
  readonly publishes: PublishRecord[] = [];
  readonly subscriptions: { readonly sub: PushSubscription; readonly domainTopic?: string }[] = [];
  readonly creds: Credentials;

  constructor(
    readonly name: string,
    readonly opts: TopicOptions,
    base: string,
    private readonly emulator: EventGridEmulator,
  ) {
    this.endpoint = `${base}/${name}/api/events`;
    this.resourceId = opts.domain ? `/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/emulator/providers/Microsoft.EventGrid/domains/${name}` : resourceIdOf(name);
    this.creds = { keys: opts.keys ?? [], bearerTokens: opts.bearerTokens ?? [] };
  }

  /** Creates a push subscription; resolves once its handshake succeeded (rejects with why not). */
  async subscribe(opts: WebhookOptions & { readonly domainTopic?: string }): Promise<PushSubscription> {
    const sub = this.emulator.newPushSubscription(opts);
    this.subscriptions.push({ sub, ...(opts.domainTopic !== undefined ? { domainTopic: opts.domainTopic } : {}) });
    await sub.activate();
    return sub;
  }

  accept(events: readonly JsonObject[]): void {
    for (const event of events) {
      const domainTopic = this.opts.domain ? String(this.opts.schema === "eventgrid" ? event["topic"] : event["source"]) : undefined;
      this.published.push({ ...(domainTopic !== undefined ? { domainTopic } : {}), event });
      for (const s of this.subscriptions) {
        if (s.domainTopic !== undefined && s.domainTopic !== domainTopic) continue;
        const rid = domainTopic !== undefined ? resourceIdOf(this.name, domainTopic) : this.resourceId;
        s.sub.enqueue(toDeliverySchema(event, this.opts.schema, s.sub.deliverySchema, rid));
      }
    }
  }
}

export interface RequestRecord {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage["headers"];
  status?: number;
}

export class EventGridEmulator {
  url = "";
  readonly secure: boolean;
  readonly timeScale: number;
  readonly faults = new Faults();
  readonly topics = new Map<string, BasicTopic>();
  readonly namespaceTopics = new Map<string, NamespaceTopic>();
  /** The last 10,000 requests. */
  readonly requests: RequestRecord[] = [];
  namespaceCreds: Credentials = { keys: [], bearerTokens: [] };
  private readonly server: Server;
  private readonly pushSubs = new Map<string, PushSubscription>();
  private clock: NodeJS.Timeout | undefined;

  constructor(opts: EmulatorOptions = {}) {
    this.secure = opts.tls !== undefined;
    this.timeScale = opts.timeScale ?? 1;
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      this.route(req, res).catch((err: unknown) => sendError(res, 500, "InternalServerError", String(err)));
    };
    this.server = opts.tls
      ? createHttpsServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler)
      : createHttpServer(handler);
  }

  async listen(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => resolve());
    });
    const addr = this.server.address() as AddressInfo;
    this.url = `${this.secure ? "https" : "http"}://127.0.0.1:${addr.port}`;
    this.clock = setInterval(() => {
      const now = Date.now();
      for (const t of this.namespaceTopics.values()) for (const s of t.subscriptions.values()) s.tick(now);
    }, 20);
    this.clock.unref();
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** A basic topic (or domain) at `${url}/<name>/api/events`. */
  topic(name: string, opts: TopicOptions): BasicTopic {
    const t = new BasicTopic(name, opts, this.url, this);
    this.topics.set(name, t);
    return t;
  }

  /** A namespace topic; the namespace endpoint is `url`. */
  namespaceTopic(name: string): NamespaceTopic {
    let t = this.namespaceTopics.get(name);
    if (!t) {
      t = new NamespaceTopic(name, this.timeScale);
      this.namespaceTopics.set(name, t);
    }
    return t;
  }

  /** Keys and tokens the namespace accepts. */
  namespaceAuth(creds: Partial<Credentials>): void {
    this.namespaceCreds = { keys: creds.keys ?? [], bearerTokens: creds.bearerTokens ?? [] };
  }

  inject(fault: Fault): void {
    this.faults.inject(fault);
  }

  newPushSubscription(opts: WebhookOptions): PushSubscription {
    const sub = new PushSubscription(opts, this.timeScale, (s, code) => `${this.url}/__validate/${encodeURIComponent(s.name)}?id=${code}`);
    this.pushSubs.set(sub.name, sub);
    return sub;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const record: RequestRecord = { method: req.method ?? "", path: url.pathname, headers: req.headers };
    this.requests.push(record);
    if (this.requests.length > 10_000) this.requests.shift();
    res.on("finish", () => (record.status = res.statusCode));
    const p = decodeURIComponent(url.pathname);

    const validate = /^\/__validate\/([^/]+)$/.exec(p);
    if (validate && req.method === "GET") {
      const ok = this.pushSubs.get(validate[1]!)?.manualValidation(url.searchParams.get("id") ?? "") ?? false;
      return ok ? sendJson(res, 200, { validated: true }) : sendError(res, 400, "BadRequest", "unknown or expired validation URL");
    }
    const ns = /^\/topics\/([^/:]+)(?::publish|\/eventsubscriptions\/([^/:]+):(receive|acknowledge|release|reject|renewLock))$/.exec(p);
    if (ns) return this.namespaceRequest(req, res, url, ns[1]!, ns[2], ns[3] as SettleVerb | "receive" | undefined);
    const basic = /^\/([^/]+)\/api\/events$/.exec(p);
    if (basic) return this.topicPublish(req, res, basic[1]!);
    return sendError(res, 404, "NotFound", `no resource at ${p}`);
  }

  /** Applies an injected fault; true when the request was answered (or dropped) by it. */
  private async fault(op: Operation, topic: string, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
    const f = this.faults.take(op, topic);
    if (!f) return false;
    if (f.delayMs) await new Promise((r) => setTimeout(r, f.delayMs));
    if (f.drop) {
      req.socket.destroy();
      return true;
    }
    if (f.status === undefined) return false;
    req.resume();
    const headers: Record<string, string> = f.retryAfterSeconds !== undefined ? { "retry-after": String(f.retryAfterSeconds) } : {};
    sendError(res, f.status, f.code ?? codeFor(f.status), `injected fault on ${op}`, headers);
    return true;
  }

  private async topicPublish(req: IncomingMessage, res: ServerResponse, name: string): Promise<void> {
    const topic = this.topics.get(name);
    if (!topic) {
      req.resume();
      return sendError(res, 404, "NotFound", `topic ${name} does not exist`);
    }
    const contentType = header(req, "content-type") ?? "";
    const record = (status: number, auth: string, events: number, bytes: number) => topic.publishes.push({ auth, contentType, events, bytes, status });
    if (req.method !== "POST") return sendError(res, 405, "MethodNotAllowed", "use POST");
    if (await this.fault("topic.publish", name, req, res)) return;
    const auth = checkTopicAuth(req, topic.endpoint, topic.creds, this.secure);
    if (!auth.ok) {
      req.resume();
      record(401, "none", 0, 0);
      return sendError(res, 401, "Unauthorized", auth.reason);
    }
    const limit = topic.opts.maxRequestBytes ?? ONE_MB;
    const body = await readBody(req, limit);
    if (body === undefined) {
      record(413, auth.method, 0, limit + 1);
      return sendError(res, 413, "PayloadTooLarge", `the request is over ${limit} bytes`);
    }
    const fail = (status: number, code: string, message: string) => {
      record(status, auth.method, 0, body.length);
      sendError(res, status, code, message);
    };
    const ct = essence(contentType);
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString("utf8"));
    } catch (err) {
      return fail(400, "BadRequest", `the body is not JSON: ${(err as Error).message}`);
    }
    let events: unknown[];
    if (topic.opts.schema === "eventgrid") {
      if (ct !== "application/json") return fail(400, "BadRequest", `content type ${ct} is not application/json`);
      if (!Array.isArray(doc)) return fail(400, "BadRequest", "an Event Grid schema request must be a JSON array");
      events = doc;
    } else if (ct === "application/cloudevents-batch+json") {
      if (!Array.isArray(doc)) return fail(400, "BadRequest", "a CloudEvents batch must be a JSON array");
      events = doc;
    } else if (ct === "application/cloudevents+json") {
      events = [doc];
    } else {
      return fail(400, "BadRequest", `content type ${ct} is neither application/cloudevents+json nor application/cloudevents-batch+json`);
    }
    for (let i = 0; i < events.length; i++) {
      const e = events[i];
      const problem = topic.opts.schema === "eventgrid" ? checkEventGridEvent(e, { domain: topic.opts.domain === true, resourceId: topic.resourceId }) : checkCloudEvent(e);
      if (problem) return fail(400, "BadRequest", `event[${i}]: ${problem}`);
      if (Buffer.byteLength(JSON.stringify(e)) > ONE_MB) return fail(413, "PayloadTooLarge", `event[${i}] is over 1 MB`);
    }
    topic.accept(events as JsonObject[]);
    record(200, auth.method, events.length, body.length);
    res.writeHead(200, { "content-length": "0" }).end();
  }

  private async namespaceRequest(req: IncomingMessage, res: ServerResponse, url: URL, topicName: string, subName: string | undefined, verb: SettleVerb | "receive" | undefined): Promise<void> {
    if (req.method !== "POST") return sendError(res, 405, "MethodNotAllowed", "use POST");
    const op: Operation = verb === undefined ? "namespace.publish" : (`namespace.${verb}` as Operation);
    if (await this.fault(op, topicName, req, res)) return;
    const auth = checkNamespaceAuth(req, this.namespaceCreds, this.secure);
    if (!auth.ok) {
      req.resume();
      return sendError(res, 401, "Unauthorized", auth.reason);
    }
    const topic = this.namespaceTopics.get(topicName);
    if (!topic) {
      req.resume();
      return sendError(res, 404, "NotFound", `namespace topic ${topicName} does not exist`);
    }
    const body = await readBody(req, ONE_MB);
    if (body === undefined) return sendError(res, 413, "PayloadTooLarge", "the request is over 1 MB");
    if (verb === undefined) return this.namespacePublish(req, res, topic, body);
    const sub = topic.subscriptions.get(subName!);
    if (!sub) return sendError(res, 404, "NotFound", `event subscription ${subName} does not exist`);
    if (verb === "receive") {
      const maxEvents = Number(url.searchParams.get("maxEvents") ?? 1);
      const maxWait = Number(url.searchParams.get("maxWaitTime") ?? 60);
      if (!Number.isInteger(maxEvents) || maxEvents < 1 || maxEvents > 100) return sendError(res, 400, "BadRequest", "maxEvents must be an integer from 1 to 100");
      if (!Number.isFinite(maxWait) || maxWait < 0 || maxWait > 120) return sendError(res, 400, "BadRequest", "maxWaitTime must be from 0 to 120 seconds");
      const gone = new AbortController();
      res.on("close", () => gone.abort());
      const details = await sub.receive(maxEvents, maxWait * 1000, gone.signal);
      if (res.destroyed) return;
      return sendJson(res, 200, { value: details });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      return sendError(res, 400, "BadRequest", "the body is not JSON");
    }
    const tokens = isObject(parsed) ? parsed["lockTokens"] : undefined;
    if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every((t) => typeof t === "string")) {
      return sendError(res, 400, "BadRequest", 'the body must be {"lockTokens": [ ... ]} with at least one token');
    }
    let delay = 0;
    if (verb === "release") {
      delay = Number(url.searchParams.get("releaseDelayInSeconds") ?? 0);
      if (!(RELEASE_DELAYS_S as readonly number[]).includes(delay)) return sendError(res, 400, "BadRequest", `releaseDelayInSeconds must be one of ${RELEASE_DELAYS_S.join(", ")}`);
    }
    return sendJson(res, 200, sub.settle(verb, tokens as string[], delay));
  }

  private namespacePublish(req: IncomingMessage, res: ServerResponse, topic: NamespaceTopic, body: Buffer): void {
    const ct = essence(header(req, "content-type"));
    let doc: unknown;
    try {
      doc = JSON.parse(body.toString("utf8"));
    } catch (err) {
      return sendError(res, 400, "BadRequest", `the body is not JSON: ${(err as Error).message}`);
    }
    let events: unknown[];
    if (ct === "application/cloudevents-batch+json") {
      if (!Array.isArray(doc)) return sendError(res, 400, "BadRequest", "a CloudEvents batch must be a JSON array");
      events = doc;
    } else if (ct === "application/cloudevents+json") {
      events = [doc];
    } else {
      return sendError(res, 400, "BadRequest", `content type ${ct} is not a CloudEvents JSON type`);
    }
    for (let i = 0; i < events.length; i++) {
      const problem = checkCloudEvent(events[i]);
      if (problem) return sendError(res, 400, "BadRequest", `event[${i}]: ${problem}`);
      if (Buffer.byteLength(JSON.stringify(events[i])) > ONE_MB) return sendError(res, 413, "PayloadTooLarge", `event[${i}] is over 1 MB`);
    }
    topic.publish(events as JsonObject[]);
    sendJson(res, 200, {});
  }

  async close(): Promise<void> {
    if (this.clock) clearInterval(this.clock);
    for (const s of this.pushSubs.values()) s.close();
    for (const t of this.namespaceTopics.values()) for (const s of t.subscriptions.values()) s.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

/** Starts an emulator on a free loopback port. */
export function startEventGridEmulator(opts: EmulatorOptions = {}, port = 0): Promise<EventGridEmulator> {
  return new EventGridEmulator(opts).listen(port);
}
