/**
 * `amqp` source: one receiver link on its own session, at least once (docs/amqp-protobuf.md §3–4).
 *
 * - Credit = window: rhea's flow controller is off (`credit_window: 0`); the source reserves free
 *   window slots (`inbox.reserve`) and grants exactly that much link credit, and each delivery is
 *   offered into a held slot. So unsettled deliveries plus outstanding credit never exceed the
 *   window. Credit is never revoked (a drain kills the RabbitMQ 3.10 connection).
 * - Credit is granted only when the link has none left. A flow frame sent while transfers are in
 *   flight makes RabbitMQ 3.10 count those transfers as new credit (measured: twenty grants of one,
 *   each a turn apart, let fifty messages through), so slots reserved meanwhile wait and go out
 *   together once the last credited transfer arrived. With no credit outstanding nothing is in
 *   flight, and every broker reads the grant the same way.
 * - Settle → outcome, after every sink confirmed: delivered → `accepted`; dead_lettered and
 *   rejected → `rejected` with an error condition (`cebridge:dead-lettered` / `cebridge:rejected`,
 *   the error code and reason; a broker-side dead-letter exchange also gets the message); errored →
 *   `released`, after the kit's `releaseDelay` (AMQP has no delayed release: the message keeps its
 *   slot meanwhile; none at shutdown). Never `modified`: RabbitMQ 3.10 ends the session on it.
 * - rhea merges the dispositions of one turn into ranges that take the first outcome (an accept and
 *   a release in one turn → both accepted, the released message lost): the kit's settle batcher
 *   sends one outcome kind per event-loop turn (`oneVerbPerTurn`).
 * - A session per link: a broker returns unsettled deliveries only when their session ends (a
 *   detach keeps them locked). On a disconnect the connection, session and link are dropped and a
 *   new generation is built; settles of older generations are ignored (the broker redelivers them).
 * - `deliveryCount` = header `delivery-count` + 1 where the broker sets it (RabbitMQ does not: only
 *   the first delivery is known, by `first-acquirer`).
 */
import { randomUUID } from "node:crypto";
import type { Connection, Delivery, EventContext, Receiver, Session } from "rhea";
import type { ConnectorContext } from "../../src/core/connector.js";
import { ConnectError } from "../../src/core/errors.js";
import type { Outcome } from "../../src/core/outcome.js";
import { releaseDelay } from "../../src/core/release-delay.js";
import { SettleBatcher } from "../../src/core/settle-batcher.js";
import type { Inbox, Received, Reservation, Source } from "../../src/core/source.js";
import { ConnectionKeeper, dropConnection, errorText } from "./connection.js";
import type { AmqpSourceConfig } from "./definition.js";
import { decodeAmqpMessage, plainSourceFor, type AmqpInboundOptions } from "./mapping.js";
import { deliveryCountOf, inboundOf, type RheaMessage } from "./wire.js";

/** Test hooks. Production code never passes them. */
export interface AmqpSourceInternals {
  /** false turns the disposition-merge workaround off, to show the test that it matters. */
  readonly oneVerbPerTurn?: boolean;
}

export function createAmqpSource(cfg: AmqpSourceConfig, ctx: ConnectorContext, internals: AmqpSourceInternals = {}): Source {
  return new AmqpSource(cfg, ctx, internals);
}

type Verb = "accept" | "release" | "reject";

interface Handle {
  readonly delivery: Delivery;
  readonly gen: number;
  readonly error?: { readonly condition: string; readonly description: string };
}

/** What lives on one connection generation. */
interface Link {
  readonly gen: number;
  readonly session: Session;
  readonly receiver: Receiver;
  /** Reservations whose slots are granted (or about to be) as credit, oldest first. */
  readonly held: Reservation[];
  /** Slots reserved but not granted yet: they go out when the link's credit is used up. */
  ungranted: number;
  /** Aborts the credit loop: disconnect, stop. */
  readonly credit: AbortController;
  open: boolean;
}

/** Conditions a fresh attach cannot get past by retrying: the config names something wrong. */
const FATAL_AT_START = new Set(["amqp:not-found", "amqp:unauthorized-access", "amqp:precondition-failed", "amqp:invalid-field"]);

/** rhea keeps every delivery until all before it settle; room for this many per window slot. */
const SESSION_SLOTS_PER_WINDOW = 8;

class AmqpSource implements Source {
  private readonly keeper: ConnectionKeeper;
  private readonly opts: AmqpInboundOptions;
  private readonly settles: SettleBatcher<Handle, Verb>;
  private readonly delayed = new Map<NodeJS.Timeout, Handle>();
  private inbox: Inbox | undefined;
  private link: Link | undefined;
  private stopping = false;
  private closed = false;
  private everOpen = false;
  private started: { resolve: () => void; reject: (e: unknown) => void } | undefined;

  constructor(
    private readonly cfg: AmqpSourceConfig,
    private readonly ctx: ConnectorContext,
    internals: AmqpSourceInternals,
  ) {
    this.opts = {
      source: plainSourceFor(cfg.url, cfg.address),
      maxMessageSize: cfg.max_message_size,
      now: () => new Date(),
      newId: randomUUID,
    };
    this.settles = new SettleBatcher<Handle, Verb>(
      { apply: (verb, handles) => this.apply(verb, handles) },
      { maxBatch: 10_000, oneVerbPerTurn: internals.oneVerbPerTurn ?? true, log: ctx.log },
    );
    this.keeper = new ConnectionKeeper(cfg, `cebridge-${ctx.id}-${ctx.instanceId}`, ctx.log, {
      onOpen: (conn, gen) => this.attach(conn, gen),
      onDown: (gen, reason) => this.down(gen, reason),
    });
  }

  async start(inbox: Inbox): Promise<void> {
    if (this.inbox) throw new Error("amqp source started twice");
    this.inbox = inbox;
    const first = new Promise<void>((resolve, reject) => (this.started = { resolve, reject }));
    await this.keeper.start();
    await first;
  }

  private attach(conn: Connection, gen: number): void {
    const inbox = this.inbox!;
    const session = conn.create_session({ incoming: Math.max(2048, inbox.capacity * SESSION_SLOTS_PER_WINDOW), outgoing: 64 });
    session.begin();
    const receiver = session.open_receiver({ source: { address: this.cfg.address }, autoaccept: false, credit_window: 0 });
    const link: Link = { gen, session, receiver, held: [], ungranted: 0, credit: new AbortController(), open: false };
    this.link = link;
    receiver.on("receiver_open", () => {
      link.open = true;
      this.everOpen = true;
      this.ctx.setUp(true);
      this.started?.resolve();
      this.started = undefined;
      void this.grantCredit(link);
    });
    receiver.on("message", (c: EventContext) => this.onMessage(link, c));
    const failed = (c: EventContext, what: string) => {
      const err = (what === "session" ? c.session?.error : c.receiver?.error) as { condition?: string; description?: string } | undefined;
      const text = err ? [err.condition, err.description].filter(Boolean).join(": ") : errorText(c, `${what} error`);
      if (!this.everOpen && this.started && err?.condition !== undefined && FATAL_AT_START.has(err.condition)) {
        this.started.reject(new ConnectError(`cannot receive from AMQP address "${this.cfg.address}": ${text}`));
        this.started = undefined;
      }
      this.ctx.log.warn({ err: text, address: this.cfg.address }, `AMQP ${what} error; reconnecting`);
      // The link cannot recover on this connection: drop it, the keeper builds a new one.
      dropConnection(conn, `${what} error`);
    };
    receiver.on("receiver_error", (c: EventContext) => failed(c, "receiver"));
    session.on("session_error", (c: EventContext) => failed(c, "session"));
    receiver.on("receiver_close", () => {
      if (!this.stopping) dropConnection(conn, "the broker detached the link");
    });
  }

  /** Grants link credit for every window slot it can reserve, for as long as this link lives. */
  private async grantCredit(link: Link): Promise<void> {
    const inbox = this.inbox!;
    const signal = link.credit.signal;
    for (;;) {
      let r: Reservation;
      try {
        r = await inbox.reserve(1, inbox.capacity, signal);
      } catch {
        return; // link gone or stopping
      }
      if (signal.aborted || this.link !== link) {
        r.release();
        return;
      }
      link.held.push(r);
      link.ungranted += r.slots;
      this.grant(link);
    }
  }

  /** Sends the reserved slots as credit, but only once no credited transfer can still be in flight. */
  private grant(link: Link): void {
    if (link.ungranted === 0 || !link.open || link.receiver.has_credit()) return;
    const n = link.ungranted;
    link.ungranted = 0;
    link.receiver.add_credit(n);
  }

  private onMessage(link: Link, c: EventContext): void {
    const delivery = c.delivery!;
    const message = c.message! as unknown as RheaMessage;
    if (this.stopping || this.link !== link) {
      // Stopping: hand it straight back so another consumer takes it.
      if (this.link === link) this.settles.settle("release", { delivery, gen: link.gen });
      return;
    }
    const decoded = decodeAmqpMessage(inboundOf(message), this.opts);
    const deliveryCount = deliveryCountOf(message);
    let settled = false;
    const received: Received = {
      events: [decoded.event],
      ...(decoded.invalid ? { invalid: decoded.invalid } : {}),
      ...(deliveryCount !== undefined ? { deliveryCount } : {}),
      trace: decoded.trace,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        this.settle({ delivery, gen: link.gen }, outcome, deliveryCount);
      },
    };
    let room = link.held[0];
    while (room !== undefined && room.slots === 0) {
      link.held.shift();
      room = link.held[0];
    }
    // Credit is only granted from held slots, so a delivery always finds one; the plain offer is a
    // guard against a broker sending past its credit.
    const taken = room !== undefined ? room.offer(received) : this.inbox!.offer(received);
    if (room !== undefined && room.slots === 0) link.held.shift();
    if (!taken) {
      settled = true;
      this.settles.settle("release", { delivery, gen: link.gen });
    }
    this.grant(link);
  }

  private settle(h: Handle, outcome: Outcome, deliveryCount: number | undefined): void {
    if (this.link?.gen !== h.gen) return; // its connection is gone: the broker redelivers it
    switch (outcome.status) {
      case "delivered":
        return this.settles.settle("accept", h);
      case "dead_lettered":
      case "rejected": {
        const condition = outcome.status === "dead_lettered" ? "cebridge:dead-lettered" : "cebridge:rejected";
        const description = `${outcome.error.code}: ${outcome.error.message}`.slice(0, 1024);
        return this.settles.settle("reject", { ...h, error: { condition, description } });
      }
      case "errored": {
        const delay = this.closed ? 0 : releaseDelay(outcome, deliveryCount);
        if (delay === 0) return this.settles.settle("release", h);
        const timer = setTimeout(() => {
          this.delayed.delete(timer);
          this.settles.settle("release", h);
        }, delay);
        this.delayed.set(timer, h);
        return;
      }
    }
  }

  /** The settle batcher's transport: one outcome kind per call (and per turn), applied by rhea. */
  private apply(verb: Verb, handles: readonly Handle[]): void {
    for (const h of handles) {
      if (h.gen !== this.link?.gen || !this.link.open) continue; // its session is gone: the broker redelivers it
      try {
        if (verb === "accept") h.delivery.accept();
        else if (verb === "release") h.delivery.release();
        else h.delivery.reject(h.error);
      } catch (err) {
        this.ctx.log.warn({ err: (err as Error).message, verb }, "AMQP settle failed; the broker will redeliver the message");
      }
    }
  }

  private down(gen: number, reason: string): void {
    const link = this.link;
    if (link === undefined || link.gen !== gen) {
      if (!this.everOpen && !this.closed) this.ctx.log.warn({ err: reason, url: this.cfg.url }, "AMQP source cannot connect; retrying");
      return;
    }
    this.link = undefined;
    link.open = false;
    link.credit.abort();
    for (const r of link.held.splice(0)) r.release();
    // Delayed releases of this generation: the session is gone, the broker has them back already.
    for (const [timer, h] of this.delayed) {
      if (h.gen === gen) {
        clearTimeout(timer);
        this.delayed.delete(timer);
      }
    }
    this.ctx.setUp(false);
    if (!this.closed) this.ctx.log.warn({ err: reason, address: this.cfg.address }, "AMQP source disconnected; unsettled messages return to the broker");
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    const link = this.link;
    if (link) {
      link.credit.abort();
      link.ungranted = 0;
      for (const r of link.held.splice(0)) r.release();
    }
  }

  async close(deadline?: AbortSignal): Promise<void> {
    if (this.closed) return;
    await this.stop();
    this.closed = true;
    this.started?.reject(new ConnectError("AMQP source closed before it attached"));
    this.started = undefined;
    // Delayed releases go now: the daemon is stopping, another consumer may take them.
    for (const [timer, h] of this.delayed) {
      clearTimeout(timer);
      this.settles.settle("release", h);
    }
    this.delayed.clear();
    await this.settles.close(deadline);
    await this.keeper.close();
    if (this.link) this.down(this.link.gen, "closed");
    this.ctx.setUp(false);
  }
}
