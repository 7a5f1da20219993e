/**
 * The Subscriptions API over HTTP(S), on its own listener (not the admin port). Each stream is its
 * own subscription manager at `/streams/{stream}/subscriptions[/{id}]` (docs/subscriptions-api.md §6):
 *
 * | request | answer |
 * |---|---|
 * | `GET /streams` | 200: the streams and their protocols |
 * | `GET …/subscriptions` | 200: array (`[]` when empty) |
 * | `POST …/subscriptions` | 201 with `Location` and the realized subscription (server id) |
 * | `GET …/subscriptions/{id}` | 200 |
 * | `PUT …/subscriptions/{id}` | 200: full replace |
 * | `DELETE …/subscriptions/{id}` | 200 with the deleted subscription |
 * | `OPTIONS` on either | 200 with `Allow` |
 *
 * Checks run in this order: token (401, before anything else, so an unauthenticated client learns
 * nothing), path (404), method (405), content type (415), size (413), JSON (400), then the operation
 * (400 naming the field, 403 at the limit, 404, 503 when the state file cannot be written).
 * Error bodies: `{"error": CODE, "message": …, "field"?: JSON pointer, "position"?: offset in CESQL}`.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { BridgeError, SubscriptionInvalidError, TooLargeError } from "../core/errors.js";
import { closeServer, listenWebhook, readBody, refuseTooLarge, secretMatches, splitTarget } from "../core/webhook-server.js";
import type { Logger } from "../core/logger.js";
import { ApiError, type SubscriptionManager } from "./manager.js";

export interface ApiServer {
  readonly address: string;
  close(): Promise<void>;
}

export interface ApiListen {
  /** `host:port`. */
  readonly listen: string;
  readonly tls?: { readonly cert: string; readonly key: string; readonly ca?: string } | undefined;
}

const COLLECTION_ALLOW = "GET, POST, OPTIONS";
const ITEM_ALLOW = "GET, PUT, DELETE, OPTIONS";
/** How much of a refused body is still read so the client sees the answer (then the connection is cut). */
const DRAIN_LIMIT = 1024 * 1024;

export async function startSubscriptionsApi(manager: SubscriptionManager, listen: ApiListen, log: Logger): Promise<ApiServer> {
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    res.on("finish", () => manager.metrics.request(req.method ?? "", res.statusCode));
    handle(manager, req, res).catch((err: unknown) => {
      log.error({ err }, "subscriptions API: unexpected error (a bug)");
      send(res, 500, { error: "CEB_INTERNAL", message: "internal error" });
    });
  };
  const server = await listenWebhook(listen.listen, listen.tls, handler, (err) => log.error({ err }, "subscriptions API: unexpected error (a bug)"));
  const addr = server.address();
  const address = typeof addr === "object" && addr ? `${addr.address.includes(":") ? `[${addr.address}]` : addr.address}:${addr.port}` : listen.listen;
  return { address, close: () => closeServer(server) };
}

type Route = { kind: "streams" } | { kind: "collection"; stream: string } | { kind: "item"; stream: string; id: string };

/** The request target → what it names; undefined for any other path. */
export function route(target: string): Route | undefined {
  const { path } = splitTarget(target);
  const parts = path.split("/");
  if (parts[0] !== "" || parts.some((p, i) => i > 0 && p === "")) return undefined;
  let segs: string[];
  try {
    segs = parts.slice(1).map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
  if (segs.length === 1 && segs[0] === "streams") return { kind: "streams" };
  if (segs[0] !== "streams" || segs[2] !== "subscriptions") return undefined;
  if (segs.length === 3) return { kind: "collection", stream: segs[1]! };
  if (segs.length === 4) return { kind: "item", stream: segs[1]!, id: segs[3]! };
  return undefined;
}

async function handle(manager: SubscriptionManager, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const settings = manager.settings;
  const token = settings.auth?.bearer;
  // Only the header: a token in the query string ends up in access logs.
  const given = req.headers.authorization?.startsWith("Bearer ") ? req.headers.authorization.slice(7).trim() : undefined;
  if (token !== undefined && !secretMatches(given, token)) {
    discard(req);
    return send(res, 401, { error: "CEB_UNAUTHORIZED", message: "missing or wrong bearer token" }, { "www-authenticate": 'Bearer realm="cebridge-subscriptions"' });
  }
  const r = route(req.url ?? "/");
  if (!r) {
    discard(req);
    return send(res, 404, { error: "CEB_NOT_FOUND", message: "no such resource; subscriptions live at /streams/{stream}/subscriptions" });
  }
  const method = req.method ?? "";
  const allow = r.kind === "item" ? ITEM_ALLOW : r.kind === "collection" ? COLLECTION_ALLOW : "GET, OPTIONS";
  if (method === "OPTIONS") {
    discard(req);
    return send(res, 200, undefined, { allow });
  }
  if (!allow.split(", ").includes(method)) {
    discard(req);
    return send(res, 405, { error: "CEB_METHOD", message: `method ${clip(method)} is not allowed here`, allowed: allow }, { allow });
  }
  try {
    if (method === "POST" || method === "PUT") {
      const body = await readJson(req, settings.max_body);
      if (r.kind === "collection") {
        const { id, view } = await manager.create(r.stream, body);
        return send(res, 201, view, { location: `/streams/${encodeURIComponent(r.stream)}/subscriptions/${id}` });
      }
      if (r.kind === "item") return send(res, 200, await manager.replace(r.stream, r.id, body));
    }
    discard(req);
    if (r.kind === "streams") return send(res, 200, manager.streamNames());
    if (r.kind === "collection") return send(res, 200, manager.list(r.stream));
    if (method === "DELETE") return send(res, 200, await manager.remove(r.stream, r.id));
    return send(res, 200, manager.get(r.stream, r.id));
  } catch (err) {
    if (err instanceof ApiError && err.status === 413) return refuseTooLarge(req, res, err.message);
    if (err instanceof ApiError) return sendError(res, err.status, err.error);
    if (err instanceof SubscriptionInvalidError) return sendError(res, 400, err);
    throw err;
  }
}

/** Reads a JSON body of at most `max` bytes. Throws `ApiError` 415, 413 or 400. */
async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const type = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "application/json" && !/^application\/[a-z0-9.+-]+\+json$/.test(type)) {
    discard(req);
    throw new ApiError(415, new BridgeError("CEB_UNSUPPORTED_MEDIA", `send the subscription as application/json${type ? `, not ${clip(type)}` : ""}`, false));
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > max) throw new ApiError(413, new TooLargeError(`body of ${declared} bytes is over max_body (${max})`));
  let body: Buffer;
  try {
    body = await readBody(req, max);
  } catch (err) {
    if (err instanceof TooLargeError) throw new ApiError(413, err);
    throw err;
  }
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new ApiError(400, new BridgeError("CEB_FORMAT", `the body is not valid JSON: ${clip((err as Error).message)}`, false));
  }
}

function sendError(res: ServerResponse, status: number, error: BridgeError): void {
  const body: Record<string, unknown> = { error: error.code, message: error.message };
  if (error instanceof SubscriptionInvalidError) {
    body["field"] = error.field;
    if (error.position !== undefined) body["position"] = error.position;
  }
  send(res, status, body);
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (body === undefined) {
    res.writeHead(status, { "cache-control": "no-store", "content-length": "0", ...headers }).end();
    return;
  }
  const text = JSON.stringify(body) + "\n";
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store", ...headers }).end(text);
}

/** Reads and drops a body we do not use, bounded, so the client can read the answer. */
function discard(req: IncomingMessage): void {
  let n = 0;
  req.on("data", (c: Buffer) => {
    n += c.length;
    if (n > DRAIN_LIMIT) req.socket.destroy();
  });
  req.resume();
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}
