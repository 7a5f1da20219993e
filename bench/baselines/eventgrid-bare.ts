/**
 * Baselines of scenario 11, the bare clients beside cebridge:
 * - `webhook`: a bare `node:http` server that grants the OPTIONS handshake and publishes each pushed
 *   body to core NATS as it is (a batch split into its events), answering 204: what the transports
 *   cost without any CloudEvents work.
 * - `pull`: `receivers` loops of the real `EventGridReceiverClient`: receive up to 100 events, publish
 *   each event's JSON to core NATS, acknowledge the lock tokens in one call.
 *
 * Forked with the task as its first message; answers `ready`; runs until SIGTERM.
 */
import { createServer } from "node:http";
import { connect } from "@nats-io/transport-node";
import { AzureKeyCredential, EventGridReceiverClient } from "@azure/eventgrid-namespaces";
import type { WorkerMessage } from "../lib/protocol.js";

export type EventGridBareTask =
  | { mode: "webhook"; natsUrl: string; subject: string; port: number }
  | { mode: "pull"; natsUrl: string; subject: string; endpoint: string; key: string; topic: string; subscription: string; receivers: number };

async function main(task: EventGridBareTask): Promise<void> {
  const nc = await connect({ servers: [task.natsUrl], name: "bench-eventgrid-bare", noAsyncTraces: true, waitOnFirstConnect: true, maxReconnectAttempts: -1 });
  let stopping = false;
  if (task.mode === "webhook") {
    const server = createServer((req, res) => {
      if (req.method === "OPTIONS") return void res.writeHead(200, { "webhook-allowed-origin": String(req.headers["webhook-request-origin"] ?? "*") }).end();
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        // A batch is split into its events (the least a consumer must do); a single event goes as it is.
        if (String(req.headers["content-type"] ?? "").startsWith("application/cloudevents-batch+json")) {
          for (const e of JSON.parse(body.toString("utf8")) as unknown[]) nc.publish(task.subject, JSON.stringify(e));
        } else nc.publish(task.subject, body);
        res.writeHead(204).end();
      });
    });
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((r) => server.listen(task.port, "127.0.0.1", () => r()));
    process.once("SIGTERM", () => {
      server.closeAllConnections();
      server.close();
      void nc.close().then(() => process.exit(0));
    });
  } else {
    const receiver = new EventGridReceiverClient(task.endpoint, new AzureKeyCredential(task.key), task.topic, task.subscription, {
      allowInsecureConnection: true,
      retryOptions: { maxRetries: 0 },
    });
    const loop = async () => {
      while (!stopping) {
        let text = "";
        try {
          await receiver.receiveEvents({ maxEvents: 100, maxWaitTime: 1, onResponse: (r) => (text = r.bodyAsText ?? "") });
        } catch {
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        const value = (JSON.parse(text || '{"value":[]}') as { value: { brokerProperties: { lockToken: string }; event: unknown }[] }).value;
        if (value.length === 0) continue;
        for (const d of value) nc.publish(task.subject, JSON.stringify(d.event));
        await receiver.acknowledgeEvents(value.map((d) => d.brokerProperties.lockToken)).catch(() => {});
      }
    };
    const loops = Array.from({ length: task.receivers }, () => loop());
    process.once("SIGTERM", () => {
      stopping = true;
      void Promise.all(loops).then(() => nc.close()).then(() => process.exit(0));
    });
  }
  process.send?.({ type: "ready", info: { pid: process.pid } } satisfies WorkerMessage);
}

process.once("message", (task: EventGridBareTask) => {
  main(task).catch((err: unknown) => {
    process.send?.({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
    process.exit(1);
  });
});
