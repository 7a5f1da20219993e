/**
 * `aws_eventbridge` sink: PutEvents in batches of up to 10 entries within `max_batch_bytes` (entry
 * sizes counted as AWS documents), through the kit's batch writer. Every entry's result is read: a
 * write resolves only when its own entry got an EventId; an entry failed with a transient code
 * (throttling, internal) rejects retryably, so the engine resends only that event; any other code is
 * permanent and reaches the dead-letter sink as `<code>: <message>` from AWS. An event too large for
 * one call fails permanently with its size and the limit (CEB_TOO_LARGE).
 */
import { EventBridgeClient, PutEventsCommand, type PutEventsResultEntry } from "@aws-sdk/client-eventbridge";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import { BatchWriter, type EntryResult } from "../../src/core/batch-writer.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { scrub, sinkErrorOf, TRANSIENT_ENTRY_CODES } from "./aws-errors.js";
import { clientConfig, secretsOf } from "./client.js";
import type { EventBridgeSinkConfig } from "./definition.js";
import { encodePutEventsEntry, putEventsEntrySize, type PutEventsEntry } from "./eventbridge-mapping.js";

export function createEventBridgeSink(cfg: EventBridgeSinkConfig, ctx: ConnectorContext): Sink {
  return new EventBridgeSink(cfg, ctx);
}

class EventBridgeSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private client: EventBridgeClient | undefined;
  private writer: BatchWriter<PutEventsEntry> | undefined;
  private readonly secrets: string[];

  constructor(
    private readonly cfg: EventBridgeSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.secrets = secretsOf(cfg);
  }

  async open(): Promise<void> {
    const common = await clientConfig(this.cfg, this.ctx, { requestTimeoutMs: 60_000, maxSockets: this.cfg.max_concurrent + 2, maxAttempts: 3 });
    this.client = new EventBridgeClient(common);
    this.writer = new BatchWriter<PutEventsEntry>(
      { maxEntries: 10, maxBytes: this.cfg.max_batch_bytes, lingerMs: this.cfg.linger, maxConcurrent: this.cfg.max_concurrent },
      { size: putEventsEntrySize, send: (entries, signal) => this.put(entries, signal) },
    );
    // Nothing to connect ahead: HTTPS connections open on first use and are kept alive.
    this.ctx.setUp(true);
  }

  write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    if (!this.writer) return Promise.reject(new NotConnectedError("the aws_eventbridge sink is not open"));
    let entry: PutEventsEntry;
    try {
      // Each entry has its own TraceHeader, so a batched PutEvents still carries every event's hop.
      entry = encodePutEventsEntry(event, { eventBus: this.cfg.event_bus, detail: this.cfg.detail }, trace);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writer.write(entry, signal);
  }

  private async put(entries: readonly PutEventsEntry[], signal: AbortSignal): Promise<readonly EntryResult[]> {
    let results: PutEventsResultEntry[];
    try {
      const out = await this.client!.send(new PutEventsCommand({ Entries: [...entries] }), { abortSignal: signal });
      results = out.Entries ?? [];
    } catch (err) {
      const error = sinkErrorOf(err, "PutEvents", this.secrets);
      if (error.retryable) this.ctx.setUp(false);
      throw error;
    }
    this.ctx.setUp(true);
    return entries.map((_, i) => this.entryResult(results[i]));
  }

  private entryResult(r: PutEventsResultEntry | undefined): EntryResult {
    if (r === undefined) return new BridgeError("CEB_SINK_TRANSIENT", "PutEvents returned no result for this entry", true);
    if (r.ErrorCode === undefined && r.EventId !== undefined) return undefined;
    const code = r.ErrorCode ?? "Unknown";
    const text = scrub(`${code}: ${r.ErrorMessage ?? "no message"}`, this.secrets);
    return TRANSIENT_ENTRY_CODES.has(code)
      ? new SinkError(`EventBridge did not take the entry, try again: ${text}`, true)
      : new SinkError(`EventBridge refused the entry: ${text}`, false);
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.client?.destroy();
    this.ctx.setUp(false);
  }
}
