/**
 * Baselines of the AWS scenarios: the same emulator driven by the bare SDK, with the batching and
 * concurrency the connectors use by default, and no bridge in between. What the emulator and the SDK
 * cost on their own, so the cebridge figures can be read against them.
 *
 * - `put-events`: `count` events (after `warmup`) as PutEvents calls of 10, `concurrency` calls in
 *   flight; each event is a small structured CloudEvent in `Detail`, as the sink writes it.
 * - `drain`: `receivers` long polls of 10 with DeleteMessageBatch after each, until `count` messages
 *   were received and deleted.
 *
 * Forked with an `SdkAwsTask`; answers `result` with an `SdkAwsResult`, then exits.
 */
import { EventBridgeClient, PutEventsCommand } from "@aws-sdk/client-eventbridge";
import { DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { WorkerMessage } from "../lib/protocol.js";

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

export type SdkAwsTask =
  | { mode: "put-events"; endpoint: string; keyId: string; secret: string; bus: string; count: number; warmup: number; concurrency: number; tag: string }
  | { mode: "drain"; endpoint: string; keyId: string; secret: string; queueUrl: string; count: number; receivers: number };

export interface SdkAwsResult {
  events: number;
  elapsedMs: number;
  rate: number;
  /** per call (put-events) or per receive (drain), ms */
  callP50: number;
  callP99: number;
  cpuMs: number;
}

function pct(sorted: number[], p: number): number {
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))]!;
}

async function putEvents(t: Extract<SdkAwsTask, { mode: "put-events" }>): Promise<SdkAwsResult> {
  const client = new EventBridgeClient({ endpoint: t.endpoint, region: "us-east-1", credentials: { accessKeyId: t.keyId, secretAccessKey: t.secret } });
  const entry = (i: number) => ({
    Source: "urn:bench",
    DetailType: "dev.cebridge.bench",
    EventBusName: t.bus,
    Detail: JSON.stringify({ specversion: "1.0", id: `${t.tag}-${i}`, source: "urn:bench", type: "dev.cebridge.bench", datacontenttype: "application/json", data: { i } }),
  });
  const run = async (from: number, n: number, calls: number[]) => {
    let next = from;
    const end = from + n;
    const worker = async () => {
      while (next < end) {
        const start = next;
        next = Math.min(end, next + 10);
        const entries = Array.from({ length: next - start }, (_, k) => entry(start + k));
        const t0 = performance.now();
        const out = await client.send(new PutEventsCommand({ Entries: entries }));
        calls.push(performance.now() - t0);
        if (out.FailedEntryCount) throw new Error(`PutEvents: ${out.FailedEntryCount} entries failed`);
      }
    };
    await Promise.all(Array.from({ length: t.concurrency }, worker));
  };
  await run(0, t.warmup, []);
  const calls: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await run(t.warmup, t.count, calls);
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  calls.sort((a, b) => a - b);
  client.destroy();
  return { events: t.count, elapsedMs, rate: (t.count / elapsedMs) * 1000, callP50: pct(calls, 0.5), callP99: pct(calls, 0.99), cpuMs: (cpu.user + cpu.system) / 1000 };
}

async function drain(t: Extract<SdkAwsTask, { mode: "drain" }>): Promise<SdkAwsResult> {
  const client = new SQSClient({ endpoint: t.endpoint, region: "us-east-1", credentials: { accessKeyId: t.keyId, secretAccessKey: t.secret } });
  let got = 0;
  const calls: number[] = [];
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const worker = async () => {
    while (got < t.count) {
      const c0 = performance.now();
      const out = await client.send(
        new ReceiveMessageCommand({ QueueUrl: t.queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageSystemAttributeNames: ["All"], MessageAttributeNames: ["All"] }),
      );
      calls.push(performance.now() - c0);
      const msgs = out.Messages ?? [];
      if (msgs.length === 0) continue;
      got += msgs.length;
      await client.send(new DeleteMessageBatchCommand({ QueueUrl: t.queueUrl, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
    }
  };
  await Promise.all(Array.from({ length: t.receivers }, worker));
  const elapsedMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  calls.sort((a, b) => a - b);
  client.destroy();
  return { events: got, elapsedMs, rate: (got / elapsedMs) * 1000, callP50: pct(calls, 0.5), callP99: pct(calls, 0.99), cpuMs: (cpu.user + cpu.system) / 1000 };
}

process.once("message", (task: SdkAwsTask) => {
  (task.mode === "put-events" ? putEvents(task) : drain(task)).then(
    (result) => {
      process.send?.({ type: "result", result } satisfies WorkerMessage, () => process.exit(0));
    },
    (err: unknown) => {
      process.send?.({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage, () => process.exit(1));
    },
  );
});
