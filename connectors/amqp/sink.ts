/**
 * `amqp` sink: a write resolves on the broker's `accepted` outcome (docs/amqp-protobuf.md §3.4).
 *
 * - One sender link per target address, each on its own session (a broker error on one address,
 *   such as RabbitMQ's `amqp:not-found` for a missing exchange, ends only that session), at most
 *   `MAX_LINKS` of them, the least recently used closed first.
 * - Every transfer waits in a pending map until its outcome: `accepted` → done; `rejected` →
 *   permanent; `released` → transient; `modified` → transient, permanent when undeliverable here.
 *   A link or session error fails its transfers (permanent for `amqp:not-found` and
 *   `amqp:unauthorized-access`, transient otherwise); a disconnect fails every transfer in flight
 *   as transient, so the engine writes them again on the next connection. While disconnected,
 *   writes fail at once with `NotConnectedError`; nothing queues inside rhea.
 * - The message is encoded once, here, so its size is checked against `max_message_size` before
 *   rhea sees it; durable unless `durable: false`; integers as AMQP long.
 */
import type { Connection, Delivery, EventContext, Sender, Session } from "rhea";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import { abortable, abortError } from "../../src/core/abort.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { asBridgeError, BridgeError, ConnectError, NotConnectedError, SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { compileTemplate, type Template } from "../../src/core/template.js";
import { ConnectionKeeper } from "./connection.js";
import type { AmqpSinkConfig } from "./definition.js";
import { encodeAmqpMessage, type AmqpOutboundOptions } from "./mapping.js";
import { encodeOutbound } from "./wire.js";

export function createAmqpSink(cfg: AmqpSinkConfig, ctx: ConnectorContext): Sink {
  return new AmqpSink(cfg, ctx);
}

/** Sender links kept open at once (distinct rendered addresses). */
const MAX_LINKS = 64;
/** Transfers in flight per link; rhea's outgoing buffer must never overflow (it throws). */
const LINK_BUFFER = 4096;
/** Conditions after which the same transfer will fail again. */
const PERMANENT_CONDITIONS = new Set(["amqp:not-found", "amqp:unauthorized-access", "amqp:invalid-field", "amqp:not-allowed"]);

/** `/` inside a substituted value would add address segments (`/exchange/X/RK`); empty ones too. */
export function sanitizeAddressValue(value: string): string {
  if (value === "") return "_";
  return value.replace(/[/\s\u0000-\u001f]/g, "_");
}

interface Pending {
  readonly resolve: () => void;
  readonly reject: (e: BridgeError) => void;
}

interface Link {
  readonly address: string;
  readonly gen: number;
  readonly session: Session;
  readonly sender: Sender;
  /** Resolves when the sender attached; rejects with the attach error or when the link is dropped first. */
  readonly ready: Promise<void>;
  readonly attached: { readonly resolve: () => void; readonly reject: (e: BridgeError) => void };
  readonly pending: Map<Delivery, Pending>;
  /** Writes waiting for room in the link buffer. */
  readonly waiters: (() => void)[];
  dead: BridgeError | undefined;
}

function conditionOf(e: unknown): { condition?: string; description?: string } {
  return (typeof e === "object" && e !== null ? e : {}) as { condition?: string; description?: string };
}

function linkError(address: string, e: unknown, what: string): BridgeError {
  const { condition, description } = conditionOf(e);
  const text = [condition, description].filter(Boolean).join(": ") || what;
  return new SinkError(`AMQP ${what} for "${address}": ${text}`, !(condition !== undefined && PERMANENT_CONDITIONS.has(condition)));
}

class AmqpSink implements Sink {
  readonly guarantee = "confirmed" as const;
  private readonly keeper: ConnectionKeeper;
  private readonly tpl: Template;
  private readonly encoding: AmqpOutboundOptions;
  private readonly links = new Map<string, Link>();
  private conn: { readonly conn: Connection; readonly gen: number } | undefined;
  private opened: Promise<void> | undefined;
  private firstOpen: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  private closed = false;

  constructor(
    private readonly cfg: AmqpSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.tpl = compileTemplate(cfg.address, sanitizeAddressValue);
    this.encoding = { mode: cfg.mode, prefix: cfg.prefix, format: cfg.format, durable: cfg.durable };
    this.keeper = new ConnectionKeeper(cfg, `cebridge-${ctx.id}-${ctx.instanceId}`, ctx.log, {
      onOpen: (conn, gen) => {
        this.conn = { conn, gen };
        this.ctx.setUp(true);
        this.firstOpen?.resolve();
        this.firstOpen = undefined;
      },
      onDown: (gen, reason) => this.down(gen, reason),
    });
  }

  open(): Promise<void> {
    this.opened ??= (async () => {
      const first = new Promise<void>((resolve, reject) => (this.firstOpen = { resolve, reject }));
      await this.keeper.start();
      await first;
    })();
    return this.opened;
  }

  async write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    if (signal.aborted) throw abortError(signal);
    const current = this.conn;
    if (this.closed || current === undefined) throw new NotConnectedError("AMQP is not connected");
    const address = this.tpl.render(event);
    let bytes: Buffer;
    try {
      bytes = encodeOutbound(encodeAmqpMessage(event, this.encoding, trace));
    } catch (err) {
      throw new SinkError(`cannot encode the event: ${asBridgeError(err).message}`, false, { cause: err });
    }
    if (bytes.byteLength > this.cfg.max_message_size) {
      throw new SinkError(`message of ${bytes.byteLength} bytes is over max_message_size ${this.cfg.max_message_size}`, false, { code: "CEB_TOO_LARGE" });
    }
    const link = this.linkFor(address, current);
    await abortable(link.ready, signal);
    // `sendable()`: link credit left and room in rhea's outgoing buffer (which throws when full).
    // Without either, wait for an outcome or a flow frame to make room, within the write's deadline.
    while (link.dead === undefined && (link.pending.size >= LINK_BUFFER || !link.sender.sendable())) {
      await abortable(new Promise<void>((r) => link.waiters.push(r)), signal);
    }
    if (link.dead) throw link.dead;
    if (this.conn !== current) throw new NotConnectedError("AMQP connection lost before the transfer");
    return new Promise<void>((resolve, reject) => {
      // Tag 0: a pre-encoded message (rhea sends the bytes as they are).
      const delivery = link.sender.send(bytes as never, undefined, 0);
      const onAbort = () => {
        // The broker may still accept it; the engine's retry then sends a duplicate (at least once).
        if (link.pending.delete(delivery)) this.wake(link);
        reject(abortError(signal));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      link.pending.set(delivery, {
        resolve: () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
    });
  }

  private linkFor(address: string, current: { readonly conn: Connection; readonly gen: number }): Link {
    const known = this.links.get(address);
    if (known && known.gen === current.gen && known.dead === undefined) {
      // Most recently used last, so the first entry is the one to close when full.
      this.links.delete(address);
      this.links.set(address, known);
      return known;
    }
    if (known) this.drop(known, known.dead ?? new NotConnectedError("AMQP link replaced"));
    if (this.links.size >= MAX_LINKS) {
      const [, oldest] = this.links.entries().next().value as [string, Link];
      if (oldest.pending.size === 0) this.drop(oldest, new NotConnectedError("AMQP link closed (too many addresses)"), true);
    }
    const session = current.conn.create_session({ incoming: 64, outgoing: LINK_BUFFER + 16 });
    session.begin();
    const sender = session.open_sender({ target: { address }, autosettle: true });
    let attached!: { resolve: () => void; reject: (e: BridgeError) => void };
    const ready = new Promise<void>((resolve, reject) => (attached = { resolve, reject }));
    const link: Link = {
      address,
      gen: current.gen,
      session,
      sender,
      ready,
      attached,
      pending: new Map(),
      waiters: [],
      dead: undefined,
    };
    link.ready.catch(() => {});
    this.links.set(address, link);
    sender.once("sender_open", () => attached.resolve());
    sender.on("sendable", () => {
      for (const w of link.waiters.splice(0)) w();
    });
    const outcome = (c: EventContext, fn: (p: Pending) => void) => {
      const p = link.pending.get(c.delivery!);
      if (!p) return;
      link.pending.delete(c.delivery!);
      this.wake(link);
      fn(p);
    };
    sender.on("accepted", (c: EventContext) => outcome(c, (p) => p.resolve()));
    sender.on("rejected", (c: EventContext) =>
      outcome(c, (p) => p.reject(linkError(address, (c.delivery?.remote_state as { error?: unknown } | undefined)?.error, "broker rejected the message"))),
    );
    sender.on("released", (c: EventContext) => outcome(c, (p) => p.reject(new SinkError(`AMQP broker released the message for "${address}"`, true))));
    sender.on("modified", (c: EventContext) =>
      outcome(c, (p) => {
        const undeliverable = (c.delivery?.remote_state as { undeliverable_here?: boolean } | undefined)?.undeliverable_here === true;
        p.reject(new SinkError(`AMQP broker returned the message as modified for "${address}"`, !undeliverable));
      }),
    );
    sender.on("settled", (c: EventContext) =>
      outcome(c, (p) => p.reject(new SinkError(`AMQP broker settled the message for "${address}" without an outcome`, true))),
    );
    const fail = (e: BridgeError) => this.drop(link, e);
    sender.on("sender_error", (c: EventContext) => fail(linkError(address, c.sender?.error, "sender error")));
    session.on("session_error", (c: EventContext) => fail(linkError(address, c.session?.error, "session error")));
    sender.on("sender_close", () => fail(new SinkError(`AMQP broker detached the link for "${address}"`, true)));
    return link;
  }

  /** An outcome frees a slot (and rhea pops settled deliveries): let the waiting writes look again. */
  private wake(link: Link): void {
    for (const w of link.waiters.splice(0)) w();
  }

  /** Fails the link's transfers with `error` and forgets it; `close` also ends its session. */
  private drop(link: Link, error: BridgeError, close = false): void {
    link.dead ??= error;
    link.attached.reject(link.dead);
    if (this.links.get(link.address) === link) this.links.delete(link.address);
    for (const p of link.pending.values()) p.reject(error);
    link.pending.clear();
    for (const w of link.waiters.splice(0)) w();
    if (close) {
      try {
        link.session.close();
      } catch {
        // connection already gone
      }
    }
  }

  private down(gen: number, reason: string): void {
    if (this.conn?.gen !== gen) {
      if (!this.closed && this.firstOpen) this.ctx.log.warn({ err: reason, url: this.cfg.url }, "AMQP sink cannot connect; retrying");
      return;
    }
    this.conn = undefined;
    this.ctx.setUp(false);
    const error = new NotConnectedError(`AMQP connection lost (${reason}); the write will be retried`);
    for (const link of [...this.links.values()]) this.drop(link, error);
    if (!this.closed) this.ctx.log.warn({ err: reason, url: this.cfg.url }, "AMQP sink disconnected; writes in flight fail as transient");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.firstOpen?.reject(new ConnectError("AMQP sink closed before it connected"));
    this.firstOpen = undefined;
    // Give transfers in flight a moment to be confirmed before the connection goes.
    const deadline = Date.now() + 5_000;
    while ([...this.links.values()].some((l) => l.pending.size > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.keeper.close();
    if (this.conn) this.down(this.conn.gen, "closed");
    this.ctx.setUp(false);
  }
}
