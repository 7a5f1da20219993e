/**
 * Fault: HTTP source clients that go away mid-request (headers and half the body sent, then the
 * socket destroyed) and mid-response (the whole request sent, the socket destroyed before the answer),
 * while well-behaved clients keep sending. The daemon stays up, every event answered 2xx reaches the
 * sink, and the route's in_flight returns to 0. Events whose client vanished after the full request may
 * or may not be delivered (nobody was told either way); they are counted, not required.
 */
import assert from "node:assert/strict";
import { connect } from "node:net";
import { after, describe, test } from "node:test";
import { startDaemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";
import { ids, metric, report, routeStatus, startReceiver } from "../support/counting.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function binaryHead(port: number, id: string, bodyLength: number): string {
  return [
    "POST / HTTP/1.1",
    `Host: 127.0.0.1:${port}`,
    "ce-specversion: 1.0",
    `ce-id: ${id}`,
    "ce-source: urn:cebridge:faults",
    "ce-type: dev.cebridge.test.fault",
    "content-type: application/json",
    `content-length: ${bodyLength}`,
    "",
    "",
  ].join("\r\n");
}

/** Sends the headers and half of the body, then destroys the socket. */
function halfBody(port: number, id: string): Promise<void> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ id, pad: "x".repeat(200) });
    const s = connect({ port, host: "127.0.0.1" }, () => {
      s.write(binaryHead(port, id, Buffer.byteLength(body)));
      s.write(body.slice(0, Math.floor(body.length / 2)), () => setTimeout(() => s.destroy(), 5));
    });
    s.on("error", () => {});
    s.on("close", () => resolve());
  });
}

/** Sends the whole request, then destroys the socket before any answer can come. */
function noWaitForAnswer(port: number, id: string): Promise<boolean> {
  return new Promise((resolve) => {
    const body = JSON.stringify({ id });
    let answered = false;
    const s = connect({ port, host: "127.0.0.1" }, () => {
      s.write(binaryHead(port, id, Buffer.byteLength(body)) + body, () => setTimeout(() => s.destroy(), 2));
    });
    s.on("data", () => (answered = true));
    s.on("error", () => {});
    s.on("close", () => resolve(answered));
  });
}

describe("faults - HTTP source disconnects", { timeout: 90_000 }, () => {
  test("http disconnects - clients vanishing mid-request and mid-response: daemon stays up, every 2xx event arrives, in_flight back to 0", async (t) => {
    const rx = await startReceiver({ delayMs: 20 });
    cleanups.push(() => rx.close());
    const port = await freePort();
    const admin = `127.0.0.1:${await freePort()}`;
    const daemon = startDaemon(`
engine: { instance_id: hd, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: hd, from: in, to: [out], max_in_flight: 1000 }
`);
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin, 30_000);

    const GOOD = 600;
    const HALF = 150;
    const GONE = 150;
    const good = ids("good", GOOD);
    const half = ids("half", HALF);
    const gone = ids("gone", GONE);
    const acked: string[] = [];
    const refused: string[] = [];

    const sendGood = async (id: string) => {
      try {
        const res = await fetch(`http://127.0.0.1:${port}/`, {
          method: "POST",
          headers: { "ce-specversion": "1.0", "ce-id": id, "ce-source": "urn:cebridge:faults", "ce-type": "dev.cebridge.test.fault", "content-type": "application/json" },
          body: JSON.stringify({ id }),
        });
        await res.arrayBuffer();
        if (res.status >= 200 && res.status < 300) acked.push(id);
        else refused.push(`${id}:${res.status}`);
      } catch (err) {
        refused.push(`${id}:${(err as Error).message}`);
      }
    };
    // Interleave: 20 waves, each with good clients alongside the two kinds of bad ones.
    let answeredGone = 0;
    const waves = 20;
    for (let w = 0; w < waves; w++) {
      const slice = <T,>(a: T[]) => a.slice((w * a.length) / waves, ((w + 1) * a.length) / waves);
      await Promise.all([
        ...slice(good).map(sendGood),
        ...slice(half).map((id) => halfBody(port, id)),
        ...slice(gone).map(async (id) => {
          if (await noWaitForAnswer(port, id)) answeredGone++;
        }),
      ]);
    }

    await waitFor(() => rx.tally.hasAll(acked), 30_000, () => `arrived ${acked.filter((id) => rx.tally.has(id)).length}/${acked.length} of the acked`, 50);
    let st = await routeStatus(admin, "hd");
    await waitFor(async () => (st = await routeStatus(admin, "hd")).in_flight === 0, 15_000, () => `in_flight ${st.in_flight}`, 50);
    await sleep(300);

    const health = await fetch(`http://${admin}/healthz`);
    const lost = rx.tally.missing(acked);
    const halfArrived = half.filter((id) => rx.tally.has(id));
    const goneArrived = gone.filter((id) => rx.tally.has(id)).length;
    const received = await metric(admin, "cebridge_events_received_total", { route: "hd" });
    report(t, {
      scenario: "HTTP source: clients vanish mid-request / mid-response",
      sent: acked.length,
      delivered: acked.filter((id) => rx.tally.has(id)).length,
      duplicates: rx.tally.duplicates,
      deadLettered: st.counters.deadLettered,
      lost: lost.length,
      note: `${GOOD} normal (${acked.length} answered 2xx, refused ${refused.length}), ${HALF} half-body (${halfArrived.length} arrived), ${GONE} gone before the answer (${goneArrived} arrived, ${answeredGone} got an answer first); route received ${received}`,
    });
    assert.equal(daemon.proc.exitCode, null, "daemon still running");
    assert.equal(health.status, 200);
    assert.deepEqual(refused, [], "normal clients are all answered 2xx");
    assert.deepEqual(lost, [], "every event answered 2xx reached the sink");
    assert.deepEqual(halfArrived, [], "a half-sent body is never offered to the route");
    assert.equal(received, GOOD + goneArrived, "the route received exactly the complete requests that reached it");
    assert.equal(st.in_flight, 0);
    assert.deepEqual(rx.tally.unexpected([...good, ...gone]), []);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
