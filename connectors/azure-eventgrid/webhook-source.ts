/**
 * `azure_eventgrid` source: the webhook endpoint Event Grid pushes to.
 *
 * - CloudEvents delivery schema: the OPTIONS abuse-protection handshake (shared with the http source,
 *   src/core/webhook-server.ts) grants only `allowed_origins`; then structured or batched events.
 * - Event Grid delivery schema: the subscription validation event is answered with
 *   `{"validationResponse": code}` (`validation: sync`), or with a bare 200 followed by a GET of the
 *   validation URL when its host is in `validation_hosts` (`validation: url`); then arrays of events,
 *   mapped per mapping.ts. `SubscriptionDeletion` notices are answered 200 and logged.
 * - Every POST (the validation event included) must carry `secret` when one is set (query parameter
 *   `secret_query` or header `secret_header`) and a valid Entra token when `entra` is set: else 401,
 *   which Event Grid does not retry, and nothing reaches the route.
 * - Statuses that make Event Grid retry what failed on our side: 204 only once every sink settled the
 *   request's events; 503 (transient sink failure, shutdown, a batch larger than the window, signing
 *   keys unreachable) and 429 (window full) with Retry-After; 422 for a permanent sink failure with no
 *   dead-letter sink. 400, 413 and 415 are only for requests that can never succeed (invalid events,
 *   a body over `max_body`, a content type that is not Event Grid's), which Event Grid dead-letters.
 * - `aeg-delivery-count` (0 on the first attempt) + 1 is the delivery count.
 * - A W3C `traceparent` / `tracestate` request header is the transport trace context, read as the
 *   http source reads it: the engine adds the extension from it to events that have none. Event
 *   Grid's own events carry the trace in that extension; the header comes from other senders.
 */
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { ConnectorContext } from "../../src/core/connector.js";
import { BridgeError, EventValidationError, TooLargeError, asBridgeError } from "../../src/core/errors.js";
import type { Inbox, Source } from "../../src/core/source.js";
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
  secretMatches,
  sendError as fail,
  splitTarget,
  stopAccepting,
} from "../../src/core/webhook-server.js";
import type { EventGridSourceConfig } from "./definition.js";
import { EntraVerifier } from "./entra.js";
import { decodePush } from "./webhook-decode.js";

const STATUS_BY_CODE: Partial<Record<BridgeError["code"], number>> = {
  CEB_EVENT_INVALID: 400,
  CEB_FORMAT: 400,
  CEB_UNSUPPORTED_MEDIA: 415,
  CEB_TOO_LARGE: 413,
};

/** Whether `host` is allowed by a `validation_hosts` entry (`*.example.net` matches subdomains). */
export function hostAllowed(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase();
  return patterns.some((p) => {
    const q = p.toLowerCase();
    return q.startsWith("*.") ? h.endsWith(q.slice(1)) && h.length > q.length - 1 : h === q;
  });
}

export function createEventGridSource(cfg: EventGridSourceConfig, ctx: ConnectorContext): Source {
  let server: Server | undefined;
  let inbox: Inbox | undefined;
  let stopped = false;
  const retryAfter = retryAfterSeconds(cfg.retry_after);
  const secretHeader = cfg.secret_header.toLowerCase();
  const entra = cfg.entra
    ? new EntraVerifier({ tenantId: cfg.entra.tenant_id, audience: cfg.entra.audience, jwksUrl: cfg.entra.jwks_url, issuers: cfg.entra.issuers, clockSkewMs: cfg.entra.clock_skew })
    : undefined;

  function onRequest(req: IncomingMessage, res: ServerResponse): void {
    const { path, query } = splitTarget(req.url);
    if (path !== cfg.path) return fail(res, 404, "CEB_NOT_FOUND", `no endpoint at this path; events go to ${cfg.path}`);
    if (req.method === "OPTIONS") return abuseProtectionHandshake(req, res, cfg.allowed_origins);
    if (req.method !== "POST") return fail(res, 405, "CEB_METHOD", `method ${req.method} not allowed; use POST`, { allow: "POST, OPTIONS" });
    if (cfg.secret !== undefined) {
      const given = query.get(cfg.secret_query) ?? req.headersDistinct[secretHeader]?.[0];
      if (!secretMatches(given, cfg.secret)) {
        req.resume();
        return fail(res, 401, "CEB_UNAUTHORIZED", `missing or wrong secret (query parameter ${cfg.secret_query} or header ${cfg.secret_header})`);
      }
    }
    if (stopped || !inbox?.accepting) {
      req.resume();
      return fail(res, 503, "CEB_SHUTTING_DOWN", "the bridge is stopping", { "retry-after": retryAfter, connection: "close" });
    }
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > cfg.max_body) return refuseTooLarge(req, res, `body of ${declared} bytes is over max_body (${cfg.max_body})`);
    const authorized = entra ? entra.verify(req.headers.authorization) : Promise.resolve();
    Promise.all([authorized, readBody(req, cfg.max_body)]).then(
      ([, body]) => dispatch(req, res, body),
      (err: unknown) => {
        if (err instanceof TooLargeError) return refuseTooLarge(req, res, err.message);
        if (err instanceof BridgeError && err.code === "CEB_UNAUTHORIZED") {
          req.resume();
          return fail(res, 401, err.code, err.message);
        }
        if (err instanceof BridgeError && err.retryable) {
          req.resume();
          ctx.log.warn({ code: err.code, err: err.message }, "cannot check the Entra token; answering 503");
          return fail(res, 503, err.code, "the token cannot be checked right now", { "retry-after": retryAfter });
        }
        // A client that went away mid-request gets no answer and nothing is offered to the route.
      },
    );
  }

  function dispatch(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
    let push;
    try {
      push = decodePush(req.headersDistinct, body, { maxDepth: cfg.max_depth });
    } catch (err) {
      const e = asBridgeError(err);
      const extra: Record<string, string> = e instanceof EventValidationError && e.attribute ? { attribute: e.attribute } : {};
      return fail(res, STATUS_BY_CODE[e.code] ?? 400, e.code, e.message, {}, extra);
    }
    switch (push.kind) {
      case "deletion":
        ctx.log.info({ subscription: req.headers["aeg-subscription-name"] }, "Event Grid deleted the subscription");
        res.writeHead(200).end();
        return;
      case "validation":
        return validate(req, res, push.code, push.url);
      case "events": {
        if (push.events.length === 0) {
          res.writeHead(204).end();
          return;
        }
        const box = inbox!;
        if (push.events.length > box.capacity) {
          // Our limit, not the sender's fault: 413 would make Event Grid drop the batch.
          ctx.log.warn({ events: push.events.length, window: box.capacity }, "a delivery has more events than the route's window; set the subscription's maxEventsPerBatch lower");
          return fail(res, 503, "CEB_WINDOW_FULL", `batch of ${push.events.length} events is larger than the route's window (${box.capacity})`, { "retry-after": retryAfter });
        }
        const trace = requestTrace(req.headersDistinct);
        offerOrRefuse(
          box,
          {
            events: push.events,
            ...(push.deliveryCount !== undefined ? { deliveryCount: push.deliveryCount } : {}),
            ...(trace !== undefined ? { trace } : {}),
            settle: (outcome) => answerOutcome(res, outcome, retryAfter),
          },
          res,
          retryAfter,
        );
      }
    }
  }

  function validate(req: IncomingMessage, res: ServerResponse, code: string, url: string | undefined): void {
    const subscription = req.headers["aeg-subscription-name"];
    if (cfg.validation === "sync") {
      ctx.log.info({ subscription }, "answered the Event Grid subscription validation");
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ validationResponse: code }));
      return;
    }
    res.writeHead(200).end();
    if (url === undefined) {
      ctx.log.warn({ subscription }, "the validation event has no validationUrl; the subscription stays unvalidated");
      return;
    }
    let host: string;
    try {
      host = new URL(url).hostname;
    } catch {
      ctx.log.warn({ subscription }, "the validation URL is not a URL; not visited");
      return;
    }
    if (!hostAllowed(host, cfg.validation_hosts)) {
      ctx.log.warn({ subscription, host }, "the validation URL points to a host outside validation_hosts; not visited");
      return;
    }
    // After the answer, as Event Grid expects; the URL itself carries a token: never logged.
    setImmediate(() => {
      fetch(url, { signal: AbortSignal.timeout(30_000) }).then(
        (r) => ctx.log.info({ subscription, status: r.status }, "visited the Event Grid validation URL"),
        (err: unknown) => ctx.log.warn({ subscription, err: (err as Error).message }, "could not visit the Event Grid validation URL"),
      );
    });
  }

  return {
    async start(target) {
      inbox = target;
      server = await listenWebhook(cfg.listen, cfg.tls, onRequest, (err) => ctx.log.error({ err }, "request handler failed"));
      ctx.setUp(true);
      ctx.log.info({ listen: cfg.listen, path: cfg.path }, "Event Grid webhook listening");
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
