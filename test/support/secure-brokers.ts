/**
 * Private `nats-server` / `mosquitto` processes started from a config file the test writes (TLS,
 * mutual TLS, users, tokens, nkeys, operator JWTs, password files). Same contract as `brokers.ts`
 * (free loopback port, SIGKILL on stop, restart on the same port, nothing left behind), plus the
 * broker's recent output for diagnostics.
 */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findBinary, startBroker, type BrokerHandle, type BrokerSpec } from "./brokers.js";
import { freePort } from "./ports.js";

export interface SecureBrokerHandle extends BrokerHandle {
  /** The temp directory holding the config file (and anything else the test put there). */
  readonly dir: string;
  /** The config file the broker was started with. */
  readonly configFile: string;
  /** The last ~8 KB the broker wrote to stdout/stderr. */
  output(): string;
}

async function startFromSpec(spec: BrokerSpec & { configFile: string }): Promise<SecureBrokerHandle> {
  const handle = await startBroker(spec);
  return { ...handle, dir: spec.dir, configFile: spec.configFile };
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
