/**
 * `mqtt` sink. QoS 1 (default): `write` resolves on the PUBACK (QoS 2: PUBCOMP); QoS 0 is
 * best-effort and resolves once written. MQTT 5 sends binary mode by default, structured on request;
 * 3.1.1 sends structured. While disconnected, writes fail with `NotConnectedError` at once instead of
 * queueing in the client (bounded memory; the engine retries with backoff).
 */
import { connect, type IClientPublishOptions, type MqttClient } from "mqtt";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import { abortError, abortable } from "../../src/core/abort.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, ConnectError, NotConnectedError, SinkError, asBridgeError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import { compileTemplate, type Template } from "../../src/core/template.js";
import { coalesceWrites } from "./coalesce.js";
import { clientOptions, defaultClientId, endClient } from "./connect.js";
import type { MqttSinkConfig } from "./definition.js";
import { encodeMqttMessage, type MqttMode } from "./mapping.js";
import { sanitizeMqtt } from "./names.js";
import { Qos0Writer } from "./qos0-writer.js";

export function createMqttSink(cfg: MqttSinkConfig, ctx: ConnectorContext): Sink {
  return new MqttSink(cfg, ctx);
}

/**
 * PUBACK reason codes (MQTT 5 §3.4.2.1) after which the same publish will fail again: not
 * authorized, topic name invalid, payload format invalid. The others (unspecified, implementation
 * specific, packet identifier in use, quota exceeded) may clear up, so they are retried.
 */
const PERMANENT_REASONS = new Set([0x87, 0x90, 0x99]);

export function classifyMqttError(err: unknown, topic: string): BridgeError {
  if (err instanceof BridgeError) return err;
  const e = err as Error & { code?: unknown };
  const code = typeof e.code === "number" ? e.code : undefined;
  const permanent = code !== undefined && PERMANENT_REASONS.has(code);
  return new SinkError(`MQTT publish to "${topic}" failed: ${e.message ?? String(err)}${code !== undefined ? ` (reason ${code})` : ""}`, !permanent, { cause: err });
}

class MqttSink implements Sink {
  readonly guarantee;
  private readonly tpl: Template;
  private readonly mode: MqttMode;
  private readonly version: 4 | 5;
  private client: MqttClient | undefined;
  private opened: Promise<void> | undefined;
  private closed = false;
  private readonly qos0: Qos0Writer;

  constructor(
    private readonly cfg: MqttSinkConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.guarantee = (cfg.qos ?? 1) === 0 ? ("best-effort" as const) : ("confirmed" as const);
    this.tpl = compileTemplate(cfg.topic, sanitizeMqtt);
    this.version = (cfg.protocol_version ?? 5) === 5 ? 5 : 4;
    this.mode = this.version === 4 ? "structured" : (cfg.mode ?? "binary");
    this.qos0 = new Qos0Writer(this.version);
  }

  open(): Promise<void> {
    this.opened ??= this.connect();
    return this.opened;
  }

  private async connect(): Promise<void> {
    const options = await clientOptions(this.cfg, this.cfg.client_id ?? defaultClientId(this.ctx));
    options.clean = true;
    const client = connect(this.cfg.url, options);
    this.client = client;
    const first = new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("end", () => reject(new ConnectError("MQTT sink closed before it connected")));
    });
    client.on("connect", () => {
      // Each reconnect makes a new socket; nothing but the CONNECT went out on it yet.
      coalesceWrites(client.stream);
      this.ctx.setUp(true);
    });
    client.on("close", () => this.ctx.setUp(false));
    client.on("error", (err) => this.ctx.log.warn({ err: err.message }, "MQTT client error"));
    client.connect();
    await first;
  }

  async write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext): Promise<void> {
    const client = this.client;
    if (this.closed || !client || !client.connected) throw new NotConnectedError("MQTT is not connected");
    if (signal.aborted) throw abortError(signal);
    const topic = this.tpl.render(event);
    let out;
    try {
      out = encodeMqttMessage(event, this.mode, this.version, this.cfg.format ?? "json", trace);
    } catch (err) {
      throw new SinkError(`cannot encode the event: ${asBridgeError(err).message}`, false, { cause: err });
    }
    if (this.cfg.max_payload !== undefined && out.payload.byteLength > this.cfg.max_payload) {
      throw new SinkError(`payload of ${out.payload.byteLength} bytes is over max_payload ${this.cfg.max_payload}`, false, { code: "CEB_TOO_LARGE" });
    }
    const opts: IClientPublishOptions = { qos: this.cfg.qos ?? 1, retain: this.cfg.retain ?? false };
    if (out.properties) opts.properties = out.properties;
    if (opts.qos === 0) {
      // QoS 0 has nothing to confirm: the write is done once the socket took it. Under steady load
      // the socket's buffer fills, and then writes wait for it to drain, all on one promise.
      const wait = this.qos0.backpressure(client);
      if (wait !== undefined) {
        await abortable(wait, signal);
        if (this.closed || !client.connected) throw new NotConnectedError("MQTT is not connected");
      }
      try {
        this.qos0.write(client, topic, out, opts.retain ?? false);
      } catch (err) {
        throw new SinkError(`cannot encode the MQTT publish to "${topic}": ${(err as Error).message}`, false, { cause: err });
      }
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(abortError(signal));
      signal.addEventListener("abort", onAbort, { once: true });
      client.publish(topic, out.payload, opts, (err) => {
        signal.removeEventListener("abort", onAbort);
        if (err) reject(classifyMqttError(err, topic));
        else resolve();
      });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = this.client;
    if (!client) return;
    // Graceful: waits for outstanding QoS 1/2 acknowledgements, at most 5 s.
    await endClient(client, { graceful: true, timeoutMs: 5000 });
    this.ctx.setUp(false);
  }
}
