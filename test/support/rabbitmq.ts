/**
 * A private RabbitMQ 3.10 with the AMQP 1.0 plugin, per test file (docs/amqp-protobuf.md §5.1).
 *
 * Never the machine's system broker: a fresh temp directory holds the config, the Mnesia store and
 * the Erlang cookie; the node listens on free loopback ports and registers with its own `epmd` on a
 * free port. `rabbitmq-server` is started from `/usr/lib/rabbitmq/bin` (the `/usr/sbin` wrapper
 * switches user and writes to `/var/log`), as a process group leader, so a crash kills the shell
 * script, `beam.smp` and `erl_child_setup` together. Ready = an AMQP 1.0 connection opens.
 * Start-up takes 7–10 s, so a test file starts one broker and gives each case its own queues.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import rhea from "rhea";
import type { BrokerHandle } from "./brokers.js";
import { freePort } from "./ports.js";
import { sleep } from "./wait.js";

const BIN_DIR = "/usr/lib/rabbitmq/bin";
const HINT = "install RabbitMQ with: apt-get install -y rabbitmq-server (the tests start their own node, never the system one)";
const run = promisify(execFile);

export interface RabbitOptions {
  /**
   * A TLS listener too (`tlsUrl`), with this server certificate and the CA that client certificates
   * must be signed by (verify_peer, a certificate optional), and SASL EXTERNAL (the certificate's
   * common name is the user name; create the user with `ctl("add_user", ...)`).
   */
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca: string };
}

export interface RabbitHandle extends BrokerHandle {
  /** `amqp://127.0.0.1:<port>`. */
  readonly url: string;
  /** `amqps://127.0.0.1:<port>` when started with `tls`. */
  readonly tlsUrl: string | undefined;
  /** Erlang node name, for `rabbitmqctl -n`. */
  readonly node: string;
  /** Runs `rabbitmqctl -n <node> ...args` with the node's environment (about 1.2 s). */
  ctl(...args: string[]): Promise<string>;
  /** Graceful stop (SIGTERM to the start script), keeping the store. */
  shutdown(): Promise<void>;
  /** The node's recent console output. */
  output(): string;
}

interface Proc {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
}

const live = new Set<ChildProcess>();
let hooked = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!hooked) {
    hooked = true;
    process.once("exit", () => {
      for (const c of live) killGroup(c, "SIGKILL");
    });
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function spawnTracked(bin: string, args: string[], env: NodeJS.ProcessEnv, onOutput?: (b: Buffer) => void): Proc {
  const child = spawn(bin, args, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  child.stdout?.on("data", (b: Buffer) => onOutput?.(b));
  child.stderr?.on("data", (b: Buffer) => onOutput?.(b));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  return { child, exited };
}

/**
 * Forgets a stopped node's processes: Erlang helpers that outlive the start script (`inet_gethost`,
 * `erl_child_setup`) keep its output pipes open for a minute, which would keep the test file alive.
 */
function detach(p: Proc): void {
  try {
    if (p.child.pid !== undefined) process.kill(-p.child.pid, "SIGKILL");
  } catch {
    // the whole group is gone
  }
  p.child.stdout?.destroy();
  p.child.stderr?.destroy();
  p.child.unref();
}

/** Resolves once an AMQP 1.0 connection to the port opens (SASL PLAIN guest/guest), false on refusal. */
export function amqpAccepts(port: number, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const container = rhea.create_container();
    const conn = container.connect({ host: "127.0.0.1", port, username: "guest", password: "guest", reconnect: false, idle_time_out: 0 });
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn.removeAllListeners();
      conn.on("error", () => {});
      conn.on("disconnected", () => {});
      try {
        if (ok) conn.close();
        else conn.socket?.destroy(new Error("probe failed"));
      } catch {
        // ignore
      }
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    conn.on("connection_open", () => finish(true));
    conn.on("disconnected", () => finish(false));
    conn.on("connection_error", () => finish(false));
    conn.on("error", () => finish(false));
  });
}

/**
 * Starts a private RabbitMQ node with `rabbitmq_amqp1_0` on free loopback ports. `stop()` crashes it
 * (SIGKILL to the process group) keeping the store, `restart()` crashes and starts it again on the
 * same port and store, `shutdown()` stops it gracefully, `close()` stops it and removes its files.
 */
export async function startRabbitMq(opts: RabbitOptions = {}): Promise<RabbitHandle> {
  const bin = join(BIN_DIR, "rabbitmq-server");
  if (!existsSync(bin)) throw new Error(`${bin} not found; ${HINT}`);
  const epmdBin = ["/usr/bin/epmd", "/usr/lib/erlang/bin/epmd"].find((p) => existsSync(p));
  if (!epmdBin) throw new Error(`epmd not found; ${HINT}`);

  const dir = mkdtempSync(join(tmpdir(), "cebridge-rabbitmq-"));
  for (const d of ["mnesia", "log", "home"]) mkdirSync(join(dir, d));
  const [port, distPort, epmdPort] = [await freePort(), await freePort(), await freePort()];
  const node = `cebridge-${process.pid}-${port}@localhost`;
  const tlsPort = opts.tls ? await freePort() : undefined;
  const tlsLines = opts.tls
    ? [
        `listeners.ssl.1 = 127.0.0.1:${tlsPort}`,
        `ssl_options.cacertfile = ${opts.tls.ca}`,
        `ssl_options.certfile = ${opts.tls.cert}`,
        `ssl_options.keyfile = ${opts.tls.key}`,
        "ssl_options.verify = verify_peer",
        "ssl_options.fail_if_no_peer_cert = false",
        "auth_mechanisms.1 = PLAIN",
        "auth_mechanisms.2 = EXTERNAL",
        "ssl_cert_login_from = common_name",
      ]
    : [];
  writeFileSync(
    join(dir, "rabbitmq.conf"),
    [
      `listeners.tcp.1 = 127.0.0.1:${port}`,
      "loopback_users = none",
      "log.console = true",
      "log.console.level = warning",
      "log.file = false",
      "disk_free_limit.absolute = 1MB",
      ...tlsLines,
      "",
    ].join("\n"),
  );
  writeFileSync(join(dir, "enabled_plugins"), opts.tls ? "[rabbitmq_amqp1_0,rabbitmq_auth_mechanism_ssl].\n" : "[rabbitmq_amqp1_0].\n");
  writeFileSync(join(dir, "rabbitmq-env.conf"), "");
  // Replaced, not inherited: /etc/rabbitmq/rabbitmq-env.conf and ERL_FLAGS of the system node must not apply.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env["PATH"] ?? "/usr/bin:/bin",
    HOME: join(dir, "home"),
    LANG: "C.UTF-8",
    RABBITMQ_CONF_ENV_FILE: join(dir, "rabbitmq-env.conf"),
    RABBITMQ_NODENAME: node,
    RABBITMQ_NODE_IP_ADDRESS: "127.0.0.1",
    RABBITMQ_NODE_PORT: String(port),
    RABBITMQ_DIST_PORT: String(distPort),
    RABBITMQ_CONFIG_FILE: join(dir, "rabbitmq.conf"),
    RABBITMQ_ADVANCED_CONFIG_FILE: join(dir, "advanced.config"),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(dir, "enabled_plugins"),
    RABBITMQ_MNESIA_BASE: join(dir, "mnesia"),
    RABBITMQ_LOG_BASE: join(dir, "log"),
    RABBITMQ_PID_FILE: join(dir, "pid"),
    ERL_EPMD_ADDRESS: "127.0.0.1",
    ERL_EPMD_PORT: String(epmdPort),
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS: "-kernel inet_dist_use_interface {127,0,0,1}",
  };

  // Our own epmd: without one, erl would start `epmd -daemon` and leave it behind.
  const epmd = spawnTracked(epmdBin, ["-port", String(epmdPort), "-address", "127.0.0.1"], env);
  let out = "";
  let server: Proc | undefined;
  let closed = false;

  const start = async (timeoutMs = 60_000) => {
    const p = spawnTracked(bin, [], env, (b) => {
      out = (out + b.toString("utf8")).slice(-16_000);
    });
    server = p;
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error(`rabbitmq-server exited early (${p.child.exitCode}):\n${out}`);
      if (await amqpAccepts(port, 1000)) return;
      if (Date.now() > deadline) {
        killGroup(p.child, "SIGKILL");
        throw new Error(`RabbitMQ did not accept AMQP 1.0 on port ${port} within ${timeoutMs} ms:\n${out}`);
      }
      await sleep(100);
    }
  };
  const crash = async () => {
    const p = server;
    server = undefined;
    if (!p) return;
    killGroup(p.child, "SIGKILL");
    await p.exited;
    detach(p);
    // beam.smp may outlive the shell for a moment; wait until the port is free again.
    for (let i = 0; i < 100 && (await amqpAccepts(port, 200)); i++) await sleep(50);
  };
  const graceful = async () => {
    const p = server;
    server = undefined;
    if (!p) return;
    killGroup(p.child, "SIGTERM");
    const timer = setTimeout(() => killGroup(p.child, "SIGKILL"), 20_000);
    await p.exited;
    clearTimeout(timer);
    detach(p);
  };

  try {
    await start();
  } catch (err) {
    killGroup(epmd.child, "SIGKILL");
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  return {
    url: `amqp://127.0.0.1:${port}`,
    tlsUrl: tlsPort !== undefined ? `amqps://127.0.0.1:${tlsPort}` : undefined,
    port,
    node,
    output: () => out,
    async ctl(...args: string[]) {
      const { stdout } = await run(join(BIN_DIR, "rabbitmqctl"), ["-q", "-n", node, ...args], { env, timeout: 60_000 });
      return stdout;
    },
    stop: crash,
    shutdown: graceful,
    async restart() {
      if (closed) throw new Error("RabbitMQ handle is closed");
      await crash();
      await start();
    },
    async close() {
      if (closed) return;
      closed = true;
      await graceful();
      killGroup(epmd.child, "SIGKILL");
      await epmd.exited;
      detach(epmd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Declares a durable classic queue by attaching a sender to `/queue/<name>` with a durable target
 * (the 3.10 plugin declares the queue, durable when the terminus is). Use `/amq/queue/<name>` after.
 */
export async function declareQueue(url: string, name: string): Promise<void> {
  const u = new URL(url);
  const container = rhea.create_container();
  const conn = container.connect({ host: u.hostname, port: Number(u.port), username: "guest", password: "guest", reconnect: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const sender = conn.open_sender({ target: { address: `/queue/${name}`, durable: 2 } });
      sender.once("sender_open", () => resolve());
      sender.once("sender_error", (ctx) => reject(new Error(`declare ${name}: ${String(ctx.sender?.error?.description ?? "sender error")}`)));
      conn.once("disconnected", (ctx) => reject(new Error(`declare ${name}: disconnected ${String(ctx.error ?? "")}`)));
    });
  } finally {
    conn.close();
  }
}

/** `rabbitmqctl list_queues name messages messages_unacknowledged` as a map of [ready, unacked]. */
export async function queueDepths(rabbit: RabbitHandle): Promise<Map<string, [ready: number, unacked: number]>> {
  const text = await rabbit.ctl("list_queues", "--no-table-headers", "name", "messages_ready", "messages_unacknowledged");
  const out = new Map<string, [number, number]>();
  for (const line of text.split("\n")) {
    const [name, ready, unacked] = line.trim().split(/\s+/);
    if (name && ready !== undefined && unacked !== undefined) out.set(name, [Number(ready), Number(unacked)]);
  }
  return out;
}
