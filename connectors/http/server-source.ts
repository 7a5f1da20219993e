/**
 * The HTTP source: a webhook endpoint. Status codes follow the CloudEvents webhook spec:
 * 204 once every sink on the route confirmed (or the event was filtered or dead-lettered),
 * 400 invalid event, 401 bad token, 413 too large, 415 not a CloudEvent, 429 window full,
 * 503 transient sink failure or shutting down (both with Retry-After), 422 permanent sink failure
 * with no dead-letter sink. Error bodies are JSON: `{ "error": CODE, "message": ..., "attribute"? }`.
 * The server plumbing, the OPTIONS handshake and the outcome → status rules are shared with the
 * Event Grid push source (src/core/webhook-server.ts).
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Static } from "@sinclair/typebox";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, EventValidationError, TooLargeError, asBridgeError } from "../../src/core/errors.js";
import type { Inbox, Received, Source } from "../../src/core/source.js";
import {
  abuseProtectionHandshake,
  answerOutcome,
  closeServer,
  listenWebhook,
  offerOrRefuse,
  readBody,
  refuseTooLarge,
  requestTrace,
  retryAfterSeconds,
  sendError as fail,
  splitTarget,
  stopAccepting,
} from "../../src/core/webhook-server.js";
import { decodeRequest } from "./decode.js";
import type { httpSourceSchema } from "./definition.js";
import { bearerMatches } from "./auth.js";

type Config = Static<typeof httpSourceSchema>;

const STATUS_BY_CODE: Partial<Record<BridgeError["code"], number>> = {
  CEB_EVENT_INVALID: 400,
  CEB_FORMAT: 400,
  CEB_UNSUPPORTED_MEDIA: 415,
  CEB_TOO_LARGE: 413,
};

export function createHttpSource(cfg: Config, ctx: ConnectorContext): Source {
  let server: Server | undefined;
  let inbox: Inbox | undefined;
  let stopped = false;
  const retryAfter = retryAfterSeconds(cfg.retry_after);

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const { path, query } = splitTarget(req.url);
    if (path !== cfg.path) return fail(res, 404, "CEB_NOT_FOUND", `no endpoint at this path; events go to ${cfg.path}`);
    // The abuse-protection handshake asks for consent before any credentials are arranged.
    if (req.method === "OPTIONS") return abuseProtectionHandshake(req, res, cfg.allowed_origins);
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
    if (declared > cfg.max_body) return refuseTooLarge(req, res, `body of ${declared} bytes is over max_body (${cfg.max_body})`);
    readBody(req, cfg.max_body).then(
      (body) => dispatch(req, res, body),
      (err: unknown) => {
        // A client that went away mid-request gets no answer and nothing is offered to the route.
        if (err instanceof TooLargeError) refuseTooLarge(req, res, err.message);
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
    const settle = (outcome: Parameters<Received["settle"]>[0]) => answerOutcome(res, outcome, retryAfter);
    offerOrRefuse(box, trace === undefined ? { events, settle } : { events, trace, settle }, res, retryAfter);
  }

  return {
    async start(target) {
      inbox = target;
      server = await listenWebhook(cfg.listen, cfg.tls, onRequest, (err) => ctx.log.error({ err }, "request handler failed"));
      ctx.setUp(true);
      ctx.log.info({ listen: cfg.listen, path: cfg.path }, "http source listening");
    },
    async stop() {
      stopped = true;
      stopAccepting(server);
    },
    async close() {
      stopped = true;
      ctx.setUp(false);
      const s = server;
      server = undefined;
      await closeServer(s);
    },
  };
}
