/**
 * Baseline of scenario 4: a bare `node:http` server that publishes each request body to JetStream
 * and answers 204 after the PubAck (503 if the publish fails). It does what the cebridge path does
 * on the wire — same client options as the connector (`noAsyncTraces`, …), a Content-Type header,
 * `Nats-Msg-Id` (the `ce-id` header), the expected stream — but parses nothing: the ceiling of the
 * transports themselves.
 *
 * Forked with `{ natsUrl, subject, stream, port }`; the lifecycle is `http-server-process.ts`.
 */
import { createServer } from "node:http";
import { connect } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import { serveHttpBaseline, type HttpBaseline } from "./http-server-process.js";

export interface HttpJetStreamTask {
  natsUrl: string;
  subject: string;
  stream: string;
  port: number;
}

async function main(task: HttpJetStreamTask): Promise<HttpBaseline> {
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
  return { server, nc };
}

serveHttpBaseline(main);
