/**
 * The HTTP source: a webhook endpoint. Status codes follow the CloudEvents webhook spec:
 * 204 once every sink on the route confirmed (or the event was filtered or dead-lettered),
 * 400 invalid event, 401 bad token, 413 too large, 415 not a CloudEvent, 429 window full,
 * 503 transient sink failure or shutting down (both with Retry-After), 422 permanent sink failure
 * with no dead-letter sink. Error bodies are JSON: `{ "error": CODE, "message": ..., "attribute"? }`.
 */
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Static } from "@sinclair/typebox";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, ConnectError, EventValidationError, TooLargeError, asBridgeError } from "../../src/core/errors.js";
import { splitHostPort } from "../../src/core/net.js";
import type { Outcome } from "../../src/core/outcome.js";
import type { Inbox, Source } from "../../src/core/source.js";
import { decodeRequest, requestTrace } from "./decode.js";
import type { httpSourceSchema } from "./definition.js";
import { bearerMatches } from "./auth.js";

type Config = Static<typeof httpSourceSchema>;

const STATUS_BY_CODE: Partial<Record<BridgeError["code"], number>> = {
  CEB_EVENT_INVALID: 400,
  CEB_FORMAT: 400,
  CEB_UNSUPPORTED_MEDIA: 415,
  CEB_TOO_LARGE: 413,
};

/**
 * How much of a refused body we still read and discard so the client sees our 413. A client that
 * keeps writing into a socket we close gets EPIPE or a reset instead of the answer; past this bound
 * the connection is cut anyway.
 */
const DRAIN_LIMIT = 16 * 1024 * 1024;

export function createHttpSource(cfg: Config, ctx: ConnectorContext): Source {
  let server: Server | undefined;
  let inbox: Inbox | undefined;
  let stopped = false;
  const retryAfter = String(Math.max(1, Math.ceil(cfg.retry_after / 1000)));

  function fail(
    res: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
    body: Record<string, string> = {},
  ): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { "content-type": "application/json", ...headers }).end(JSON.stringify({ error: code, message, ...body }) + "\n");
  }

  function answer(res: ServerResponse, outcome: Outcome): void {
    if (res.destroyed) return;
    switch (outcome.status) {
      case "delivered":
      case "dead_lettered":
        res.writeHead(204).end();
        return;
      case "rejected":
        fail(res, 422, outcome.error.code, outcome.error.message);
        return;
      case "errored": {
        const seconds = outcome.retryAfterMs !== undefined ? String(Math.max(1, Math.ceil(outcome.retryAfterMs / 1000))) : retryAfter;
        fail(res, 503, outcome.error.code, outcome.error.message, { "retry-after": seconds });
      }
    }
  }

  // Origins are DNS names, which compare case-insensitively.
  const allowedOrigins = new Set(cfg.allowed_origins.map((o) => o.toLowerCase()));

  function handshake(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers["webhook-request-origin"];
    if (typeof origin !== "string" || origin === "") {
      res.writeHead(200, { allow: "POST, OPTIONS" }).end();
      return;
    }
    if (!allowedOrigins.has("*") && !allowedOrigins.has(origin.toLowerCase())) {
      fail(res, 403, "CEB_UNAUTHORIZED", `origin "${origin}" is not in allowed_origins`);
      return;
    }
    // The webhook spec says SHOULD answer a rate even when none was asked for; we impose none.
    res.writeHead(200, { allow: "POST, OPTIONS", "webhook-allowed-origin": origin, "webhook-allowed-rate": "*" }).end();
  }

  /** Answers 413 and reads the rest of the body (bounded) so the client can read the answer. */
  function tooLarge(req: IncomingMessage, res: ServerResponse, message: string): void {
    let discarded = 0;
    req.on("data", (chunk: Buffer) => {
      discarded += chunk.length;
      if (discarded > DRAIN_LIMIT) req.socket.destroy();
    });
    req.resume();
    fail(res, 413, "CEB_TOO_LARGE", message);
  }

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    // The request target is compared as sent: a URL parser would read "//host/path" as a host.
    // A fragment has no place in a request target, but some clients send one: it ends the path.
    const target = (req.url ?? "/").split("#", 1)[0]!;
    const q = target.indexOf("?");
    const path = q < 0 ? target : target.slice(0, q);
    if (path !== cfg.path) return fail(res, 404, "CEB_NOT_FOUND", `no endpoint at this path; events go to ${cfg.path}`);
    const query = new URLSearchParams(q < 0 ? "" : target.slice(q + 1));
    // The abuse-protection handshake asks for consent before any credentials are arranged.
    if (req.method === "OPTIONS") return handshake(req, res);
    if (cfg.auth && !bearerMatches(req.headers.authorization, query.get("access_token"), cfg.auth.bearer)) {
      req.resume();
      return fail(res, 401, "CEB_UNAUTHORIZED", "missing or wrong bearer token");
    }
    if (req.method !== "POST") return fail(res, 405, "CEB_METHOD", `method ${req.method} not allowed; use POST`, { allow: "POST, OPTIONS" });
    if (stopped || !inbox?.accepting) {
      req.resume();
      return fail(res, 503, "CEB_SHUTTING_DOWN", "the bridge is stopping", { "retry-after": retryAfter, connection: "close" });
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > cfg.max_body) return tooLarge(req, res, `body of ${declared} bytes is over max_body (${cfg.max_body})`);
    readBody(req, cfg.max_body).then(
      (body) => dispatch(req, res, body),
      (err: unknown) => {
        // A client that went away mid-request gets no answer and nothing is offered to the route.
        if (err instanceof TooLargeError) tooLarge(req, res, err.message);
      },
    );
  }

  function dispatch(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    let events;
    try {
      events = decodeRequest(req.headersDistinct, body, { maxDepth: cfg.max_depth, ...(cfg.plain ? { plain: cfg.plain } : {}) });
    } catch (err) {
      const e = asBridgeError(err);
      const status = STATUS_BY_CODE[e.code] ?? 400;
      const body: Record<string, string> = e instanceof EventValidationError && e.attribute ? { attribute: e.attribute } : {};
      fail(res, status, e.code, e.message, {}, body);
      return;
    }
    if (events.length === 0) {
      res.writeHead(204).end();
      return;
    }
    const box = inbox!;
    if (events.length > box.capacity) {
      fail(res, 413, "CEB_TOO_LARGE", `batch of ${events.length} events is larger than the route's window (${box.capacity})`);
      return;
    }
    const trace = requestTrace(req.headersDistinct);
    const settle = (outcome: Outcome) => answer(res, outcome);
    const accepted = box.offer(trace === undefined ? { events, settle } : { events, trace, settle });
    if (!accepted) {
      if (!box.accepting) fail(res, 503, "CEB_SHUTTING_DOWN", "the bridge is stopping", { "retry-after": retryAfter });
      else fail(res, 429, "CEB_WINDOW_FULL", `the route's window (${box.capacity} events) is full`, { "retry-after": retryAfter });
    }
  }

  return {
    async start(target) {
      inbox = target;
      const handler = (req: IncomingMessage, res: ServerResponse) => {
        try {
          onRequest(req, res);
        } catch (err) {
          ctx.log.error({ err }, "request handler failed");
          fail(res, 500, "CEB_INTERNAL", "internal error");
        }
      };
      server = cfg.tls
        ? createHttpsServer(
            {
              cert: readFileSync(cfg.tls.cert),
              key: readFileSync(cfg.tls.key),
              ...(cfg.tls.ca ? { ca: readFileSync(cfg.tls.ca), requestCert: true, rejectUnauthorized: true } : {}),
            },
            handler,
          )
        : createHttpServer(handler);
      server.headersTimeout = 30_000;
      server.requestTimeout = 120_000;
      server.keepAliveTimeout = 65_000;
      const { host, port } = splitHostPort(cfg.listen);
      await new Promise<void>((resolve, reject) => {
        server!.once("error", (err: NodeJS.ErrnoException) =>
          reject(new ConnectError(`cannot listen on ${cfg.listen}: ${err.code ?? err.message}`, { cause: err })),
        );
        server!.listen(port, host, () => resolve());
      });
      ctx.setUp(true);
      ctx.log.info({ listen: cfg.listen, path: cfg.path }, "http source listening");
    },
    async stop() {
      stopped = true;
      // Stop accepting connections; requests in flight still get their answer.
      server?.close();
      server?.closeIdleConnections();
    },
    async close() {
      stopped = true;
      ctx.setUp(false);
      if (!server) return;
      const s = server;
      server = undefined;
      await new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      });
    },
  };
}

/** Reads the whole body, refusing past `limit` bytes (chunked requests have no Content-Length). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on("data", (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
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
