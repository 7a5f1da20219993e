/**
 * `nats_jetstream` source: a durable pull consumer, at least once.
 *
 * - Flow control: it reserves window slots (`inbox.reserve`) and fetches only as many messages as it
 *   holds, so the window is never exceeded and memory stays flat while a sink is down.
 * - Settle → native verb, through the kit's settle batcher (the acks of one turn leave in one socket
 *   write): delivered / dead_lettered → `ack()`; rejected → `term()`; errored → `nak(delay)` with
 *   the kit's `releaseDelay` (none at shutdown, so another replica takes over at once).
 * - The kit's lease keeper sends `working()` for a message once half its ack wait has passed, so a
 *   slow route does not make the server redeliver a message that is still being handled.
 * - `create: true` makes the consumer (explicit ack, deliver all, `max_ack_pending` = the route's
 *   window, `ack_wait`, `max_deliver`, `filter_subject`) and the stream from `subjects` if missing;
 *   otherwise it binds to the existing durable. Replicas on one durable share the messages.
 */
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  type Consumer,
  type ConsumerMessages,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import type { ConnectorContext } from "../../src/core/connector.js";
import { LeaseKeeper } from "../../src/core/lease-keeper.js";
import type { Outcome } from "../../src/core/outcome.js";
import { releaseDelay } from "../../src/core/release-delay.js";
import { SettleBatcher } from "../../src/core/settle-batcher.js";
import type { Inbox, Received, Reservation, Source } from "../../src/core/source.js";
import { NatsLink } from "./connect.js";
import type { JetStreamSourceConfig } from "./definition.js";
import { headerEntries, inboundOptions } from "./inbound.js";
import { ensureStream } from "./jetstream-sink.js";
import { decodeNatsMessage, type InboundOptions } from "./mapping.js";
import { sleep } from "../../src/core/sleep.js";

export function createJetStreamSource(cfg: JetStreamSourceConfig, ctx: ConnectorContext): Source {
  return new JetStreamSource(cfg, ctx);
}

type Verb = "ack" | "nak" | "term";

/** A pull waits at most this long for messages; it also bounds how long `stop` waits for one. */
const FETCH_EXPIRES_MS = 1_000;
const MAX_FETCH = 1_000;

class JetStreamSource implements Source {
  private link: NatsLink | undefined;
  private consumer: Consumer | undefined;
  private inbox: Inbox | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private batch: ConsumerMessages | undefined;
  private readonly opts: InboundOptions;
  private leases: LeaseKeeper<JsMsg> | undefined;
  /** Acks of one event-loop turn leave in one socket write; `close` waits for them. */
  private readonly settles: SettleBatcher<JsMsg, Verb>;

  constructor(
    private readonly cfg: JetStreamSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.opts = inboundOptions(cfg);
    this.settles = new SettleBatcher<JsMsg, Verb>(
      {
        apply: (verb, msgs, delayMs) => {
          for (const m of msgs) this.safe(() => (verb === "ack" ? m.ack() : verb === "term" ? m.term() : delayMs > 0 ? m.nak(delayMs) : m.nak()));
        },
      },
      { maxBatch: 1_000, log: ctx.log },
    );
  }

  async start(inbox: Inbox): Promise<void> {
    if (this.link) throw new Error("nats_jetstream source started twice");
    this.inbox = inbox;
    this.link = new NatsLink(this.cfg, this.ctx, "source", { onOpen: (nc) => this.bind(nc, inbox.capacity) });
    await this.link.open();
    this.loop = this.pull(inbox);
  }

  /** Creates (when asked) and binds the durable consumer on a new connection. */
  private async bind(nc: NatsConnection, window: number): Promise<void> {
    const { stream, consumer: durable } = this.cfg;
    if (this.cfg.create) {
      if (this.cfg.subjects !== undefined) await ensureStream(nc, { name: stream, subjects: this.cfg.subjects }, this.ctx.log);
      const jsm = await jetstreamManager(nc);
      try {
        await jsm.consumers.info(stream, durable);
      } catch (err) {
        if (!(err instanceof JetStreamApiError) || err.status !== 404) throw err;
        await jsm.consumers.add(stream, {
          durable_name: durable,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(this.cfg.ack_wait ?? 30_000),
          max_ack_pending: this.cfg.max_ack_pending ?? Math.max(1, window),
          ...(this.cfg.max_deliver !== undefined ? { max_deliver: this.cfg.max_deliver } : {}),
          ...(this.cfg.filter_subject !== undefined ? { filter_subject: this.cfg.filter_subject } : {}),
        });
        this.ctx.log.info({ stream, consumer: durable, max_ack_pending: window }, "created JetStream consumer");
      }
    }
    // Binds to the durable (and fails if it does not exist: the link retries with backoff).
    const consumer = await jetstream(nc).consumers.get(stream, durable);
    // A consumer made elsewhere may have a shorter ack_wait than ours: keep in-flight messages alive
    // at half of whichever is shorter, or the server redelivers messages we are still handling.
    const info = await consumer.info(true);
    const serverAckWait = info.config.ack_wait !== undefined ? Math.floor(info.config.ack_wait / 1e6) : Infinity;
    const ackWait = Math.min(this.cfg.ack_wait ?? 30_000, serverAckWait);
    // Messages still in flight from the previous connection keep their (old) keeper until they settle.
    this.leases?.close();
    this.leases = new LeaseKeeper<JsMsg>({
      leaseMs: ackWait,
      maxBatch: 1_000,
      extend: (msgs) => {
        for (const m of msgs) this.safe(() => m.working());
      },
    });
    this.consumer = consumer;
  }

  private async pull(inbox: Inbox): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    while (!signal.aborted) {
      let room: Reservation | undefined;
      try {
        const consumer = this.consumer;
        if (!consumer || !this.link?.isUp) {
          await sleep(250, signal);
          continue;
        }
        room = await inbox.reserve(1, MAX_FETCH, signal);
        if (signal.aborted || !inbox.accepting) break;
        const batch = await consumer.fetch({ max_messages: room.slots, expires: FETCH_EXPIRES_MS });
        this.batch = batch;
        for await (const m of batch) {
          this.handle(m, room);
          failures = 0;
        }
        this.batch = undefined;
      } catch (err) {
        this.batch = undefined;
        if (signal.aborted) break;
        failures++;
        this.ctx.log.warn({ err: (err as Error).message, attempt: failures }, "JetStream fetch failed; retrying");
        await sleep(Math.min(10_000, 100 * 2 ** Math.min(failures, 7)), signal);
      } finally {
        room?.release();
      }
    }
  }

  private handle(m: JsMsg, room: Reservation): void {
    const info = m.info;
    const decoded = decodeNatsMessage(
      {
        subject: m.subject,
        headers: headerEntries(m.headers),
        payload: m.data,
        jetstream: { stream: info.stream, seq: m.seq, timestampNanos: m.timestampNanos },
      },
      this.opts,
    );
    if (room.slots === 0) {
      // The server never sends more than we asked for; if it ever did, hand the extra back.
      this.settles.settle("nak", m);
      return;
    }
    const done = this.leases?.hold(m);
    let settled = false;
    const received: Received = {
      events: [decoded.event],
      ...(decoded.invalid ? { invalid: decoded.invalid } : {}),
      deliveryCount: info.deliveryCount,
      trace: decoded.trace,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        done?.();
        this.apply(m, outcome, info.deliveryCount);
      },
    };
    if (!room.offer(received)) {
      // The route stopped accepting: hand the message back at once.
      settled = true;
      done?.();
      this.settles.settle("nak", m);
    }
  }

  private apply(m: JsMsg, outcome: Outcome, deliveryCount: number): void {
    switch (outcome.status) {
      case "delivered":
      case "dead_lettered":
        return this.settles.settle("ack", m);
      case "rejected":
        return this.settles.settle("term", m);
      case "errored":
        return this.settles.settle("nak", m, releaseDelay(outcome, deliveryCount));
    }
  }

  /** Settling must not throw: a closed connection only means the server will redeliver. */
  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, "JetStream acknowledgement failed; the server will redeliver");
    }
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    // Let the pull under way end by itself (it expires within FETCH_EXPIRES_MS): every message the
    // server sends for it is then offered, refused by the stopped route and nak'ed at once.
    // Stopping the batch early would unsubscribe while the server is still sending, and those
    // messages would wait out ack_wait before anyone could have them.
    const ended = await Promise.race([this.loop?.then(() => true, () => true) ?? true, wait(FETCH_EXPIRES_MS + 1_000).then(() => false)]);
    if (!ended) {
      this.batch?.stop();
      await this.loop?.catch(() => {});
    }
  }

  async close(deadline?: AbortSignal): Promise<void> {
    await this.stop();
    // Acks and naks already decided must leave before the connection closes.
    await this.settles.close(deadline);
    this.leases?.close();
    await this.link?.close();
  }
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
