/**
 * `azure_eventgrid` sink: publishes to a basic topic or a domain with `EventGridPublisherClient`.
 *
 * Concurrent writes are grouped by the kit's batch writer into requests of at most `batch.max_events`
 * events and `batch.max_bytes` (≤ 1 MiB, counted exactly as the JSON array we send), and each write
 * resolves when its request was answered 200. The service accepts or refuses a request as a whole, so
 * a refused request fails every event in it, each with the classified error: transient for 408, 429
 * (with Retry-After), 5xx, timeouts and network errors; permanent for 400, 401, 403, 404 and 413.
 *
 * CloudEvents schema: each event in the JSON event format, sent as it is — extensions, `data_base64`
 * and `time` as written — as `application/cloudevents-batch+json`. Event Grid schema: mapping.ts.
 *
 * Tracing: Event Grid has no per-event trace field besides the CloudEvent's own `traceparent` /
 * `tracestate` extension, which the CloudEvents schema carries unchanged; a request holds a batch,
 * so the write's hop context (`Sink.write`'s `trace`) has no place and is not written. The Event Grid
 * schema has no slot for the extension either (see mapping.ts).
 */
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { serializeStructured } from "../../src/cloudevents/index.js";
import { BatchWriter } from "../../src/core/batch-writer.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { compileTemplate, type Template } from "../../src/core/template.js";
import { PreparedBodies, classify, clientOptions, credentialFor } from "./client.js";
import { EVENT_GRID_MAX_REQUEST, type EventGridSinkConfig } from "./definition.js";
import { cloudEventToEventGrid } from "./mapping.js";
import { batchBody } from "./namespace-mapping.js";

type Publisher = { send(events: unknown[], options: Record<string, unknown>): Promise<void> };

const CE_BATCH = "application/cloudevents-batch+json; charset=utf-8";
const now = (): string => new Date().toISOString();
const EG_JSON = "application/json; charset=utf-8";

export function createEventGridSink(cfg: EventGridSinkConfig, ctx: ConnectorContext): Sink {
  return new EventGridSink(cfg, ctx);
}

class EventGridSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private client: Publisher | undefined;
  private readonly bodies = new PreparedBodies();
  private readonly writer: BatchWriter<string>;
  private readonly domainTopic: Template | undefined;
  private readonly contentType: string;

  constructor(
    private readonly cfg: EventGridSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.domainTopic = cfg.domain_topic !== undefined ? compileTemplate(cfg.domain_topic) : undefined;
    this.contentType = cfg.schema === "eventgrid" ? EG_JSON : CE_BATCH;
    this.writer = new BatchWriter<string>(
      {
        maxEntries: cfg.batch.max_events,
        // The array's brackets take two bytes; each entry counts its comma.
        maxBytes: Math.min(cfg.batch.max_bytes, EVENT_GRID_MAX_REQUEST) - 1,
        lingerMs: cfg.batch.linger,
        maxConcurrent: cfg.batch.max_requests,
      },
      { size: (json) => Buffer.byteLength(json) + 1, send: (entries, signal) => this.publish(entries, signal) },
    );
  }

  async open(): Promise<void> {
    if (this.client) return;
    const eg = await import("@azure/eventgrid");
    const credential = await credentialFor(
      this.cfg,
      (key) => new eg.AzureKeyCredential(key),
      (sas) => new eg.AzureSASCredential(sas),
    );
    // "Custom" makes the client post our array as it is; the prepared-body policy sets the bytes.
    this.client = new eg.EventGridPublisherClient(this.cfg.endpoint, "Custom", credential as never, clientOptions(this.cfg.endpoint, this.cfg.tls, [this.bodies.policy]) as never) as unknown as Publisher;
    // Publishing needs no connection ahead of time: the first write finds out whether the endpoint answers.
    this.ctx.setUp(true);
  }

  write(event: CloudEvent, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (!this.client) return Promise.reject(new NotConnectedError("the Event Grid sink is not open"));
    let json: string;
    try {
      json =
        this.cfg.schema === "eventgrid"
          ? JSON.stringify(cloudEventToEventGrid(event, this.domainTopic ? { now, domainTopic: this.domainTopic.render(event) } : { now }))
          : serializeStructured(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writer.write(json, signal);
  }

  private async publish(entries: readonly string[], signal: AbortSignal): Promise<readonly undefined[]> {
    const client = this.client;
    if (!client) throw new NotConnectedError("the Event Grid sink is closed");
    try {
      await this.bodies.send(batchBody(entries), this.contentType, (headers) =>
        client.send([], { abortSignal: signal, requestOptions: { customHeaders: headers, timeout: this.cfg.timeout } }),
      );
    } catch (err) {
      const f = classify(err);
      throw new SinkError(`publish of ${entries.length} event(s) to Event Grid failed: ${f.message}`, f.retryable, {
        ...(f.retryAfterMs !== undefined ? { retryAfterMs: f.retryAfterMs } : {}),
        ...(f.status === 413 ? { code: "CEB_TOO_LARGE" as const } : f.aborted ? { code: "CEB_SINK_TIMEOUT" as const } : {}),
      });
    }
    return entries.map(() => undefined);
  }

  async close(): Promise<void> {
    await this.writer.close();
    this.client = undefined;
    this.ctx.setUp(false);
  }
}
