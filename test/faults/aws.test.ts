/**
 * The fault matrix for the AWS connectors, through the built daemon and the AWS emulator:
 * - the daemon SIGKILLed twice mid-stream with an aws_sqs source, then restarted: every message that
 *   was in flight comes back after its visibility timeout and nothing is lost;
 * - the emulator (SQS and EventBridge) stopped and started again mid-stream, under a source and a sink;
 * - a throttling storm on ReceiveMessage, DeleteMessageBatch and PutEvents (whole calls and entries);
 * - a slow sink: visibility is extended while each delivery takes several visibility timeouts, so no
 *   message is delivered twice.
 * Each prints one `fault-matrix |` line with its counts.
 */
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { startAwsEmulator, type AwsEmulator } from "../emulators/aws/index.js";
import { eventBridgeClient, ruleToQueue, sendBodies, sqsClient } from "../support/aws.js";
import { ids, report, sample, startReceiver, structuredEvent, type Receiver } from "../support/counting.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

const KEY_ID = "AKIDFAULTS";
const SECRET = "faults-secret";
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

async function emulator(): Promise<{ aws: AwsEmulator; sqs: SQSClient; eb: EventBridgeClient }> {
  const aws = await startAwsEmulator({ credentials: { [KEY_ID]: SECRET } });
  const t = { endpoint: aws.url, region: aws.region, credentials: aws.credentials };
  const sqs = sqsClient(t);
  const eb = eventBridgeClient(t);
  cleanups.push(async () => {
    sqs.destroy();
    eb.destroy();
    await aws.close();
  });
  return { aws, sqs, eb };
}

function common(aws: AwsEmulator): string {
  return `endpoint: "${aws.url}", region: ${aws.region}, credentials: { access_key_id: ${KEY_ID}, secret_access_key: ${SECRET} }`;
}

function run(yaml: string): Daemon {
  const d = startDaemon(yaml);
  cleanups.push(() => d.stop("SIGKILL"));
  return d;
}

async function queueDrained(aws: AwsEmulator, name: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(() => aws.sqs.queues.get(name)!.messages.size === 0, timeoutMs, () => `queue ${name} still holds ${aws.sqs.queues.get(name)!.messages.size} messages`);
}

describe("faults - aws", { timeout: 180_000 }, () => {
  test("aws - daemon SIGKILLed twice mid-stream with an aws_sqs source: in-flight messages come back after the visibility timeout, nothing lost", async (t) => {
    const N = 2000;
    const { aws, sqs } = await emulator();
    const q = aws.sqs.createQueue("crash");
    const sent = ids("awsc", N);
    await sendBodies(sqs, q.url, sent.map((id) => structuredEvent(id)));
    const rx = await startReceiver({ delayMs: 2 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: awsc, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  in: { type: aws_sqs, queue_url: "${q.url}", ${common(aws)}, visibility_timeout: 2s, wait_time: 1s }
sinks:
  out: { type: http, url: "${rx.url}" }
routes:
  - { name: crash, from: in, to: [out], max_in_flight: 100 }
`;
    let daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    const atKills: number[] = [];
    for (const f of [0.2, 0.6]) {
      await waitFor(() => rx.tally.distinct >= N * f, 60_000, () => `${rx.tally.distinct}/${N} before the kill\n${daemon.stderr().slice(-2000)}`);
      atKills.push(rx.tally.distinct);
      daemon.proc.kill("SIGKILL");
      await daemon.exited;
      await sleep(200);
      daemon = run(yaml);
    }
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `delivered ${rx.tally.distinct}/${N}, missing ${sample(rx.tally.missing(sent))}\n${daemon.stderr().slice(-2000)}`);
    await queueDrained(aws, "crash");
    const lost = rx.tally.missing(sent);
    report(t, { scenario: "daemon SIGKILL ×2: aws_sqs → HTTP", sent: N, delivered: rx.tally.distinct, duplicates: rx.tally.duplicates, deadLettered: 0, lost: lost.length, note: `killed at ${atKills.join(" and ")} delivered; visibility 2s` });
    assert.deepEqual(lost, []);
    assert.deepEqual(rx.tally.unexpected(sent), []);
    assert.ok(rx.tally.duplicates <= 2 * 100, `at most one window redelivered per kill (duplicates ${rx.tally.duplicates})`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("aws - the emulator stopped and started mid-stream under an aws_sqs source and an aws_eventbridge sink: nothing lost, readiness follows", async (t) => {
    const N = 600;
    const { aws, sqs, eb } = await emulator();
    const q = aws.sqs.createQueue("outage");
    const target = aws.sqs.createQueue("outage-bus-target");
    aws.events.buses.add("outage");
    await ruleToQueue(eb, "all", target.arn, { bus: "outage" });
    const sent = ids("awso", N);
    await sendBodies(sqs, q.url, sent.map((id) => structuredEvent(id)));
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: awso, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  in: { type: aws_sqs, queue_url: "${q.url}", ${common(aws)}, visibility_timeout: 3s, wait_time: 1s }
sinks:
  bus: { type: aws_eventbridge, event_bus: outage, ${common(aws)} }
routes:
  - { name: outage, from: in, to: [bus], max_in_flight: 50, retry: { initial: 100ms, max: 1s, max_elapsed: 2m } }
`;
    const daemon = run(yaml);
    await daemon.waitReady(admin, 30_000);
    const acceptedIds = () => new Set(aws.events.accepted.map((e) => String(e.detail["id"])));
    await waitFor(() => acceptedIds().size >= N * 0.3, 30_000, () => `${acceptedIds().size}/${N} accepted before the outage`);
    const atStop = acceptedIds().size;
    await aws.stop();
    await waitFor(async () => (await fetch(`http://${admin}/readyz`)).status !== 200, 15_000, "not ready while AWS is unreachable");
    await sleep(2_000);
    await aws.start();
    await daemon.waitReady(admin, 30_000);
    await waitFor(() => sent.every((id) => acceptedIds().has(id)), 60_000, () => `${acceptedIds().size}/${N} accepted after the outage\n${daemon.stderr().slice(-2000)}`);
    await queueDrained(aws, "outage");
    const all = aws.events.accepted.map((e) => String(e.detail["id"]));
    const duplicates = all.length - new Set(all).size;
    const lost = sent.filter((id) => !acceptedIds().has(id));
    report(t, { scenario: "emulator stop/start: aws_sqs → aws_eventbridge", sent: N, delivered: acceptedIds().size, duplicates, deadLettered: 0, lost: lost.length, note: `stopped at ${atStop} accepted for 2 s; visibility 3 s, so leases that lapsed meanwhile came back` });
    assert.deepEqual(lost, []);
    assert.ok(duplicates <= 50 + 10, `at most the window (and one batch) redelivered (duplicates ${duplicates})`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("aws - a throttling storm on ReceiveMessage, DeleteMessageBatch and PutEvents (calls and entries): nothing lost, throttled entries resent alone", async (t) => {
    const N = 500;
    const { aws, sqs, eb } = await emulator();
    const q = aws.sqs.createQueue("storm");
    const target = aws.sqs.createQueue("storm-target");
    await ruleToQueue(eb, "all", target.arn);
    const sent = ids("awst", N);
    await sendBodies(sqs, q.url, sent.map((id) => structuredEvent(id)));
    aws.faults.add({ op: "ReceiveMessage", kind: "throttle", times: 40 });
    aws.faults.add({ op: "DeleteMessageBatch", kind: "throttle", times: 20 });
    aws.faults.add({ op: "PutEvents", kind: "throttle", times: 40 });
    const refused = new Set<string>();
    aws.faults.entries((op, entry, i) => {
      if (op !== "PutEvents" || i % 3 !== 0) return undefined;
      const id = String((JSON.parse(String(entry["Detail"])) as { id: string }).id);
      if (refused.has(id)) return undefined;
      refused.add(id);
      return { code: "ThrottlingException", message: "Rate exceeded" };
    });
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: awst, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  in: { type: aws_sqs, queue_url: "${q.url}", ${common(aws)}, visibility_timeout: 10s, wait_time: 1s }
sinks:
  bus: { type: aws_eventbridge, ${common(aws)} }
routes:
  - { name: storm, from: in, to: [bus], max_in_flight: 100, retry: { initial: 50ms, max: 1s, max_elapsed: 2m } }
`;
    const daemon = run(yaml);
    const acceptedIds = () => new Set(aws.events.accepted.map((e) => String(e.detail["id"])));
    await waitFor(() => sent.every((id) => acceptedIds().has(id)), 90_000, () => `${acceptedIds().size}/${N} accepted\n${daemon.stderr().slice(-2000)}`);
    await queueDrained(aws, "storm", 30_000);
    const all = aws.events.accepted.map((e) => String(e.detail["id"]));
    const duplicates = all.length - new Set(all).size;
    report(t, {
      scenario: "throttling storm: aws_sqs → aws_eventbridge",
      sent: N,
      delivered: acceptedIds().size,
      duplicates,
      deadLettered: 0,
      lost: sent.length - acceptedIds().size,
      note: `throttled: ${aws.faults.hits.throttle} calls, ${refused.size} entries once each`,
    });
    assert.equal(aws.faults.hits.throttle, 100, "every injected call-level throttle was hit");
    assert.ok(refused.size >= N / 4, `entries throttled: ${refused.size}`);
    assert.equal(duplicates, 0, "a throttled entry is never accepted twice, and throttled deletes still land");
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });

  test("aws - a slow sink keeps its messages invisible (visibility extended) instead of getting them twice", async (t) => {
    const N = 30;
    const { aws, sqs } = await emulator();
    const q = aws.sqs.createQueue("slow");
    const sent = ids("awss", N);
    await sendBodies(sqs, q.url, sent.map((id) => structuredEvent(id)));
    const rx: Receiver = await startReceiver({ delayMs: 5_000 });
    cleanups.push(() => rx.close());
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: awss, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: warn } }
sources:
  in: { type: aws_sqs, queue_url: "${q.url}", ${common(aws)}, visibility_timeout: 2s, wait_time: 1s }
sinks:
  out: { type: http, url: "${rx.url}", timeout: 20s }
routes:
  - { name: slow, from: in, to: [out], max_in_flight: 10 }
`;
    const extendsBefore = aws.calls.get("sqs.ChangeMessageVisibilityBatch") ?? 0;
    const daemon = run(yaml);
    await waitFor(() => rx.tally.hasAll(sent), 60_000, () => `${rx.tally.distinct}/${N}\n${daemon.stderr().slice(-2000)}`);
    await queueDrained(aws, "slow");
    await sleep(1_500);
    const extendCalls = (aws.calls.get("sqs.ChangeMessageVisibilityBatch") ?? 0) - extendsBefore;
    report(t, { scenario: "slow sink (5 s per event, visibility 2 s): aws_sqs → HTTP", sent: N, delivered: rx.tally.distinct, duplicates: rx.tally.duplicates, deadLettered: 0, lost: rx.tally.missing(sent).length, note: `${extendCalls} visibility extensions` });
    assert.equal(rx.tally.duplicates, 0, "no message delivered twice");
    assert.ok(extendCalls >= 9, `visibility extended (${extendCalls} calls)`);
    assert.equal(await daemon.stop(), 0, daemon.stderr());
  });
});
