/**
 * What the webhook sources share (the `http` source and the `azure_eventgrid` push source): the
 * listening server (plain or TLS, with optional client certificates), the request target split,
 * bounded body reading, the CloudEvents abuse-protection handshake (OPTIONS), constant-time secret
 * comparison, JSON error answers, the request's W3C trace context, and the status an outcome maps
 * to once every sink settled.
 *
 * Status rules (CloudEvents webhook spec, which Event Grid follows for retries): 204 once every sink
 * confirmed (or the event was filtered or dead-lettered); 422 for a permanent sink failure with no
 * dead-letter sink; 503 with Retry-After for a transient failure or shutdown; 429 with Retry-After
 * when the route's window is full. A failure of ours never answers 400 or 413: senders (Event Grid
 * above all) do not retry those.
 */
import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TraceContext } from "../cloudevents/trace-context.js";
import { traceFromHeaders } from "../cloudevents/trace-fields.js";
import { ConnectError, TooLargeError } from "./errors.js";
import { splitHostPort } from "./net.js";
import type { Outcome } from "./outcome.js";
import type { Inbox, Received } from "./source.js";

/** TLS of a listening server: PEM file paths; `ca` asks clients for a certificate it signed. */
export interface ServerTls {
  readonly cert: string;
  readonly key: string;
  readonly ca?: string;
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Starts listening on `listen` (`host:port`). Rejects with `ConnectError` when it cannot bind (a
 * configuration problem). The handler must answer every request; a throw answers 500.
 */
export async function listenWebhook(listen: string, tls: ServerTls | undefined, handler: RequestHandler, onError: (err: unknown) => void): Promise<Server> {
  const guarded = (req: IncomingMessage, res: ServerResponse) => {
    try {
      handler(req, res);
    } catch (err) {
      onError(err);
      sendError(res, 500, "CEB_INTERNAL", "internal error");
    }
  };
  const server = tls
    ? createHttpsServer(
        { cert: readFileSync(tls.cert), key: readFileSync(tls.key), ...(tls.ca ? { ca: readFileSync(tls.ca), requestCert: true, rejectUnauthorized: true } : {}) },
        guarded,
      )
    : createHttpServer(guarded);
  server.headersTimeout = 30_000;
  server.requestTimeout = 120_000;
  server.keepAliveTimeout = 65_000;
  const { host, port } = splitHostPort(listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => reject(new ConnectError(`cannot listen on ${listen}: ${err.code ?? err.message}`, { cause: err })));
    server.listen(port, host, () => resolve());
  });
  return server;
}

/** Stops accepting connections; requests in flight still get their answer. */
export function stopAccepting(server: Server | undefined): void {
  server?.close();
  server?.closeIdleConnections();
}

/** Closes the server and every connection. */
export function closeServer(server: Server | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * The request target's path and query, compared as sent: a URL parser would read "//host/path" as a
 * host. A fragment has no place in a request target, but some clients send one: it ends the path.
 */
export function splitTarget(url: string | undefined): { path: string; query: URLSearchParams } {
  const target = (url ?? "/").split("#", 1)[0]!;
  const q = target.indexOf("?");
  return { path: q < 0 ? target : target.slice(0, q), query: new URLSearchParams(q < 0 ? "" : target.slice(q + 1)) };
}

/** A JSON error answer `{ error: CODE, message, ...extra }` (nothing if an answer already went out). */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}, extra: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify({ error: code, message, ...extra }) + "\n");
}

/**
 * The W3C trace context of a request (`traceparent` / `tracestate` headers, from
 * `req.headersDistinct`): the sender's hop, for `Received.trace`. A repeated `traceparent` is
 * ignored, as W3C Trace Context asks; repeated `tracestate` headers are one list, joined with `,`.
 */
export function requestTrace(headers: Readonly<Record<string, readonly string[] | undefined>>): TraceContext | undefined {
  return traceFromHeaders((name) => {
    const values = headers[name];
    if (values === undefined || values.length === 0) return undefined;
    if (name === "traceparent" && values.length > 1) return undefined;
    return values.join(",");
  });
}

/** Whole seconds for a Retry-After header (at least 1). */
export function retryAfterSeconds(ms: number): string {
  return String(Math.max(1, Math.ceil(ms / 1000)));
}

/** Answers a request once its message settled (see the status rules above). */
export function answerOutcome(res: ServerResponse, outcome: Outcome, retryAfter: string): void {
  if (res.destroyed) return;
  switch (outcome.status) {
    case "delivered":
    case "dead_lettered":
      res.writeHead(204).end();
      return;
    case "rejected":
      sendError(res, 422, outcome.error.code, outcome.error.message);
      return;
    case "errored":
      sendError(res, 503, outcome.error.code, outcome.error.message, {
        "retry-after": outcome.retryAfterMs !== undefined ? retryAfterSeconds(outcome.retryAfterMs) : retryAfter,
      });
  }
}

/**
 * Offers a request's message to the route; when the window is full answers 429, when the route is
 * stopping 503 (both with Retry-After). Returns whether the route took it (it then answers through
 * `received.settle`).
 */
export function offerOrRefuse(inbox: Inbox, received: Received, res: ServerResponse, retryAfter: string): boolean {
  if (inbox.offer(received)) return true;
  if (!inbox.accepting) sendError(res, 503, "CEB_SHUTTING_DOWN", "the bridge is stopping", { "retry-after": retryAfter });
  else sendError(res, 429, "CEB_WINDOW_FULL", `the route's window (${inbox.capacity} events) is full`, { "retry-after": retryAfter });
  return false;
}

/**
 * The CloudEvents webhook abuse-protection handshake (http-webhook §4, used by Event Grid for the
 * CloudEvents schema): an OPTIONS with `WebHook-Request-Origin` from an allowed origin gets 200 with
 * `WebHook-Allowed-Origin` and `WebHook-Allowed-Rate: *` (the spec says SHOULD answer a rate even
 * when none was asked for; we impose none); another origin gets 403 and no consent header. Origins
 * are DNS names and compare case-insensitively; `*` in `allowedOrigins` allows any. An OPTIONS
 * without the header is a plain preflight and learns only the allowed methods.
 */
export function abuseProtectionHandshake(req: IncomingMessage, res: ServerResponse, allowedOrigins: readonly string[]): void {
  const origin = req.headers["webhook-request-origin"];
  if (typeof origin !== "string" || origin === "") {
    res.writeHead(200, { allow: "POST, OPTIONS" }).end();
    return;
  }
  const asked = origin.toLowerCase();
  if (!allowedOrigins.some((o) => o === "*" || o.toLowerCase() === asked)) {
    sendError(res, 403, "CEB_UNAUTHORIZED", `origin "${origin}" is not in allowed_origins`);
    return;
  }
  res.writeHead(200, { allow: "POST, OPTIONS", "webhook-allowed-origin": origin, "webhook-allowed-rate": "*" }).end();
}

/**
 * How much of a refused body we still read and discard so the client sees our 413. A client that
 * keeps writing into a socket we close gets EPIPE or a reset instead of the answer; past this bound
 * the connection is cut anyway.
 */
const DRAIN_LIMIT = 16 * 1024 * 1024;

/** Answers 413 and reads the rest of the body (bounded) so the client can read the answer. */
export function refuseTooLarge(req: IncomingMessage, res: ServerResponse, message: string): void {
  let discarded = 0;
  req.on("data", (chunk: Buffer) => {
    discarded += chunk.length;
    if (discarded > DRAIN_LIMIT) req.socket.destroy();
  });
  req.resume();
  sendError(res, 413, "CEB_TOO_LARGE", message);
}

/** Constant-time comparison of a presented secret with the expected one. */
export function secretMatches(given: string | undefined | null, expected: string): boolean {
  if (given === undefined || given === null) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Reads the whole body, refusing past `limit` bytes (chunked requests have no Content-Length). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        // The caller answers 413 and drains the rest (refuseTooLarge).
        done = true;
        reject(new TooLargeError(`body is over max_body (${limit} bytes)`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    req.on("error", (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
    req.on("close", () => {
      if (!done) {
        done = true;
        reject(new Error("client closed the request before sending the whole body"));
      }
    });
  });
}
