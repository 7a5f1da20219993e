/**
 * Test harness: private `nats-server` and `mosquitto` processes on free loopback ports.
 *
 * Each test file starts its own brokers (never the system ones on 4222/1883) so fault tests can kill
 * and restart them. A missing binary is a hard failure with an install hint, never a skip (DESIGN §9).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { freePort, portAccepts } from "./ports.js";
import { sleep } from "./wait.js";

export interface BrokerHandle {
  /** `nats://127.0.0.1:<port>` or `mqtt://127.0.0.1:<port>`. */
  readonly url: string;
  readonly port: number;
  /** Crash: SIGKILL the process and wait for it to exit. The store directory is kept. */
  stop(): Promise<void>;
  /** Start again on the same port with the same store directory (after `stop`, or as stop+start). */
  restart(): Promise<void>;
  /** Kill the process and remove its temporary files. Idempotent. */
  close(): Promise<void>;
}

const INSTALL_HINT = "install the test brokers with: apt-get install -y nats-server mosquitto";
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/usr/local/bin", "/usr/bin", "/sbin"];

/** Finds an executable on PATH or in the usual sbin directories; throws with an install hint. */
export function findBinary(name: string): string {
  const dirs = [...(process.env["PATH"] ?? "").split(delimiter).filter(Boolean), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  throw new Error(`${name} not found on PATH or in ${EXTRA_DIRS.join(", ")}; ${INSTALL_HINT}`);
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A test file that crashes must not leave brokers behind.
    process.once("exit", () => {
      for (const c of live) c.kill("SIGKILL");
    });
  }
}

/** How to run one broker process: its binary and arguments, port, URL and temp directory. */
export interface BrokerSpec {
  name: string;
  binary: string;
  args: string[];
  port: number;
  url: string;
  /** Removed by `close()`. */
  dir: string;
}

type Spec = BrokerSpec;

function launch(spec: Spec): { child: ChildProcess; output: () => string; exited: Promise<void> } {
  const child = spawn(spec.binary, spec.args, { stdio: ["ignore", "pipe", "pipe"] });
  track(child);
  let out = "";
  const keep = (b: Buffer) => {
    out = (out + b.toString("utf8")).slice(-8000);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once("exit", () => resolve());
  });
  return { child, output: () => out, exited };
}

async function waitReady(spec: Spec, run: ReturnType<typeof launch>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let spawnError: Error | undefined;
  run.child.once("error", (e) => (spawnError = e));
  for (;;) {
    if (spawnError) throw new Error(`${spec.name} failed to start: ${spawnError.message}; ${INSTALL_HINT}`);
    if (run.child.exitCode !== null || run.child.signalCode !== null) {
      throw new Error(`${spec.name} exited early (code ${run.child.exitCode}):\n${run.output()}`);
    }
    if (await portAccepts(spec.port)) return;
    if (Date.now() > deadline) {
      run.child.kill("SIGKILL");
      throw new Error(`${spec.name} did not accept connections on port ${spec.port} in ${timeoutMs}ms:\n${run.output()}`);
    }
    await sleep(25);
  }
}

/**
 * Starts a broker process from `spec` and waits until its port accepts. The handle can crash it
 * (`stop`), start it again on the same port and store (`restart`), and show its recent output.
 */
export async function startBroker(spec: BrokerSpec): Promise<BrokerHandle & { output(): string }> {
  let run: ReturnType<typeof launch> | undefined;
  // Kept past a crash, so a test can still show what the broker said last.
  let output = () => "";
  let closed = false;

  const start = async () => {
    // A restart right after a kill can race the old socket; retry a few times.
    for (let attempt = 0; ; attempt++) {
      run = launch(spec);
      output = run.output;
      try {
        await waitReady(spec, run);
        return;
      } catch (err) {
        if (attempt >= 3 || !/exited early/.test(String(err))) throw err;
        await sleep(200);
      }
    }
  };
  const stop = async () => {
    const r = run;
    run = undefined;
    if (!r) return;
    if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill("SIGKILL");
    await r.exited;
  };

  await start();
  return {
    url: spec.url,
    port: spec.port,
    output: () => output(),
    stop,
    async restart() {
      if (closed) throw new Error(`${spec.name} handle is closed`);
      await stop();
      await start();
    },
    async close() {
      if (closed) return;
      closed = true;
      await stop();
      rmSync(spec.dir, { recursive: true, force: true });
    },
  };
}

/** Starts `nats-server -a 127.0.0.1 -p <free port> [-js -sd <tmp>]`. JetStream is on by default. */
export async function startNats(opts: { jetstream?: boolean } = {}): Promise<BrokerHandle> {
  const binary = findBinary("nats-server");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cebridge-nats-"));
  const args = ["-a", "127.0.0.1", "-p", String(port)];
  if (opts.jetstream !== false) args.push("-js", "-sd", dir);
  return startBroker({ name: "nats-server", binary, args, port, url: `nats://127.0.0.1:${port}`, dir });
}

/**
 * Starts `mosquitto -c <tmp conf>` on a free loopback port with anonymous access, no persistence,
 * and `max_queued_messages 100000` (the default 1000 silently drops messages to a slow subscriber).
 */
export async function startMosquitto(): Promise<BrokerHandle> {
  const binary = findBinary("mosquitto");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cebridge-mosquitto-"));
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      "max_queued_messages 100000",
      "max_inflight_messages 100",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "",
    ].join("\n"),
  );
  return startBroker({ name: "mosquitto", binary, args: ["-c", conf], port, url: `mqtt://127.0.0.1:${port}`, dir });
}

// RabbitMQ with AMQP 1.0 lives in its own file (its recipe differs: own epmd, process group, AMQP readiness).
export { declareQueue, queueDepths, startRabbitMq } from "./rabbitmq.js";
export type { RabbitHandle } from "./rabbitmq.js";
