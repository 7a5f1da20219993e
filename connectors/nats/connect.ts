/**
 * The NATS connection every NATS component uses: auth, TLS, reconnect forever with backoff,
 * `noAsyncTraces` (nearly doubles JetStream publish throughput, docs/performance.md), and status
 * events reported through `ctx.setUp`.
 *
 * The first connection is retried by `NatsLink`, not by nats.js (`waitOnFirstConnect` off): the
 * library's own first-connect retries report nothing and cannot be cancelled, so a refused password
 * would be silent and `close()` would leave it dialing forever.
 *
 * nats.js reconnects on its own after a network failure (subscriptions are restored by the client).
 * If the library gives up and closes the connection anyway (repeated auth errors, a protocol error),
 * `NatsLink` opens a new one after a backoff and runs `onOpen` again, so the component keeps working
 * without the engine's help.
 */
import { readFile } from "node:fs/promises";
import { connect, type NodeConnectionOptions } from "@nats-io/transport-node";
import { credsAuthenticator, nkeyAuthenticator, type NatsConnection } from "@nats-io/nats-core";
import type { ConnectorContext } from "../../src/core/connector.js";
import { ConnectError, asBridgeError } from "../../src/core/errors.js";
import { sleep } from "../../src/core/sleep.js";
import { abortable } from "./outbound.js";

/** The connection options shared by every NATS component's config. */
export interface NatsConnConfig {
  readonly servers: string | readonly string[];
  readonly user?: string | undefined;
  readonly password?: string | undefined;
  readonly token?: string | undefined;
  readonly nkey?: string | undefined;
  readonly creds?: string | undefined;
  readonly tls?:
    | { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined; readonly insecure_skip_verify?: boolean | undefined }
    | undefined;
}

export function serverList(servers: string | readonly string[]): string[] {
  return typeof servers === "string" ? [servers] : [...servers];
}

/** `host:port` of the first configured server: the stable `{server}` of the plain mapping. */
export function firstServer(servers: string | readonly string[]): string {
  const s = serverList(servers)[0] ?? "127.0.0.1:4222";
  try {
    const u = new URL(s.includes("://") ? s : `nats://${s}`);
    return `${u.hostname}:${u.port || "4222"}`;
  } catch {
    return s;
  }
}

/** Builds the nats.js options. Reads the creds file, so it is async. */
export async function connectionOptions(cfg: NatsConnConfig, name: string): Promise<NodeConnectionOptions> {
  const opts: NodeConnectionOptions = {
    servers: serverList(cfg.servers),
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    reconnectJitterTLS: 1000,
    noAsyncTraces: true,
    // A refused client certificate (TLS 1.3) shows up only as silence: fail the attempt soon and say so.
    timeout: 5_000,
    // Keep trying after auth errors: credentials may be fixed or rotated while we wait.
    ignoreAuthErrorAbort: true,
  };
  if (cfg.user !== undefined) {
    opts.user = cfg.user;
    if (cfg.password !== undefined) opts.pass = cfg.password;
  }
  if (cfg.token !== undefined) opts.token = cfg.token;
  if (cfg.nkey !== undefined) opts.authenticator = nkeyAuthenticator(new TextEncoder().encode(cfg.nkey.trim()));
  if (cfg.creds !== undefined) opts.authenticator = credsAuthenticator(await readFile(cfg.creds));
  if (cfg.tls !== undefined) {
    opts.tls = {
      ...(cfg.tls.ca !== undefined ? { caFile: cfg.tls.ca } : {}),
      ...(cfg.tls.cert !== undefined ? { certFile: cfg.tls.cert } : {}),
      ...(cfg.tls.key !== undefined ? { keyFile: cfg.tls.key } : {}),
      ...(cfg.tls.insecure_skip_verify ? { rejectUnauthorized: false } : {}),
    };
  }
  return opts;
}

export interface NatsLinkHooks {
  /**
   * Runs on every new connection before it is reported up (subscribe, bind, create a stream...).
   * A throw closes that connection and retries after a backoff.
   */
  onOpen?(nc: NatsConnection): Promise<void>;
}

/** Owns the component's connection and reopens it when the library closes it. */
export class NatsLink {
  private current: NatsConnection | undefined;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private firstResolve!: (nc: NatsConnection) => void;
  private firstReject!: (err: unknown) => void;
  private readonly first: Promise<NatsConnection>;
  private up = false;

  constructor(
    private readonly cfg: NatsConnConfig,
    private readonly ctx: ConnectorContext,
    private readonly role: string,
    private readonly hooks: NatsLinkHooks = {},
  ) {
    this.first = new Promise((res, rej) => {
      this.firstResolve = res;
      this.firstReject = rej;
    });
    this.first.catch(() => {});
  }

  /** The live connection, or undefined while (re)opening or after close. */
  get connection(): NatsConnection | undefined {
    return this.current;
  }

  /** Connected right now (not reconnecting). */
  get isUp(): boolean {
    return this.up;
  }

  get closing(): AbortSignal {
    return this.stopping.signal;
  }

  /** Starts connecting; resolves at the first connection whose `onOpen` succeeded. */
  open(): Promise<NatsConnection> {
    this.loop ??= this.run();
    return this.first;
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.ctx.setUp(up);
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    let failures = 0;
    const name = `cebridge-${this.role}-${this.ctx.id}-${this.ctx.instanceId}`;
    while (!signal.aborted) {
      let nc: NatsConnection | undefined;
      try {
        const opts = await connectionOptions(this.cfg, name);
        const pending = connect(opts);
        nc = await abortable(pending, signal).catch((err: unknown) => {
          if (!signal.aborted) throw err;
          // connect() cannot be cancelled: close whatever it yields later.
          pending.then((late) => late.close()).catch(() => {});
          throw new ConnectError("closed while connecting");
        });
        this.watch(nc);
        await this.hooks.onOpen?.(nc);
        if (signal.aborted) {
          await nc.close().catch(() => {});
          break;
        }
        this.current = nc;
        failures = 0;
        this.setUp(!nc.isClosed());
        this.firstResolve(nc);
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        const e = asBridgeError(err);
        const hint =
          this.cfg.tls !== undefined && /timeout/i.test(e.message)
            ? " (no answer after the TLS handshake: the server may require a client certificate, or refuse this one)"
            : "";
        this.ctx.log.error({ err: e.message + hint, code: e.code, attempt: failures }, "NATS connection or setup failed; retrying");
        if (nc) await nc.close().catch(() => {});
        await sleep(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)), signal);
        continue;
      }
      const closedWith = await nc.closed();
      this.current = undefined;
      this.setUp(false);
      if (signal.aborted) break;
      this.ctx.log.warn({ err: closedWith instanceof Error ? closedWith.message : undefined }, "NATS connection closed by the client; reopening");
      await sleep(1000, signal);
    }
    this.firstReject(new ConnectError(`NATS ${this.role} closed before it connected`));
  }

  private watch(nc: NatsConnection): void {
    void (async () => {
      for await (const s of nc.status()) {
        if (this.current !== nc) continue;
        switch (s.type) {
          case "disconnect":
            this.setUp(false);
            this.ctx.log.warn({ server: s.server }, "NATS disconnected; reconnecting");
            break;
          case "reconnect":
            this.setUp(true);
            this.ctx.log.info({ server: s.server }, "NATS reconnected");
            break;
          case "error":
            this.ctx.log.warn({ err: s.error.message }, "NATS server error");
            break;
          case "slowConsumer":
            this.ctx.log.warn({ pending: s.pending }, "NATS slow consumer: the server may drop messages");
            break;
          default:
            break;
        }
      }
    })().catch(() => {});
  }

  /** Stops reopening and closes the connection (`drain` first when asked: flushes pending publishes). */
  async close(opts: { drain?: boolean } = {}): Promise<void> {
    this.stopping.abort();
    const nc = this.current;
    this.current = undefined;
    if (nc && !nc.isClosed()) {
      if (opts.drain) await nc.drain().catch(() => nc.close());
      else await nc.close().catch(() => {});
    }
    await this.loop?.catch(() => {});
    this.setUp(false);
  }
}
