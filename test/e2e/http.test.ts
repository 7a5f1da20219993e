/**
 * End to end over real HTTP: the built daemon is started as a child process with a YAML file.
 */
import assert from "node:assert/strict";
import { readFileSync, mkdtempSync, existsSync } from "node:fs";
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

interface Captured {
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/** A local receiver whose answer is scripted per request. */
async function receiver(answer: (n: number, req: Captured) => number | Promise<number>): Promise<{ url: string; got: Captured[]; server: Server; close(): Promise<void> }> {
  const got: Captured[] = [];
  let n = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const captured = { headers: req.headers, body: Buffer.concat(chunks) };
      const status = await answer(++n, captured);
      if (status >= 200 && status < 300) got.push(captured);
      res.writeHead(status, status === 503 ? { "retry-after": "0" } : {}).end(status >= 400 ? "nope: bad thing" : "");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/in`,
    got,
    server,
    close: () => new Promise((r) => { server.close(() => r()); server.closeAllConnections(); }),
  };
}

async function ports(): Promise<{ http: number; admin: number }> {
  return { http: await freePort(), admin: await freePort() };
}

function post(port: number, headers: Record<string, string>, body: string | Buffer, path = "/"): Promise<Response> {
  return fetch(`http://127.0.0.1:${port}${path}`, { method: "POST", headers, body });
}

const BINARY = {
  "ce-specversion": "1.0",
  "ce-id": "b-1",
  "ce-source": "https://example.com/orders",
  "ce-type": "com.example.order.created",
  "ce-subject": "Euro%20%E2%82%AC%20%F0%9F%98%80",
  "ce-time": "2024-05-01T10:00:00.123456Z",
  "ce-myext": "100%",
  "content-type": "application/json",
};

describe("http e2e - source to stdout", () => {
  let daemon: Daemon;
  let p: { http: number; admin: number };
  before(async () => {
    p = await ports();
    daemon = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${p.admin}" }, log: { level: warn } }
sources:
  in: { type: http, listen: "127.0.0.1:${p.http}", path: /, max_body: 4KiB, allowed_origins: [Good.Example.com, eventgrid.azure.net] }
sinks:
  out: { type: stdout }
routes:
  - { name: r, from: in, to: [out] }
`);
    await daemon.waitReady(`127.0.0.1:${p.admin}`);
  });
  after(async () => {
    assert.equal(await daemon.stop(), 0);
  });

  test("binary mode arrives with every attribute decoded and data as JSON", async () => {
    const res = await post(p.http, BINARY, '{"total": 42}');
    assert.equal(res.status, 204);
    await waitFor(() => daemon.stdout.some((l) => l.includes('"b-1"')));
    const ev = JSON.parse(daemon.stdout.find((l) => l.includes('"b-1"'))!);
    assert.deepEqual(ev, {
      specversion: "1.0",
      id: "b-1",
      source: "https://example.com/orders",
      type: "com.example.order.created",
      subject: "Euro € 😀",
      time: "2024-05-01T10:00:00.123456Z",
      myext: "100%",
      datacontenttype: "application/json",
      data: { total: 42 },
      cebridgevia: ev.cebridgevia,
      cebridgehops: 1,
    });
    assert.equal(typeof ev.cebridgevia, "string");
  });

  test("structured mode keeps extension types and binary data", async () => {
    const body = JSON.stringify({
      specversion: "1.0", id: "s-1", source: "/s", type: "t", count: 7, flag: true,
      datacontenttype: "application/octet-stream", data_base64: Buffer.from([0, 1, 2, 255]).toString("base64"),
    });
    const res = await post(p.http, { "content-type": "application/cloudevents+json; charset=utf-8" }, body);
    assert.equal(res.status, 204);
    await waitFor(() => daemon.stdout.some((l) => l.includes('"s-1"')));
    const ev = JSON.parse(daemon.stdout.find((l) => l.includes('"s-1"'))!);
    assert.equal(ev.count, 7);
    assert.equal(ev.flag, true);
    assert.equal(ev.data_base64, "AAEC/w==");
  });

  test("batch mode delivers every event and answers once all settled", async () => {
    const batch = [1, 2, 3].map((i) => ({ specversion: "1.0", id: `batch-${i}`, source: "/b", type: "t", data: { i } }));
    const res = await post(p.http, { "content-type": "application/cloudevents-batch+json" }, JSON.stringify(batch));
    assert.equal(res.status, 204);
    await waitFor(() => [1, 2, 3].every((i) => daemon.stdout.some((l) => l.includes(`"batch-${i}"`))));
  });

  test("bad input gets the right status and a clear message, and the daemon keeps running", async () => {
    const cases: [string, Record<string, string>, string, number, RegExp][] = [
      ["malformed JSON", { "content-type": "application/cloudevents+json" }, '{"specversion":', 400, /JSON/i],
      ["wrong type", { "content-type": "application/cloudevents+json" }, '{"specversion":"1.0","id":5,"source":"/x","type":"t"}', 400, /id/],
      ["invalid attribute name", { ...BINARY, "ce-Bad_Name": "x" }, "{}", 400, /bad_name/i],
      ["missing required", { "ce-specversion": "1.0", "ce-id": "x", "ce-type": "t" }, "", 400, /source/],
      ["bad time", { ...BINARY, "ce-time": "2024-13-01T00:00:00Z" }, "{}", 400, /time/],
      ["unknown content type", { "content-type": "text/plain" }, "hello", 415, /not a CloudEvent/],
      ["unsupported format", { "content-type": "application/cloudevents+avro" }, "x", 415, /avro/],
      ["oversized", { ...BINARY }, "x".repeat(5000), 413, /max_body/],
      ["invalid UTF-8 escape", { ...BINARY, "ce-subject": "%C0%A0" }, "{}", 400, /UTF-8/i],
      ["batch with a bad entry", { "content-type": "application/cloudevents-batch+json" }, '[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"id":"2"}]', 400, /\[1\]/],
      ["too deep", { "content-type": "application/cloudevents+json" }, "[".repeat(100) + "]".repeat(100), 413, /depth|deep/i],
    ];
    for (const [name, headers, body, status, pattern] of cases) {
      const res = await post(p.http, headers, body);
      const text = await res.text();
      assert.equal(res.status, status, `${name}: ${text}`);
      const json = JSON.parse(text) as { error: string; message: string };
      assert.match(json.message, pattern, name);
      assert.match(json.error, /^CEB_/);
    }
    const health = await fetch(`http://127.0.0.1:${p.admin}/healthz`);
    assert.equal(health.status, 200);
    assert.equal((await post(p.http, { ...BINARY, "ce-id": "after-bad" }, "{}")).status, 204);
  });

  test("OPTIONS abuse-protection handshake grants the origin", async () => {
    const res = await fetch(`http://127.0.0.1:${p.http}/`, { method: "OPTIONS", headers: { "webhook-request-origin": "eventgrid.azure.net", "webhook-request-rate": "120" } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("webhook-allowed-origin"), "eventgrid.azure.net");
    assert.equal(res.headers.get("webhook-allowed-rate"), "*");
  });

  test("OPTIONS handshake: a rate is always answered, and origins compare case-insensitively", async () => {
    const noRate = await fetch(`http://127.0.0.1:${p.http}/`, { method: "OPTIONS", headers: { "webhook-request-origin": "good.example.com" } });
    assert.equal(noRate.status, 200);
    assert.equal(noRate.headers.get("webhook-allowed-origin"), "good.example.com");
    assert.equal(noRate.headers.get("webhook-allowed-rate"), "*");
    const upper = await fetch(`http://127.0.0.1:${p.http}/`, { method: "OPTIONS", headers: { "webhook-request-origin": "EventGrid.Azure.NET" } });
    assert.equal(upper.status, 200);
    const other = await fetch(`http://127.0.0.1:${p.http}/`, { method: "OPTIONS", headers: { "webhook-request-origin": "evil.example.com" } });
    assert.equal(other.status, 403);
  });

  test("a client that keeps writing a 4 MiB body reads the 413, with Content-Length or chunked", async () => {
    const big = Buffer.alloc(4 * 1024 * 1024, 0x61);
    for (const chunked of [false, true]) {
      const answer = await new Promise<{ status: number; body: string; error?: string }>((resolve) => {
        const out: { status: number; body: string; error?: string } = { status: 0, body: "" };
        const req = httpRequest(
          { host: "127.0.0.1", port: p.http, path: "/", method: "POST", headers: { ...BINARY, ...(chunked ? { "transfer-encoding": "chunked" } : { "content-length": String(big.length) }) } },
          (res) => {
            out.status = res.statusCode ?? 0;
            res.setEncoding("utf8");
            res.on("data", (c: string) => (out.body += c));
          },
        );
        // EPIPE or ECONNRESET here means the server closed on unread data: the defect this guards.
        req.on("error", (err: NodeJS.ErrnoException) => (out.error = err.code ?? err.message));
        req.on("close", () => resolve(out));
        // Written in pieces, as a client streaming a file would.
        for (let i = 0; i < big.length; i += 64 * 1024) req.write(big.subarray(i, i + 64 * 1024));
        req.end();
      });
      assert.equal(answer.error, undefined, `chunked=${chunked}: the client saw ${answer.error}`);
      assert.equal(answer.status, 413, `chunked=${chunked}`);
      assert.match(answer.body, /max_body/);
    }
    assert.equal((await post(p.http, { ...BINARY, "ce-id": "after-413" }, "{}")).status, 204);
  });

  test("admin serves metrics and status", async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${p.admin}/metrics`)).text();
    assert.match(metrics, /cebridge_events_received_total\{route="r",source="in"\} \d+/);
    assert.match(metrics, /cebridge_connector_up\{component="source:in"\} 1/);
    const status = (await (await fetch(`http://127.0.0.1:${p.admin}/status`)).json()) as { routes: { name: string; counters: { delivered: number } }[] };
    assert.equal(status.routes[0]!.name, "r");
    assert.ok(status.routes[0]!.counters.delivered > 0);
  });
});

describe("http e2e - sink modes, retries and dead letters", () => {
  test("HTTP sink sends binary, structured and batch mode", async () => {
    for (const mode of ["binary", "structured", "batch"] as const) {
      const rx = await receiver(() => 200);
      const p = await ports();
      const d = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${p.admin}" }, log: { level: warn } }
sources: { in: { type: http, listen: "127.0.0.1:${p.http}" } }
sinks: { out: { type: http, url: "${rx.url}", mode: ${mode}, batch: { max_events: 10, linger: 50ms } } }
routes: [ { name: r, from: in, to: [out], loop_prevention: false } ]
`);
      try {
        await d.waitReady(`127.0.0.1:${p.admin}`);
        const sent = await Promise.all([1, 2, 3].map((i) => post(p.http, { ...BINARY, "ce-id": `m-${i}` }, `{"i":${i}}`)));
        assert.deepEqual(sent.map((r) => r.status), [204, 204, 204]);
        if (mode === "binary") {
          assert.equal(rx.got.length, 3);
          const h = rx.got.find((g) => g.headers["ce-id"] === "m-1")!;
          assert.equal(h.headers["ce-subject"], "Euro%20%E2%82%AC%20%F0%9F%98%80");
          assert.equal(h.headers["ce-source"], "https://example.com/orders");
          assert.equal(h.headers["ce-myext"], "100%25");
          assert.equal(h.headers["content-type"], "application/json");
          assert.equal(h.headers["ce-datacontenttype"], undefined);
          assert.equal(h.body.toString(), '{"i":1}');
        } else if (mode === "structured") {
          assert.equal(rx.got.length, 3);
          const g = rx.got.map((x) => JSON.parse(x.body.toString())).find((e) => e.id === "m-2");
          assert.equal(rx.got[0]!.headers["content-type"], "application/cloudevents+json; charset=utf-8");
          assert.equal(g.subject, "Euro € 😀");
          assert.deepEqual(g.data, { i: 2 });
        } else {
          const events = rx.got.flatMap((x) => JSON.parse(x.body.toString()) as { id: string }[]);
          assert.ok(rx.got.length < 3, `expected batching, got ${rx.got.length} requests`);
          assert.deepEqual(events.map((e) => e.id).sort(), ["m-1", "m-2", "m-3"]);
          assert.match(String(rx.got[0]!.headers["content-type"]), /^application\/cloudevents-batch\+json/);
        }
      } finally {
        assert.equal(await d.stop(), 0);
        await rx.close();
      }
    }
  });

  test("a receiver failing transiently is retried until it succeeds, with no loss", async () => {
    const rx = await receiver((n) => (n % 3 === 0 ? 200 : 503));
    const p = await ports();
    const d = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${p.admin}" }, log: { level: error } }
sources: { in: { type: http, listen: "127.0.0.1:${p.http}" } }
sinks: { out: { type: http, url: "${rx.url}" } }
routes: [ { name: r, from: in, to: [out], retry: { initial: 5ms, max: 20ms, max_elapsed: 20s } } ]
`);
    try {
      await d.waitReady(`127.0.0.1:${p.admin}`);
      const res = await Promise.all(Array.from({ length: 20 }, (_, i) => post(p.http, { ...BINARY, "ce-id": `t-${i}` }, "{}")));
      assert.ok(res.every((r) => r.status === 204));
      const ids = new Set(rx.got.map((g) => g.headers["ce-id"]));
      assert.equal(ids.size, 20);
      const metrics = await (await fetch(`http://127.0.0.1:${p.admin}/metrics`)).text();
      assert.match(metrics, /cebridge_retries_total\{route="r",sink="out"\} [1-9]/);
    } finally {
      await d.stop();
      await rx.close();
    }
  });

  test("a receiver answering 400 sends the event to the dead-letter file with its reason", async () => {
    const rx = await receiver(() => 400);
    const p = await ports();
    const dir = mkdtempSync(join(tmpdir(), "cebridge-dl-"));
    const dl = join(dir, "dead.jsonl");
    const d = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${p.admin}" }, log: { level: error }, instance_id: dltest }
sources: { in: { type: http, listen: "127.0.0.1:${p.http}" } }
sinks:
  out: { type: http, url: "${rx.url}" }
  dlq: { type: file, path: "${dl}" }
routes: [ { name: r, from: in, to: [out], dead_letter: dlq } ]
`);
    try {
      await d.waitReady(`127.0.0.1:${p.admin}`);
      const res = await post(p.http, { ...BINARY, "ce-id": "dead-1" }, '{"x":1}');
      assert.equal(res.status, 204);
      assert.ok(existsSync(dl));
      const line = JSON.parse(readFileSync(dl, "utf8").trim());
      assert.equal(line.id, "dead-1");
      assert.equal(line.subject, "Euro € 😀");
      assert.deepEqual(line.data, { x: 1 });
      assert.equal(line.cebridgeerror, "CEB_SINK_PERMANENT");
      assert.match(line.cebridgereason, /answered 400: nope: bad thing/);
      assert.equal(line.cebridgeroute, "r");
      assert.equal(line.cebridgesink, "out");
      assert.equal(line.cebridgeattempts, 1);
      assert.equal(line.cebridgevia, undefined, "dead letters carry the original event, without loop markers");
    } finally {
      await d.stop();
      await rx.close();
    }
  });

  test("a full window answers 429 with Retry-After", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const rx = await receiver(async () => {
      await gate;
      return 200;
    });
    const p = await ports();
    const d = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${p.admin}" }, log: { level: error } }
sources: { in: { type: http, listen: "127.0.0.1:${p.http}", retry_after: 2s } }
sinks: { out: { type: http, url: "${rx.url}" } }
routes: [ { name: r, from: in, to: [out], max_in_flight: 2 } ]
`);
    try {
      await d.waitReady(`127.0.0.1:${p.admin}`);
      const first = [post(p.http, { ...BINARY, "ce-id": "w-1" }, "{}"), post(p.http, { ...BINARY, "ce-id": "w-2" }, "{}")];
      await sleep(200);
      const third = await post(p.http, { ...BINARY, "ce-id": "w-3" }, "{}");
      assert.equal(third.status, 429);
      assert.equal(third.headers.get("retry-after"), "2");
      const tooBig = await post(p.http, { "content-type": "application/cloudevents-batch+json" }, JSON.stringify([1, 2, 3].map((i) => ({ specversion: "1.0", id: `x${i}`, source: "/s", type: "t" }))));
      assert.equal(tooBig.status, 413);
      release();
      assert.deepEqual((await Promise.all(first)).map((r) => r.status), [204, 204]);
    } finally {
      release();
      await d.stop();
      await rx.close();
    }
  });

  test("SIGTERM mid-stream loses no acknowledged event", async () => {
    const rx = await receiver(async () => {
      await sleep(30);
      return 200;
    });
    const p = await ports();
    const d = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${p.admin}" }, log: { level: error }, shutdown_timeout: 10s }
sources: { in: { type: http, listen: "127.0.0.1:${p.http}" } }
sinks: { out: { type: http, url: "${rx.url}" } }
routes: [ { name: r, from: in, to: [out], max_in_flight: 1000 } ]
`);
    await d.waitReady(`127.0.0.1:${p.admin}`);
    const acked: string[] = [];
    const refused: number[] = [];
    const sends = Array.from({ length: 200 }, async (_, i) => {
      await sleep(i * 2);
      try {
        const r = await post(p.http, { ...BINARY, "ce-id": `g-${i}` }, "{}");
        if (r.status === 204) acked.push(`g-${i}`);
        else refused.push(r.status);
      } catch {
        refused.push(0); // connection refused after the listener closed: the sender keeps the event
      }
    });
    await sleep(150);
    d.proc.kill("SIGTERM");
    await Promise.all(sends);
    assert.equal(await d.exited, 0);
    const received = new Set(rx.got.map((g) => g.headers["ce-id"] as string));
    const lost = acked.filter((id) => !received.has(id));
    assert.deepEqual(lost, [], "every event answered 2xx reached the receiver");
    assert.ok(acked.length > 0, "some events were delivered before the stop");
    assert.ok(refused.every((s) => s === 0 || s === 503), `refusals are 503 or connection errors: ${refused}`);
    await rx.close();
  });
});
