/**
 * `nats_jetstream` source: a durable pull consumer, at least once.
 *
 * - Flow control: it reserves window slots (`inbox.reserve`) and fetches only as many messages as it
 *   holds, so the window is never exceeded and memory stays flat while a sink is down. Up to
 *   MAX_PULLS pulls are open at once, each on its own reservation (see `pull`).
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
  type ConsumeCallback,
  type Consumer,
  type ConsumerMessages,
  type FetchOptions,
  type JsMsg,
} from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import type { ConnectorContext } from "../../src/core/connector.js";
import { LeaseKeeper } from "../../src/core/lease-keeper.js";
import type { Outcome } from "../../src/core/outcome.js";
import { releaseDelay } from "../../src/core/release-delay.js";
import { SettleBatcher } from "../../src/core/settle-batcher.js";
import type { Inbox, Received, Reservation, Source } from "../../src/core/source.js";
import { parseAckSubject } from "./ack-subject.js";
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

// The acknowledgement bodies of the JetStream protocol (as nats.js sends them).
const ACK = new TextEncoder().encode("+ACK");
const NAK = new TextEncoder().encode("-NAK");
const TERM = new TextEncoder().encode("+TERM");
const WORKING = new TextEncoder().encode("+WPI");

function nakWithDelay(ms: number): Uint8Array {
  return new TextEncoder().encode(`-NAK ${JSON.stringify({ delay: nanos(ms) })}`);
}

/** A pull waits at most this long for messages; it also bounds how long `stop` waits for one. */
const FETCH_EXPIRES_MS = 1_000;
const MAX_FETCH = 1_000;
/** Pull requests open at once (see `pull`). */
const MAX_PULLS = 4;

class JetStreamSource implements Source {
  private link: NatsLink | undefined;
  private consumer: Consumer | undefined;
  private inbox: Inbox | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  /** Pulls under way (see `pull`). */
  private readonly batches = new Set<ConsumerMessages>();
  private readonly opts: InboundOptions;
  /** Keyed by the message's reply (ack) subject: see `handle`. */
  private leases: LeaseKeeper<string> | undefined;
  /** Acks of one event-loop turn leave in one socket write; `close` waits for them. */
  private readonly settles: SettleBatcher<string, Verb>;

  constructor(
    private readonly cfg: JetStreamSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.opts = inboundOptions(cfg);
    this.settles = new SettleBatcher<string, Verb>(
      {
        apply: (verb, replies, delayMs) => {
          const body = verb === "ack" ? ACK : verb === "term" ? TERM : delayMs > 0 ? nakWithDelay(delayMs) : NAK;
          for (const r of replies) this.respond(r, body);
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
    this.leases = new LeaseKeeper<string>({
      leaseMs: ackWait,
      maxBatch: 1_000,
      extend: (replies) => {
        for (const r of replies) this.respond(r, WORKING);
      },
    });
    this.consumer = consumer;
  }

  /**
   * Keeps up to MAX_PULLS pull requests open, each for slots it reserved: the slots that free up
   * while one pull's messages are on their way are asked for by the next pull, instead of idling
   * for a round trip until the previous pull has ended. Reservations never overlap, so the window
   * holds however many pulls are open.
   */
  private async pull(inbox: Inbox): Promise<void> {
    const signal = this.stopping.signal;
    const open = new Set<Promise<void>>();
    let failures = 0;
    let failed: Error | undefined;
    let delivered = false;
    const track = (consumer: Consumer, room: Reservation): void => {
      const p = this.fetchInto(consumer, room, () => (delivered = true)).then(
        (err) => {
          room.release();
          open.delete(p);
          if (err && !signal.aborted) failed ??= err;
        },
      );
      open.add(p);
    };
    while (!signal.aborted) {
      try {
        if (failed) {
          const err = failed;
          failed = undefined;
          failures = delivered ? 1 : failures + 1;
          delivered = false;
          this.ctx.log.warn({ err: err.message, attempt: failures }, "JetStream fetch failed; retrying");
          await Promise.all(open);
          await sleep(Math.min(10_000, 100 * 2 ** Math.min(failures, 7)), signal);
          continue;
        }
        const consumer = this.consumer;
        if (!consumer || !this.link?.isUp) {
          await sleep(250, signal);
          continue;
        }
        if (open.size >= MAX_PULLS) {
          await Promise.race(open);
          continue;
        }
        if (delivered) failures = 0;
        // The first pull takes whatever is free; further pulls wait for a share of the window, so
        // a busy stream is not asked for one message at a time.
        const min = open.size === 0 ? 1 : Math.max(1, Math.floor(inbox.capacity / (2 * MAX_PULLS)));
        const room = await inbox.reserve(min, MAX_FETCH, signal);
        if (signal.aborted || !inbox.accepting) {
          room.release();
          break;
        }
        if (failed || this.consumer !== consumer) {
          // A pull failed (or the connection changed) while we waited: back off first.
          room.release();
          continue;
        }
        track(consumer, room);
      } catch (err) {
        if (signal.aborted) break;
        failed ??= err as Error;
      }
    }
    await Promise.all(open);
  }

  /** One pull into `room`; resolves with the error that ended it, if any. Never rejects. */
  private async fetchInto(consumer: Consumer, room: Reservation, onMessage: () => void): Promise<Error | undefined> {
    try {
      // A callback, not `for await`: the iterator costs a promise and a microtask per message.
      const opts: FetchOptions & ConsumeCallback = {
        max_messages: room.slots,
        expires: FETCH_EXPIRES_MS,
        callback: (m) => {
          this.handle(m, room);
          onMessage();
        },
      };
      const batch = await consumer.fetch(opts);
      this.batches.add(batch);
      const ended = await batch.closed();
      this.batches.delete(batch);
      return ended instanceof Error ? ended : undefined;
    } catch (err) {
      return err instanceof Error ? err : new Error(String(err));
    }
  }

  private handle(m: JsMsg, room: Reservation): void {
    // Only the reply (ack) subject is kept past this call, not the JsMsg: its data and headers are
    // views of the socket chunk they arrived in, and a JsMsg held until its PubAck outlives young
    // GCs, so whole 64 KiB chunks got promoted and the peak RSS rose by ~50 MB.
    // `reply` is public on nats.js's JsMsgImpl but not in the JsMsg type.
    const reply = (m as JsMsg & { readonly reply?: unknown }).reply;
    if (typeof reply !== "string" || reply === "") throw new Error("nats.js JsMsg has no reply subject: cannot acknowledge");
    const info = parseAckSubject(reply) ?? { stream: m.info.stream, deliveryCount: m.info.deliveryCount, streamSequence: m.seq, timestampNanos: m.timestampNanos };
    const decoded = decodeNatsMessage(
      {
        subject: m.subject,
        headers: headerEntries(m.headers),
        payload: m.data,
        jetstream: { stream: info.stream, seq: info.streamSequence, timestampNanos: info.timestampNanos },
      },
      this.opts,
    );
    if (room.slots === 0) {
      // The server never sends more than we asked for; if it ever did, hand the extra back.
      this.settles.settle("nak", reply);
      return;
    }
    const done = this.leases?.hold(reply);
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
        this.apply(reply, outcome, info.deliveryCount);
      },
    };
    if (!room.offer(received)) {
      // The route stopped accepting: hand the message back at once.
      settled = true;
      done?.();
      this.settles.settle("nak", reply);
    }
  }

  private apply(reply: string, outcome: Outcome, deliveryCount: number): void {
    switch (outcome.status) {
      case "delivered":
      case "dead_lettered":
        return this.settles.settle("ack", reply);
      case "rejected":
        return this.settles.settle("term", reply);
      case "errored":
        return this.settles.settle("nak", reply, releaseDelay(outcome, deliveryCount));
    }
  }

  /**
   * What nats.js `JsMsg.ack()` and friends do: publish the verb to the reply subject. Any
   * connection of the account will do, so after a reconnect the current one is used.
   * Settling must not throw: a closed connection only means the server will redeliver.
   */
  private respond(reply: string, body: Uint8Array): void {
    try {
      const nc = this.link?.connection;
      if (!nc) throw new Error("not connected");
      nc.publish(reply, body);
    } catch (err) {
      this.ctx.log.warn({ err: (err as Error).message }, "JetStream acknowledgement failed; the server will redeliver");
    }
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    this.stopping.abort();
    // Let the pulls under way end by themselves (they expire within FETCH_EXPIRES_MS): every message
    // the server sends for them is then offered, refused by the stopped route and nak'ed at once.
    // Stopping the batch early would unsubscribe while the server is still sending, and those
    // messages would wait out ack_wait before anyone could have them.
    const ended = await Promise.race([this.loop?.then(() => true, () => true) ?? true, wait(FETCH_EXPIRES_MS + 1_000).then(() => false)]);
    if (!ended) {
      for (const b of this.batches) b.stop();
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
