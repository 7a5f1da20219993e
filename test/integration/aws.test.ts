/**
 * The AWS connectors beyond the shared suites, with the real SDK clients against the emulator:
 * per-entry results (only throttled entries retried, each event accepted once; permanent codes
 * reported), size limits, FIFO ids, lease extension for a slow route, releases with the kit's
 * delays, more receivers than the window, invalid messages, credentials (explicit keys, the default
 * chain, role_arn through STS) and TLS, and secrets kept out of every log line and error.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { ReceiveMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import { eventBridgeSink, eventBridgeSource, sqsSink, sqsSource } from "../../connectors/aws/definition.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import type { Logger } from "../../src/core/logger.js";
import { SinkError } from "../../src/core/errors.js";
import { startAwsEmulator, type AwsEmulator } from "../emulators/aws/index.js";
import { createQueue, readQueue, sendBodies, sendEvents, sqsClient, type AwsTarget } from "../support/aws.js";
import { makeTestCerts, type TestCerts } from "../support/certs.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { uniqueTag } from "../support/conformance.js";
import { testContext, type TestContext } from "../support/context.js";
import { richEvents, sampleEvents } from "../support/events.js";
import { DELIVERED_OUTCOME, FakeInbox, erroredOutcome } from "../support/fake-inbox.js";
import { sleep, waitFor } from "../support/wait.js";

const SECRET = "s3cr3t-Key/ThatMustNeverLeak+42";
const KEY_ID = "AKIDINTEGRATION";
let aws: AwsEmulator;
let target: AwsTarget;
let sqs: SQSClient;
const makeSqsSource = await sourceFactory(sqsSource);
const makeEbSource = await sourceFactory(eventBridgeSource);
const makeEbSink = await sinkFactory(eventBridgeSink);
const makeSqsSink = await sinkFactory(sqsSink);

before(async () => {
  aws = await startAwsEmulator({ credentials: { [KEY_ID]: SECRET } });
  target = { endpoint: aws.url, region: aws.region, credentials: aws.credentials };
  sqs = sqsClient(target);
});
after(async () => {
  sqs?.destroy();
  await aws?.close();
});

const conn = () => ({ endpoint: aws.url, region: aws.region, credentials: { access_key_id: KEY_ID, secret_access_key: SECRET } });

/** A context whose log lines are kept (as JSON text) for assertions. */
function recordingContext(id = uniqueTag("ctx")): TestContext & { lines: string[] } {
  const base = testContext(id);
  const lines: string[] = [];
  const at =
    (level: string) =>
    (obj: object, msg?: string): void =>
      void lines.push(`${level} ${msg ?? ""} ${JSON.stringify(obj)}`);
  const log: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error"), child: () => log };
  return Object.assign(Object.create(base) as TestContext, { log, lines, setUp: base.setUp.bind(base) }) as TestContext & { lines: string[] };
}

describe("aws_eventbridge sink", { timeout: 60_000 }, () => {
  it("aws_eventbridge sink - throttled entries of a batch fail retryably and alone; written again, each event is accepted exactly once", async () => {
    const tag = uniqueTag("thr");
    const sink = makeEbSink({ ...conn(), linger: "50ms" }, testContext());
    await sink.open();
    try {
      const evs = sampleEvents(10, tag);
      const throttled = new Set([`${tag}-2`, `${tag}-5`]);
      const calls = aws.events.putEventsCalls.length;
      aws.faults.entries((op, e, _i, call) => (op === "PutEvents" && call === calls + 1 && throttled.has(JSON.parse(String(e["Detail"])).id) ? { code: "ThrottlingException", message: "Rate exceeded" } : undefined));
      const first = await Promise.allSettled(evs.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
      evs.forEach((e, i) => {
        const r = first[i]!;
        if (throttled.has(String(e.attributes["id"]))) {
          assert.equal(r.status, "rejected");
          const err = (r as PromiseRejectedResult).reason as { retryable: boolean; message: string };
          assert.equal(err.retryable, true);
          assert.match(err.message, /ThrottlingException: Rate exceeded/);
        } else assert.equal(r.status, "fulfilled", `event ${i}`);
      });
      // What the engine does with a transient failure: write the same event again.
      await Promise.all(evs.filter((e) => throttled.has(String(e.attributes["id"]))).map((e) => sink.write(e, AbortSignal.timeout(10_000))));
      const retry = aws.events.putEventsCalls.at(-1)!;
      assert.deepEqual(retry.map((e) => JSON.parse(String(e["Detail"])).id).sort(), [...throttled].sort(), "only the throttled entries were sent again");
      const accepted = aws.events.accepted.filter((env) => String(env.detail["id"]).startsWith(`${tag}-`)).map((env) => String(env.detail["id"]));
      assert.deepEqual(accepted.sort(), evs.map((e) => String(e.attributes["id"])).sort(), "every event accepted exactly once");
    } finally {
      aws.faults.clear();
      await sink.close();
    }
  });

  it("aws_eventbridge sink - a permanent entry error carries AWS's code and message; the others of the batch are delivered", async () => {
    const tag = uniqueTag("perm");
    const sink = makeEbSink({ ...conn(), linger: "50ms" }, testContext());
    await sink.open();
    try {
      const ok = sampleEvents(3, tag);
      const bad: CloudEvent = { attributes: { specversion: "1.0", id: `${tag}-bad`, source: "aws.s3", type: "Object Created" } };
      const results = await Promise.allSettled([...ok, bad].map((e) => sink.write(e, AbortSignal.timeout(10_000))));
      assert.deepEqual(results.map((r) => r.status), ["fulfilled", "fulfilled", "fulfilled", "rejected"]);
      const err = (results[3] as PromiseRejectedResult).reason as { retryable: boolean; code: string; message: string };
      assert.equal(err.retryable, false);
      assert.equal(err.code, "CEB_SINK_PERMANENT");
      assert.equal(err.message, "EventBridge refused the entry: NotAuthorizedForSourceException: Not authorized for the source aws.s3.");
      assert.equal(aws.events.putEventsCalls.at(-1)!.length, 4, "one call for the four");
    } finally {
      await sink.close();
    }
  });

  it("aws_eventbridge sink - an event too large for one call fails permanently, naming its size and the limit", async () => {
    const sink = makeEbSink({ ...conn(), max_batch_bytes: "1KiB" }, testContext());
    await sink.open();
    try {
      const big: CloudEvent = { attributes: { specversion: "1.0", id: "big", source: "urn:x", type: "t", datacontenttype: "text/plain" }, data: { kind: "bytes", bytes: Buffer.alloc(2000, 0x61) } };
      await assert.rejects(sink.write(big, AbortSignal.timeout(5_000)), (e: { code?: string; retryable?: boolean; message?: string }) => {
        assert.equal(e.code, "CEB_TOO_LARGE");
        assert.equal(e.retryable, false);
        assert.match(e.message!, /the entry is 21\d\d bytes, over the limit of 1024 bytes per request/);
        return true;
      });
    } finally {
      await sink.close();
    }
  });

  it("aws_eventbridge sink - detail: data sends only the data; the bus ARN names the bus; the write's hop context becomes TraceHeader", async () => {
    const bus = `b-${uniqueTag()}`;
    aws.events.buses.add(bus);
    const sink = makeEbSink({ ...conn(), event_bus: aws.events.busArn(bus), detail: "data" }, testContext());
    await sink.open();
    try {
      const ev = richEvents("dd")[0]!;
      await sink.write(ev, AbortSignal.timeout(5_000), { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
      const entry = aws.events.putEventsCalls.at(-1)![0]!;
      assert.equal(entry["EventBusName"], aws.events.busArn(bus));
      assert.equal(entry["TraceHeader"], "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1");
      const env = aws.events.accepted.at(-1)!;
      assert.deepEqual(env.detail, { order: { id: 7, items: ["é", "😀"] } });
      assert.equal(env.source, "https://example.com/orders?region=eu&x=1");
      assert.equal(env["detail-type"], "com.example.order.created");
      assert.equal(env.time, "2024-05-06T05:08:09Z");
    } finally {
      await sink.close();
    }
  });

  it("aws_eventbridge sink - a short throttling storm is absorbed by the SDK's retries; a longer one fails retryably", async () => {
    const sink = makeEbSink(conn(), testContext());
    await sink.open();
    try {
      aws.faults.add({ op: "PutEvents", kind: "throttle", times: 2 });
      await sink.write(sampleEvents(1, uniqueTag("st"))[0]!, AbortSignal.timeout(15_000));
      aws.faults.add({ op: "PutEvents", kind: "throttle", times: 3 });
      await assert.rejects(sink.write(sampleEvents(1, uniqueTag("st"))[0]!, AbortSignal.timeout(15_000)), (e: { retryable?: boolean; message?: string }) => {
        assert.equal(e.retryable, true);
        assert.match(e.message!, /PutEvents failed: ThrottlingException \(HTTP 400\): Rate exceeded/);
        return true;
      });
    } finally {
      aws.faults.clear();
      await sink.close();
    }
  });
});

describe("aws_sqs sink", { timeout: 60_000 }, () => {
  it("aws_sqs sink - FIFO: partitionkey is the group, source + id deduplicates a retried write", async () => {
    const q = await createQueue(sqs, `${uniqueTag("fifo")}.fifo`);
    const sink = makeSqsSink({ ...conn(), queue_url: q.url, message_group_id: "fallback" }, testContext());
    await sink.open();
    const reader = readQueue(sqs, q.url);
    try {
      const [a, b] = sampleEvents(2, uniqueTag("f"));
      const keyed: CloudEvent = { attributes: { ...a!.attributes, partitionkey: "customer-1" }, data: a!.data };
      await sink.write(keyed, AbortSignal.timeout(5_000));
      await sink.write(keyed, AbortSignal.timeout(5_000)); // a retry of the same event
      await sink.write(b!, AbortSignal.timeout(5_000));
      await waitFor(() => reader.events.length >= 2, 5_000);
      await sleep(300);
      assert.equal(reader.events.length, 2, "the retried write was deduplicated");
      assert.deepEqual(reader.raw.map((r) => r.system["MessageGroupId"]), ["customer-1", "fallback"]);
    } finally {
      await reader.close();
      await sink.close();
    }
  });

  it("aws_sqs sink - per-message failures: a sender fault is permanent with SQS's code, anything else retryable", async () => {
    const q = await createQueue(sqs, uniqueTag("pm"));
    const sink = makeSqsSink({ ...conn(), queue_url: q.url, linger: "50ms" }, testContext());
    await sink.open();
    try {
      const evs = sampleEvents(3, uniqueTag("pm"));
      aws.faults.entries((op, _e, i) =>
        op !== "SendMessageBatch" ? undefined : i === 1 ? { code: "InternalError", message: "try later" } : i === 2 ? { code: "InvalidParameterValue", message: "nope", senderFault: true } : undefined,
      );
      const r = await Promise.allSettled(evs.map((e) => sink.write(e, AbortSignal.timeout(5_000))));
      assert.equal(r[0]!.status, "fulfilled");
      const transient = (r[1] as PromiseRejectedResult).reason as { retryable: boolean; message: string };
      const permanent = (r[2] as PromiseRejectedResult).reason as { retryable: boolean; message: string };
      assert.deepEqual([transient.retryable, transient.message], [true, "SQS did not take the message, try again: InternalError: try later"]);
      assert.deepEqual([permanent.retryable, permanent.message], [false, "SQS refused the message: InvalidParameterValue: nope"]);
    } finally {
      aws.faults.clear();
      await sink.close();
    }
  });
});

describe("aws trace context", { timeout: 60_000 }, () => {
  it("aws_sqs sink → SQS → aws_sqs source: the hop's trace is the AWSTraceHeader system attribute, offered as the transport trace; the extension is the event's", async () => {
    const q = await createQueue(sqs, uniqueTag("trace"));
    const sink = makeSqsSink({ ...conn(), queue_url: q.url, linger: "20ms" }, testContext());
    await sink.open();
    const inbox = new FakeInbox();
    const src = makeSqsSource({ ...conn(), queue_url: q.url, wait_time: "1s" }, testContext());
    try {
      const [traced, untraced] = richEvents(uniqueTag("tr")) as [CloudEvent, CloudEvent];
      await Promise.all([
        sink.write(traced, AbortSignal.timeout(5_000), { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tracestate: "x=1" }),
        sink.write(untraced, AbortSignal.timeout(5_000)),
      ]);
      const stored = [...aws.sqs.queues.get(q.url.split("/").pop()!)!.messages.values()].map((m) => m.traceHeader);
      assert.deepEqual(stored.sort(), ["Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1", undefined], "one entry of the batch carries a header, the other none");
      await src.start(inbox);
      await inbox.waitForSettled(2, 10_000);
      const byId = new Map(inbox.offers.map((r) => [String(r.events[0]!.attributes["id"]), r]));
      const t = byId.get(String(traced.attributes["id"]))!;
      assert.deepEqual(t.trace, { traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" });
      assert.equal(t.events[0]!.attributes["traceparent"], traced.attributes["traceparent"], "the event's own extension, unchanged");
      assert.equal(byId.get(String(untraced.attributes["id"]))!.trace, undefined);
    } finally {
      await src.close();
      await sink.close();
    }
  });
});

describe("aws sources", { timeout: 90_000 }, () => {
  it("aws_sqs source - a slow route keeps its message invisible (visibility extended) and gets it once", async () => {
    const q = await createQueue(sqs, uniqueTag("slow"));
    const inbox = new FakeInbox({ script: async () => (await sleep(5_000), DELIVERED_OUTCOME) });
    const src = makeSqsSource({ ...conn(), queue_url: q.url, visibility_timeout: "2s", wait_time: "1s", receivers: 2 }, testContext());
    const extendsBefore = aws.calls.get("sqs.ChangeMessageVisibilityBatch") ?? 0;
    await src.start(inbox);
    try {
      await sendEvents(sqs, q.url, sampleEvents(3, uniqueTag("slow")));
      await inbox.waitForSettled(3, 15_000);
      await sleep(2_500);
      assert.equal(inbox.offers.length, 3, "no message came twice");
      assert.ok((aws.calls.get("sqs.ChangeMessageVisibilityBatch") ?? 0) - extendsBefore >= 3, "visibility was extended while the route worked");
      await waitFor(() => aws.sqs.queues.get(q.url.split("/").pop()!)!.messages.size === 0, 5_000, "deleted after delivery");
    } finally {
      await src.close();
    }
  });

  it("aws_sqs source - more receivers than the window never hold more messages than it", async () => {
    const q = await createQueue(sqs, uniqueTag("win"));
    const inbox = new FakeInbox({ capacity: 3, settleDelayMs: 15 });
    const src = makeSqsSource({ ...conn(), queue_url: q.url, wait_time: "1s", receivers: 8, max_messages: 10 }, testContext());
    await src.start(inbox);
    try {
      await sendEvents(sqs, q.url, sampleEvents(60, uniqueTag("win")));
      await inbox.waitForSettled(60, 20_000);
      assert.ok(inbox.maxInUse <= 3, `in flight peaked at ${inbox.maxInUse}`);
      assert.equal(inbox.offers.length, 60);
    } finally {
      await src.close();
    }
  });

  it("aws_sqs source - a release waits the kit's delay (Retry-After when given) and counts deliveries; a shutdown release is immediate", async () => {
    const q = await createQueue(sqs, uniqueTag("rel"));
    const seen: number[] = [];
    const inbox = new FakeInbox({
      script: (_m, info) => {
        seen.push(Date.now());
        if (info.seen === 1) return erroredOutcome("later", 2_000);
        if (info.seen === 2) return { status: "errored", error: new SinkError("stopping", true), release: "shutdown" };
        return DELIVERED_OUTCOME;
      },
    });
    const src = makeSqsSource({ ...conn(), queue_url: q.url, wait_time: "1s", visibility_timeout: "10s" }, testContext());
    await src.start(inbox);
    try {
      await sendBodies(sqs, q.url, ["once"]);
      await inbox.waitForSettled(3, 15_000);
      assert.deepEqual(inbox.offers.map((o) => o.deliveryCount), [1, 2, 3]);
      assert.ok(seen[1]! - seen[0]! >= 1_900, `Retry-After 2 s honoured (${seen[1]! - seen[0]!} ms)`);
      assert.ok(seen[2]! - seen[1]! < 1_500, `a shutdown release comes back at once (${seen[2]! - seen[1]!} ms)`);
    } finally {
      await src.close();
    }
  });

  it("aws_eventbridge source - a message that is no EventBridge event is offered as invalid, then deleted once dead-lettered", async () => {
    const q = await createQueue(sqs, uniqueTag("inv"));
    const inbox = new FakeInbox({ script: (m) => (m.invalid ? { status: "dead_lettered", error: m.invalid } : DELIVERED_OUTCOME) });
    const src = makeEbSource({ ...conn(), queue_url: q.url, wait_time: "1s" }, testContext());
    await src.start(inbox);
    try {
      await sendBodies(sqs, q.url, ["not an event"]);
      await inbox.waitForSettled(1, 10_000);
      const m = inbox.offers[0]!;
      assert.equal(m.invalid?.code, "CEB_FORMAT");
      assert.match(m.invalid!.message, /not an EventBridge event/);
      assert.equal(m.events[0]!.attributes["type"], "dev.cebridge.invalid");
      assert.equal(m.events[0]!.attributes["source"], q.arn);
      await waitFor(async () => (await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, WaitTimeSeconds: 0 }))).Messages === undefined && aws.sqs.queues.get(q.url.split("/").pop()!)!.messages.size === 0, 5_000, "deleted");
    } finally {
      await src.close();
    }
  });
});

describe("aws credentials and TLS", { timeout: 60_000 }, () => {
  let certs: TestCerts;
  before(() => {
    certs = makeTestCerts();
  });

  async function deliversOne(opts: Record<string, unknown>, ctx = testContext()): Promise<void> {
    const q = await createQueue(sqs, uniqueTag("cred"));
    const inbox = new FakeInbox();
    const src = makeSqsSource({ queue_url: q.url, wait_time: "1s", ...opts }, ctx);
    await src.start(inbox);
    try {
      await sendBodies(sqs, q.url, ["hello"]);
      await inbox.waitForSettled(1, 10_000);
      assert.equal(inbox.offers[0]!.events[0]!.attributes["source"], q.arn);
    } finally {
      await src.close();
    }
  }

  it("aws credentials - role_arn: AssumeRole through STS with the explicit keys, then every call signed by the temporary key", async () => {
    const before = aws.sts.assumed.length;
    await deliversOne({ ...conn(), role_arn: "arn:aws:iam::000000000000:role/bridge", sts_endpoint: aws.url, role_session_name: "cebridge-test" });
    const assumed = aws.sts.assumed.slice(before);
    assert.equal(assumed.length, 1);
    assert.deepEqual([assumed[0]!.roleArn, assumed[0]!.sessionName, assumed[0]!.by], ["arn:aws:iam::000000000000:role/bridge", "cebridge-test", KEY_ID]);
    assert.ok((aws.callers.get(assumed[0]!.accessKeyId) ?? 0) >= 2, "receives and deletes signed with the role's key");
  });

  it("aws credentials - without credentials the SDK's default chain is used (environment variables here)", async () => {
    const saved = { id: process.env["AWS_ACCESS_KEY_ID"], secret: process.env["AWS_SECRET_ACCESS_KEY"] };
    process.env["AWS_ACCESS_KEY_ID"] = KEY_ID;
    process.env["AWS_SECRET_ACCESS_KEY"] = SECRET;
    try {
      await deliversOne({ endpoint: aws.url, region: aws.region });
    } finally {
      if (saved.id === undefined) delete process.env["AWS_ACCESS_KEY_ID"];
      else process.env["AWS_ACCESS_KEY_ID"] = saved.id;
      if (saved.secret === undefined) delete process.env["AWS_SECRET_ACCESS_KEY"];
      else process.env["AWS_SECRET_ACCESS_KEY"] = saved.secret;
    }
  });

  it("aws credentials - a wrong secret keeps the source down and says why, and no secret reaches a log line or error", async () => {
    const q = await createQueue(sqs, uniqueTag("bad"));
    const ctx = recordingContext();
    const wrong = "Wr0ng-Secret/NeverLogged+1";
    const src = makeSqsSource({ queue_url: q.url, endpoint: aws.url, region: aws.region, wait_time: "1s", credentials: { access_key_id: KEY_ID, secret_access_key: wrong } }, ctx);
    await src.start(new FakeInbox());
    try {
      await waitFor(() => ctx.lines.some((l) => l.includes("CEB_UNAUTHORIZED")), 10_000, () => ctx.lines.join("\n"));
      assert.equal(ctx.isUp, false);
      assert.match(ctx.lines.find((l) => l.includes("CEB_UNAUTHORIZED"))!, /InvalidSignatureException/);
    } finally {
      await src.close();
    }
    // The sink's errors too.
    const sink = makeEbSink({ endpoint: aws.url, region: aws.region, credentials: { access_key_id: KEY_ID, secret_access_key: wrong } }, ctx);
    await sink.open();
    const err = await sink.write(sampleEvents(1, "x")[0]!, AbortSignal.timeout(10_000)).catch((e: Error & { code?: string }) => e);
    await sink.close();
    assert.ok(err instanceof Error);
    assert.equal((err as { code?: string }).code, "CEB_UNAUTHORIZED");
    const everything = ctx.lines.join("\n") + (err as Error).message;
    assert.ok(!everything.includes(wrong) && !everything.includes(SECRET), "no secret in logs or errors");
  });

  it("aws TLS - https with tls.ca works, without the CA it does not, insecure_skip_verify accepts any certificate", async () => {
    const tlsAws = await startAwsEmulator({ credentials: { [KEY_ID]: SECRET }, tls: { cert: readFileSync(certs.server.cert), key: readFileSync(certs.server.key) } });
    const tlsConn = { endpoint: tlsAws.url, region: tlsAws.region, credentials: { access_key_id: KEY_ID, secret_access_key: SECRET } };
    try {
      const q = tlsAws.sqs.createQueue(uniqueTag("tls"));
      const run = async (tls: Record<string, unknown> | undefined) => {
        const ctx = recordingContext();
        const sink = makeSqsSink({ ...tlsConn, queue_url: q.url, ...(tls ? { tls } : {}) }, ctx);
        await sink.open();
        try {
          await sink.write(sampleEvents(1, uniqueTag("t"))[0]!, AbortSignal.timeout(8_000));
          return "ok";
        } catch (e) {
          return (e as Error).message;
        } finally {
          await sink.close();
        }
      };
      assert.equal(await run({ ca: certs.ca.cert }), "ok");
      assert.match(await run(undefined), /certificate/i);
      assert.equal(await run({ insecure_skip_verify: true }), "ok");
      assert.equal(tlsAws.sqs.queues.get(q.name)!.messages.size, 2);
    } finally {
      await tlsAws.close();
    }
  });
});
