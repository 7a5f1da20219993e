/**
 * `mqtt` source: at least once with QoS 1 through a persistent session.
 *
 * - `clean: false` (+ `sessionExpiryInterval` on MQTT 5): the broker keeps unacknowledged messages
 *   across disconnects and crashes of this process, and resends them when the same client id returns.
 * - `client.handleMessage` is replaced before the client connects (a resent message can arrive in the
 *   same TCP read as the CONNACK). mqtt.js hands over one message at a time per connection and would
 *   send the PUBACK when its callback is called. For QoS 1 the source sends the PUBACK itself
 *   (`PubackLine`, in arrival order, after the route settles the message delivered, dead_lettered or
 *   rejected) and lets mqtt.js read on as soon as the message is in the window: many messages are in
 *   flight per connection, up to the route window (`inbox.reserve`: the slot waited for is ours,
 *   however many connections wait) and, on MQTT 5, the Receive Maximum advertised to the broker
 *   (the window size, at most 65535). On 3.1.1 the window is the only bound (and the broker's own
 *   in-flight limit, e.g. mosquitto's `max_inflight_messages`).
 * - errored: the PUBACK is withheld (and so is every one after it: acknowledgements keep their
 *   order) and the connection is dropped (socket destroyed); mqtt.js reconnects after a second with
 *   the same client id and the broker resends every unacknowledged message (dup=1). A settle that
 *   arrives after its connection was replaced is ignored (the broker resends on the new connection;
 *   acknowledging there could ack a different message that reuses the packet id).
 * - `connections: N` opens N clients (ids suffixed `-0`…`-N-1`) in one `$share/` group.
 * - QoS 0 cannot be paused: the message is offered at once and dropped (counted as overflow) when the
 *   window is full.
 * - QoS 2: the PUBREC goes out before delivery (mqtt.js), so within one process the PUBCOMP waits for
 *   the settle, but a crash between the two loses the message. `lint` recommends QoS 1. QoS 2 stays
 *   one message at a time per connection (mqtt.js sends the PUBCOMP from its callback).
 *
 * Known effect of holding mqtt.js's reader: while the window stays full (or a QoS 2 message waits)
 * longer than 1.5 × keepalive (90 s), mqtt.js cannot read the broker's PINGRESP, declares the
 * connection dead and reconnects; unacknowledged messages are then resent (duplicates).
 */
import { randomUUID } from "node:crypto";
import { connect, type IPublishPacket, type MqttClient } from "mqtt";
import type { CloudEvent } from "../../src/cloudevents/event.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { ConnectError, type BridgeError } from "../../src/core/errors.js";
import type { Inbox, Received, Source } from "../../src/core/source.js";
import { PubackLine } from "./acks.js";
import { clientOptions, defaultClientId, endClient } from "./connect.js";
import type { MqttSourceConfig } from "./definition.js";
import { decodeMqttMessage, plainSourceFor, type MqttInboundOptions, type UserProperties } from "./mapping.js";

/** Passed to mqtt.js's message callback: it then sends no PUBACK of its own (see `PubackLine`). */
const ACK_TAKEN_OVER = new Error("PUBACK sent by the cebridge source once the route settles");
/** How long a hung-up socket may wait for the broker to close its side before it is destroyed. */
const HANG_UP_TIMEOUT_MS = 3000;

export function createMqttSource(cfg: MqttSourceConfig, ctx: ConnectorContext): Source {
  return new MqttSource(cfg, ctx);
}

class MqttSource implements Source {
  private readonly conns: SourceConnection[] = [];
  private readonly stopping = new AbortController();
  private readonly opts: MqttInboundOptions;
  private upCount = 0;
  private reportedUp: boolean | undefined;

  constructor(
    private readonly cfg: MqttSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.opts = { source: plainSourceFor(cfg.url), maxPayload: cfg.max_payload, now: () => new Date(), newId: randomUUID };
  }

  async start(inbox: Inbox): Promise<void> {
    if (this.conns.length > 0) throw new Error("mqtt source started twice");
    const n = this.cfg.connections ?? 1;
    const base = this.cfg.client_id ?? defaultClientId(this.ctx);
    for (let i = 0; i < n; i++) {
      this.conns.push(new SourceConnection(this.cfg, this.ctx, n === 1 ? base : `${base}-${i}`, inbox, this.opts, this.stopping.signal, (up) => this.onUp(up)));
    }
    await Promise.all(this.conns.map((c) => c.start()));
  }

  /** Ready only when every connection is subscribed. */
  private onUp(delta: boolean): void {
    this.upCount += delta ? 1 : -1;
    const up = this.upCount === this.conns.length;
    if (up !== this.reportedUp) {
      this.reportedUp = up;
      this.ctx.setUp(up);
    }
  }

  async stop(): Promise<void> {
    // Keep the subscription (it belongs to the persistent session); messages that arrive from now
    // on are left unacknowledged, so the broker resends them to the next session or group member.
    this.stopping.abort();
  }

  async close(): Promise<void> {
    await this.stop();
    await Promise.all(this.conns.map((c) => c.close()));
    if (this.reportedUp !== false) this.ctx.setUp(false);
    this.reportedUp = false;
  }
}

class SourceConnection {
  private client: MqttClient | undefined;
  /** Incremented whenever the transport closes: a settle from an older generation must not ack. */
  private generation = 0;
  private up = false;
  private subscribed!: (v: void) => void;
  private failed!: (e: unknown) => void;
  private readonly firstSubscribe: Promise<void>;
  private everSubscribed = false;
  private closed = false;
  /** The PUBACK line of `lineStream`, the socket its QoS 1 messages came in on. */
  private line: PubackLine | undefined;
  private lineStream: unknown;
  /** The socket `hangUp` is dropping. */
  private hungUp: unknown;

  constructor(
    private readonly cfg: MqttSourceConfig,
    private readonly ctx: ConnectorContext,
    private readonly clientId: string,
    private readonly inbox: Inbox,
    private readonly opts: MqttInboundOptions,
    private readonly stopping: AbortSignal,
    private readonly onUp: (up: boolean) => void,
  ) {
    this.firstSubscribe = new Promise((res, rej) => {
      this.subscribed = res;
      this.failed = rej;
    });
    this.firstSubscribe.catch(() => {});
  }

  async start(): Promise<void> {
    const v5 = (this.cfg.protocol_version ?? 5) === 5;
    const options = await clientOptions(this.cfg, this.clientId);
    options.clean = false;
    options.resubscribe = false; // we subscribe ourselves when the broker has no session
    if (v5) {
      options.properties = {
        sessionExpiryInterval: Math.ceil((this.cfg.session_expiry ?? 3_600_000) / 1000),
        // More unacknowledged messages than the window holds would only wait in the socket.
        receiveMaximum: Math.max(1, Math.min(0xffff, this.inbox.capacity)),
      };
    }
    const client = connect(this.cfg.url, options);
    this.client = client;
    // Must be set before connect(): the broker may resend session messages right after CONNACK.
    client.handleMessage = (packet, done) => this.onPublish(packet, done);
    client.on("connect", (connack) => {
      if (!connack.sessionPresent) return this.subscribe(client);
      // The broker kept our session, subscription included. It may resend a backlog first, and
      // mqtt.js reads packets in order and stops while the window is full (or a QoS 2 message
      // waits for its settle), so a SUBACK could come only after the backlog: we are ready now. A process still subscribes once, in case
      // the topic changed since the session was made.
      this.setUp(true);
      this.subscribed();
      if (!this.everSubscribed) this.subscribe(client);
    });
    client.on("close", () => {
      this.dropLine();
      this.setUp(false);
    });
    client.on("error", (err) => {
      this.ctx.log.warn({ err: err.message, client_id: this.clientId }, "MQTT client error");
    });
    client.connect();
    await this.firstSubscribe;
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.onUp(up);
  }

  private subscribe(client: MqttClient): void {
    const qos = this.cfg.qos ?? 1;
    client.subscribe(this.cfg.topic, { qos }, (err, granted) => {
      if (err) {
        this.ctx.log.warn({ err: err.message, topic: this.cfg.topic }, "MQTT subscribe failed; retrying on reconnect");
        return;
      }
      const refused = granted?.find((g) => g.qos === 128);
      if (refused) {
        const e = new ConnectError(`the broker refused the subscription to "${this.cfg.topic}"`);
        this.ctx.log.error({ topic: this.cfg.topic }, e.message);
        if (!this.everSubscribed) this.failed(e);
        return;
      }
      this.everSubscribed = true;
      this.setUp(true);
      this.subscribed();
    });
  }

  private onPublish(packet: IPublishPacket, done: (err?: Error) => void): void {
    const gen = this.generation;
    const props = packet.properties;
    const payload = typeof packet.payload === "string" ? Buffer.from(packet.payload, "utf8") : packet.payload;
    const decoded = decodeMqttMessage(
      {
        topic: packet.topic,
        payload,
        protocolVersion: (this.cfg.protocol_version ?? 5) === 5 ? 5 : 4,
        contentType: props?.contentType,
        userProperties: props?.userProperties as UserProperties | undefined,
      },
      this.opts,
    );
    const events = [decoded.event];
    const invalid = decoded.invalid ? { invalid: decoded.invalid } : {};

    if (packet.qos === 0) {
      if (this.stopping.aborted) return done();
      const received: Received = { events, ...invalid, trace: decoded.trace, settle() {} };
      if (this.inbox.offer(received)) return done();
      if (!this.inbox.blocking) {
        this.ctx.countDropped("overflow");
        return done();
      }
      // `when_full: block`: withholding `done` stops mqtt.js reading this connection until the
      // route's buffer has room, so the broker queues (up to its own limits) instead of us dropping.
      this.inbox.reserve(1, 1, this.stopping).then(
        (room) => {
          try {
            if (!room.offer(received)) this.ctx.countDropped("overflow");
          } finally {
            room.release();
            done();
          }
        },
        () => done(), // stopping: QoS 0 has nothing to redeliver
      );
      return;
    }
    if (this.stopping.aborted) return; // leave it unacknowledged: resent to the next session
    if (packet.qos === 1) return this.onQos1(packet, events, invalid, decoded.trace, done);
    if (this.client?.stream === this.hungUp) return; // being dropped: resent on the next connection

    // QoS 2: mqtt.js calls us on the PUBREL and sends the PUBCOMP from `done`, one at a time.
    this.inbox.reserve(1, 1, this.stopping).then(
      (room) => {
        try {
          if (gen !== this.generation) return; // connection replaced while waiting: it is being resent
          let settled = false;
          const received: Received = {
            events,
            ...invalid,
            trace: decoded.trace,
            settle: (outcome) => {
              if (settled) return;
              settled = true;
              if (gen !== this.generation || this.closed) return;
              if (outcome.status === "errored") {
                // QoS 1 messages on this connection still get their PUBACKs before it is dropped.
                if (this.line) this.line.drop();
                else this.hangUp();
                return;
              }
              try {
                done(); // PUBCOMP
              } catch (err) {
                this.ctx.log.warn({ err: (err as Error).message }, "MQTT acknowledgement failed; the broker will resend");
              }
            },
          };
          // Refused only when the route stopped accepting: the message stays unacknowledged and the
          // broker resends it to the next session or group member once this connection closes.
          room.offer(received);
        } finally {
          room.release();
        }
      },
      () => {
        // Stopping: leave it unacknowledged.
      },
    );
  }

  /**
   * QoS 1: takes a place in the connection's PUBACK line, offers, and lets mqtt.js read on as soon
   * as the route holds the message. An error passed to mqtt.js's callback makes it skip its own
   * PUBACK and go on with the next packet; the line sends the PUBACK once the route settles.
   * Waiting for a window slot keeps mqtt.js from reading on, so the window bounds what is in flight.
   */
  private onQos1(
    packet: IPublishPacket,
    events: CloudEvent[],
    invalid: { invalid?: BridgeError },
    trace: TraceContext | undefined,
    done: (err?: Error) => void,
  ): void {
    const line = this.lineFor();
    if (!line) return; // the socket is gone or being dropped: the broker resends on the next one
    const place = line.take(packet.messageId ?? 0);
    let settled = false;
    const received: Received = {
      events,
      ...invalid,
      trace,
      settle: (outcome) => {
        if (settled || this.closed) return;
        settled = true;
        // The line ignores a settle once its socket is gone: the broker resends on the next one,
        // where acknowledging could ack a different message that reuses the packet id.
        if (outcome.status === "errored") line.withhold(place);
        else line.ready(place);
      },
    };
    // Room now (free > 0 also means nobody waits ahead of us): offer without a reservation's promises.
    if (this.inbox.free > 0 && this.inbox.offer(received)) return done(ACK_TAKEN_OVER);
    this.inbox.reserve(1, 1, this.stopping).then(
      (room) => {
        try {
          // Connection replaced or being dropped while waiting: the message is resent anyway.
          if (!line.open) return line.withhold(place);
          // Refused only when the route stopped accepting: the place stays waiting, so nothing
          // after it is acknowledged either; the broker resends them all to the next session.
          if (room.offer(received)) done(ACK_TAKEN_OVER);
        } finally {
          room.release();
        }
      },
      () => {
        // Stopping: leave it unacknowledged (and mqtt.js stopped: nothing more is read).
      },
    );
  }

  /** The PUBACK line of the current socket, made on its first QoS 1 message. */
  private lineFor(): PubackLine | undefined {
    const stream = this.client?.stream;
    if (this.line && this.lineStream === stream) return this.line.open ? this.line : undefined;
    if (!stream || stream.destroyed || stream === this.hungUp) return undefined;
    this.line?.discard();
    this.lineStream = stream;
    this.line = new PubackLine(
      stream,
      () => this.hangUp(stream),
      (err) => this.ctx.log.warn({ err: err.message, client_id: this.clientId }, "MQTT acknowledgement failed; the broker will resend"),
    );
    return this.line;
  }

  /**
   * Drops the connection without DISCONNECT so that the broker resends what was not acknowledged.
   * The socket is half-closed after the PUBACKs already written (a reset could discard them), and
   * what still arrives on it is read and thrown away (it is resent too); mqtt.js reconnects once
   * the broker has closed its side.
   */
  private hangUp(stream = this.client?.stream): void {
    if (!stream || stream !== this.client?.stream || stream === this.hungUp || stream.destroyed) return;
    if (this.stopping.aborted) return; // close() ends the session cleanly instead
    this.ctx.log.info({ client_id: this.clientId }, "releasing MQTT messages: reconnecting so the broker resends them");
    this.hungUp = stream;
    this.generation++;
    stream.unpipe();
    stream.resume();
    stream.end();
    setTimeout(() => stream.destroy(), HANG_UP_TIMEOUT_MS).unref();
  }

  /** The socket is gone: nothing more is acknowledged on it. */
  private dropLine(): void {
    this.generation++;
    this.line?.discard();
    this.line = undefined;
    this.lineStream = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failed(new ConnectError("MQTT source closed before it subscribed"));
    const client = this.client;
    if (!client) return;
    // What the route settled accepted goes out before the DISCONNECT; the rest is resent.
    this.line?.flush();
    this.dropLine();
    // A clean DISCONNECT keeps the session (and its unacknowledged messages) for session_expiry.
    await endClient(client, { graceful: true, timeoutMs: 2000 });
    this.setUp(false);
  }
}
