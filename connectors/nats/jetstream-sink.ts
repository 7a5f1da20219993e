/**
 * `nats_jetstream` sink: publishes and resolves only on the stream's PubAck. Each publish carries
 * `Nats-Msg-Id` = `msgIdFor(event)` (SHA-256 of source + NUL + id), so a retried write of the same
 * event inside the stream's duplicate window is stored once. `create: true` makes the stream from
 * `subjects` (duplicate window `duplicate_window`, default 5m) when it does not exist.
 *
 * Publishes are pipelined (`JetStreamPublisher`): every write in flight is on the wire at once, the
 * writes of one turn leave in one socket write, and PubAcks are matched by reply token.
 */
import { jetstreamManager, JetStreamApiError } from "@nats-io/jetstream";
import { errors as natsErrors, nanos, type NatsConnection } from "@nats-io/nats-core";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import type { Template } from "../../src/core/template.js";
import { NatsLink } from "./connect.js";
import type { JetStreamSinkConfig } from "./definition.js";
import { msgIdFor } from "./mapping.js";
import { abortError, prepare, subjectTemplate } from "./outbound.js";
import { JetStreamPublisher } from "./jetstream-publisher.js";

export function createJetStreamSink(cfg: JetStreamSinkConfig, ctx: ConnectorContext): Sink {
  return new JetStreamSink(cfg, ctx);
}

/** Makes the stream when it is missing (never changes an existing one). */
export async function ensureStream(
  nc: NatsConnection,
  spec: { name: string; subjects: readonly string[]; duplicateWindowMs?: number },
  log: ConnectorContext["log"],
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(spec.name);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
  }
  await jsm.streams.add({
    name: spec.name,
    subjects: [...spec.subjects],
    ...(spec.duplicateWindowMs !== undefined ? { duplicate_window: nanos(Math.max(spec.duplicateWindowMs, 120_000)) } : {}),
  });
  log.info({ stream: spec.name, subjects: spec.subjects }, "created JetStream stream");
}

/** Splits JetStream publish failures into transient and permanent. */
export function classifyPublishError(err: unknown, subject: string): BridgeError {
  if (err instanceof BridgeError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof JetStreamApiError) {
    // 5xx / 408 / 429: the stream is unavailable or busy (leader election, storage): try again.
    // Other API errors (wrong expected stream, message too large, ...) will fail the same way.
    const s = err.status;
    const retryable = s >= 500 || s === 408 || s === 429 || s === 0;
    return new SinkError(`JetStream refused the publish to "${subject}": ${msg} (code ${err.code})`, retryable, { cause: err });
  }
  if (err instanceof natsErrors.InvalidSubjectError || err instanceof natsErrors.InvalidArgumentError) {
    return new SinkError(`JetStream publish to "${subject}" is invalid: ${msg}`, false, { cause: err });
  }
  // Timeouts, no responders (no stream yet, or the stream is moving), closed connections.
  return new SinkError(`JetStream publish to "${subject}" failed: ${msg}`, true, { cause: err });
}

class JetStreamSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private readonly tpl: Template;
  private link: NatsLink | undefined;
  /** The publisher of the current connection; a new connection gets a new one. */
  private pub: JetStreamPublisher | undefined;

  constructor(
    private readonly cfg: JetStreamSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.tpl = subjectTemplate(cfg.subject);
  }

  async open(): Promise<void> {
    this.link ??= new NatsLink(this.cfg, this.ctx, "sink", {
      onOpen: async (nc) => {
        if (this.cfg.create && this.cfg.stream !== undefined && this.cfg.subjects !== undefined) {
          await ensureStream(nc, { name: this.cfg.stream, subjects: this.cfg.subjects, duplicateWindowMs: this.cfg.duplicate_window }, this.ctx.log);
        }
        this.pub?.close();
        this.pub = new JetStreamPublisher(nc);
      },
    });
    await this.link.open();
  }

  async write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    if (signal.aborted) throw abortError(signal);
    const nc = this.link?.connection;
    const pub = this.pub;
    if (!nc || !pub || !this.link?.isUp) throw new NotConnectedError("NATS is not connected");
    const maxPayload = this.cfg.max_payload ?? nc.info?.max_payload;
    // The headers js.publish would add for `msgID` and `expect.streamName`.
    const msgId: [string, string] = ["Nats-Msg-Id", msgIdFor(event)];
    const extra = this.cfg.stream !== undefined ? [msgId, ["Nats-Expected-Stream", this.cfg.stream] as const] : [msgId];
    const p = prepare(event, this.tpl, this.cfg.mode ?? "structured", maxPayload, this.cfg.format ?? "json", trace, extra);
    try {
      await pub.publish(p.subject, p.payload, p.headers, signal, abortError);
    } catch (err) {
      throw classifyPublishError(err, p.subject);
    }
  }

  async close(): Promise<void> {
    // Every publish is already with the connection, which the drain flushes before closing.
    await this.link?.close({ drain: true });
    this.pub?.close();
  }
}
