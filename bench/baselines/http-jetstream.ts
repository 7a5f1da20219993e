/**
 * Baseline of scenario 4: a bare `node:http` server that publishes each request body to JetStream
 * and answers 204 after the PubAck (503 if the publish fails). It does what the cebridge path does
 * on the wire — same client options as the connector (`noAsyncTraces`, …), a Content-Type header,
 * `Nats-Msg-Id` (the `ce-id` header), the expected stream — but parses nothing: the ceiling of the
 * transports themselves.
 *
 * Forked with `{ natsUrl, subject, stream, port }`; answers `ready` once listening; runs until SIGTERM.
 */
import { createServer } from "node:http";
import { connect } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import type { WorkerMessage } from "../lib/protocol.js";

export interface HttpJetStreamTask {
  natsUrl: string;
  subject: string;
  stream: string;
  port: number;
}

async function main(task: HttpJetStreamTask): Promise<void> {
  const nc = await connect({
    servers: [task.natsUrl],
    name: "bench-http-jetstream",
    noAsyncTraces: true,
    waitOnFirstConnect: true,
    maxReconnectAttempts: -1,
  });
  const js = jetstream(nc);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
      const h = natsHeaders();
      h.append("Content-Type", String(req.headers["content-type"] ?? "application/octet-stream"));
      const id = req.headers["ce-id"];
      js.publish(task.subject, body, { headers: h, ...(typeof id === "string" ? { msgID: id } : {}), expect: { streamName: task.stream } }).then(
        () => res.writeHead(204).end(),
        () => res.writeHead(503).end(),
      );
    });
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(task.port, "127.0.0.1", () => resolve()));
  process.send?.({ type: "ready", info: { pid: process.pid } } satisfies WorkerMessage);
  process.once("SIGTERM", () => {
    server.closeAllConnections();
    server.close();
    void nc.close().then(() => process.exit(0));
  });
}

process.once("message", (task: HttpJetStreamTask) => {
  main(task).catch((err: unknown) => {
    process.send?.({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
    process.exit(1);
  });
});
