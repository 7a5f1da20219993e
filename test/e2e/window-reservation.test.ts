/**
 * Issue #8's reproduction, run as a user would: an MQTT source on a `$share/` topic with four
 * connections feeds a route whose window is two, into an HTTP sink that answers in 150 ms. Before
 * window reservations, each freed slot woke every waiting connection, the losers' offers were
 * refused, and their messages were left neither acknowledged nor released: 14 of 24 arrived in 12 s.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, describe, it } from "node:test";
import { connectAsync } from "mqtt";
import { startMosquitto, type BrokerHandle } from "../support/brokers.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

describe("window reservations end to end", { timeout: 60_000 }, () => {
  let mosq: BrokerHandle;
  let daemon: Daemon;
  const ids: string[] = [];
  let concurrent = 0;
  let peak = 0;
  const server = createServer((req, res) => {
    concurrent++;
    peak = Math.max(peak, concurrent);
    req.resume();
    req.on("end", () =>
      setTimeout(() => {
        concurrent--;
        ids.push(String(req.headers["ce-id"]));
        res.writeHead(204).end();
      }, 150),
    );
  });

  before(async () => {
    mosq = await startMosquitto();
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const admin = `127.0.0.1:${await freePort()}`;
    daemon = startDaemon(`
engine: { admin: { listen: "${admin}" }, log: { level: warn } }
sources:
  in: { type: mqtt, url: "${mosq.url}", topic: "$share/bridge/w/#", connections: 4, qos: 1 }
sinks:
  out: { type: http, url: "http://127.0.0.1:${(server.address() as { port: number }).port}/" }
routes:
  - { name: r, from: in, to: [out], max_in_flight: 2 }
`);
    await daemon.waitReady(admin);
  });

  after(async () => {
    await daemon?.stop();
    await new Promise<void>((r) => server.close(() => r()));
    await mosq?.close();
  });

  it("window reservations - 24 QoS 1 messages over 4 shared connections and a window of 2 all arrive, each once", async () => {
    const pub = await connectAsync(mosq.url, { protocolVersion: 5 });
    try {
      for (let i = 0; i < 24; i++) {
        await pub.publishAsync("w/e", JSON.stringify({ i }), {
          qos: 1,
          properties: { userProperties: { specversion: "1.0", id: `w-${i}`, source: "/w", type: "t" }, contentType: "application/json" },
        });
      }
    } finally {
      await pub.endAsync();
    }
    // Two at a time, 150 ms each: about 2 s when no slot is wasted.
    await waitFor(() => ids.length >= 24, 15_000, () => `${ids.length} of 24 arrived`);
    assert.deepEqual([...ids].sort(), Array.from({ length: 24 }, (_, i) => `w-${i}`).sort());
    assert.ok(peak <= 2, `the sink saw ${peak} requests at once through a window of 2`);
  });
});
