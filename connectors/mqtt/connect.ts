/**
 * mqtt.js client options shared by the MQTT source and sink: auth, TLS, protocol version, and
 * reconnecting forever (every second; mqtt.js has no backoff, and a broker that is down costs one
 * refused TCP connection per second).
 */
import { readFile } from "node:fs/promises";
import type { IClientOptions, MqttClient } from "mqtt";
import type { ConnectorContext } from "../../src/core/connector.js";

export interface MqttConnConfig {
  readonly url: string;
  readonly client_id?: string | undefined;
  readonly protocol_version?: 4 | 5 | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly tls?:
    | { readonly ca?: string | undefined; readonly cert?: string | undefined; readonly key?: string | undefined; readonly insecure_skip_verify?: boolean | undefined }
    | undefined;
}

export const RECONNECT_PERIOD_MS = 1000;

const noLog = (): void => {};

/** `cebridge-<component>-<instance_id>`, the default client id (DESIGN §3). */
export function defaultClientId(ctx: ConnectorContext): string {
  return `cebridge-${ctx.id}-${ctx.instanceId}`;
}

export async function clientOptions(cfg: MqttConnConfig, clientId: string): Promise<IClientOptions> {
  const opts: IClientOptions = {
    clientId,
    protocolVersion: cfg.protocol_version ?? 5,
    reconnectPeriod: RECONNECT_PERIOD_MS,
    connectTimeout: 10_000,
    keepalive: 60,
    // Nothing is queued while offline: writes fail fast instead (bounded memory, engine retries).
    queueQoSZero: false,
    manualConnect: true,
  };
  // mqtt.js calls its `debug` logger several times per packet; unless DEBUG asks for it, skip the calls.
  if (!/mqttjs/.test(process.env["DEBUG"] ?? "")) opts.log = noLog;
  if (cfg.username !== undefined) opts.username = cfg.username;
  if (cfg.password !== undefined) opts.password = cfg.password;
  if (cfg.tls !== undefined) {
    if (cfg.tls.ca !== undefined) opts.ca = await readFile(cfg.tls.ca);
    if (cfg.tls.cert !== undefined) opts.cert = await readFile(cfg.tls.cert);
    if (cfg.tls.key !== undefined) opts.key = await readFile(cfg.tls.key);
    opts.rejectUnauthorized = !cfg.tls.insecure_skip_verify;
    // TLS options only apply to a TLS URL; make a plain mqtt:// URL use TLS when tls is configured.
    if (/^(mqtt|tcp):\/\//.test(cfg.url)) opts.protocol = "mqtts";
  }
  return opts;
}

/**
 * Ends a client and resolves even when mqtt.js never calls back: `end()` waits for the stream's
 * `close`, which never comes for a stream that already closed, and a second `end()` while the first
 * is pending only calls back. After `timeoutMs` the socket is destroyed (`disconnecting` is set by
 * then, so mqtt.js does not reconnect) and the promise resolves.
 */
export function endClient(client: MqttClient, opts: { graceful: boolean; timeoutMs: number }): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      try {
        client.stream?.destroy();
      } catch {
        // already gone
      }
      finish();
    }, opts.timeoutMs);
    try {
      client.end(!opts.graceful, {}, () => finish());
    } catch {
      client.stream?.destroy();
      finish();
    }
  });
}
