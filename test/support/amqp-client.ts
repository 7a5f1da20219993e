/**
 * A plain rhea client for AMQP tests: publishes events encoded by our mapping (as another producer
 * on the broker would) and reads what a sink wrote, keeping the raw messages.
 */
import rhea, { type Connection, type EventContext, type Sender } from "rhea";
import { decodeAmqpMessage, encodeAmqpMessage, type AmqpOutboundOptions } from "../../connectors/amqp/mapping.js";
import { encodeOutbound, inboundOf, type RheaMessage } from "../../connectors/amqp/wire.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";

export interface AmqpTestClient {
  readonly conn: Connection;
  /** Sends each event (our mapping, `opts`) and waits for the broker's accepted outcome of each. */
  publish(address: string, events: readonly CloudEvent[], opts?: Partial<AmqpOutboundOptions>): Promise<void>;
  /** Sends raw rhea messages and waits for their outcomes. */
  publishRaw(address: string, messages: readonly Record<string, unknown>[]): Promise<void>;
  /** Reads from `address` (auto-accepting), decoding with our mapping. */
  reader(address: string): Promise<{ readonly events: CloudEvent[]; readonly raw: RheaMessage[]; close(): Promise<void> }>;
  close(): Promise<void>;
}

const DEFAULTS: AmqpOutboundOptions = { mode: "binary", prefix: "cloudEvents:", format: "json", durable: true };

export async function amqpClient(url: string): Promise<AmqpTestClient> {
  const u = new URL(url);
  const container = rhea.create_container();
  const conn = container.connect({ host: u.hostname, port: Number(u.port), username: "guest", password: "guest", reconnect: false });
  conn.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    conn.once("connection_open", () => resolve());
    conn.once("disconnected", (c: EventContext) => reject(new Error(`test client: ${String(c.error ?? "disconnected")}`)));
  });
  interface Waiting {
    resolve(): void;
    reject(e: Error): void;
  }
  const senders = new Map<string, Promise<{ snd: Sender; waiting: Map<unknown, Waiting> }>>();
  const sender = (address: string) => {
    let s = senders.get(address);
    if (!s) {
      s = new Promise((resolve, reject) => {
        const snd = conn.open_sender({ target: { address } });
        const waiting = new Map<unknown, Waiting>();
        const settle = (ok: boolean) => (c: EventContext) => {
          const w = waiting.get(c.delivery);
          if (!w) return;
          waiting.delete(c.delivery);
          if (ok) w.resolve();
          else w.reject(new Error("the broker did not accept a test message"));
        };
        snd.on("accepted", settle(true));
        snd.on("rejected", settle(false));
        snd.on("released", settle(false));
        snd.on("modified", settle(false));
        snd.once("sendable", () => resolve({ snd, waiting }));
        snd.once("sender_error", () => reject(new Error(`test sender for ${address} failed`)));
      });
      senders.set(address, s);
    }
    return s;
  };
  const sendAll = async (address: string, payloads: readonly (Buffer | Record<string, unknown>)[]) => {
    const { snd, waiting } = await sender(address);
    await Promise.all(
      payloads.map(
        (p) =>
          new Promise<void>((resolve, reject) => {
            const d = Buffer.isBuffer(p) ? snd.send(p, undefined, 0) : snd.send(p as never);
            waiting.set(d, { resolve, reject });
          }),
      ),
    );
  };
  return {
    conn,
    publish: (address, events, opts = {}) => sendAll(address, events.map((e) => encodeOutbound(encodeAmqpMessage(e, { ...DEFAULTS, ...opts })))),
    publishRaw: (address, messages) => sendAll(address, messages),
    async reader(address) {
      const events: CloudEvent[] = [];
      const raw: RheaMessage[] = [];
      const rcv = conn.open_receiver({ source: { address }, autoaccept: true, credit_window: 500 });
      rcv.on("message", (c: EventContext) => {
        const m = c.message as unknown as RheaMessage;
        raw.push(m);
        const d = decodeAmqpMessage(inboundOf(m), { source: "amqp://test", now: () => new Date(), newId: () => "new" });
        if (d.invalid) throw new Error(`the test reader could not decode a message: ${d.invalid.message}`);
        events.push(d.event);
      });
      await new Promise<void>((resolve) => rcv.once("receiver_open", () => resolve()));
      return {
        events,
        raw,
        close: async () => {
          rcv.close();
        },
      };
    },
    async close() {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        conn.once("connection_close", () => {
          clearTimeout(t);
          resolve();
        });
        conn.close();
      });
    },
  };
}
