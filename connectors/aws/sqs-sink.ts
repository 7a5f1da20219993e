/**
 * `aws_sqs` sink: SendMessageBatch in batches of up to 10 messages within `max_batch_bytes`, through
 * the kit's batch writer; each write settles with its own entry's result (a sender fault is
 * permanent and reaches the dead-letter sink with SQS's code and message; anything else is retried
 * for that entry alone). Binary mode with `ce-` message attributes when they fit, else structured;
 * FIFO queues (URL ending in `.fifo`) get a group id and a deduplication id from the event.
 */
import { SendMessageBatchCommand, SQSClient, type BatchResultErrorEntry } from "@aws-sdk/client-sqs";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import { BatchWriter, type EntryResult } from "../../src/core/batch-writer.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { scrub, sinkErrorOf } from "./aws-errors.js";
import { clientConfig, secretsOf } from "./client.js";
import type { SqsSinkConfig } from "./definition.js";
import { encodeSqsMessage, sqsMessageSize, type SqsOutbound } from "./sqs-encode.js";

export function createSqsSink(cfg: SqsSinkConfig, ctx: ConnectorContext): Sink {
  return new SqsSink(cfg, ctx);
}

class SqsSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private client: SQSClient | undefined;
  private writer: BatchWriter<SqsOutbound> | undefined;
  private readonly secrets: string[];
  private readonly fifo: boolean;

  constructor(
    private readonly cfg: SqsSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.secrets = secretsOf(cfg);
    this.fifo = /\.fifo\/?$/.test(cfg.queue_url);
  }

  async open(): Promise<void> {
    const common = await clientConfig(this.cfg, this.ctx, { requestTimeoutMs: 60_000, maxSockets: this.cfg.max_concurrent + 2, maxAttempts: 3 });
    this.client = new SQSClient({ ...common, ...(this.cfg.endpoint !== undefined ? { useQueueUrlAsEndpoint: false } : {}) });
    this.writer = new BatchWriter<SqsOutbound>(
      { maxEntries: 10, maxBytes: this.cfg.max_batch_bytes, lingerMs: this.cfg.linger, maxConcurrent: this.cfg.max_concurrent },
      { size: sqsMessageSize, send: (entries, signal) => this.send(entries, signal) },
    );
    this.ctx.setUp(true);
  }

  write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    if (!this.writer) return Promise.reject(new NotConnectedError("the aws_sqs sink is not open"));
    let msg: SqsOutbound;
    try {
      // Each batch entry has its own AWSTraceHeader system attribute.
      msg = encodeSqsMessage(event, { mode: this.cfg.mode, fifo: this.fifo, messageGroupId: this.cfg.message_group_id }, trace);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.writer.write(msg, signal);
  }

  private async send(entries: readonly SqsOutbound[], signal: AbortSignal): Promise<readonly EntryResult[]> {
    let failed: BatchResultErrorEntry[];
    let ok: Set<string>;
    try {
      const out = await this.client!.send(
        new SendMessageBatchCommand({ QueueUrl: this.cfg.queue_url, Entries: entries.map((e, i) => ({ Id: String(i), ...e })) }),
        { abortSignal: signal },
      );
      failed = out.Failed ?? [];
      ok = new Set((out.Successful ?? []).map((s) => s.Id ?? ""));
    } catch (err) {
      const error = sinkErrorOf(err, "SendMessageBatch", this.secrets);
      if (error.retryable) this.ctx.setUp(false);
      throw error;
    }
    this.ctx.setUp(true);
    const byId = new Map(failed.map((f) => [f.Id ?? "", f]));
    return entries.map((_, i) => {
      const id = String(i);
      const f = byId.get(id);
      if (f) {
        const text = scrub(`${f.Code ?? "Error"}: ${f.Message ?? "no message"}`, this.secrets);
        return f.SenderFault ? new SinkError(`SQS refused the message: ${text}`, false) : new SinkError(`SQS did not take the message, try again: ${text}`, true);
      }
      return ok.has(id) ? undefined : new BridgeError("CEB_SINK_TRANSIENT", "SendMessageBatch returned no result for this message", true);
    });
  }

  async close(): Promise<void> {
    await this.writer?.close();
    this.client?.destroy();
    this.ctx.setUp(false);
  }
}
