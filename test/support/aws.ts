/**
 * Helpers for AWS tests: real SDK clients pointed at a loopback emulator (ours, or fauxqs), native
 * publishing into queues and buses, and readers that drain a queue and decode what arrives with the
 * connector's own mapping.
 */
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from "@aws-sdk/client-eventbridge";
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SQSClient,
} from "@aws-sdk/client-sqs";
import { encodePutEventsEntry } from "../../connectors/aws/eventbridge-mapping.js";
import { encodeSqsMessage } from "../../connectors/aws/sqs-encode.js";
import { decodeSqsMessage, type SqsAttribute, type SqsDecodeOptions } from "../../connectors/aws/sqs-mapping.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";

process.env["AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED"] ??= "true";

/** Where a test's clients go. */
export interface AwsTarget {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
}

export function sqsClient(t: AwsTarget): SQSClient {
  return new SQSClient({ endpoint: t.endpoint, region: t.region, credentials: t.credentials, maxAttempts: 3 });
}

export function eventBridgeClient(t: AwsTarget): EventBridgeClient {
  return new EventBridgeClient({ endpoint: t.endpoint, region: t.region, credentials: t.credentials, maxAttempts: 3 });
}

/** Creates a queue through the API (works against any emulator); returns its URL and ARN. */
export async function createQueue(sqs: SQSClient, name: string, attributes: Record<string, string> = {}): Promise<{ url: string; arn: string }> {
  const fifo = name.endsWith(".fifo");
  const out = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { ...(fifo ? { FifoQueue: "true" } : {}), ...attributes } }));
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: out.QueueUrl!, AttributeNames: ["QueueArn"] }));
  return { url: out.QueueUrl!, arn: attrs.Attributes!["QueueArn"]! };
}

/** Sends events as the aws_sqs sink would (binary mode; FIFO: one group), in order, 10 per call. */
export async function sendEvents(sqs: SQSClient, url: string, events: readonly CloudEvent[], opts: { mode?: "binary" | "structured"; group?: string } = {}): Promise<void> {
  const fifo = url.endsWith(".fifo");
  for (let i = 0; i < events.length; i += 10) {
    const chunk = events.slice(i, i + 10).map((ev, j) => ({
      Id: String(j),
      ...encodeSqsMessage(ev, { mode: opts.mode ?? "binary", fifo, messageGroupId: opts.group ?? "g" }),
    }));
    const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: chunk }));
    if (out.Failed && out.Failed.length > 0) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed)}`);
  }
}

/** Sends plain bodies (strings), 10 per call. */
export async function sendBodies(sqs: SQSClient, url: string, bodies: readonly string[], group?: string): Promise<void> {
  for (let i = 0; i < bodies.length; i += 10) {
    const entries = bodies.slice(i, i + 10).map((b, j) => ({
      Id: String(j),
      MessageBody: b,
      ...(url.endsWith(".fifo") ? { MessageGroupId: group ?? "g", MessageDeduplicationId: `${i + j}-${b.length}-${Math.random()}` } : {}),
    }));
    const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries }));
    if (out.Failed && out.Failed.length > 0) throw new Error(`SendMessageBatch failed: ${JSON.stringify(out.Failed)}`);
  }
}

/** Publishes events with PutEvents as the aws_eventbridge sink would (detail: event), 10 per call, in order. */
export async function putEvents(eb: EventBridgeClient, events: readonly CloudEvent[], bus = "default"): Promise<void> {
  for (let i = 0; i < events.length; i += 10) {
    const out = await eb.send(new PutEventsCommand({ Entries: events.slice(i, i + 10).map((e) => encodePutEventsEntry(e, { eventBus: bus, detail: "event" })) }));
    if (out.FailedEntryCount) throw new Error(`PutEvents failed: ${JSON.stringify(out.Entries)}`);
  }
}

/** A rule on `bus` that sends every event whose source starts with `prefix` to the queue (FIFO: one group). */
export async function ruleToQueue(eb: EventBridgeClient, name: string, queueArn: string, opts: { bus?: string; prefix?: string; pattern?: unknown } = {}): Promise<void> {
  const bus = opts.bus ?? "default";
  const pattern = opts.pattern ?? { source: [{ prefix: opts.prefix ?? "" }] };
  await eb.send(new PutRuleCommand({ Name: name, EventBusName: bus, EventPattern: JSON.stringify(pattern) }));
  await eb.send(
    new PutTargetsCommand({
      Rule: name,
      EventBusName: bus,
      Targets: [{ Id: "q", Arn: queueArn, ...(queueArn.endsWith(".fifo") ? { SqsParameters: { MessageGroupId: "g" } } : {}) }],
    }),
  );
}

export interface QueueReader {
  readonly events: CloudEvent[];
  /** Raw messages as received (body and message attributes). */
  readonly raw: { body: string; attributes: Record<string, SqsAttribute>; system: Record<string, string> }[];
  close(): Promise<void>;
}

/** Drains a queue in the background (receive, decode with the connector's mapping, delete). */
export function readQueue(sqs: SQSClient, url: string, decode: Omit<SqsDecodeOptions, "queueArn"> & { queueArn?: string } = { expect: "any" }): QueueReader {
  const events: CloudEvent[] = [];
  const raw: QueueReader["raw"] = [];
  const stop = new AbortController();
  const loop = (async () => {
    while (!stop.signal.aborted) {
      try {
        const out = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ["All"], MessageSystemAttributeNames: ["All"] }),
          { abortSignal: stop.signal },
        );
        const msgs = out.Messages ?? [];
        for (const m of msgs) {
          const attrs = (m.MessageAttributes ?? {}) as Record<string, SqsAttribute>;
          raw.push({ body: m.Body ?? "", attributes: attrs, system: (m.Attributes ?? {}) as Record<string, string> });
          const d = decodeSqsMessage(
            { messageId: m.MessageId!, body: m.Body ?? "", attributes: (m.Attributes ?? {}) as Record<string, string>, messageAttributes: attrs },
            { queueArn: decode.queueArn ?? "arn:aws:sqs:us-east-1:000000000000:reader", ...decode },
          );
          if (d.invalid) throw new Error(`reader got an invalid message: ${d.invalid.message}`);
          events.push(d.event);
        }
        if (msgs.length > 0) {
          await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
        }
      } catch (err) {
        if (stop.signal.aborted) return;
        if ((err as Error).message.startsWith("reader got")) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  })();
  return {
    events,
    raw,
    async close() {
      stop.abort();
      await loop.catch(() => {});
    },
  };
}
