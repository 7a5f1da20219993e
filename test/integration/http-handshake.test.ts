/**
 * The HTTP sink's side of the webhook abuse-protection handshake, against a real loopback server:
 * the OPTIONS comes before the first POST and carries the origin (and the rate asked for); a
 * refusal fails `open` with CEB_HANDSHAKE; 5xx is asked again; the granted rate spaces requests;
 * every delivery names the origin; 410 is CEB_SINK_GONE. Plus the pure judgement as a table.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, describe, it, test } from "node:test";
import { httpSink } from "../../connectors/http/definition.js";
import { judgeHandshake } from "../../connectors/http/handshake.js";
import { BridgeError } from "../../src/core/errors.js";
import { loadSink } from "../support/component.js";
import { testContext } from "../support/context.js";
import { sampleEvents } from "../support/events.js";

interface Seen {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly at: number;
}

/** A receiver whose answer to OPTIONS is set per test; POSTs answer `postStatus`. */
class Receiver {
  seen: Seen[] = [];
  answer: (h: IncomingHttpHeaders) => { status: number; headers: Record<string, string> } = () => ({ status: 200, headers: {} });
  postStatus = 204;
  private server: Server | undefined;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      this.seen.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, at: Date.now() });
      req.resume();
      req.on("end", () => {
        if (req.method === "OPTIONS") {
          const a = this.answer(req.headers);
          res.writeHead(a.status, a.headers).end();
        } else res.writeHead(this.postStatus).end();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    const addr = this.server.address() as { port: number };
    this.url = `http://127.0.0.1:${addr.port}/hook?x=1`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server?.closeAllConnections();
      this.server?.close(() => resolve());
    });
  }
}

describe("http sink - webhook handshake", () => {
  const rx = new Receiver();
  before(() => rx.start());
  after(() => rx.close());

  it("asks with OPTIONS to the exact URL before the first POST, and names the origin on every delivery", async () => {
    rx.seen = [];
    rx.answer = (h) => ({ status: 200, headers: { "webhook-allowed-origin": String(h["webhook-request-origin"]), "webhook-allowed-rate": "*" } });
    const ctx = testContext();
    const sink = await loadSink(httpSink, { url: rx.url, handshake: { origin: "bridge.example.com", rate: 120 } }, ctx);
    await sink.open();
    assert.equal(ctx.isUp, true);
    for (const e of sampleEvents(3, "hs")) await sink.write(e, new AbortController().signal);
    await sink.close();
    assert.deepEqual(
      rx.seen.map((s) => `${s.method} ${s.path}`),
      ["OPTIONS /hook?x=1", "POST /hook?x=1", "POST /hook?x=1", "POST /hook?x=1"],
    );
    assert.equal(rx.seen[0]!.headers["webhook-request-origin"], "bridge.example.com");
    assert.equal(rx.seen[0]!.headers["webhook-request-rate"], "120");
    for (const s of rx.seen.slice(1)) assert.equal(s.headers["webhook-request-origin"], "bridge.example.com");
  });

  it("defaults the origin to the instance id", async () => {
    rx.seen = [];
    rx.answer = () => ({ status: 200, headers: { "webhook-allowed-origin": "*" } });
    const sink = await loadSink(httpSink, { url: rx.url, handshake: {} }, testContext("hs", "replica-7"));
    await sink.open();
    await sink.close();
    assert.equal(rx.seen[0]!.headers["webhook-request-origin"], "replica-7");
    assert.equal(rx.seen[0]!.headers["webhook-request-rate"], undefined);
  });

  it("a target that does not grant our origin fails open with CEB_HANDSHAKE and gets no POST", async () => {
    rx.seen = [];
    rx.answer = () => ({ status: 200, headers: { "webhook-allowed-origin": "someone-else.example.com" } });
    const ctx = testContext();
    const sink = await loadSink(httpSink, { url: rx.url, handshake: { origin: "bridge.example.com" } }, ctx);
    await assert.rejects(sink.open(), (err: BridgeError) => err.code === "CEB_HANDSHAKE" && /someone-else/.test(err.message) && !err.retryable);
    await assert.rejects(sink.write(sampleEvents(1, "no")[0]!, new AbortController().signal), (err: BridgeError) => err.code === "CEB_HANDSHAKE");
    await sink.close();
    assert.deepEqual(rx.seen.map((s) => s.method), ["OPTIONS"]);
    assert.equal(ctx.isUp, false);
  });

  it("a 200 without WebHook-Allowed-Origin is no consent; a 405 neither", async () => {
    for (const status of [200, 405]) {
      rx.answer = () => ({ status, headers: {} });
      const sink = await loadSink(httpSink, { url: rx.url, handshake: {} }, testContext());
      await assert.rejects(sink.open(), (err: BridgeError) => err.code === "CEB_HANDSHAKE" && err.message.includes(String(status)));
      await sink.close();
    }
  });

  it("503 is asked again until the target grants", async () => {
    rx.seen = [];
    let n = 0;
    rx.answer = () => (++n < 2 ? { status: 503, headers: {} as Record<string, string> } : { status: 200, headers: { "webhook-allowed-origin": "*" } });
    const sink = await loadSink(httpSink, { url: rx.url, handshake: {} }, testContext());
    await sink.open();
    await sink.close();
    assert.deepEqual(rx.seen.map((s) => s.method), ["OPTIONS", "OPTIONS"]);
  });

  it("close ends a handshake that keeps failing", async () => {
    rx.answer = () => ({ status: 503, headers: {} });
    const sink = await loadSink(httpSink, { url: rx.url, handshake: {} }, testContext());
    const opening = sink.open();
    await new Promise((r) => setTimeout(r, 50));
    await sink.close();
    await assert.rejects(opening);
  });

  it("honours WebHook-Allowed-Rate: 120 per minute spaces requests at least 500 ms apart", async () => {
    rx.seen = [];
    rx.answer = () => ({ status: 200, headers: { "webhook-allowed-origin": "*", "webhook-allowed-rate": "120" } });
    const sink = await loadSink(httpSink, { url: rx.url, handshake: {} }, testContext());
    await sink.open();
    // Written concurrently: the spacing comes from the sink, not from the caller.
    await Promise.all(sampleEvents(4, "rate").map((e) => sink.write(e, new AbortController().signal)));
    await sink.close();
    const posts = rx.seen.filter((s) => s.method === "POST").map((s) => s.at);
    assert.equal(posts.length, 4);
    for (let i = 1; i < posts.length; i++) assert.ok(posts[i]! - posts[i - 1]! >= 490, `gap ${i}: ${posts[i]! - posts[i - 1]!} ms`);
  });

  it("a write that waits past its deadline for its turn fails transiently", async () => {
    rx.answer = () => ({ status: 200, headers: { "webhook-allowed-origin": "*", "webhook-allowed-rate": "1" } });
    const sink = await loadSink(httpSink, { url: rx.url, handshake: {} }, testContext());
    await sink.open();
    await sink.write(sampleEvents(1, "first")[0]!, new AbortController().signal);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("deadline")), 100);
    await assert.rejects(sink.write(sampleEvents(1, "second")[0]!, ac.signal), (err: BridgeError) => err.retryable && err.code === "CEB_SINK_TIMEOUT");
    await sink.close();
  });

  it("410 Gone is permanent with its own code", async () => {
    rx.postStatus = 410;
    const sink = await loadSink(httpSink, { url: rx.url }, testContext());
    await sink.open();
    await assert.rejects(sink.write(sampleEvents(1, "gone")[0]!, new AbortController().signal), (err: BridgeError) => err.code === "CEB_SINK_GONE" && !err.retryable);
    await sink.close();
    rx.postStatus = 204;
  });
});

test("judgeHandshake - fixture table", () => {
  const o = "bridge.example.com";
  const rows: { answer: [number, string | undefined, string | undefined]; rate?: number; want: number | undefined | "refused" | "transient" }[] = [
    { answer: [200, o, "*"], want: undefined },
    { answer: [200, "*", undefined], want: undefined },
    { answer: [200, "BRIDGE.example.COM", "60"], want: 60 },
    { answer: [204, o, " 30 "], want: 30 },
    // A rate asked for and none answered: keep to what we asked.
    { answer: [200, o, undefined], rate: 10, want: 10 },
    { answer: [200, o, "*"], rate: 10, want: undefined },
    { answer: [200, undefined, "*"], want: "refused" },
    { answer: [200, "", undefined], want: "refused" },
    { answer: [200, "other.example.com", "*"], want: "refused" },
    { answer: [200, o, "0"], want: "refused" },
    { answer: [200, o, "fast"], want: "refused" },
    { answer: [200, o, "-1"], want: "refused" },
    { answer: [403, undefined, undefined], want: "refused" },
    { answer: [404, o, "*"], want: undefined },
    { answer: [500, o, "*"], want: "transient" },
    { answer: [503, undefined, undefined], want: "transient" },
    { answer: [429, undefined, undefined], want: "transient" },
    { answer: [408, undefined, undefined], want: "transient" },
  ];
  for (const row of rows) {
    const [status, allowedOrigin, allowedRate] = row.answer;
    const label = JSON.stringify(row);
    try {
      const grant = judgeHandshake({ status, allowedOrigin, allowedRate }, o, row.rate);
      assert.equal(grant.ratePerMinute, row.want, label);
    } catch (err) {
      const e = err as BridgeError;
      assert.equal(e.retryable ? "transient" : "refused", row.want, `${label}: ${e.message}`);
      if (!e.retryable) assert.equal(e.code, "CEB_HANDSHAKE", label);
    }
  }
});
