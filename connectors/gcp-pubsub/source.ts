/**
 * `gcp_pubsub` source: one subscription by streaming pull, at least once.
 *
 * Flow control (the route window is the limit, never exceeded):
 *   The client's flow control is set to the window — `maxMessages` = the route's `max_in_flight`,
 *   `allowExcessMessages: false` — so the client hands us at most `window` messages that it has not
 *   yet seen settled. A message leaves the client's count only when we ack or nack it, which happens
 *   in `settle`, after the route freed its slot; so every message the client hands us finds a free
 *   slot and `inbox.offer` takes it. The client holds anything the server sent beyond that
 *   (each stream asks for at most `window` outstanding; with `streams: N` up to N × window are leased
 *   to this replica, the excess kept by the client with its leases extended, never offered).
 *   The one exception is a message whose lease the client gave up (after `max_lease`): the client
 *   then counts it as gone while the route still holds it, and may hand us one more than fits. Such a
 *   message waits for room with `inbox.reserve` (it stays leased meanwhile), never nacked for lack of
 *   room, which would make Pub/Sub redeliver it at once in a tight loop.
 * Leases: the client's lease manager, not the kit's LeaseKeeper. It already modAcks every message it
 *   holds (including the excess it has not handed out) at the deadline it negotiated with the stream,
 *   which adapts to the 99th percentile of our processing time, and uses confirmed modAcks for
 *   exactly-once subscriptions. A second keeper would double every ModifyAckDeadline call.
 * Settle → native verb (the client batches acks and modAcks itself, so the kit's settle batcher
 *   would only add a second queue): delivered / dead_lettered / rejected → ack (Pub/Sub has no
 *   "terminate"; a redelivery would fail the same way); errored → nack. Pub/Sub has no per-message
 *   nack delay: with a subscription retry policy we nack at once and the server's backoff applies;
 *   without one a nacked message comes straight back, so we hold it (the client keeps its lease) for
 *   the kit's `releaseDelay` and nack then. At shutdown the nack is immediate.
 * Exactly-once subscriptions: `ackWithResponse`; a failed ack is logged as a redelivery to come (the
 *   message is not lost: Pub/Sub delivers it again), not an error of the route.
 * `deliveryAttempt` (set when the subscription has a dead-letter policy) is the delivery count.
 */
import type { Message, PubSub, Subscription } from "@google-cloud/pubsub";
import type { ConnectorContext } from "../../src/core/connector.js";
import type { Outcome } from "../../src/core/outcome.js";
import { releaseDelay } from "../../src/core/release-delay.js";
import type { Inbox, Received, Source } from "../../src/core/source.js";
import { nanosToRfc3339 } from "../../src/cloudevents/index.js";
import { applyTls, describeError, grpcCode, planClient } from "./client.js";
import type { PubSubSourceConfig } from "./definition.js";
import { decodePubSubMessage, type InboundOptions } from "./mapping.js";

export function createPubSubSource(cfg: PubSubSourceConfig, ctx: ConnectorContext): Source {
  return new PubSubSource(cfg, ctx);
}

/** Acks and modAcks leave in calls of up to this many ms of batching (the client's default is 100). */
const SETTLE_BATCH_MS = 10;
const GRPC_NOT_FOUND = 5;
const GRPC_PERMISSION_DENIED = 7;

interface SubscriptionFacts {
  topic: string | undefined;
  retryPolicy: boolean;
}

class PubSubSource implements Source {
  private ps: PubSub | undefined;
  private sub: Subscription | undefined;
  private inbox: Inbox | undefined;
  private opts: InboundOptions | undefined;
  private facts: SubscriptionFacts = { topic: undefined, retryPolicy: false };
  private stopped = false;
  private closed = false;
  private readonly stopping = new AbortController();
  /** Messages the window had no room for (see the header), oldest first. */
  private readonly waiting: Received[] = [];
  private waitLoop: Promise<void> | undefined;
  /** Errored messages held for their release delay before the nack. */
  private readonly delayed = new Map<Message, NodeJS.Timeout>();
  /** Confirmed (exactly-once) acks in flight. */
  private readonly acks = new Set<Promise<unknown>>();
  private reopen: NodeJS.Timeout | undefined;
  private failures = 0;
  private up = false;

  constructor(
    private readonly cfg: PubSubSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {}

  async start(inbox: Inbox): Promise<void> {
    if (this.inbox) throw new Error("gcp_pubsub source started twice");
    this.inbox = inbox;
    const plan = await planClient(this.cfg);
    const { PubSub, Duration } = await import("@google-cloud/pubsub");
    const ps = new PubSub(plan.options);
    if (this.cfg.tls) await applyTls(ps, this.cfg.tls);
    this.ps = ps;
    const sub = ps.subscription(this.cfg.subscription, {
      flowControl: { maxMessages: inbox.capacity, maxBytes: this.cfg.max_bytes, allowExcessMessages: false },
      streamingOptions: { maxStreams: this.cfg.streams },
      maxExtensionTime: Duration.from({ milliseconds: this.cfg.max_lease }),
      batching: { maxMilliseconds: SETTLE_BATCH_MS },
    });
    this.sub = sub;
    sub.on("error", (err: unknown) => this.onError(err));
    sub.on("debug", (msg: { message?: string }) => this.ctx.log.debug({ detail: describeError(msg) }, "Pub/Sub client"));
    await this.connect();
  }

  /**
   * Reads the subscription (its topic names the `source` of mapped events; its retry policy decides
   * how to nack), then starts pulling. Until the service answers (unreachable, subscription missing)
   * the source reports down and tries again with backoff, without pulling: every message is then
   * mapped with the right topic.
   */
  private async connect(): Promise<void> {
    if (this.stopped) return;
    if (!(await this.readFacts())) return this.retryLater();
    this.failures = 0;
    const sub = this.sub!;
    if (sub.listenerCount("message") === 0) sub.on("message", (m: Message) => this.onMessage(m));
    else if (!sub.isOpen) sub.open();
  }

  private retryLater(): void {
    if (this.stopped || this.reopen) return;
    this.failures++;
    const delay = Math.min(30_000, 250 * 2 ** Math.min(this.failures, 7));
    this.reopen = setTimeout(() => {
      this.reopen = undefined;
      void this.connect();
    }, delay);
  }

  /** True when the service answered (a denied read counts: we go on without the facts). */
  private async readFacts(): Promise<boolean> {
    const sub = this.sub!;
    let ok = true;
    try {
      const [meta] = await sub.getMetadata();
      this.facts = { topic: meta.topic ? String(meta.topic) : this.cfg.topic, retryPolicy: !!meta.retryPolicy };
      this.setUp(true);
    } catch (err) {
      const code = grpcCode(err);
      this.facts = { topic: this.cfg.topic, retryPolicy: false };
      if (code === GRPC_PERMISSION_DENIED) {
        this.ctx.log.warn(
          { subscription: this.cfg.subscription, err: describeError(err) },
          "cannot read the subscription (grant roles/pubsub.viewer, or set `topic`); assuming no retry policy",
        );
        this.setUp(true);
      } else {
        ok = false;
        this.setUp(false);
        this.ctx.log.error(
          { subscription: this.cfg.subscription, code, err: describeError(err), attempt: this.failures + 1 },
          code === GRPC_NOT_FOUND ? "Pub/Sub subscription not found; retrying" : "Pub/Sub is not reachable; retrying",
        );
      }
    }
    this.opts = {
      topic: this.facts.topic,
      subscription: sub.name,
      mapping: this.cfg.mapping,
      rawType: this.cfg.raw_type,
      maxPayload: this.cfg.max_payload,
    };
    return ok;
  }

  /** The client gave up on its streams (a status it does not retry): read the subscription again and reopen. */
  private onError(err: unknown): void {
    this.setUp(false);
    this.ctx.log.warn({ subscription: this.cfg.subscription, code: grpcCode(err), err: describeError(err) }, "Pub/Sub streaming pull failed; reopening");
    this.retryLater();
  }

  private onMessage(m: Message): void {
    // After stop: leave it leased with the client, which nacks it at close. A nack now, during the
    // drain, would only make Pub/Sub send it straight back.
    if (this.stopped) return;
    if (!this.up) this.setUp(true);
    const decoded = decodePubSubMessage(
      {
        messageId: m.id,
        data: m.data,
        attributes: m.attributes ?? {},
        orderingKey: m.orderingKey ?? "",
        publishTime: nanosToRfc3339(BigInt(m.publishTime.getFullTimeString())),
        deliveryAttempt: m.deliveryAttempt,
      },
      this.opts!,
    );
    const deliveryCount = m.deliveryAttempt > 0 ? m.deliveryAttempt : undefined;
    let settled = false;
    const received: Received = {
      events: [decoded.event],
      ...(decoded.invalid ? { invalid: decoded.invalid } : {}),
      ...(deliveryCount !== undefined ? { deliveryCount } : {}),
      trace: decoded.trace,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        this.settle(m, outcome, deliveryCount);
      },
    };
    const inbox = this.inbox!;
    if (inbox.offer(received)) return;
    if (!inbox.accepting) return; // stopping: the client nacks it at close
    this.waiting.push(received);
    this.waitLoop ??= this.offerWaiting().finally(() => (this.waitLoop = undefined));
  }

  /** Offers messages that found the window full, as room frees up (see the header). */
  private async offerWaiting(): Promise<void> {
    const inbox = this.inbox!;
    while (this.waiting.length > 0 && !this.stopping.signal.aborted) {
      let r;
      try {
        r = await inbox.reserve(1, this.waiting.length, this.stopping.signal);
      } catch {
        break;
      }
      try {
        while (r.slots > 0 && this.waiting.length > 0) {
          const msg = this.waiting.shift()!;
          if (!r.offer(msg)) this.waiting.unshift(msg);
          if (!inbox.accepting) break;
        }
      } finally {
        r.release();
      }
      if (!inbox.accepting) break;
    }
    // Left over at shutdown: the client nacks them when it closes.
  }

  private settle(m: Message, outcome: Outcome, deliveryCount: number | undefined): void {
    if (outcome.status !== "errored") return this.ack(m);
    if (outcome.release === "shutdown" || this.facts.retryPolicy || this.closed) return m.nack();
    const ms = releaseDelay(outcome, deliveryCount);
    if (ms <= 0) return m.nack();
    const t = setTimeout(() => {
      this.delayed.delete(m);
      m.nack();
    }, ms);
    this.delayed.set(m, t);
  }

  private ack(m: Message): void {
    // Set by the client from the stream's subscription properties (not in its typings).
    if (!(m as Message & { isExactlyOnceDelivery?: boolean }).isExactlyOnceDelivery) return m.ack();
    const p = m.ackWithResponse().catch((err: unknown) => {
      this.ctx.log.warn(
        { messageId: m.id, err: describeError(err) },
        "exactly-once acknowledgement failed; Pub/Sub will redeliver the message (a duplicate, not a loss)",
      );
    });
    this.acks.add(p);
    void p.finally(() => this.acks.delete(p));
  }

  private setUp(up: boolean): void {
    this.up = up;
    this.ctx.setUp(up);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.stopping.abort();
    if (this.reopen) clearTimeout(this.reopen);
    this.reopen = undefined;
  }

  async close(deadline?: AbortSignal): Promise<void> {
    if (this.closed) return;
    await this.stop();
    this.closed = true;
    // Errored messages waiting out their delay go back now; another replica may take them.
    for (const [m, t] of this.delayed) {
      clearTimeout(t);
      m.nack();
    }
    this.delayed.clear();
    await untilOrAborted(Promise.allSettled([...this.acks]), deadline);
    // Closing nacks everything still in the client's hands (parked, waiting, never settled) and
    // flushes the queued acks and nacks.
    const sub = this.sub;
    if (sub) {
      await untilOrAborted(sub.close().catch((err: unknown) => this.ctx.log.warn({ err: describeError(err) }, "closing the Pub/Sub subscription failed")), deadline);
      // After close: removing the last listener would otherwise start a second, unawaited close.
      sub.removeAllListeners("message");
    }
    await untilOrAborted(this.ps?.close().catch(() => {}) ?? Promise.resolve(), deadline);
    this.setUp(false);
  }
}

/** Resolves when `p` settles or `deadline` aborts, whichever comes first. */
function untilOrAborted(p: Promise<unknown>, deadline: AbortSignal | undefined): Promise<void> {
  const settled = p.then(
    () => undefined,
    () => undefined,
  );
  if (!deadline) return settled;
  if (deadline.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    deadline.addEventListener("abort", onAbort, { once: true });
    void settled.then(() => {
      deadline.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
