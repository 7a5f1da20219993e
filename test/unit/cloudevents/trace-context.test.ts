/**
 * Fixture tables for the distributed-tracing extension, W3C trace context parsing, the
 * "bridge's own hop" rule and every transport's native trace field.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  eventTraceContext,
  hopParent,
  ownHop,
  parseTraceparent,
  traceContextOf,
  validTracestate,
  withTraceExtension,
  type CloudEvent,
} from "../../../src/cloudevents/index.js";
import {
  PUBSUB_TRACE_ATTRIBUTES,
  toXRay,
  traceApplicationProperties,
  traceAttributes,
  traceFromAmqp,
  traceFromAttributes,
  traceFromHeaders,
  traceFromUserProperties,
  traceFromXRay,
  traceHeaders,
  traceparentFromBinary,
  traceUserProperties,
} from "../../../src/cloudevents/trace-fields.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const TP = `00-${TRACE}-${SPAN}-01`;
const CLIENT = { traceparent: TP, tracestate: "congo=t61rcWkgMzE" };

describe("traceparent parsing (W3C Trace Context level 1)", () => {
  const cases: [name: string, value: string, ok: boolean][] = [
    ["version 00, sampled", TP, true],
    ["not sampled", `00-${TRACE}-${SPAN}-00`, true],
    ["surrounding whitespace is trimmed", ` ${TP} `, true],
    ["a future version may append fields after a dash", `cc-${TRACE}-${SPAN}-01-what-the-future-holds`, true],
    ["a future version of exactly 55 characters", `cc-${TRACE}-${SPAN}-01`, true],
    ["version 00 must be exactly 55 characters", `${TP}-extra`, false],
    ["a future version with trailing junk not after a dash", `cc-${TRACE}-${SPAN}-01x`, false],
    ["version ff is invalid", `ff-${TRACE}-${SPAN}-01`, false],
    ["upper-case hex is invalid", `00-${TRACE.toUpperCase()}-${SPAN}-01`, false],
    ["all-zero trace id", `00-${"0".repeat(32)}-${SPAN}-01`, false],
    ["all-zero parent id", `00-${TRACE}-${"0".repeat(16)}-01`, false],
    ["short trace id", `00-${TRACE.slice(1)}-${SPAN}-01`, false],
    ["wrong separator", `00_${TRACE}-${SPAN}-01`, false],
    ["non-hex flags", `00-${TRACE}-${SPAN}-0g`, false],
    ["empty", "", false],
  ];
  for (const [name, value, ok] of cases) {
    it(name, () => assert.equal(parseTraceparent(value) !== undefined, ok));
  }
  it("gives the fields", () => {
    assert.deepEqual(parseTraceparent(TP), { version: "00", traceId: TRACE, spanId: SPAN, flags: 1 });
  });
});

describe("tracestate", () => {
  const cases: [string, boolean][] = [
    ["congo=t61rcWkgMzE", true],
    ["rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true],
    ["rojo=1, congo=2 ,", true],
    ["a@b=c", true],
    ["novalue", false],
    ["=value", false],
    ["key=", false],
    ["k=caf\u00e9", false],
    ["k=v\n", false],
    [Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(","), false],
    [`k=${"x".repeat(511)}`, false],
  ];
  for (const [value, ok] of cases) it(`${JSON.stringify(value).slice(0, 40)} → ${ok}`, () => assert.equal(validTracestate(value), ok));

  it("an invalid tracestate is dropped, the traceparent kept; an invalid traceparent drops both", () => {
    assert.deepEqual(traceContextOf(TP, "bad"), { traceparent: TP });
    assert.deepEqual(traceContextOf(TP, "  "), { traceparent: TP });
    assert.deepEqual(traceContextOf(TP, "a=1"), { traceparent: TP, tracestate: "a=1" });
    assert.equal(traceContextOf("00-bad", "a=1"), undefined);
    assert.equal(traceContextOf(undefined, "a=1"), undefined);
  });
});

function ev(extra: Record<string, string> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id: "1", source: "/s", type: "t", ...extra }, data: { kind: "json", value: { a: 1 } } };
}

describe("the extension and the bridge's own hop (DESIGN §7)", () => {
  it("reads the extension only when valid", () => {
    assert.deepEqual(eventTraceContext(ev({ traceparent: TP, tracestate: "a=1" })), { traceparent: TP, tracestate: "a=1" });
    assert.equal(eventTraceContext(ev({ traceparent: "garbage" })), undefined);
    assert.equal(eventTraceContext(ev()), undefined);
  });

  it("adds the extension from the transport context only when the event has none", () => {
    const added = withTraceExtension(ev(), CLIENT);
    assert.equal(added.attributes["traceparent"], TP);
    assert.equal(added.attributes["tracestate"], CLIENT.tracestate);
    assert.deepEqual(added.data, ev().data);
    const own = ev({ traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-00` });
    assert.equal(withTraceExtension(own, CLIENT), own, "an existing extension is never replaced");
    // Not even a garbage one: the extension passes through unchanged, whatever it holds.
    const garbage = ev({ traceparent: "garbage" });
    assert.equal(withTraceExtension(garbage, CLIENT), garbage);
    const plain = ev();
    assert.equal(withTraceExtension(plain, undefined), plain);
  });

  it("a tracestate without traceparent on the event is left alone", () => {
    const e = withTraceExtension(ev({ tracestate: "mine=1" }), CLIENT);
    assert.equal(e.attributes["traceparent"], TP);
    assert.equal(e.attributes["tracestate"], "mine=1");
  });

  it("the hop's parent is the transport context, else the extension, else none", () => {
    const upstream = { traceparent: `00-${TRACE}-${"a".repeat(16)}-01` };
    assert.deepEqual(hopParent(upstream, ev({ traceparent: TP })), upstream);
    assert.deepEqual(hopParent(undefined, ev({ traceparent: TP })), { traceparent: TP });
    assert.equal(hopParent(undefined, ev()), undefined);
  });

  it("the bridge's own hop keeps the trace, flags and tracestate, with its own span id", () => {
    assert.deepEqual(ownHop(CLIENT, { traceId: TRACE, spanId: "b".repeat(16), traceFlags: 1 }), {
      traceparent: `00-${TRACE}-${"b".repeat(16)}-01`,
      tracestate: CLIENT.tracestate,
    });
    assert.deepEqual(ownHop(undefined, { traceId: "c".repeat(32), spanId: "d".repeat(16), traceFlags: 0 }), {
      traceparent: `00-${"c".repeat(32)}-${"d".repeat(16)}-00`,
    });
  });
});

describe("native trace fields", () => {
  it("HTTP and NATS headers", () => {
    const h: Record<string, string> = { traceparent: TP, tracestate: "a=1" };
    assert.deepEqual(traceFromHeaders((n) => h[n]), { traceparent: TP, tracestate: "a=1" });
    assert.equal(traceFromHeaders(() => undefined), undefined);
    assert.deepEqual(traceHeaders({ traceparent: TP, tracestate: "a=1" }), [["traceparent", TP], ["tracestate", "a=1"]]);
    assert.deepEqual(traceHeaders({ traceparent: TP }), [["traceparent", TP]]);
  });

  it("MQTT 5 user properties: a repeated traceparent is ignored", () => {
    assert.deepEqual(traceFromUserProperties({ traceparent: TP, tracestate: "a=1", other: "x" }), { traceparent: TP, tracestate: "a=1" });
    assert.equal(traceFromUserProperties({ traceparent: [TP, TP] }), undefined);
    assert.equal(traceFromUserProperties({ TraceParent: TP }), undefined, "user property names are case-sensitive");
    assert.equal(traceFromUserProperties(undefined), undefined);
    assert.deepEqual(traceUserProperties({ traceparent: TP }), { traceparent: TP });
  });

  it("Pub/Sub attributes use the client library's googclient_ names", () => {
    const attrs = traceAttributes(CLIENT, PUBSUB_TRACE_ATTRIBUTES);
    assert.deepEqual(attrs, { googclient_traceparent: TP, googclient_tracestate: CLIENT.tracestate });
    assert.deepEqual(traceFromAttributes({ ...attrs, "ce-traceparent": "other" }, PUBSUB_TRACE_ATTRIBUTES), CLIENT);
    assert.equal(traceFromAttributes({ traceparent: TP }, PUBSUB_TRACE_ATTRIBUTES), undefined);
  });

  describe("X-Ray (SQS AWSTraceHeader, EventBridge TraceHeader)", () => {
    it("writes Root/Parent/Sampled from the W3C ids and drops tracestate", () => {
      assert.equal(toXRay(CLIENT), "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1");
      assert.equal(toXRay({ traceparent: `00-${TRACE}-${SPAN}-00` }), "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0");
    });
    const cases: [string, string | undefined][] = [
      ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1", TP],
      ["Sampled=1;Parent=00f067aa0ba902b7;Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Lineage=a87bd80c:1|68fd508a:5", TP],
      ["root=1-4BF92F35-77B34DA6A3CE929D0E0E4736; parent=00F067AA0BA902B7; sampled=1", TP],
      ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=?", `00-${TRACE}-${SPAN}-00`],
      ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7", `00-${TRACE}-${SPAN}-00`],
      ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Sampled=1", undefined],
      ["Root=2-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7", undefined],
      ["Root=1-4bf92f35-77b34da6;Parent=00f067aa0ba902b7", undefined],
      ["Root=1-00000000-000000000000000000000000;Parent=00f067aa0ba902b7", undefined],
      ["", undefined],
    ];
    for (const [header, tp] of cases) {
      it(`reads ${JSON.stringify(header).slice(0, 60)}`, () => assert.deepEqual(traceFromXRay(header), tp === undefined ? undefined : { traceparent: tp }));
    }
    it("round-trips the ids", () => {
      assert.deepEqual(traceFromXRay(toXRay(CLIENT)), { traceparent: TP });
    });
    // From the AWS connector's former X-Ray module: a sink writes no header rather than a broken one.
    it("an invalid traceparent gives no header", () => {
      for (const bad of ["", "garbage", `00-${"0".repeat(32)}-${SPAN}-01`, `00-${TRACE}-${"0".repeat(16)}-01`, `ff-${TRACE}-${SPAN}-01`, `00-${TRACE.toUpperCase()}-${SPAN}-01`]) {
        assert.equal(toXRay({ traceparent: bad }), undefined, bad);
      }
    });
    it("a future traceparent version is written by its four fields", () => {
      assert.equal(toXRay({ traceparent: `cc-${TRACE}-${SPAN}-01-more` }), "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1");
    });
  });

  describe("AMQP 1.0 (application properties; message annotations first)", () => {
    const OTHER = `00-${"1".repeat(32)}-${"2".repeat(16)}-01`;
    it("writes both values as string application properties", () => {
      assert.deepEqual(traceApplicationProperties(CLIENT), { traceparent: TP, tracestate: CLIENT.tracestate });
      assert.deepEqual(traceApplicationProperties({ traceparent: TP }), { traceparent: TP });
    });
    it("reads the application properties, the message annotations winning when they hold a valid traceparent", () => {
      assert.deepEqual(traceFromAmqp(undefined, { traceparent: TP, tracestate: "a=1", "cloudEvents:traceparent": OTHER }), { traceparent: TP, tracestate: "a=1" });
      assert.deepEqual(traceFromAmqp({ traceparent: OTHER }, { traceparent: TP, tracestate: "a=1" }), { traceparent: OTHER }, "the annotation's context is whole: no tracestate borrowed");
      assert.deepEqual(traceFromAmqp({ traceparent: "broken", "x-opt-other": 1 }, { traceparent: TP }), { traceparent: TP });
      assert.equal(traceFromAmqp({}, { "cloudEvents:traceparent": TP }), undefined, "the binary-mode extension property is not the transport field");
      assert.equal(traceFromAmqp(undefined, { traceparent: 42 }), undefined);
      assert.equal(traceFromAmqp(undefined, undefined), undefined);
    });
    it("reads the draft's binary traceparent", () => {
      const bin = Buffer.concat([Buffer.from([0, 0]), Buffer.from(TRACE, "hex"), Buffer.from([1]), Buffer.from(SPAN, "hex"), Buffer.from([2, 1])]);
      assert.equal(traceparentFromBinary(bin), TP);
      assert.deepEqual(traceFromAmqp(undefined, { traceparent: bin, tracestate: "a=1" }), { traceparent: TP, tracestate: "a=1" });
      assert.equal(traceparentFromBinary(bin.subarray(0, 28)), undefined, "too short");
      assert.equal(traceparentFromBinary(Buffer.concat([Buffer.from([1]), bin.subarray(1)])), undefined, "another version");
      const zero = Buffer.concat([Buffer.from([0, 0]), Buffer.alloc(16), Buffer.from([1]), Buffer.from(SPAN, "hex"), Buffer.from([2, 1])]);
      assert.equal(traceFromAmqp(undefined, { traceparent: zero }), undefined, "an all-zero trace id is invalid");
    });
  });
});
