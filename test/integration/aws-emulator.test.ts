/**
 * What SQS does, checked with the real SDK against our emulator and against fauxqs (an independent
 * emulator from npm), so our emulator is not the only judge. Then what only ours does: EventBridge
 * rules into SQS exactly as docs/clouds.md §1.7 shows, SigV4 refusals, STS AssumeRole, fault
 * injection and a restart that keeps state.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startFauxqs, type FauxqsServer } from "fauxqs";
import {
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import { PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { fromTemporaryCredentials } from "@aws-sdk/credential-providers";
import { startAwsEmulator, type AwsEmulator } from "../emulators/aws/index.js";
import { createQueue, eventBridgeClient, ruleToQueue, sqsClient, type AwsTarget } from "../support/aws.js";
import { uniqueTag } from "../support/conformance.js";
import { sleep } from "../support/wait.js";

let aws: AwsEmulator;
let fauxqs: FauxqsServer;
const targets: Record<"ours" | "fauxqs", () => AwsTarget> = {
  ours: () => ({ endpoint: aws.url, region: aws.region, credentials: aws.credentials }),
  fauxqs: () => ({ endpoint: `http://127.0.0.1:${fauxqs.port}`, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } }),
};

before(async () => {
  aws = await startAwsEmulator();
  fauxqs = await startFauxqs({ port: 0, logger: false });
});
after(async () => {
  await aws?.close();
  await fauxqs?.stop();
});

async function receive(sqs: SQSClient, url: string, opts: { max?: number; wait?: number; visibility?: number } = {}): Promise<Message[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: url,
      MaxNumberOfMessages: opts.max ?? 10,
      WaitTimeSeconds: opts.wait ?? 0,
      ...(opts.visibility !== undefined ? { VisibilityTimeout: opts.visibility } : {}),
      MessageSystemAttributeNames: ["All"],
      MessageAttributeNames: ["All"],
    }),
  );
  return out.Messages ?? [];
}

for (const name of ["ours", "fauxqs"] as const) {
  describe(`sqs semantics (${name})`, { timeout: 60_000 }, () => {
    let sqs: SQSClient;
    before(() => {
      sqs = sqsClient(targets[name]());
    });
    after(() => sqs.destroy());

    it(`sqs semantics (${name}) - a message keeps its body, typed attributes and MD5s; system attributes say when and how often`, async () => {
      const q = await createQueue(sqs, uniqueTag("sem"));
      const sent = await sqs.send(
        new SendMessageCommand({
          QueueUrl: q.url,
          MessageBody: "héllo ✓",
          MessageAttributes: { s: { DataType: "String", StringValue: "v" }, n: { DataType: "Number", StringValue: "42" }, b: { DataType: "Binary", BinaryValue: new Uint8Array([0, 255]) } },
        }),
      );
      const before = Date.now();
      const [m] = await receive(sqs, q.url); // the SDK checks MD5OfBody itself
      assert.ok(m);
      assert.equal(m.MessageId, sent.MessageId);
      assert.equal(m.Body, "héllo ✓");
      assert.deepEqual(m.MessageAttributes?.["s"], { DataType: "String", StringValue: "v" });
      assert.deepEqual(m.MessageAttributes?.["n"], { DataType: "Number", StringValue: "42" });
      assert.deepEqual([...(m.MessageAttributes?.["b"]?.BinaryValue ?? [])], [0, 255]);
      assert.equal(m.MD5OfMessageAttributes, sent.MD5OfMessageAttributes);
      assert.equal(m.Attributes?.["ApproximateReceiveCount"], "1");
      assert.ok(Math.abs(Number(m.Attributes?.["SentTimestamp"]) - before) < 5_000);
    });

    it(`sqs semantics (${name}) - a batch send answers per entry: the bad entry fails, the others are queued`, async () => {
      const q = await createQueue(sqs, uniqueTag("sem"));
      const out = await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: q.url,
          Entries: [
            { Id: "a", MessageBody: "one" },
            { Id: "b", MessageBody: "bad \u0000 char" },
            { Id: "c", MessageBody: "three" },
          ],
        }),
      );
      assert.deepEqual(out.Successful?.map((s) => s.Id).sort(), ["a", "c"]);
      assert.equal(out.Failed?.length, 1);
      assert.equal(out.Failed![0]!.Id, "b");
      assert.equal(out.Failed![0]!.SenderFault, true);
      assert.deepEqual((await receive(sqs, q.url)).map((m) => m.Body).sort(), ["one", "three"]);
    });

    it(`sqs semantics (${name}) - a long poll returns as soon as a message arrives`, async () => {
      const q = await createQueue(sqs, uniqueTag("sem"));
      const started = Date.now();
      setTimeout(() => void sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "late" })), 300);
      const got = await receive(sqs, q.url, { wait: 5 });
      assert.deepEqual(got.map((m) => m.Body), ["late"]);
      assert.ok(Date.now() - started < 3_000, `returned after ${Date.now() - started} ms`);
    });

    it(`sqs semantics (${name}) - a received message is invisible until its timeout, then comes back with a new handle and a higher receive count`, async () => {
      const q = await createQueue(sqs, uniqueTag("sem"));
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x" }));
      const [first] = await receive(sqs, q.url, { visibility: 1 });
      assert.deepEqual(await receive(sqs, q.url), [], "invisible while in flight");
      await sleep(1_300);
      const [second] = await receive(sqs, q.url, { visibility: 1 });
      assert.ok(first && second);
      assert.equal(second.MessageId, first.MessageId);
      assert.notEqual(second.ReceiptHandle, first.ReceiptHandle);
      assert.equal(second.Attributes?.["ApproximateReceiveCount"], "2");
    });

    it(`sqs semantics (${name}) - visibility 0 releases at once; a longer one keeps the message hidden past the receive's timeout`, async () => {
      const q = await createQueue(sqs, uniqueTag("sem"));
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: [{ Id: "a", MessageBody: "a" }, { Id: "b", MessageBody: "b" }] }));
      const got = await receive(sqs, q.url, { visibility: 1 });
      assert.equal(got.length, 2);
      const a = got.find((m) => m.Body === "a")!;
      const b = got.find((m) => m.Body === "b")!;
      const out = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: q.url,
          Entries: [
            { Id: "a", ReceiptHandle: a.ReceiptHandle!, VisibilityTimeout: 0 },
            { Id: "b", ReceiptHandle: b.ReceiptHandle!, VisibilityTimeout: 4 },
          ],
        }),
      );
      assert.equal(out.Failed?.length ?? 0, 0);
      assert.deepEqual((await receive(sqs, q.url, { visibility: 10 })).map((m) => m.Body), ["a"]);
      await sleep(1_500);
      assert.deepEqual(await receive(sqs, q.url), [], "b stays hidden past its first 1 s timeout");
    });

    it(`sqs semantics (${name}) - a batch delete removes the messages it names`, async () => {
      const q = await createQueue(sqs, uniqueTag("sem"));
      await sqs.send(new SendMessageBatchCommand({ QueueUrl: q.url, Entries: [1, 2, 3].map((i) => ({ Id: `m${i}`, MessageBody: `m${i}` })) }));
      const got = await receive(sqs, q.url, { visibility: 1 });
      assert.equal(got.length, 3);
      const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: q.url, Entries: got.slice(0, 2).map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      assert.equal(out.Successful?.length, 2);
      await sleep(1_300);
      assert.deepEqual((await receive(sqs, q.url)).map((m) => m.Body), [got[2]!.Body]);
    });

    it(`sqs semantics (${name}) - FIFO: a group's next message waits while one is in flight; a deduplication id is taken once`, async () => {
      const q = await createQueue(sqs, `${uniqueTag("sem")}.fifo`);
      for (const [body, group, dedup] of [["a1", "A", "1"], ["a2", "A", "2"], ["b1", "B", "3"], ["a1 again", "A", "1"]] as const) {
        await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: body, MessageGroupId: group, MessageDeduplicationId: dedup }));
      }
      const first = await receive(sqs, q.url, { max: 1, visibility: 5 });
      assert.deepEqual(first.map((m) => m.Body), ["a1"]);
      assert.equal(first[0]!.Attributes?.["MessageGroupId"], "A");
      const next = await receive(sqs, q.url, { visibility: 5 });
      assert.deepEqual(next.map((m) => m.Body), ["b1"], "group A is held while a1 is in flight");
      await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: q.url, Entries: [{ Id: "0", ReceiptHandle: first[0]!.ReceiptHandle! }] }));
      assert.deepEqual((await receive(sqs, q.url, { visibility: 5 })).map((m) => m.Body), ["a2"], "the duplicate of a1 was never queued");
    });

    it(`sqs semantics (${name}) - redrive: past maxReceiveCount a message moves to the dead-letter queue`, async () => {
      const dlq = await createQueue(sqs, uniqueTag("dlq"));
      const q = await createQueue(sqs, uniqueTag("sem"), { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }) });
      await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "poison" }));
      for (let i = 1; i <= 2; i++) {
        const [m] = await receive(sqs, q.url, { visibility: 1 });
        assert.equal(m?.Attributes?.["ApproximateReceiveCount"], String(i));
        await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: q.url, ReceiptHandle: m!.ReceiptHandle!, VisibilityTimeout: 0 }));
      }
      assert.deepEqual(await receive(sqs, q.url), [], "the third receive moves it instead of returning it");
      assert.deepEqual((await receive(sqs, dlq.url, { wait: 2 })).map((m) => m.Body), ["poison"]);
    });

    it(`sqs semantics (${name}) - a missing queue is QueueDoesNotExist`, async () => {
      const t = targets[name]();
      await assert.rejects(
        sqs.send(new GetQueueAttributesCommand({ QueueUrl: `${t.endpoint}/000000000000/does-not-exist`, AttributeNames: ["All"] })),
        (e: { name?: string }) => e.name === "QueueDoesNotExist",
      );
    });
  });
}

describe("aws emulator (ours only)", { timeout: 60_000 }, () => {
  it("aws emulator - a rule writes the event envelope into its SQS target as docs/clouds.md §1.7 shows", async () => {
    const sqs = sqsClient(targets.ours());
    const eb = eventBridgeClient(targets.ours());
    const q = await createQueue(sqs, uniqueTag("rule"));
    const other = await createQueue(sqs, uniqueTag("rule"));
    await ruleToQueue(eb, uniqueTag("r"), q.arn, { pattern: { source: ["com.example.orders"], "detail-type": [{ prefix: "Order" }], detail: { total: [{ numeric: [">", 10] }] } } });
    await ruleToQueue(eb, uniqueTag("r"), other.arn, { pattern: { source: [{ "anything-but": "com.example.orders" }] } });
    const out = await eb.send(
      new PutEventsCommand({
        Entries: [
          { Source: "com.example.orders", DetailType: "OrderPlaced", Detail: '{"total": 12.5}', Time: new Date("2024-01-02T03:04:05.678Z"), Resources: ["arn:aws:x:::1"] },
          { Source: "com.example.orders", DetailType: "OrderPlaced", Detail: '{"total": 3}' },
          { Source: "com.example.other", DetailType: "Other", Detail: "{}" },
        ],
      }),
    );
    assert.equal(out.FailedEntryCount, 0);
    const [m] = await receive(sqs, q.url, { wait: 2 });
    assert.ok(m);
    assert.equal(m.MessageAttributes, undefined, "a rule adds no message attributes");
    assert.deepEqual(JSON.parse(m.Body!), {
      version: "0",
      id: out.Entries![0]!.EventId,
      "detail-type": "OrderPlaced",
      source: "com.example.orders",
      account: aws.accountId,
      time: "2024-01-02T03:04:05Z",
      region: aws.region,
      resources: ["arn:aws:x:::1"],
      detail: { total: 12.5 },
    });
    assert.deepEqual(await receive(sqs, q.url), [], "the event with total 3 did not match");
    const [o] = await receive(sqs, other.url, { wait: 2 });
    assert.equal(JSON.parse(o!.Body!).source, "com.example.other");
    sqs.destroy();
    eb.destroy();
  });

  it("aws emulator - AWSTraceHeader: sent as a message system attribute, returned in Attributes only when asked for (fauxqs ignores MessageSystemAttributes, so only ours)", async () => {
    const sqs = sqsClient(targets.ours());
    const q = await createQueue(sqs, uniqueTag("sem"));
    const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "traced", MessageSystemAttributes: { AWSTraceHeader: { DataType: "String", StringValue: header } } }));
    await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: q.url, Entries: [{ Id: "b", MessageBody: "batched", MessageSystemAttributes: { AWSTraceHeader: { DataType: "String", StringValue: header } } }, { Id: "c", MessageBody: "plain" }] }),
    );
    const notAsked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, VisibilityTimeout: 0, MessageSystemAttributeNames: ["SentTimestamp"] }));
    assert.equal(notAsked.Messages?.length, 3);
    for (const m of notAsked.Messages!) assert.equal(m.Attributes?.["AWSTraceHeader"], undefined, "not asked for, not returned");
    const asked = await sqs.send(new ReceiveMessageCommand({ QueueUrl: q.url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ["AWSTraceHeader"] }));
    const byBody = new Map((asked.Messages ?? []).map((m) => [m.Body, m.Attributes?.["AWSTraceHeader"]]));
    assert.deepEqual([...byBody.entries()].sort(), [["batched", header], ["plain", undefined], ["traced", header]]);
    sqs.destroy();
  });

  it("aws emulator - a rule passes an entry's TraceHeader to its SQS target as AWSTraceHeader, never in the envelope; an invalid one is dropped, the event delivered", async () => {
    const sqs = sqsClient(targets.ours());
    const eb = eventBridgeClient(targets.ours());
    const q = await createQueue(sqs, uniqueTag("xray"));
    const source = uniqueTag("traced");
    await ruleToQueue(eb, uniqueTag("r"), q.arn, { pattern: { source: [source] } });
    const header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    const out = await eb.send(
      new PutEventsCommand({
        Entries: [
          { Source: source, DetailType: "good", Detail: "{}", TraceHeader: header },
          { Source: source, DetailType: "bad", Detail: "{}", TraceHeader: "not-x-ray" },
          { Source: source, DetailType: "none", Detail: "{}" },
        ],
      }),
    );
    assert.equal(out.FailedEntryCount, 0, "an invalid trace header does not fail the entry");
    const got = new Map<string, Message>();
    for (let i = 0; i < 5 && got.size < 3; i++) for (const m of await receive(sqs, q.url, { wait: 1 })) got.set(JSON.parse(m.Body!)["detail-type"], m);
    assert.deepEqual([...got.keys()].sort(), ["bad", "good", "none"]);
    assert.equal(got.get("good")!.Attributes?.["AWSTraceHeader"], header);
    assert.equal(got.get("bad")!.Attributes?.["AWSTraceHeader"], undefined);
    assert.equal(got.get("none")!.Attributes?.["AWSTraceHeader"], undefined);
    assert.ok(!got.get("good")!.Body!.includes("5759e988"), "the trace header is not in the delivered event");
    sqs.destroy();
    eb.destroy();
  });

  it("aws emulator - SQS refuses a system attribute other than AWSTraceHeader, and an AWSTraceHeader that is not an X-Ray header", async () => {
    const sqs = sqsClient(targets.ours());
    const q = await createQueue(sqs, uniqueTag("sys"));
    await assert.rejects(sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x", MessageSystemAttributes: { AWSTraceHeader: { DataType: "String", StringValue: "nope" } } })), /X-Ray/);
    await assert.rejects(
      sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x", MessageSystemAttributes: { Other: { DataType: "String", StringValue: "v" } } as never })),
      /Message system attribute name 'Other' is invalid/,
    );
    sqs.destroy();
  });

  it("aws emulator - PutEvents validates each entry and answers with its own result, in order", async () => {
    const eb = eventBridgeClient(targets.ours());
    const out = await eb.send(
      new PutEventsCommand({
        Entries: [
          { Source: "ok", DetailType: "d", Detail: "{}" },
          { Source: "aws.ec2", DetailType: "d", Detail: "{}" },
          { Source: "ok", DetailType: "d", Detail: "[1]" },
          { Source: "ok", DetailType: "d" },
          { Source: "ok", DetailType: "d", Detail: "{}", EventBusName: "nope" },
        ],
      }),
    );
    assert.equal(out.FailedEntryCount, 4);
    assert.deepEqual(
      out.Entries!.map((e) => e.ErrorCode ?? "ok"),
      ["ok", "NotAuthorizedForSourceException", "MalformedDetail", "InvalidArgument", "ResourceNotFoundException"],
    );
    await assert.rejects(eb.send(new PutEventsCommand({ Entries: Array.from({ length: 11 }, () => ({ Source: "s", DetailType: "d", Detail: "{}" })) })), (e: { name?: string }) => e.name === "ValidationException");
    eb.destroy();
  });

  it("aws emulator - a wrong secret and an unknown key are refused; keys from STS AssumeRole are accepted", async () => {
    const t = targets.ours();
    const q = aws.sqs.createQueue(uniqueTag("sig"));
    const call = (c: SQSClient) => c.send(new GetQueueAttributesCommand({ QueueUrl: q.url, AttributeNames: ["QueueArn"] }));
    const wrong = new SQSClient({ endpoint: t.endpoint, region: t.region, credentials: { accessKeyId: t.credentials.accessKeyId, secretAccessKey: "wrong" }, maxAttempts: 1 });
    await assert.rejects(call(wrong), (e: { name?: string }) => e.name === "InvalidSignatureException");
    const unknown = new SQSClient({ endpoint: t.endpoint, region: t.region, credentials: { accessKeyId: "AKIDUNKNOWN", secretAccessKey: "x" }, maxAttempts: 1 });
    await assert.rejects(call(unknown), (e: { name?: string }) => e.name === "UnrecognizedClientException");
    const assumed = new SQSClient({
      endpoint: t.endpoint,
      region: t.region,
      credentials: fromTemporaryCredentials({ params: { RoleArn: "arn:aws:iam::000000000000:role/reader" }, masterCredentials: t.credentials, clientConfig: { endpoint: t.endpoint, region: t.region } }),
      maxAttempts: 1,
    });
    const before = aws.sts.assumed.length;
    assert.equal((await call(assumed)).Attributes?.["QueueArn"], q.arn);
    assert.equal(aws.sts.assumed.length, before + 1);
    assert.equal(aws.sts.assumed.at(-1)!.roleArn, "arn:aws:iam::000000000000:role/reader");
    assert.ok(aws.signatureFailures.some((f) => f.endsWith("InvalidSignatureException")));
    for (const c of [wrong, unknown, assumed]) c.destroy();
  });

  it("aws emulator - faults: throttling and 5xx per operation and count, per-entry failures, dropped connections", async () => {
    const t = targets.ours();
    const eb = eventBridgeClient(t);
    const oneShot = new SQSClient({ endpoint: t.endpoint, region: t.region, credentials: t.credentials, maxAttempts: 1 });
    const q = aws.sqs.createQueue(uniqueTag("flt"));
    const remove = aws.faults.add({ op: "SendMessage", kind: "throttle", times: 1 });
    await assert.rejects(oneShot.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x" })), (e: { name?: string }) => e.name === "RequestThrottled");
    await oneShot.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x" }));
    remove();
    aws.faults.add({ op: "SendMessage", kind: "server-error", times: 1, status: 503 });
    await assert.rejects(oneShot.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x" })), (e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode === 503);
    aws.faults.add({ op: "SendMessage", kind: "drop", times: 1 });
    await assert.rejects(oneShot.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "x" })));
    aws.faults.entries((op, _e, i) => (op === "PutEvents" && i === 1 ? { code: "ThrottlingException", message: "Rate exceeded" } : undefined));
    const out = await eb.send(new PutEventsCommand({ Entries: [0, 1, 2].map(() => ({ Source: "s", DetailType: "d", Detail: "{}" })) }));
    assert.deepEqual(out.Entries!.map((e) => e.ErrorCode ?? "ok"), ["ok", "ThrottlingException", "ok"]);
    aws.faults.clear();
    oneShot.destroy();
    eb.destroy();
  });

  it("aws emulator - stop drops every connection and start brings the same queues and messages back on the same port", async () => {
    const t = targets.ours();
    const sqs = sqsClient(t);
    const oneShot = new SQSClient({ endpoint: t.endpoint, region: t.region, credentials: t.credentials, maxAttempts: 1 });
    const q = aws.sqs.createQueue(uniqueTag("rst"));
    const empty = aws.sqs.createQueue(uniqueTag("rst"));
    await sqs.send(new SendMessageCommand({ QueueUrl: q.url, MessageBody: "kept" }));
    const port = aws.port;
    const polling = receive(oneShot, empty.url, { wait: 10 });
    await sleep(200);
    await aws.stop();
    await assert.rejects(polling, "a long poll under way is cut");
    await assert.rejects(receive(oneShot, q.url), "nothing listens while stopped");
    await aws.start();
    assert.equal(aws.port, port);
    assert.deepEqual((await receive(sqs, q.url)).map((m) => m.Body), ["kept"]);
    sqs.destroy();
    oneShot.destroy();
  });
});
