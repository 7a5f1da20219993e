/**
 * Private `nats-server` / `mosquitto` processes started from a config file the test writes (TLS,
 * mutual TLS, users, tokens, nkeys, operator JWTs, password files). Same contract as `brokers.ts`
 * (free loopback port, SIGKILL on stop, restart on the same port, nothing left behind), plus the
 * broker's recent output for diagnostics.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary, type BrokerHandle } from "./brokers.js";
import { freePort, portAccepts } from "./ports.js";
import { sleep } from "./wait.js";

export interface SecureBrokerHandle extends BrokerHandle {
  /** The temp directory holding the config file (and anything else the test put there). */
  readonly dir: string;
  /** The config file the broker was started with. */
  readonly configFile: string;
  /** The last ~8 KB the broker wrote to stdout/stderr. */
  output(): string;
}

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

interface Spec {
  name: string;
  binary: string;
  args: string[];
  port: number;
  url: string;
  dir: string;
  configFile: string;
}

async function startFromSpec(spec: Spec): Promise<SecureBrokerHandle> {
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let out = "";
  let closed = false;

  const launchOnce = async (timeoutMs: number): Promise<void> => {
    const c = spawn(spec.binary, spec.args, { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    live.add(c);
    let spawnError: Error | undefined;
    c.once("error", (e) => (spawnError = e));
    exited = new Promise<void>((resolve) => c.once("exit", () => (live.delete(c), resolve())));
    const keep = (b: Buffer) => (out = (out + b.toString("utf8")).slice(-8000));
    c.stdout?.on("data", keep);
    c.stderr?.on("data", keep);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (spawnError) throw new Error(`${spec.name} failed to start: ${spawnError.message}`);
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`${spec.name} exited early (code ${c.exitCode}):\n${out}`);
      if (await portAccepts(spec.port)) return;
      if (Date.now() > deadline) {
        c.kill("SIGKILL");
        throw new Error(`${spec.name} did not accept connections on port ${spec.port} in ${timeoutMs}ms:\n${out}`);
      }
      await sleep(25);
    }
  };
  const start = async () => {
    for (let attempt = 0; ; attempt++) {
      try {
        await launchOnce(15_000);
        return;
      } catch (err) {
        // A restart right after a kill can race the old socket.
        if (attempt >= 3 || !/exited early/.test(String(err))) throw err;
        await sleep(200);
      }
    }
  };
  const stop = async () => {
    const c = child;
    child = undefined;
    if (!c) return;
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await exited;
  };

  await start();
  return {
    url: spec.url,
    port: spec.port,
    dir: spec.dir,
    configFile: spec.configFile,
    output: () => out,
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

/**
 * Starts `nats-server -c <file>`; `body(dir)` returns the config without `listen` (added here:
 * `listen: 127.0.0.1:<free port>`). `dir` is the broker's temp directory, for store or key files.
 */
export async function startNatsWithConfig(body: (dir: string) => string): Promise<SecureBrokerHandle> {
  const binary = findBinary("nats-server");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cebridge-snats-"));
  const configFile = join(dir, "nats.conf");
  writeFileSync(configFile, `listen: "127.0.0.1:${port}"\n${body(dir)}\n`);
  return startFromSpec({ name: "nats-server", binary, args: ["-c", configFile], port, url: `nats://127.0.0.1:${port}`, dir, configFile });
}

/**
 * Starts `mosquitto -c <file>` with `listener <free port> 127.0.0.1` followed by `lines(dir)`
 * (TLS files, `require_certificate`, `password_file`, `allow_anonymous`...). No persistence.
 * Files that `lines` creates must be readable by the `mosquitto` user when the tests run as root.
 * `scheme` only sets the handle's `url` (`mqtts://127.0.0.1:<port>` for a TLS listener).
 */
export async function startMosquittoWithConfig(lines: (dir: string) => string[], scheme: "mqtt" | "mqtts" = "mqtt"): Promise<SecureBrokerHandle> {
  const binary = findBinary("mosquitto");
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), "cebridge-smosq-"));
  // mosquitto started as root drops to the `mosquitto` user before reading password and TLS files.
  chmodSync(dir, 0o755);
  const configFile = join(dir, "mosquitto.conf");
  writeFileSync(
    configFile,
    [
      "per_listener_settings false",
      "persistence false",
      "log_dest stderr",
      "log_type error",
      "log_type warning",
      "log_type notice",
      `listener ${port} 127.0.0.1`,
      ...lines(dir),
      "",
    ].join("\n"),
  );
  return startFromSpec({ name: "mosquitto", binary, args: ["-c", configFile], port, url: `${scheme}://127.0.0.1:${port}`, dir, configFile });
}
