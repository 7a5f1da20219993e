/**
 * What the bare HTTP baselines (`http-jetstream.ts`, `http-nats.ts`) share as processes: take the
 * forked task, start the server on `task.port`, answer `ready` once listening, and on SIGTERM close
 * every connection and the NATS connection, then exit. A start-up failure is reported as an `error`
 * message and exits 1.
 */
import type { Server } from "node:http";
import type { NatsConnection } from "@nats-io/transport-node";
import type { WorkerMessage } from "../lib/protocol.js";

/** A started baseline: its HTTP server (not yet listening) and its NATS connection. */
export interface HttpBaseline {
  readonly server: Server;
  readonly nc: NatsConnection;
}

export function serveHttpBaseline<T extends { port: number }>(start: (task: T) => Promise<HttpBaseline>): void {
  process.once("message", (task: T) => {
    run(task, start).catch((err: unknown) => {
      process.send?.({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
      process.exit(1);
    });
  });
}

async function run<T extends { port: number }>(task: T, start: (task: T) => Promise<HttpBaseline>): Promise<void> {
  const { server, nc } = await start(task);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(task.port, "127.0.0.1", () => resolve()));
  process.send?.({ type: "ready", info: { pid: process.pid } } satisfies WorkerMessage);
  process.once("SIGTERM", () => {
    server.closeAllConnections();
    server.close();
    void nc.close().then(() => process.exit(0));
  });
}
