/**
 * The consumer's side of the Subscriptions API, for end-to-end tests: a client for the API, and
 * subscribers on each protocol that record what the daemon delivers (decoded with the bindings'
 * own mappings): a webhook receiver that answers the abuse-protection handshake as told, an MQTT
 * reader and a NATS reader. Everything listens on loopback only.
 */
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { connect as natsConnect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { connectAsync, type MqttClient } from "mqtt";
import { decodeRequest } from "../../connectors/http/decode.js";
import { decodeMqttMessage, type UserProperties } from "../../connectors/mqtt/mapping.js";
import { headerEntries } from "../../connectors/nats/inbound.js";
import { decodeNatsMessage } from "../../connectors/nats/mapping.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { serializeStructured } from "../../src/cloudevents/json-format.js";

/** Talks to the Subscriptions API as a consumer would (fetch, JSON). */
export class ApiClient {
  constructor(
    readonly base: string,
    private readonly token: string | undefined,
  ) {}

  async request(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: any; text: string }> {
    const h: Record<string, string> = { ...headers };
    if (this.token !== undefined && h["authorization"] === undefined) h["authorization"] = `Bearer ${this.token}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === "string" ? body : JSON.stringify(body);
      h["content-type"] ??= "application/json";
    }
    const res = await fetch(this.base + path, { method, headers: h, ...(payload !== undefined ? { body: payload } : {}) });
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
  }

  async create(stream: string, body: unknown): Promise<{ id: string; location: string; json: any }> {
    const r = await this.request("POST", `/streams/${stream}/subscriptions`, body);
    if (r.status !== 201) throw new Error(`create answered ${r.status}: ${r.text}`);
    return { id: r.json.id, location: r.headers.get("location") ?? "", json: r.json };
  }
}

/** POSTs events to the daemon's `http` source in structured mode; returns each status. */
export async function postEvents(url: string, events: readonly CloudEvent[]): Promise<number[]> {
  const out: number[] = [];
  for (const e of events) {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/cloudevents+json" }, body: serializeStructured(e) });
    await res.arrayBuffer();
    out.push(res.status);
  }
  return out;
}

export interface WebhookRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly at: number;
}

/**
 * A webhook subscriber. `grant` decides the handshake answer; `hang` makes it accept POSTs and never
 * answer (a dead subscriber that still holds connections).
 */
export class WebhookReceiver {
  readonly requests: WebhookRequest[] = [];
  readonly events: CloudEvent[] = [];
  grant: "echo" | "refuse" = "echo";
  allowedRate = "*";
  hang = false;
  /** Status for POSTs (204 by default); a 2xx records the events, anything else only the request. */
  postStatus = 204;
  private server: Server | undefined;
  private readonly hung: ServerResponse[] = [];
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get handshakes(): WebhookRequest[] {
    return this.requests.filter((r) => r.method === "OPTIONS");
  }

  async start(port = 0): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, at: Date.now() });
        if (req.method === "OPTIONS") {
          const origin = req.headers["webhook-request-origin"];
          if (this.grant === "echo" && typeof origin === "string") res.writeHead(200, { "webhook-allowed-origin": origin, "webhook-allowed-rate": this.allowedRate }).end();
          else res.writeHead(403).end();
          return;
        }
        if (this.hang) {
          this.hung.push(res);
          return;
        }
        if (this.postStatus >= 300) {
          res.writeHead(this.postStatus).end();
          return;
        }
        try {
          this.events.push(...decodeRequest(req.headersDistinct, Buffer.concat(chunks), { maxDepth: 64 }));
          res.writeHead(this.postStatus).end();
        } catch (err) {
          res.writeHead(400).end(String(err));
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(port, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const r of this.hung) r.destroy();
    await new Promise<void>((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
      if (!this.server) resolve();
    });
  }
}

/** Records every CloudEvent published on MQTT topics matching `filter` (MQTT 5 or 3.1.1 reader). */
export async function mqttReader(url: string, filter: string, clientId: string): Promise<{ events: CloudEvent[]; topics: string[]; client: MqttClient }> {
  const client = await connectAsync(url, { protocolVersion: 5, clientId });
  const events: CloudEvent[] = [];
  const topics: string[] = [];
  client.on("message", (topic, payload, packet) => {
    const d = decodeMqttMessage(
      { topic, payload, protocolVersion: 5, contentType: packet.properties?.contentType, userProperties: packet.properties?.userProperties as UserProperties | undefined },
      { source: "mqtt://x:1", now: () => new Date(), newId: () => "n" },
    );
    if (!d.invalid) {
      events.push(d.event);
      topics.push(topic);
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return { events, topics, client };
}

/** Records every CloudEvent published on NATS subjects matching `subject`. */
export async function natsReader(url: string, subject: string): Promise<{ events: CloudEvent[]; nc: NatsConnection }> {
  const nc = await natsConnect({ servers: url });
  const events: CloudEvent[] = [];
  nc.subscribe(subject, {
    callback: (_err, m) => {
      const d = decodeNatsMessage(
        { subject: m.subject, headers: headerEntries(m.headers), payload: m.data },
        { plainSource: "x", plainType: "x", server: "x:1", now: () => new Date(), newId: () => "n" },
      );
      if (!d.invalid) events.push(d.event);
    },
  });
  await nc.flush();
  return { events, nc };
}

/** The event without the loop markers the daemon adds on every sink write. */
export function withoutMarkers(ev: CloudEvent): CloudEvent {
  const { cebridgevia: _v, cebridgehops: _h, ...attributes } = ev.attributes;
  return ev.data === undefined ? { attributes } : { attributes, data: ev.data };
}
