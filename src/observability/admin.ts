/**
 * The admin HTTP server: `/` (the status page), `/healthz` (the process is alive), `/readyz` (every
 * connector is up), `/metrics` (Prometheus text) and `/status` (JSON). It never shows config values,
 * so no secret can leak through it; the free text it shows (errors) passes the board's redactor.
 */
import { createServer, type Server } from "node:http";
import type { Metrics } from "./metrics.js";
import type { StatusBoard } from "./status.js";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "./status-page.js";

export interface AdminServer {
  readonly address: string;
  close(): Promise<void>;
}

export async function startAdminServer(
  listen: { host: string; port: number },
  board: StatusBoard,
  metrics: Metrics,
  info: { version: string; instanceId: string },
): Promise<AdminServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    switch (path) {
      case "/":
      case "/index.html":
        res
          .writeHead(200, {
            "content-type": "text/html; charset=utf-8",
            "cache-control": "no-store",
            "content-security-policy": STATUS_PAGE_CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
          })
          .end(req.method === "HEAD" ? undefined : STATUS_PAGE_HTML);
        return;
      case "/healthz":
        send(res, 200, { status: "ok" });
        return;
      case "/readyz": {
        const ready = board.ready();
        const down = [...board.components.values()].filter((c) => !c.up).map((c) => `${c.kind}:${c.id}`);
        send(res, ready ? 200 : 503, { ready, ...(ready ? {} : { stopping: board.stopping, down }) });
        return;
      }
      case "/metrics":
        metrics.registry.metrics().then(
          (text) => {
            res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text);
          },
          () => res.writeHead(500).end(),
        );
        return;
      case "/status":
        send(res, 200, statusDocument(board, info));
        return;
      default:
        send(res, 404, { error: "not found", paths: ["/", "/healthz", "/readyz", "/metrics", "/status"] });
    }
  });
  const { host, port } = listen;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address();
  const address = typeof addr === "object" && addr ? `${addr.address.includes(":") ? `[${addr.address}]` : addr.address}:${addr.port}` : `${host}:${port}`;
  return {
    address,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** The `/status` JSON document. */
export function statusDocument(board: StatusBoard, info: { version: string; instanceId: string }): Record<string, unknown> {
  const c = board.config;
  const r = c.lastReload;
  return {
    version: info.version,
    instance_id: info.instanceId,
    started_at: board.startedAt,
    ready: board.ready(),
    stopping: board.stopping,
    config: {
      file: c.file,
      generation: c.generation,
      loaded_at: c.loadedAt,
      reloading: c.reloading,
      last_reload: r
        ? {
            at: r.at,
            trigger: r.trigger,
            result: r.result,
            ...(r.errors ? { errors: r.errors } : {}),
            ...(r.routes ? { routes: r.routes } : {}),
            ...(r.needsRestart?.length ? { needs_restart: r.needsRestart } : {}),
            ...(r.message !== undefined ? { message: r.message } : {}),
          }
        : null,
    },
    components: [...board.components.values()],
    routes: [...board.routes.values()].map((r) => ({
      name: r.name,
      from: r.from,
      to: r.to,
      dead_letter: r.deadLetter ?? null,
      capacity: r.capacity,
      in_flight: r.inFlight,
      counters: r.counters,
      since: r.since,
      ...(r.buffer ? { buffer: r.buffer.snapshot() } : {}),
    })),
    recent_errors: board.errors.list(),
  };
}

function send(res: import("node:http").ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(body) + "\n");
}
