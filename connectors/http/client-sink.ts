/**
 * The HTTP sink: POSTs events in binary, structured or batch mode over keep-alive connections.
 * 2xx confirms; 408, 429, 5xx and network errors are transient (Retry-After honoured); any other
 * status is permanent (410 with its own code, CEB_SINK_GONE). With `handshake`, the webhook
 * abuse-protection handshake is asked at `open` and every request waits for the grant and for its
 * turn under the granted rate. Error messages carry the status and at most 200 characters of the
 * body, never the request headers (they may hold credentials).
 */
import { readFileSync } from "node:fs";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Static } from "@sinclair/typebox";
import type { CloudEvent } from "../../src/cloudevents/event.js";
import {
  BATCH_JSON_CONTENT_TYPE,
  binaryBody,
  encodeCeHeaders,
  encodeProtobuf,
  formatStructured,
  joinProtobufBatch,
  PROTOBUF_BATCH_MEDIA_TYPE,
  protobufBatchEntrySize,
  STRUCTURED_JSON_CONTENT_TYPE,
} from "../../src/cloudevents/index.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { traceHeaders } from "../../src/cloudevents/trace-fields.js";
import { serializeStructured } from "../../src/cloudevents/json-format.js";
import { BatchWriter, type BatchLimits } from "../../src/core/batch-writer.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { SinkError } from "../../src/core/errors.js";
import type { Sink } from "../../src/core/sink.js";
import type { httpSinkSchema } from "./definition.js";
import { HandshakeGate, type HandshakeAnswer } from "./handshake.js";

type Config = Static<typeof httpSinkSchema>;

export function createHttpSink(cfg: Config, ctx: ConnectorContext): Sink {
  const url = new URL(cfg.url);
  const secure = url.protocol === "https:";
  const request = secure ? httpsRequest : httpRequest;
  const agentOptions = { keepAlive: true, maxSockets: cfg.max_connections };
  const agent = secure
    ? new HttpsAgent({
        ...agentOptions,
        ...(cfg.tls?.ca ? { ca: readFileSync(cfg.tls.ca) } : {}),
        ...(cfg.tls?.cert ? { cert: readFileSync(cfg.tls.cert) } : {}),
        ...(cfg.tls?.key ? { key: readFileSync(cfg.tls.key) } : {}),
        rejectUnauthorized: cfg.tls?.insecure_skip_verify !== true,
      })
    : new HttpAgent(agentOptions);
  const fixed: OutgoingHttpHeaders = { ...cfg.headers };
  if (cfg.auth) fixed["authorization"] = `Bearer ${cfg.auth.bearer}`;
  const gate = cfg.handshake ? new HandshakeGate(ask, cfg.handshake.origin ?? ctx.instanceId, cfg.handshake.rate, onHandshakeRetry) : undefined;
  // After consent every delivery names its origin (http-webhook.md §4.1).
  if (gate) fixed["webhook-request-origin"] = gate.origin;

  /** The handshake's OPTIONS request, to the exact target URL. */
  function ask(headers: Record<string, string>, signal: AbortSignal): Promise<HandshakeAnswer> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: "OPTIONS", agent, headers, signal, timeout: cfg.timeout });
      req.on("timeout", () => req.destroy(new SinkError(`${url.host}: no answer to the handshake within ${cfg.timeout} ms`, true, { code: "CEB_SINK_TIMEOUT" })));
      req.on("error", (err) => {
        if (err instanceof SinkError) return reject(err);
        reject(new SinkError(`${url.host}: ${(err as NodeJS.ErrnoException).code ?? err.name} during the handshake`, true, { cause: err }));
      });
      req.on("response", (res) => {
        res.resume();
        const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
        resolve({ status: res.statusCode ?? 0, allowedOrigin: one(res.headers["webhook-allowed-origin"]), allowedRate: one(res.headers["webhook-allowed-rate"]) });
      });
      req.end();
    });
  }

  function onHandshakeRetry(error: Error, delayMs: number): void {
    ctx.log.warn({ target: url.host, error: error.message, retryInMs: delayMs }, "webhook handshake failed; asking again");
  }

  async function post(headers: OutgoingHttpHeaders, body: Uint8Array | string | undefined, signal: AbortSignal): Promise<void> {
    if (gate) await gate.beforeRequest(signal);
    return new Promise((resolve, reject) => {
      const req = request(url, { method: "POST", agent, headers: { ...fixed, ...headers }, signal, timeout: cfg.timeout });
      req.on("timeout", () => req.destroy(new SinkError(`${url.host}: no response within ${cfg.timeout} ms`, true, { code: "CEB_SINK_TIMEOUT" })));
      req.on("error", (err) => {
        if (err instanceof SinkError) return reject(err);
        const code = (err as NodeJS.ErrnoException).code ?? err.name;
        reject(new SinkError(`${url.host}: ${code}`, true, { cause: err }));
      });
      req.on("response", (res) => {
        readSnippet(res).then((snippet) => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) return resolve();
          // http-webhook.md §2.3: 410 means the target is retired and the sender should stop.
          if (status === 410) return reject(new SinkError(`${url.host} answered 410 Gone: it takes no more events`, false, { code: "CEB_SINK_GONE" }));
          const transient = status === 408 || status === 429 || status >= 500;
          const retryAfterMs = parseRetryAfter(res.headers["retry-after"]);
          reject(
            new SinkError(`${url.host} answered ${status}${snippet ? `: ${snippet}` : ""}`, transient, {
              ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
            }),
          );
        }, reject);
      });
      req.end(body);
    });
  }

  // Batch mode: each event is serialized once, when written; that text (or Protobuf message) is
  // both what counts toward max_bytes and what the request body joins. An HTTP batch succeeds or
  // fails as a whole, so every entry gets the request's result.
  const limits: BatchLimits = { maxEntries: cfg.batch.max_events, maxBytes: cfg.batch.max_bytes, lingerMs: cfg.batch.linger };
  const protobuf = cfg.format === "protobuf";
  const jsonBatcher =
    cfg.mode === "batch" && !protobuf
      ? new BatchWriter<string>(limits, {
          size: (json) => Buffer.byteLength(json) + 1,
          send: async (jsons, signal) => {
            await post({ "content-type": BATCH_JSON_CONTENT_TYPE }, `[${jsons.join(",")}]`, signal);
            return jsons.map(() => undefined);
          },
        })
      : undefined;
  const protobufBatcher =
    cfg.mode === "batch" && protobuf
      ? new BatchWriter<Uint8Array>(limits, {
          size: protobufBatchEntrySize,
          send: async (events, signal) => {
            await post({ "content-type": PROTOBUF_BATCH_MEDIA_TYPE }, joinProtobufBatch(events), signal);
            return events.map(() => undefined);
          },
        })
      : undefined;

  return {
    guarantee: "confirmed",
    async open() {
      // Connections open on first use and are kept alive; only the handshake is asked ahead.
      if (gate) await gate.open();
      ctx.setUp(true);
    },
    write(event: CloudEvent, signal: AbortSignal, trace?: TraceContext) {
      // A batch request carries many events, so no one hop context: batch mode writes none.
      if (jsonBatcher) return jsonBatcher.write(serializeStructured(event), signal);
      if (protobufBatcher) return protobufBatcher.write(encodeProtobuf(event), signal);
      if (cfg.mode === "structured") {
        const out = protobuf ? formatStructured(event, "protobuf") : { contentType: STRUCTURED_JSON_CONTENT_TYPE, body: serializeStructured(event) };
        const headers: OutgoingHttpHeaders = { "content-type": out.contentType };
        if (trace !== undefined) for (const [name, value] of traceHeaders(trace)) headers[name] = value;
        return post(headers, out.body, signal);
      }
      const { body, contentType } = binaryBody(event);
      const headers: OutgoingHttpHeaders = {};
      for (const [name, value] of encodeCeHeaders(event, { prefix: "ce-", includeDatacontenttype: false })) headers[name] = value;
      if (contentType !== undefined) headers["content-type"] = contentType;
      // The W3C headers carry the bridge's hop; ce-traceparent above is the event's starting trace.
      if (trace !== undefined) for (const [name, value] of traceHeaders(trace)) headers[name] = value;
      return post(headers, body, signal);
    },
    async close() {
      gate?.close();
      await jsonBatcher?.close();
      await protobufBatcher?.close();
      agent.destroy();
      ctx.setUp(false);
    },
  };
}

/** At most 200 characters of a response body, for error messages. */
function readSnippet(res: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let text = "";
    res.setEncoding("utf8");
    res.on("data", (chunk: string) => {
      if (text.length < 200) text += chunk;
    });
    res.on("end", () => resolve(text.slice(0, 200).replace(/\s+/g, " ").trim()));
    res.on("error", () => resolve(text.slice(0, 200)));
  });
}

/** `Retry-After` as seconds or an HTTP date → milliseconds. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
