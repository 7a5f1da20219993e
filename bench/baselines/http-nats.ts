/**
 * Baseline of scenario 5: the HTTP → NATS bridge a strong team writes by hand with the same client,
 * in one `node:http` server. Per request it does what any correct bridge must and no more: read the
 * `ce-*` headers as attributes, check the four required ones, take `Content-Type` as
 * `datacontenttype`, parse the JSON body as `data`, publish the JSON-format event on core NATS with the
 * structured content type and answer 204 (400 when a required attribute is missing). No window,
 * validation of types, metrics or loop markers. Scenario 5 reports cebridge's p99 against it, to tell
 * what cebridge adds from what the HTTP hop itself costs.
 *
 * Forked with `{ natsUrl, subject, port }`; the lifecycle is `http-server-process.ts`.
 */
import { createServer } from "node:http";
import { connect } from "@nats-io/transport-node";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { serveHttpBaseline, type HttpBaseline } from "./http-server-process.js";

export interface HttpNatsTask {
  natsUrl: string;
  subject: string;
  port: number;
}

const STRUCTURED = "application/cloudevents+json; charset=utf-8";
const REQUIRED = ["specversion", "id", "source", "type"] as const;

async function main(task: HttpNatsTask): Promise<HttpBaseline> {
  const nc = await connect({ servers: [task.natsUrl], name: "bench-http-nats", noAsyncTraces: true, waitOnFirstConnect: true, maxReconnectAttempts: -1 });
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const ev: Record<string, unknown> = {};
      for (const name in req.headers) {
        const v = req.headers[name];
        if (name.startsWith("ce-") && typeof v === "string") ev[name.slice(3)] = v;
      }
      if (REQUIRED.some((k) => typeof ev[k] !== "string")) return void res.writeHead(400).end();
      const ct = req.headers["content-type"];
      if (typeof ct === "string") ev["datacontenttype"] = ct;
      try {
        ev["data"] = JSON.parse((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8"));
      } catch {
        return void res.writeHead(400).end();
      }
      const h = natsHeaders();
      h.set("content-type", STRUCTURED);
      nc.publish(task.subject, JSON.stringify(ev), { headers: h });
      res.writeHead(204).end();
    });
  });
  return { server, nc };
}

serveHttpBaseline(main);
