/**
 * Small HTTP helpers of the Event Grid emulator: body reading with a limit, JSON answers and the
 * error body shape the Azure clients parse (`{"error":{"code","message"}}`).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** The service's request limit for both tiers (1 MB per request and per event). */
export const ONE_MB = 1024 * 1024;

/** Reads the whole body; resolves `undefined` when it passes `limit` (the rest is drained). */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) over = true;
      if (!over) chunks.push(c);
    });
    req.on("end", () => resolve(over ? undefined : Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { ...(text ? { "content-type": "application/json; charset=utf-8" } : {}), ...headers }).end(text);
}

/** The Azure error body: `RestError.code` comes from `error.code`. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { error: { code, message } }, headers);
}

/** Lower-case header lookup that joins repeated headers like node does for most of them. */
export function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Media type without parameters, lower case. */
export function essence(contentType: string | undefined): string {
  return (contentType ?? "").split(";", 1)[0]!.trim().toLowerCase();
}
