/**
 * The JetStream wire pieces the connectors do themselves instead of nats.js: the ack subject parse
 * (source) and the PubAck pipeline (sink), against a fake connection.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { JetStreamApiError } from "@nats-io/jetstream";
import { errors as natsErrors, headers as natsHeaders, type Msg, type NatsConnection } from "@nats-io/nats-core";
import { parseAckSubject } from "../../../connectors/nats/ack-subject.js";
import { JetStreamPublisher, pubAckError } from "../../../connectors/nats/jetstream-publisher.js";
import { classifyPublishError } from "../../../connectors/nats/jetstream-sink.js";

describe("parseAckSubject", () => {
  it("reads the old 9-token form", () => {
    assert.deepEqual(parseAckSubject("$JS.ACK.ORDERS.c1.3.42.40.1700000000123456789.7"), {
      stream: "ORDERS",
      deliveryCount: 3,
      streamSequence: 42,
      timestampNanos: 1700000000123456789n,
    });
  });
  it("reads the domain/account form, with and without the trailing token", () => {
    const want = { stream: "S", deliveryCount: 1, streamSequence: 9, timestampNanos: 1700000000000000001n };
    assert.deepEqual(parseAckSubject("$JS.ACK._.ACC.S.c.1.9.9.1700000000000000001.0"), want);
    assert.deepEqual(parseAckSubject("$JS.ACK.hub.ACC.S.c.1.9.9.1700000000000000001.0.xyz"), want);
  });
  it("refuses anything else", () => {
    for (const s of ["", "_INBOX.x.y", "$JS.ACK.S.c.1.2", "$JS.ACK.S.c.x.2.3.4.5", "$JS.ACK.S.c.1.2.3.t.5", "$JS.API.S.c.1.2.3.4.5"]) {
      assert.equal(parseAckSubject(s), undefined, s);
    }
  });
});

function msg(subject: string, body: string, status?: number): Msg {
  const h = status !== undefined ? natsHeaders(status, status === 503 ? "No Responders" : "") : undefined;
  return { subject, data: new TextEncoder().encode(body), headers: h } as unknown as Msg;
}

describe("pubAckError", () => {
  it("a PubAck (also a duplicate, and a stream named error) is success", () => {
    assert.equal(pubAckError(msg("r", '{"stream":"S","seq":5}')), undefined);
    assert.equal(pubAckError(msg("r", '{"stream":"S","seq":5,"duplicate":true}')), undefined);
    assert.equal(pubAckError(msg("r", '{"stream":"error","seq":5}')), undefined);
  });
  it("an API error keeps its status and code, and classifies as before", () => {
    const e = pubAckError(msg("r", '{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}'));
    assert.ok(e instanceof JetStreamApiError);
    assert.equal(e.status, 400);
    assert.equal(e.code, 10060);
    assert.equal(classifyPublishError(e, "s").retryable, false);
    const busy = pubAckError(msg("r", '{"error":{"code":503,"err_code":10008,"description":"JetStream system temporarily unavailable"}}'));
    assert.equal(classifyPublishError(busy, "s").retryable, true);
  });
  it("no responders is a NoRespondersError, transient", () => {
    const e = pubAckError(msg("r", "", 503));
    assert.ok(e instanceof natsErrors.NoRespondersError);
    assert.equal(classifyPublishError(e, "s").retryable, true);
  });
});

/**
 * Just enough of a NatsConnection for the publisher. `write` numbers the socket write a publish would
 * leave in: like nats.js, everything published before the microtask that follows the first publish.
 */
function fakeConnection() {
  const sent: { subject: string; reply: string; write: number }[] = [];
  let writes = 0;
  let flushing = false;
  let deliver: ((err: Error | null, m: Msg) => void) | undefined;
  let closeWith: (err?: Error) => void = () => {};
  const closed = new Promise<void | Error>((res) => (closeWith = res));
  const nc = {
    subscribe: (_subject: string, opts: { callback: (err: Error | null, m: Msg) => void }) => {
      deliver = opts.callback;
      return { unsubscribe: () => {} };
    },
    publish: (subject: string, _data: Uint8Array, opts: { reply: string }) => {
      sent.push({ subject, reply: opts.reply, write: writes });
      if (!flushing) {
        flushing = true;
        queueMicrotask(() => {
          writes++;
          flushing = false;
        });
      }
    },
    closed: () => closed,
  } as unknown as NatsConnection;
  return { nc, sent, answer: (reply: string, body: string, status?: number) => deliver!(null, msg(reply, body, status)), close: (err?: Error) => closeWith(err) };
}

const turn = () => new Promise((r) => setImmediate(r));

describe("JetStreamPublisher", () => {
  it("hands the publishes of one turn to the connection together, in order, and matches PubAcks by reply token, in any order", async () => {
    const c = fakeConnection();
    const pub = new JetStreamPublisher(c.nc);
    const results: string[] = [];
    const a = pub.publish("s.a", new Uint8Array(1), natsHeaders()).then(() => results.push("a"));
    const b = pub.publish("s.b", new Uint8Array(1), natsHeaders()).then(() => results.push("b"));
    assert.equal(c.sent.length, 0, "held until the end of the turn");
    assert.equal(pub.pending, 2);
    await turn();
    assert.deepEqual(c.sent.map((x) => x.subject), ["s.a", "s.b"]);
    assert.notEqual(c.sent[0]!.reply, c.sent[1]!.reply);
    c.answer(c.sent[1]!.reply, '{"stream":"S","seq":2}');
    c.answer(c.sent[0]!.reply, '{"stream":"S","seq":1}');
    c.answer(c.sent[0]!.reply, '{"stream":"S","seq":1}'); // a stray second answer is ignored
    await Promise.all([a, b]);
    assert.deepEqual(results, ["b", "a"]);
    assert.equal(pub.pending, 0);
    pub.close();
  });

  it("publishes from separate callbacks of one turn leave in one socket write", async () => {
    const c = fakeConnection();
    const pub = new JetStreamPublisher(c.nc);
    // Two timers due together run in one timers phase, each followed by its own microtasks, like
    // two HTTP requests read in one poll phase.
    await new Promise<void>((resolve) => {
      setTimeout(() => void pub.publish("s.1", new Uint8Array(1), natsHeaders()).catch(() => {}), 0);
      setTimeout(() => void pub.publish("s.2", new Uint8Array(1), natsHeaders()).catch(() => {}), 0);
      setTimeout(() => setImmediate(resolve), 0);
    });
    assert.equal(c.sent.length, 2);
    assert.equal(c.sent[0]!.write, c.sent[1]!.write);
    pub.close();
  });

  it("a publish whose signal aborts before its turn is never sent", async () => {
    const c = fakeConnection();
    const pub = new JetStreamPublisher(c.nc);
    const ac = new AbortController();
    const p = pub.publish("s.gone", new Uint8Array(1), natsHeaders(), ac.signal, () => new Error("deadline"));
    const q = pub.publish("s.kept", new Uint8Array(1), natsHeaders());
    ac.abort();
    await assert.rejects(p, /deadline/);
    await turn();
    assert.deepEqual(c.sent.map((x) => x.subject), ["s.kept"]);
    c.answer(c.sent[0]!.reply, '{"stream":"S","seq":1}');
    await q;
    assert.equal(pub.pending, 0);
    pub.close();
  });

  it("times out a publish without an answer", async () => {
    const c = fakeConnection();
    const pub = new JetStreamPublisher(c.nc, { timeoutMs: 40 });
    // The sweep timer is unref'd (a real connection's socket keeps the process up): hold it here.
    const keep = setTimeout(() => {}, 5_000);
    await assert.rejects(pub.publish("s", new Uint8Array(1), natsHeaders()), natsErrors.TimeoutError);
    clearTimeout(keep);
    assert.equal(pub.pending, 0);
    pub.close();
  });

  it("rejects with the abort error when the write's signal aborts, and ignores a late PubAck", async () => {
    const c = fakeConnection();
    const pub = new JetStreamPublisher(c.nc);
    const ac = new AbortController();
    const p = pub.publish("s", new Uint8Array(1), natsHeaders(), ac.signal, () => new Error("deadline"));
    await turn();
    ac.abort();
    await assert.rejects(p, /deadline/);
    c.answer(c.sent[0]!.reply, '{"stream":"S","seq":1}');
    assert.equal(pub.pending, 0);
    pub.close();
  });

  it("rejects what is pending when the connection closes, and refuses new publishes", async () => {
    const c = fakeConnection();
    const pub = new JetStreamPublisher(c.nc);
    const queued = pub.publish("s", new Uint8Array(1), natsHeaders());
    c.close();
    await assert.rejects(queued);
    await assert.rejects(pub.publish("s", new Uint8Array(1), natsHeaders()), natsErrors.ClosedConnectionError);
  });
});
