/**
 * `nats` sink: core NATS publish. Best-effort: the server does not confirm, so `write` resolves once
 * the message is handed to the client (which groups the writes of one event-loop turn into one
 * socket write). While disconnected, writes fail with `NotConnectedError` instead of piling up in the
 * client's reconnect buffer, so memory stays bounded and the engine retries.
 */
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import type { Template } from "../../src/core/template.js";
import { NatsLink } from "./connect.js";
import type { NatsSinkConfig } from "./definition.js";
import { abortError, prepare, subjectTemplate } from "./outbound.js";

export function createCoreSink(cfg: NatsSinkConfig, ctx: ConnectorContext): Sink {
  return new CoreNatsSink(cfg, ctx);
}

class CoreNatsSink implements Sink {
  readonly guarantee = "best-effort" as const;
  private readonly tpl: Template;
  private link: NatsLink | undefined;

  constructor(
    private readonly cfg: NatsSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.tpl = subjectTemplate(cfg.subject);
  }

  async open(): Promise<void> {
    this.link ??= new NatsLink(this.cfg, this.ctx, "sink");
    await this.link.open();
  }

  async write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    if (signal.aborted) throw abortError(signal);
    const nc = this.link?.connection;
    if (!nc || !this.link?.isUp) throw new NotConnectedError("NATS is not connected");
    const maxPayload = this.cfg.max_payload ?? nc.info?.max_payload;
    const p = prepare(event, this.tpl, this.cfg.mode ?? "structured", maxPayload, this.cfg.format ?? "json", trace);
    // Published at once: nats.js gathers what is published before its flush microtask runs into one
    // socket write, and a route hands over the events of one source read in one synchronous pass
    // (its fast path), so a queue per turn here only added a promise per event and a turn of latency.
    try {
      nc.publish(p.subject, p.payload, { headers: p.headers });
    } catch (err) {
      if (err instanceof BridgeError) throw err;
      throw new SinkError(`NATS publish to "${p.subject}" failed: ${(err as Error).message}`, nc.isClosed(), { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.link?.close({ drain: true });
  }
}
