/**
 * Push delivery of a basic topic to one webhook, the way Event Grid does it:
 *
 * - On creation, the endpoint must prove it wants the events: for the Event Grid delivery schema a
 *   `SubscriptionValidation` POST whose `validationResponse` echoes the code (or a 200 followed by a
 *   GET of `validationUrl` within 5 minutes, time-scaled); for the CloudEvents schema an OPTIONS
 *   abuse-protection request whose answer carries `WebHook-Allowed-Origin` (status alone is no consent).
 * - Deliveries carry `aeg-event-type`, `aeg-subscription-name`, `aeg-delivery-count` (0 first),
 *   `aeg-metadata-version`, `aeg-data-version` (Event Grid schema) and, for CloudEvents,
 *   `WebHook-Request-Origin`. 200–204 is success; 400, 401, 403 and 413 dead-letter at once; anything
 *   else (and a timeout) is retried on the schedule 10 s, 30 s, 1 m, 5 m, 10 m, 30 m, 1 h, then hourly,
 *   multiplied by the emulator's time scale, up to 30 attempts or the event's time to live.
 */
import { randomUUID } from "node:crypto";
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { JsonObject, Schema } from "./schemas.js";

/** Event Grid's documented retry delays (ms); the last one repeats. */
export const RETRY_SCHEDULE_MS = [10_000, 30_000, 60_000, 300_000, 600_000, 1_800_000, 3_600_000] as const;
const NO_RETRY = new Set([400, 401, 403, 413]);

export interface WebhookOptions {
  /** The endpoint, query string included (Event Grid keeps it on every request). */
  readonly url: string;
  readonly deliverySchema: Schema;
  /** Subscription name (sent upper-cased in `aeg-subscription-name`). */
  readonly name?: string;
  /** Events per POST (Event Grid `maxEventsPerBatch`, default 1). */
  readonly maxEventsPerBatch?: number;
  /** Event Grid schema handshake: `sync` needs the code in the answer, `url` a GET of the URL; default either. */
  readonly validation?: "sync" | "url" | "any";
  /** Origin sent in `WebHook-Request-Origin` (default eventgrid.azure.net). */
  readonly origin?: string;
  /** `WebHook-Request-Rate` to ask for in the OPTIONS handshake. */
  readonly requestRate?: number;
  /** Static delivery properties: extra headers on every request, the handshake included. */
  readonly headers?: Readonly<Record<string, string>>;
  /** An Entra token for `Authorization: Bearer`, asked for before every request. */
  readonly bearer?: () => string | Promise<string>;
  /** Deliveries in flight at once (default 8). */
  readonly concurrency?: number;
  readonly maxDeliveryAttempts?: number;
  /** Time to live of an event (default 24 h, time-scaled). */
  readonly eventTtlMs?: number;
  /** How long one delivery may take (default 30 s, not scaled). */
  readonly deliveryTimeoutMs?: number;
  /** PEM CA for an https endpoint with a test certificate. */
  readonly ca?: string;
}

export interface DeliveryAttempt {
  readonly ids: readonly string[];
  readonly deliveryCount: number;
  /** HTTP status, or "timeout" / "error: …". */
  readonly status: number | string;
  readonly at: number;
}

export interface HandshakeRecord {
  readonly kind: "validation-event" | "options";
  readonly status: number | string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface Pending {
  readonly event: JsonObject;
  attempts: number;
  nextAt: number;
  readonly expiresAt: number;
}

export type SubscriptionState = "validating" | "awaiting_manual_action" | "active" | "failed" | "closed";

export class PushSubscription {
  readonly name: string;
  state: SubscriptionState = "validating";
  readonly attempts: DeliveryAttempt[] = [];
  /** Events acknowledged with 200–204, in the delivery schema, in the order they were confirmed. */
  readonly delivered: JsonObject[] = [];
  readonly deadLettered: { readonly event: JsonObject; readonly reason: string; readonly deliveryCount: number }[] = [];
  handshake: HandshakeRecord | undefined;
  /** Events not tried yet, in arrival order, from `head` on. */
  private fresh: Pending[] = [];
  private head = 0;
  /** Events waiting for a retry (each goes alone: its delivery count is its own). */
  private retries: Pending[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly agent: HttpAgent;
  private readonly validationCode = randomUUID();
  private manual: { resolve: () => void; timer: NodeJS.Timeout } | undefined;

  constructor(
    private readonly opts: WebhookOptions,
    private readonly timeScale: number,
    /** Builds the validation URL for this subscription's code (served by the emulator). */
    private readonly validationUrlFor: (sub: PushSubscription, code: string) => string,
  ) {
    this.name = opts.name ?? `sub${randomUUID().slice(0, 8)}`;
    const isHttps = opts.url.startsWith("https:");
    this.agent = isHttps ? new HttpsAgent({ keepAlive: true, ...(opts.ca ? { ca: opts.ca } : {}) }) : new HttpAgent({ keepAlive: true });
  }

  get deliverySchema(): Schema {
    return this.opts.deliverySchema;
  }

  /** Runs the handshake; resolves once the subscription is active, rejects with the reason otherwise. */
  async activate(): Promise<void> {
    try {
      if (this.opts.deliverySchema === "cloudevents") await this.optionsHandshake();
      else await this.validationHandshake();
      this.state = "active";
      this.pump();
    } catch (err) {
      this.state = "failed";
      throw err;
    }
  }

  /** Called when the emulator serves a GET of this subscription's validation URL. */
  manualValidation(code: string): boolean {
    if (code !== this.validationCode || this.state !== "awaiting_manual_action" || !this.manual) return false;
    clearTimeout(this.manual.timer);
    this.manual.resolve();
    this.manual = undefined;
    return true;
  }

  private async optionsHandshake(): Promise<void> {
    const origin = this.opts.origin ?? "eventgrid.azure.net";
    const headers: Record<string, string> = { "webhook-request-origin": origin };
    if (this.opts.requestRate !== undefined) headers["webhook-request-rate"] = String(this.opts.requestRate);
    const r = await this.send("OPTIONS", headers, undefined);
    this.handshake = { kind: "options", status: r.status, headers: r.headers, body: r.body };
    const allowed = r.headers["webhook-allowed-origin"];
    if (typeof r.status !== "number" || r.status < 200 || r.status > 299) throw new Error(`OPTIONS handshake answered ${r.status}: ${r.body}`);
    if (allowed !== origin && allowed !== "*") throw new Error(`OPTIONS handshake gave no consent for ${origin} (WebHook-Allowed-Origin: ${String(allowed)})`);
    if (this.opts.requestRate !== undefined && r.headers["webhook-allowed-rate"] === undefined) {
      throw new Error("OPTIONS handshake did not answer the requested rate (WebHook-Allowed-Rate)");
    }
  }

  private async validationHandshake(): Promise<void> {
    const code = this.validationCode;
    const event = {
      id: randomUUID(),
      topic: "/subscriptions/00000000-0000-4000-8000-000000000000",
      subject: "",
      data: { validationCode: code, validationUrl: this.validationUrlFor(this, code) },
      eventType: "Microsoft.EventGrid.SubscriptionValidationEvent",
      eventTime: new Date().toISOString(),
      metadataVersion: "1",
      dataVersion: "1",
    };
    const r = await this.send(
      "POST",
      { "content-type": "application/json; charset=utf-8", "aeg-event-type": "SubscriptionValidation", "aeg-subscription-name": this.name.toUpperCase(), "aeg-delivery-count": "0", "aeg-metadata-version": "1", "aeg-data-version": "1" },
      Buffer.from(JSON.stringify([event])),
    );
    this.handshake = { kind: "validation-event", status: r.status, headers: r.headers, body: r.body };
    if (r.status !== 200) throw new Error(`validation event answered ${r.status}: ${r.body}`);
    let echoed: unknown;
    try {
      echoed = (JSON.parse(r.body) as { validationResponse?: unknown }).validationResponse;
    } catch {
      echoed = undefined;
    }
    const mode = this.opts.validation ?? "any";
    if (echoed === code && mode !== "url") return;
    if (echoed !== undefined && echoed !== code) throw new Error(`validation response ${String(echoed)} does not match the code`);
    if (mode === "sync") throw new Error("validation event answered 200 without the validation code");
    // 200 without the code: the subscription waits for a GET of the validation URL (5 minutes).
    this.state = "awaiting_manual_action";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.manual = undefined;
        reject(new Error("the validation URL was not visited in time"));
      }, Math.max(50, 300_000 * this.timeScale));
      this.manual = { resolve, timer };
    });
  }

  /** Queues one event (already in the delivery schema). */
  enqueue(event: JsonObject): void {
    if (this.state === "closed" || this.state === "failed") return;
    const now = Date.now();
    this.fresh.push({ event, attempts: 0, nextAt: now, expiresAt: now + (this.opts.eventTtlMs ?? 86_400_000) * this.timeScale });
    this.pump();
  }

  /** Events queued or being retried. */
  get pending(): number {
    return this.fresh.length - this.head + this.retries.length + this.inFlight;
  }

  private pump(): void {
    if (this.state !== "active") return;
    const limit = this.opts.concurrency ?? 8;
    const now = Date.now();
    while (this.inFlight < limit) {
      const batch = this.takeDue(now);
      if (batch.length === 0) break;
      this.inFlight++;
      void this.deliver(batch).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.retries.reduce((m, p) => Math.min(m, p.nextAt), Infinity);
    if (Number.isFinite(next) && this.inFlight < limit) {
      this.timer = setTimeout(() => this.pump(), Math.max(1, next - Date.now()));
      this.timer.unref();
    }
  }

  /** A due retry alone, else up to `maxEventsPerBatch` fresh events in arrival order. */
  private takeDue(now: number): Pending[] {
    const i = this.retries.findIndex((p) => p.nextAt <= now);
    if (i >= 0) return this.retries.splice(i, 1);
    const max = this.opts.maxEventsPerBatch ?? 1;
    const out = this.fresh.slice(this.head, this.head + max);
    this.head += out.length;
    if (this.head > 4096 && this.head * 2 > this.fresh.length) {
      this.fresh = this.fresh.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  private async deliver(batch: Pending[]): Promise<void> {
    const deliveryCount = batch[0]!.attempts;
    const ce = this.opts.deliverySchema === "cloudevents";
    const events = batch.map((p) => p.event);
    const headers: Record<string, string> = {
      "aeg-event-type": "Notification",
      "aeg-subscription-name": this.name.toUpperCase(),
      "aeg-delivery-count": String(deliveryCount),
      "aeg-metadata-version": "1",
      "aeg-output-event-id": String(events[0]!["id"]),
    };
    let body: string;
    if (ce) {
      headers["webhook-request-origin"] = this.opts.origin ?? "eventgrid.azure.net";
      headers["content-type"] = events.length === 1 && (this.opts.maxEventsPerBatch ?? 1) === 1 ? "application/cloudevents+json; charset=utf-8" : "application/cloudevents-batch+json; charset=utf-8";
      body = headers["content-type"].startsWith("application/cloudevents+json") ? JSON.stringify(events[0]) : JSON.stringify(events);
    } else {
      headers["content-type"] = "application/json; charset=utf-8";
      headers["aeg-data-version"] = String(events[0]!["dataVersion"] ?? "");
      body = JSON.stringify(events);
    }
    const r = await this.send("POST", headers, Buffer.from(body));
    this.attempts.push({ ids: events.map((e) => String(e["id"])), deliveryCount, status: r.status, at: Date.now() });
    const now = Date.now();
    if (typeof r.status === "number" && r.status >= 200 && r.status <= 204) {
      this.delivered.push(...events);
      return;
    }
    for (const p of batch) {
      p.attempts++;
      if (typeof r.status === "number" && NO_RETRY.has(r.status)) {
        this.deadLettered.push({ event: p.event, reason: `delivery answered ${r.status}: ${r.body.slice(0, 200)}`, deliveryCount: p.attempts });
        continue;
      }
      const delay = RETRY_SCHEDULE_MS[Math.min(p.attempts - 1, RETRY_SCHEDULE_MS.length - 1)]! * this.timeScale;
      if (p.attempts >= (this.opts.maxDeliveryAttempts ?? 30) || now + delay > p.expiresAt) {
        this.deadLettered.push({ event: p.event, reason: `MaxDeliveryAttemptsExceeded (last: ${r.status})`, deliveryCount: p.attempts });
        continue;
      }
      p.nextAt = now + delay;
      this.retries.push(p);
    }
  }

  private async send(method: string, headers: Record<string, string>, body: Buffer | undefined): Promise<{ status: number | string; headers: IncomingHttpHeaders; body: string }> {
    const all: Record<string, string> = { ...headers, ...(this.opts.headers ?? {}) };
    if (this.opts.bearer) all["authorization"] = `Bearer ${await this.opts.bearer()}`;
    if (body) all["content-length"] = String(body.length);
    const url = new URL(this.opts.url);
    const request = url.protocol === "https:" ? httpsRequest : httpRequest;
    return new Promise((resolve) => {
      const req = request(url, { method, headers: all, agent: this.agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", (err) => resolve({ status: `error: ${err.message}`, headers: {}, body: "" }));
      });
      req.setTimeout(this.opts.deliveryTimeoutMs ?? 30_000, () => {
        req.destroy();
        resolve({ status: "timeout", headers: {}, body: "" });
      });
      req.on("error", (err) => resolve({ status: `error: ${err.message}`, headers: {}, body: "" }));
      req.end(body);
    });
  }

  close(): void {
    this.state = "closed";
    if (this.timer) clearTimeout(this.timer);
    if (this.manual) clearTimeout(this.manual.timer);
    this.fresh = [];
    this.head = 0;
    this.retries = [];
    this.agent.destroy();
  }
}
