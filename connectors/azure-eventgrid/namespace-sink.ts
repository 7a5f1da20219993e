/**
 * `azure_eventgrid_namespace` sink: publishes to a namespace topic with `EventGridSenderClient`.
 * Each event goes in the JSON event format exactly as we hold it (extensions with their JSON types,
 * `data_base64`, `time` as written) in `application/cloudevents-batch+json` requests grouped by the
 * kit's batch writer (≤ `batch.max_events`, ≤ 1 MiB). The 1.0.0 client's own model would drop the
 * extensions, so the prepared-body policy replaces its body. Errors are classified as in the topic
 * sink: 408/429/5xx/network transient, other 4xx permanent. The trace travels as the event's own
 * `traceparent` / `tracestate` extension; a request holds a batch, so the write's hop context has no
 * place and is not written (as in the topic sink).
 */
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { serializeStructured } from "../../src/cloudevents/index.js";
import { BatchWriter } from "../../src/core/batch-writer.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { PreparedBodies, classify, clientOptions, credentialFor } from "./client.js";
import { EVENT_GRID_MAX_REQUEST, type NamespaceSinkConfig } from "./definition.js";
import { batchBody } from "./namespace-mapping.js";

type Sender = { sendEvents(events: unknown[], options: Record<string, unknown>): Promise<void> };

const CE_BATCH = "application/cloudevents-batch+json; charset=utf-8";

export function createNamespaceSink(cfg: NamespaceSinkConfig, ctx: ConnectorContext): Sink {
  return new NamespaceSink(cfg, ctx);
}

class NamespaceSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private client: Sender | undefined;
  private readonly bodies = new PreparedBodies();
  private readonly writer: BatchWriter<string>;

  constructor(
    private readonly cfg: NamespaceSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.writer = new BatchWriter<string>(
      {
        maxEntries: cfg.batch.max_events,
        maxBytes: Math.min(cfg.batch.max_bytes, EVENT_GRID_MAX_REQUEST) - 1,
        lingerMs: cfg.batch.linger,
        maxConcurrent: cfg.batch.max_requests,
      },
      { size: (json) => Buffer.byteLength(json) + 1, send: (entries, signal) => this.publish(entries, signal) },
    );
  }

  async open(): Promise<void> {
    if (this.client) return;
    const ns = await import("@azure/eventgrid-namespaces");
    const credential = await credentialFor(this.cfg, (key) => new ns.AzureKeyCredential(key));
    this.client = new ns.EventGridSenderClient(this.cfg.endpoint, credential as never, this.cfg.topic, clientOptions(this.cfg.endpoint, this.cfg.tls, [this.bodies.policy]) as never) as unknown as Sender;
    this.ctx.setUp(true);
  }

  write(event: CloudEvent, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (!this.client) return Promise.reject(new NotConnectedError("the Event Grid namespace sink is not open"));
    let json: string;
    try {
      json = serializeStructured(event);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writer.write(json, signal);
  }

  private async publish(entries: readonly string[], signal: AbortSignal): Promise<readonly undefined[]> {
    const client = this.client;
    if (!client) throw new NotConnectedError("the Event Grid namespace sink is closed");
    try {
      await this.bodies.send(batchBody(entries), CE_BATCH, (headers) => client.sendEvents([], { abortSignal: signal, requestOptions: { headers, timeout: this.cfg.timeout } }));
    } catch (err) {
      const f = classify(err);
      throw new SinkError(`publish of ${entries.length} event(s) to namespace topic ${this.cfg.topic} failed: ${f.message}`, f.retryable, {
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
