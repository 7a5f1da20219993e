/**
 * `gcp_pubsub` sink: publishes each event to a topic and confirms on the message id Pub/Sub returns.
 *
 * - Batching is the client's own (`batch.max_events`, `batch.max_bytes`, `batch.linger`): it already
 *   resolves each message separately with its id or its error, which is what the kit's batch writer
 *   would give us, so a second batching layer would only add latency.
 * - Binary mode keeps Pub/Sub's attribute limits; an event that does not fit is published structured
 *   (logged at debug with the reason), never truncated. See mapping.ts.
 * - `ordering: true` publishes with the event's `partitionkey` as ordering key. After a failed publish
 *   the client stops publishing that key (later messages of the key fail too, so none overtakes the
 *   failed one); we call `resumePublishing(key)` as soon as we see the failure, so the engine's retry
 *   can go through. Per-key order across a failure then needs the route's `ordering: partitionkey`,
 *   which holds the key's later events until the failed one is delivered.
 * - Failures: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION and the like are permanent; everything
 *   else transient (see client.ts). The client retries UNAVAILABLE-like codes itself for up to 60 s
 *   before it reports them. A write whose signal aborts first is rejected at once; the client may
 *   still publish it (a duplicate on retry, never a loss).
 */
import type { PubSub, Topic } from "@google-cloud/pubsub";
import type { ConnectorContext } from "../../src/core/connector.js";
import { NotConnectedError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import { applyTls, describeError, grpcCode, planClient, publishError } from "./client.js";
import type { PubSubSinkConfig } from "./definition.js";
import { encodePubSubMessage } from "./mapping.js";

export function createPubSubSink(cfg: PubSubSinkConfig, ctx: ConnectorContext): Sink {
  return new PubSubSink(cfg, ctx);
}

const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;

class PubSubSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private ps: PubSub | undefined;
  private topic: Topic | undefined;
  private closed = false;
  private up = false;

  constructor(
    private readonly cfg: PubSubSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {}

  async open(): Promise<void> {
    if (this.ps) return;
    const plan = await planClient(this.cfg);
    const { PubSub } = await import("@google-cloud/pubsub");
    const ps = new PubSub(plan.options);
    if (this.cfg.tls) await applyTls(ps, this.cfg.tls);
    this.ps = ps;
    const b = this.cfg.batch;
    this.topic = ps.topic(this.cfg.topic, {
      batching: { maxMessages: b.max_events, maxBytes: b.max_bytes, maxMilliseconds: b.linger },
      messageOrdering: this.cfg.ordering,
    });
    await this.check();
  }

  /** Reports whether the topic answers. Publishing needs only pubsub.topics.publish, so a denied read is fine. */
  private async check(): Promise<void> {
    try {
      await this.topic!.getMetadata();
      this.setUp(true);
    } catch (err) {
      const code = grpcCode(err);
      if (code === GRPC_PERMISSION_DENIED) return this.setUp(true);
      this.setUp(false);
      this.ctx.log.error({ topic: this.cfg.topic, code, err: describeError(err) }, code === GRPC_NOT_FOUND ? "Pub/Sub topic not found" : "Pub/Sub is not reachable");
      // Readiness follows the next successful publish.
    }
  }

  async write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    if (signal.aborted) throw signal.reason;
    const topic = this.topic;
    if (!topic || this.closed) throw new NotConnectedError(`gcp_pubsub sink ${this.ctx.id} is not open`);
    // The client's own OpenTelemetry propagation is off (we never enable it), so it leaves the
    // googclient_ trace attributes we write alone.
    const out = encodePubSubMessage(event, { mode: this.cfg.mode, ordering: this.cfg.ordering }, trace);
    if (out.fallback !== undefined) {
      this.ctx.log.debug({ id: event.attributes["id"], reason: out.fallback }, "event published in structured mode: its attributes exceed Pub/Sub's limits");
    }
    const publish = topic.publishMessage({ data: out.data, attributes: out.attributes, ...(out.orderingKey !== undefined ? { orderingKey: out.orderingKey } : {}) }).then(
      () => {
        if (!this.up) this.setUp(true);
      },
      (err: unknown) => {
        // The client holds every later message of this key until we resume it.
        if (out.orderingKey !== undefined) topic.resumePublishing(out.orderingKey);
        throw publishError(err, this.cfg.topic);
      },
    );
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener("abort", onAbort, { once: true });
      publish.then(
        () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        (err: unknown) => {
          signal.removeEventListener("abort", onAbort);
          reject(err);
        },
      );
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.topic?.flush();
    } catch (err) {
      this.ctx.log.warn({ err: describeError(err) }, "flushing Pub/Sub publishes at close failed");
    }
    await this.ps?.close().catch(() => {});
    this.setUp(false);
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.ctx.setUp(up);
  }
}
