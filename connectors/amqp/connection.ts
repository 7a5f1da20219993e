/**
 * One AMQP 1.0 connection kept open for a connector: rhea options from the config (SASL ANONYMOUS,
 * PLAIN or EXTERNAL, TLS), and reconnecting forever with backoff.
 *
 * rhea's own reconnect re-attaches links but neither resends nor fails the transfers in flight, and
 * drops a `send()` made while down (docs/amqp-protobuf.md §3.4), so it is off: each connection
 * attempt is a fresh rhea connection with a new generation number. The source and sink build their
 * sessions and links on each `onOpen` and forget them on `onDown`, failing or abandoning whatever
 * was in flight there.
 */
import { readFile } from "node:fs/promises";
import rhea, { type Connection, type ConnectionOptions, type EventContext } from "rhea";
import type { Logger } from "../../src/core/logger.js";

export interface AmqpConnConfig {
  readonly url: string;
  readonly hostname?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly sasl?: "ANONYMOUS" | "PLAIN" | "EXTERNAL" | undefined;
  readonly idle_timeout?: number | undefined;
  readonly tls?:
    | { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined; readonly insecure_skip_verify?: boolean | undefined }
    | undefined;
}

/** The SASL mechanism a config uses: the configured one, else PLAIN with a user name, else ANONYMOUS. */
export function saslMechanism(cfg: AmqpConnConfig): "ANONYMOUS" | "PLAIN" | "EXTERNAL" {
  return cfg.sasl ?? (cfg.username !== undefined ? "PLAIN" : "ANONYMOUS");
}

/** rhea connection options for `cfg`: host, port, TLS files read once, exactly one SASL mechanism. */
export async function rheaOptions(cfg: AmqpConnConfig, containerId: string): Promise<ConnectionOptions> {
  const u = new URL(cfg.url);
  const secure = u.protocol === "amqps:" || cfg.tls !== undefined;
  const port = Number(u.port || (u.protocol === "amqps:" ? 5671 : 5672));
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  const mechanisms = rhea.sasl.client_mechanisms() as unknown as Record<string, unknown> & {
    enable_anonymous(name?: string): void;
    enable_plain(user: string, password: string): void;
    enable_external(): void;
  };
  const mech = saslMechanism(cfg);
  if (mech === "PLAIN") mechanisms.enable_plain(cfg.username ?? "", cfg.password ?? "");
  else if (mech === "EXTERNAL") mechanisms.enable_external();
  else mechanisms.enable_anonymous(cfg.username);
  const base = {
    host,
    port,
    hostname: cfg.hostname ?? host,
    container_id: containerId,
    reconnect: false,
    idle_time_out: cfg.idle_timeout ?? 30_000,
    sasl_mechanisms: mechanisms,
  };
  if (!secure) return { ...base, transport: "tcp" } as unknown as ConnectionOptions;
  const tls = cfg.tls ?? {};
  return {
    ...base,
    transport: "tls",
    servername: host,
    rejectUnauthorized: tls.insecure_skip_verify !== true,
    ...(tls.ca !== undefined ? { ca: await readFile(tls.ca) } : {}),
    ...(tls.cert !== undefined ? { cert: await readFile(tls.cert) } : {}),
    ...(tls.key !== undefined ? { key: await readFile(tls.key) } : {}),
  } as unknown as ConnectionOptions;
}

export interface KeeperHandlers {
  /** A connection opened (SASL and the AMQP open done). Build sessions and links on it. */
  onOpen(conn: Connection, generation: number): void;
  /** The connection of `generation` is gone (or never opened); everything on it is dead. */
  onDown(generation: number, reason: string): void;
}

const MIN_DELAY_MS = 100;
const MAX_DELAY_MS = 5_000;

/** The error text of a rhea event, without credentials (rhea never puts the password in one). */
export function errorText(ctx: EventContext, fallback: string): string {
  const e = (ctx.error ?? ctx.connection?.error) as { condition?: string; description?: string; message?: string } | undefined;
  if (!e) return fallback;
  const text = [e.condition, e.description ?? e.message].filter(Boolean).join(": ");
  return text === "" ? fallback : text;
}

/**
 * Ends a connection at once. The socket is destroyed WITH an error: rhea cleans up (its heartbeat
 * timers, which would keep the process alive for twice the idle timeout) and emits `disconnected`
 * only on a socket error or end, not on a bare destroy.
 */
export function dropConnection(conn: Connection, reason: string): void {
  try {
    (conn as { socket?: { destroy(e?: Error): void } }).socket?.destroy(new Error(reason));
  } catch {
    // already gone
  }
}

/**
 * Connects, and after every loss reconnects with exponential backoff (100 ms doubling to 5 s, with
 * jitter), until `close`. Handles every rhea error event so none becomes an uncaught exception.
 */
export class ConnectionKeeper {
  private readonly container;
  private conn: Connection | undefined;
  private gen = 0;
  private delay = MIN_DELAY_MS;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private options: ConnectionOptions | undefined;

  constructor(
    private readonly cfg: AmqpConnConfig,
    private readonly containerId: string,
    private readonly log: Logger,
    private readonly handlers: KeeperHandlers,
  ) {
    this.container = rhea.create_container({ id: containerId });
  }

  /** The generation of the current (or last) connection. */
  get generation(): number {
    return this.gen;
  }

  /** The open connection of the current generation, if any. */
  get connection(): Connection | undefined {
    return this.conn !== undefined && this.conn.is_open() ? this.conn : undefined;
  }

  /** Starts connecting. Rejects only when the TLS files cannot be read. */
  async start(): Promise<void> {
    this.options = await rheaOptions(this.cfg, this.containerId);
    this.connect();
  }

  private connect(): void {
    if (this.closed || !this.options) return;
    const gen = ++this.gen;
    const conn = this.container.connect(this.options);
    this.conn = conn;
    let down = false;
    const lost = (reason: string) => {
      if (down) return;
      down = true;
      if (this.conn === conn) this.conn = undefined;
      // After a broker `close` rhea answers and ends the socket itself; after `disconnected` it is
      // gone already. Either way rhea clears its heartbeat timers, so nothing is destroyed here.
      conn.removeAllListeners("connection_open");
      this.handlers.onDown(gen, reason);
      this.schedule();
    };
    conn.on("connection_open", () => {
      this.delay = MIN_DELAY_MS;
      if (!this.closed) this.handlers.onOpen(conn, gen);
    });
    conn.on("disconnected", (ctx: EventContext) => lost(errorText(ctx, "disconnected")));
    conn.on("connection_close", (ctx: EventContext) => lost(errorText(ctx, "the broker closed the connection")));
    conn.on("connection_error", (ctx: EventContext) => {
      this.log.warn({ err: errorText(ctx, "connection error"), url: this.cfg.url }, "AMQP connection error");
    });
    conn.on("protocol_error", (ctx: EventContext) => {
      this.log.warn({ err: errorText(ctx, "protocol error"), url: this.cfg.url }, "AMQP protocol error");
      dropConnection(conn, "protocol error");
    });
    // Session and link errors bubble up to the connection; the source and sink handle them on the
    // link too. These listeners only keep rhea from turning an unhandled one into an exception.
    for (const ev of ["error", "session_error", "sender_error", "receiver_error"]) conn.on(ev, () => {});
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const wait = Math.round(this.delay * (0.5 + Math.random() / 2));
    this.delay = Math.min(MAX_DELAY_MS, this.delay * 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, wait);
  }

  /** Closes the connection (waiting at most `timeoutMs` for the broker's close) and stops reconnecting. */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const conn = this.conn;
    this.conn = undefined;
    if (!conn) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        dropConnection(conn, "close timed out");
        resolve();
      }, timeoutMs);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      conn.once("connection_close", done);
      conn.once("disconnected", done);
      try {
        if (conn.is_open()) conn.close();
        else {
          dropConnection(conn, "closed before it opened");
          done();
        }
      } catch {
        done();
      }
    });
  }
}
