/**
 * The SQS receive and settle machinery both AWS sources share (`aws_sqs`, and `aws_eventbridge`,
 * which is the same source reading the queue a rule targets); they differ only in the mapping.
 *
 * - Receive: `receivers` long polls run in parallel. Each reserves window slots first
 *   (`inbox.reserve(1, max_messages)`) and asks SQS for no more messages than it holds, so together
 *   they never hold more messages than the route's window.
 * - Lease: while a message is in flight the kit's lease keeper extends its visibility
 *   (ChangeMessageVisibilityBatch, `visibility_timeout` from now) once a third of it has passed, so a
 *   slow sink does not make SQS hand the message to another consumer; SQS allows 12 h in all.
 * - Settle, through the kit's settle batcher (calls of up to 10 handles per turn): delivered,
 *   dead-lettered and rejected → DeleteMessageBatch; errored → ChangeMessageVisibilityBatch with the
 *   kit's release delay (whole seconds; 0 at shutdown so another replica takes it at once). A message
 *   the route can no longer take is released at once. `ApproximateReceiveCount` is the delivery count.
 * - Readiness: up once GetQueueAttributes (the queue's ARN) or a receive succeeded, down while
 *   receives fail; failures are retried forever with backoff.
 */
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from "@aws-sdk/client-sqs";
import type { ConnectorContext } from "../../src/core/connector.js";
import type { EntryResult } from "../../src/core/batch-writer.js";
import { BridgeError } from "../../src/core/errors.js";
import { LeaseKeeper } from "../../src/core/lease-keeper.js";
import type { Outcome } from "../../src/core/outcome.js";
import { releaseDelay } from "../../src/core/release-delay.js";
import { SettleBatcher } from "../../src/core/settle-batcher.js";
import { sleep } from "../../src/core/sleep.js";
import type { Inbox, Received, Reservation, Source } from "../../src/core/source.js";
import { callErrorOf } from "./aws-errors.js";
import { clientConfig, regionOfQueueUrl, secretsOf } from "./client.js";
import type { SqsSourceConfig } from "./definition.js";
import { decodeSqsMessage, queueArnFromUrl, type SqsAttribute, type SqsDecodeOptions, type SqsInbound } from "./sqs-mapping.js";

type Verb = "delete" | "release";

/** SQS's ceiling on a message's visibility, counted from its receive. */
const MAX_VISIBILITY_MS = 43_200_000;

export class SqsPullSource implements Source {
  private client: SQSClient | undefined;
  private inbox: Inbox | undefined;
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly leases: LeaseKeeper<string>;
  private readonly settles: SettleBatcher<string, Verb>;
  private readonly secrets: string[];
  private readonly visibilityS: number;
  private decodeOpts: SqsDecodeOptions | undefined;
  private failures = 0;

  constructor(
    private readonly cfg: SqsSourceConfig,
    private readonly ctx: ConnectorContext,
    private readonly expect: SqsDecodeOptions["expect"],
  ) {
    this.secrets = secretsOf(cfg);
    this.visibilityS = Math.max(1, Math.ceil(cfg.visibility_timeout / 1000));
    this.leases = new LeaseKeeper<string>({
      leaseMs: this.visibilityS * 1000,
      // Extend once a third of the visibility has passed, not half: the call must land before the
      // timeout even on a loaded host, and SQS started the clock a little before we saw the message.
      marginMs: (this.visibilityS * 1000 * 2) / 3,
      maxHoldMs: MAX_VISIBILITY_MS,
      maxBatch: 10,
      extend: (handles) => this.visibility(handles, this.visibilityS, "CEB_LEASE_LOST"),
      onLost: (_h, error) => ctx.log.warn({ code: error.code, err: error.message }, "could not keep a message invisible; SQS will deliver it again"),
    });
    this.settles = new SettleBatcher<string, Verb>(
      { apply: (verb, handles, delayMs) => (verb === "delete" ? this.delete(handles) : this.visibility(handles, Math.round(delayMs / 1000), "CEB_SETTLE")) },
      // A delete that cannot reach SQS means a duplicate later; keep trying through a short outage
      // (100 ms doubling: about 25 s in all). A handle that expired meanwhile fails for good.
      { maxBatch: 10, attempts: 9, log: ctx.log },
    );
  }

  async start(inbox: Inbox): Promise<void> {
    if (this.inbox) throw new Error(`${this.expect === "eventbridge" ? "aws_eventbridge" : "aws_sqs"} source started twice`);
    this.inbox = inbox;
    const common = await clientConfig(this.cfg, this.ctx, {
      requestTimeoutMs: this.cfg.wait_time + 15_000,
      maxSockets: this.cfg.receivers + 8,
      maxAttempts: 3,
    });
    // An explicit endpoint wins over the queue URL's host (emulators, VPC endpoints).
    this.client = new SQSClient({ ...common, ...(this.cfg.endpoint !== undefined ? { useQueueUrlAsEndpoint: false } : {}) });
    const region = this.cfg.region ?? regionOfQueueUrl(this.cfg.queue_url) ?? (await this.client.config.region().catch(() => "us-east-1"));
    this.decodeOpts = { queueArn: queueArnFromUrl(this.cfg.queue_url, region), expect: this.expect };
    void this.probe();
    for (let i = 0; i < this.cfg.receivers; i++) this.loops.push(this.receive(inbox));
  }

  /** Learns the queue's ARN (the `source` of plain messages) and reports the source up. */
  private async probe(): Promise<void> {
    try {
      const out = await this.client!.send(new GetQueueAttributesCommand({ QueueUrl: this.cfg.queue_url, AttributeNames: ["QueueArn"] }), {
        abortSignal: this.stopping.signal,
      });
      const arn = out.Attributes?.["QueueArn"];
      if (arn) this.decodeOpts = { ...this.decodeOpts!, queueArn: arn };
      if (!this.stopping.signal.aborted) this.ctx.setUp(true);
    } catch (err) {
      // Without sqs:GetQueueAttributes the ARN derived from the URL stands; a receive reports readiness.
      if (!this.stopping.signal.aborted) this.ctx.log.debug({ err: callErrorOf(err, "GetQueueAttributes", "CEB_CONNECT", this.secrets).message }, "queue attributes unavailable");
    }
  }

  private async receive(inbox: Inbox): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      let room: Reservation | undefined;
      try {
        room = await inbox.reserve(1, this.cfg.max_messages, signal);
        if (!inbox.accepting) break;
        const out = await this.client!.send(
          new ReceiveMessageCommand({
            QueueUrl: this.cfg.queue_url,
            MaxNumberOfMessages: room.slots,
            WaitTimeSeconds: Math.floor(this.cfg.wait_time / 1000),
            VisibilityTimeout: this.visibilityS,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
          { abortSignal: signal },
        );
        const receivedAt = Date.now();
        this.succeeded();
        for (const m of out.Messages ?? []) this.handle(m, room, receivedAt);
      } catch (err) {
        if (signal.aborted) break;
        await this.failed(err, signal);
      } finally {
        room?.release();
      }
    }
  }

  private succeeded(): void {
    if (this.failures > 0) this.ctx.log.info({ after: this.failures }, "SQS receives work again");
    this.failures = 0;
    this.ctx.setUp(true);
  }

  private async failed(err: unknown, signal: AbortSignal): Promise<void> {
    this.failures++;
    const error = callErrorOf(err, "ReceiveMessage", "CEB_CONNECT", this.secrets);
    this.ctx.setUp(false);
    // Receivers fail together; one line per doubling of the failure count is enough.
    if ((this.failures & (this.failures - 1)) === 0) this.ctx.log.warn({ code: error.code, err: error.message, failures: this.failures }, "SQS receive failed; retrying");
    await sleep(Math.min(10_000, 100 * 2 ** Math.min(this.failures, 7)) * (0.5 + Math.random()), signal);
  }

  private handle(m: Message, room: Reservation, receivedAt: number): void {
    const handle = m.ReceiptHandle;
    if (handle === undefined || m.MessageId === undefined) return;
    if (room.slots === 0) {
      // SQS never returns more than we asked for; if it did, hand the extra back.
      this.settles.settle("release", handle, 0);
      return;
    }
    const decoded = decodeSqsMessage(inboundOf(m), this.decodeOpts!);
    const count = Number(m.Attributes?.["ApproximateReceiveCount"]);
    const deliveryCount = Number.isInteger(count) && count > 0 ? count : undefined;
    const done = this.leases.hold(handle, receivedAt);
    let settled = false;
    const received: Received = {
      events: [decoded.event],
      ...(decoded.invalid ? { invalid: decoded.invalid } : {}),
      ...(deliveryCount !== undefined ? { deliveryCount } : {}),
      trace: decoded.trace,
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        done();
        this.apply(handle, outcome, deliveryCount, receivedAt);
      },
    };
    if (!room.offer(received)) {
      settled = true;
      done();
      this.settles.settle("release", handle, 0);
    }
  }

  private apply(handle: string, outcome: Outcome, deliveryCount: number | undefined, receivedAt: number): void {
    if (outcome.status !== "errored") return this.settles.settle("delete", handle);
    // SQS takes whole seconds, and no more than what is left of its 12 h since the receive.
    const left = MAX_VISIBILITY_MS - (Date.now() - receivedAt) - 60_000;
    const ms = Math.max(0, Math.min(releaseDelay(outcome, deliveryCount), left));
    this.settles.settle("release", handle, Math.ceil(ms / 1000) * 1000);
  }

  private async delete(handles: readonly string[]): Promise<readonly EntryResult[]> {
    try {
      const out = await this.client!.send(
        new DeleteMessageBatchCommand({ QueueUrl: this.cfg.queue_url, Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })) }),
      );
      return entryResults(handles.length, out.Failed, "DeleteMessageBatch", "CEB_SETTLE");
    } catch (err) {
      throw callErrorOf(err, "DeleteMessageBatch", "CEB_SETTLE", this.secrets);
    }
  }

  private async visibility(handles: readonly string[], seconds: number, code: "CEB_SETTLE" | "CEB_LEASE_LOST"): Promise<readonly EntryResult[]> {
    try {
      const out = await this.client!.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: this.cfg.queue_url,
          Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h, VisibilityTimeout: seconds })),
        }),
      );
      return entryResults(handles.length, out.Failed, "ChangeMessageVisibilityBatch", code);
    } catch (err) {
      throw callErrorOf(err, "ChangeMessageVisibilityBatch", code, this.secrets);
    }
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    // Long polls end at once: SQS keeps a message a poll had not yet returned.
    this.stopping.abort();
    await Promise.all(this.loops);
  }

  async close(deadline?: AbortSignal): Promise<void> {
    await this.stop();
    await this.settles.close(deadline);
    this.leases.close();
    this.client?.destroy();
    this.ctx.setUp(false);
  }
}

/** Per-entry results of a batch settle call: a sender fault will never succeed, anything else may. */
function entryResults(
  n: number,
  failed: readonly { Id?: string; SenderFault?: boolean; Code?: string; Message?: string }[] | undefined,
  what: string,
  code: "CEB_SETTLE" | "CEB_LEASE_LOST",
): EntryResult[] {
  const out: EntryResult[] = new Array<EntryResult>(n).fill(undefined);
  for (const f of failed ?? []) {
    const i = Number(f.Id);
    if (Number.isInteger(i) && i >= 0 && i < n) out[i] = new BridgeError(code, `${what}: ${f.Code ?? "Error"}: ${f.Message ?? ""}`, f.SenderFault !== true);
  }
  return out;
}

/** The SDK's message in the mapping's terms. */
function inboundOf(m: Message): SqsInbound {
  const attrs: Record<string, SqsAttribute> = {};
  for (const [name, a] of Object.entries(m.MessageAttributes ?? {})) {
    attrs[name] = {
      DataType: a.DataType ?? "String",
      ...(a.StringValue !== undefined ? { StringValue: a.StringValue } : {}),
      ...(a.BinaryValue !== undefined ? { BinaryValue: a.BinaryValue } : {}),
    };
  }
  return { messageId: m.MessageId!, body: m.Body ?? "", attributes: (m.Attributes ?? {}) as Record<string, string>, messageAttributes: attrs };
}
