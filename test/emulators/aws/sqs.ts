/**
 * The emulated SQS API (AWS JSON 1.0, `X-Amz-Target: AmazonSQS.<Op>`, docs/clouds.md §1.3): queues,
 * send and batch send with SQS's validation, receive with long polling, delete and visibility
 * (single and batch), FIFO groups and deduplication, redrive to a dead-letter queue.
 */
import type { Faults } from "./faults.js";
import { MAX_VISIBILITY_S, SqsQueue, type MessageAttribute, type QueueSettings, type StoredMessage } from "./sqs-queue.js";
import { asList, attributeBytes, checkBatch, invalidHandle, validateAttributes, validateAttributesLoose, validateSystemAttributes, visibilityProblem } from "./sqs-validate.js";
import { AwsError, hasOnlySqsCharacters, optInt, sqsError, sqsInvalidParameter, sqsMissingParameter, str } from "./wire.js";

export interface SqsOptions {
  readonly region: string;
  readonly accountId: string;
  /** Base of queue URLs (`http://127.0.0.1:<port>`). */
  readonly baseUrl: () => string;
  /** Default `MaximumMessageSize` of new queues. */
  readonly maxMessageBytes: number;
  readonly faults: Faults;
  readonly now?: () => number;
}

type Json = Record<string, unknown>;

const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
const FIFO_NAME = /^[A-Za-z0-9_-]{1,75}\.fifo$/;
const SYSTEM_ATTRIBUTES = [
  "SenderId",
  "SentTimestamp",
  "ApproximateReceiveCount",
  "ApproximateFirstReceiveTimestamp",
  "MessageGroupId",
  "MessageDeduplicationId",
  "SequenceNumber",
  "AWSTraceHeader",
] as const;

function nonExistent(): AwsError {
  return sqsError(400, "QueueDoesNotExist", "The specified queue does not exist.", "AWS.SimpleQueueService.NonExistentQueue");
}

export class SqsService {
  readonly queues = new Map<string, SqsQueue>();
  private readonly now: () => number;
  private readonly entryCalls = new Map<string, number>();

  constructor(private readonly opts: SqsOptions) {
    this.now = opts.now ?? Date.now;
  }

  arnOf(name: string): string {
    return `arn:aws:sqs:${this.opts.region}:${this.opts.accountId}:${name}`;
  }

  urlOf(name: string): string {
    return `${this.opts.baseUrl()}/${this.opts.accountId}/${name}`;
  }

  /** The queue a `QueueUrl` names; the host part is ignored, as with an explicit endpoint in SQS. */
  queueByUrl(url: unknown): SqsQueue {
    if (typeof url !== "string" || url === "") throw sqsMissingParameter("The request must contain the parameter QueueUrl.");
    const parts = url.replace(/\/+$/, "").split("/");
    const q = this.queues.get(parts[parts.length - 1] ?? "");
    if (!q || parts[parts.length - 2] !== this.opts.accountId) throw nonExistent();
    return q;
  }

  queueByArn(arn: string): SqsQueue | undefined {
    const name = arn.split(":").pop() ?? "";
    const q = this.queues.get(name);
    return q && q.arn === arn ? q : undefined;
  }

  /** Creates a queue (used by tests directly as well as by CreateQueue). */
  createQueue(name: string, attributes: Readonly<Record<string, string>> = {}): SqsQueue {
    const fifo = attributes["FifoQueue"] === "true";
    if (fifo ? !FIFO_NAME.test(name) : !QUEUE_NAME.test(name)) {
      throw sqsInvalidParameter(
        fifo ? "The name of a FIFO queue can only include alphanumeric characters, hyphens, or underscores, must end with .fifo suffix" : "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length",
      );
    }
    if (!fifo && name.endsWith(".fifo")) throw sqsInvalidParameter("The name of a FIFO queue needs the attribute FifoQueue=true");
    const settings = this.settings(attributes, fifo);
    const existing = this.queues.get(name);
    if (existing) {
      if (JSON.stringify(existing.settings) !== JSON.stringify(settings)) {
        throw sqsError(400, "QueueNameExists", "A queue already exists with the same name and a different value for attribute(s)", "QueueAlreadyExists");
      }
      return existing;
    }
    const q = new SqsQueue(name, this.urlOf(name), this.arnOf(name), settings, this.now);
    this.queues.set(name, q);
    return q;
  }

  private settings(a: Readonly<Record<string, string>>, fifo: boolean, base?: QueueSettings): QueueSettings {
    const int = (key: string, min: number, max: number, dflt: number): number => {
      const v = a[key];
      if (v === undefined) return dflt;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) throw sqsError(400, "InvalidAttributeValue", `Invalid value for the parameter ${key}.`, "InvalidAttributeValue");
      return n;
    };
    let redrive = base?.redrive;
    if (a["RedrivePolicy"] !== undefined) {
      try {
        const p = JSON.parse(a["RedrivePolicy"]) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
        const max = Number(p.maxReceiveCount);
        if (typeof p.deadLetterTargetArn !== "string" || !Number.isInteger(max) || max < 1 || max > 1000) throw new Error("bad");
        redrive = { deadLetterTargetArn: p.deadLetterTargetArn, maxReceiveCount: max };
      } catch {
        throw sqsError(400, "InvalidAttributeValue", "Value for parameter RedrivePolicy is invalid.", "InvalidAttributeValue");
      }
    }
    return {
      visibilityTimeoutS: int("VisibilityTimeout", 0, MAX_VISIBILITY_S, base?.visibilityTimeoutS ?? 30),
      delayS: int("DelaySeconds", 0, 900, base?.delayS ?? 0),
      waitTimeS: int("ReceiveMessageWaitTimeSeconds", 0, 20, base?.waitTimeS ?? 0),
      retentionS: int("MessageRetentionPeriod", 60, 1_209_600, base?.retentionS ?? 345_600),
      maxMessageBytes: int("MaximumMessageSize", 1024, 1_048_576, base?.maxMessageBytes ?? this.opts.maxMessageBytes),
      fifo,
      contentDedup: a["ContentBasedDeduplication"] !== undefined ? a["ContentBasedDeduplication"] === "true" : (base?.contentDedup ?? false),
      redrive,
    };
  }

  /** Answers one `AmazonSQS.<op>` call. `signal` aborts when the client goes away (long polls end). */
  async handle(op: string, req: Json, signal: AbortSignal): Promise<Json> {
    switch (op) {
      case "CreateQueue": {
        const name = str(req, "QueueName", sqsMissingParameter);
        return { QueueUrl: this.createQueue(name, (req["Attributes"] ?? {}) as Record<string, string>).url };
      }
      case "GetQueueUrl": {
        const q = this.queues.get(str(req, "QueueName", sqsMissingParameter));
        if (!q) throw nonExistent();
        return { QueueUrl: q.url };
      }
      case "ListQueues": {
        const prefix = typeof req["QueueNamePrefix"] === "string" ? req["QueueNamePrefix"] : "";
        return { QueueUrls: [...this.queues.values()].filter((q) => q.name.startsWith(prefix)).map((q) => q.url) };
      }
      case "DeleteQueue":
        this.queues.delete(this.queueByUrl(req["QueueUrl"]).name);
        return {};
      case "PurgeQueue":
        this.queueByUrl(req["QueueUrl"]).purge();
        return {};
      case "GetQueueAttributes":
        return { Attributes: this.attributesOf(this.queueByUrl(req["QueueUrl"])) };
      case "SetQueueAttributes": {
        const q = this.queueByUrl(req["QueueUrl"]);
        Object.assign(q.settings, this.settings((req["Attributes"] ?? {}) as Record<string, string>, q.settings.fifo, q.settings));
        return {};
      }
      case "SendMessage":
        return this.sendOne(this.queueByUrl(req["QueueUrl"]), req);
      case "SendMessageBatch":
        return this.sendBatch(this.queueByUrl(req["QueueUrl"]), req);
      case "ReceiveMessage":
        return this.receive(this.queueByUrl(req["QueueUrl"]), req, signal);
      case "DeleteMessage": {
        const q = this.queueByUrl(req["QueueUrl"]);
        if (q.delete(str(req, "ReceiptHandle", sqsMissingParameter)) === "invalid") throw invalidHandle();
        return {};
      }
      case "DeleteMessageBatch":
        return this.batch(op, this.queueByUrl(req["QueueUrl"]), req, (q, e) => {
          const r = q.delete(String(e["ReceiptHandle"] ?? ""));
          return r === "invalid" ? { code: "ReceiptHandleIsInvalid", message: "The input receipt handle is invalid." } : undefined;
        });
      case "ChangeMessageVisibility": {
        const q = this.queueByUrl(req["QueueUrl"]);
        const v = optInt(req, "VisibilityTimeout", 0, MAX_VISIBILITY_S, sqsInvalidParameter);
        if (v === undefined) throw sqsMissingParameter("The request must contain the parameter VisibilityTimeout.");
        const problem = visibilityProblem(q.changeVisibility(str(req, "ReceiptHandle", sqsMissingParameter), v));
        if (problem) throw sqsError(400, problem.code, problem.message, problem.queryCode);
        return {};
      }
      case "ChangeMessageVisibilityBatch":
        return this.batch(op, this.queueByUrl(req["QueueUrl"]), req, (q, e) => {
          const v = e["VisibilityTimeout"];
          if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_VISIBILITY_S) {
            return { code: "InvalidParameterValue", message: "VisibilityTimeout must be between 0 and 43200" };
          }
          const problem = visibilityProblem(q.changeVisibility(String(e["ReceiptHandle"] ?? ""), v));
          return problem ? { code: problem.queryCode, message: problem.message } : undefined;
        });
      default:
        throw new AwsError(400, "InvalidAction", `The action ${op} is not valid for this endpoint.`, "InvalidAction");
    }
  }

  attributesOf(q: SqsQueue): Record<string, string> {
    const c = q.counts();
    const s = q.settings;
    return {
      QueueArn: q.arn,
      ApproximateNumberOfMessages: String(c.visible),
      ApproximateNumberOfMessagesNotVisible: String(c.inFlight),
      ApproximateNumberOfMessagesDelayed: String(c.delayed),
      VisibilityTimeout: String(s.visibilityTimeoutS),
      DelaySeconds: String(s.delayS),
      ReceiveMessageWaitTimeSeconds: String(s.waitTimeS),
      MessageRetentionPeriod: String(s.retentionS),
      MaximumMessageSize: String(s.maxMessageBytes),
      CreatedTimestamp: String(Math.floor(q.createdAt / 1000)),
      ...(s.fifo ? { FifoQueue: "true", ContentBasedDeduplication: String(s.contentDedup) } : {}),
      ...(s.redrive ? { RedrivePolicy: JSON.stringify(s.redrive) } : {}),
    };
  }

  /** Validates one message of a send call and stores it. Throws an AwsError naming the problem. */
  private store(q: SqsQueue, e: Json): Json {
    const body = e["MessageBody"];
    if (typeof body !== "string" || body === "") throw sqsMissingParameter("The request must contain the parameter MessageBody.");
    if (!hasOnlySqsCharacters(body)) {
      throw sqsError(400, "InvalidMessageContents", "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF", "InvalidMessageContents");
    }
    const attributes = validateAttributes(e["MessageAttributes"]);
    const size = Buffer.byteLength(body) + attributeBytes(attributes);
    if (size > q.settings.maxMessageBytes) {
      throw sqsInvalidParameter(`One or more parameters are invalid. Reason: Message must be shorter than ${q.settings.maxMessageBytes} bytes.`);
    }
    const trace = validateSystemAttributes(e["MessageSystemAttributes"]);
    const groupId = typeof e["MessageGroupId"] === "string" ? e["MessageGroupId"] : undefined;
    const dedupId = typeof e["MessageDeduplicationId"] === "string" ? e["MessageDeduplicationId"] : undefined;
    const delayS = optInt(e, "DelaySeconds", 0, 900, sqsInvalidParameter);
    if (q.settings.fifo) {
      if (groupId === undefined) throw sqsMissingParameter("The request must contain the parameter MessageGroupId.");
      if (dedupId === undefined && !q.settings.contentDedup) {
        throw sqsInvalidParameter("The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly");
      }
      if (delayS !== undefined && delayS !== 0) throw sqsInvalidParameter("Value for parameter DelaySeconds is invalid. Reason: The request include parameter that is not valid for this queue type.");
      for (const [k, v] of [["MessageGroupId", groupId], ["MessageDeduplicationId", dedupId]] as const) {
        if (v !== undefined && !/^[!-~]{1,128}$/.test(v)) throw sqsInvalidParameter(`Value ${v} for parameter ${k} is invalid.`);
      }
    } else if (dedupId !== undefined) {
      throw sqsInvalidParameter("The request include parameter MessageDeduplicationId that is not valid for this queue type");
    }
    const r = q.send({ body, attributes, traceHeader: trace, delayS, groupId, dedupId });
    return {
      MessageId: r.id,
      MD5OfMessageBody: r.md5OfBody,
      ...(r.md5OfAttributes ? { MD5OfMessageAttributes: r.md5OfAttributes } : {}),
      ...(r.sequence ? { SequenceNumber: r.sequence } : {}),
    };
  }

  private sendOne(q: SqsQueue, req: Json): Json {
    return this.store(q, req);
  }

  private sendBatch(q: SqsQueue, req: Json): Json {
    const entries = checkBatch(req);
    const total = entries.reduce((n, e) => n + Buffer.byteLength(String(e["MessageBody"] ?? "")) + attributeBytes(validateAttributesLoose(e["MessageAttributes"])), 0);
    if (total > q.settings.maxMessageBytes) {
      throw sqsError(400, "BatchRequestTooLong", `Batch requests cannot be longer than ${q.settings.maxMessageBytes} bytes.`, "AWS.SimpleQueueService.BatchRequestTooLong");
    }
    const call = this.bump("SendMessageBatch");
    const Successful: Json[] = [];
    const Failed: Json[] = [];
    entries.forEach((e, i) => {
      const fault = this.opts.faults.entryFault("SendMessageBatch", e, i, call);
      if (fault) {
        Failed.push({ Id: e["Id"], SenderFault: fault.senderFault ?? false, Code: fault.code, Message: fault.message ?? fault.code });
        return;
      }
      try {
        Successful.push({ Id: e["Id"], ...this.store(q, e) });
      } catch (err) {
        if (!(err instanceof AwsError)) throw err;
        Failed.push({ Id: e["Id"], SenderFault: err.senderFault, Code: err.queryCode ?? err.code, Message: err.message });
      }
    });
    return { Successful, Failed };
  }

  private bump(op: string): number {
    const n = (this.entryCalls.get(op) ?? 0) + 1;
    this.entryCalls.set(op, n);
    return n;
  }

  private batch(op: string, q: SqsQueue, req: Json, apply: (q: SqsQueue, e: Json) => { code: string; message: string } | undefined): Json {
    const entries = checkBatch(req);
    const call = this.bump(op);
    const Successful: Json[] = [];
    const Failed: Json[] = [];
    entries.forEach((e, i) => {
      const injected = this.opts.faults.entryFault(op, e, i, call);
      if (injected) {
        Failed.push({ Id: e["Id"], SenderFault: injected.senderFault ?? false, Code: injected.code, Message: injected.message ?? injected.code });
        return;
      }
      const problem = apply(q, e);
      if (problem) Failed.push({ Id: e["Id"], SenderFault: true, Code: problem.code, Message: problem.message });
      else Successful.push({ Id: e["Id"] });
    });
    return { Successful, Failed };
  }

  private async receive(q: SqsQueue, req: Json, signal: AbortSignal): Promise<Json> {
    const max = optInt(req, "MaxNumberOfMessages", 1, 10, sqsInvalidParameter) ?? 1;
    const visibility = optInt(req, "VisibilityTimeout", 0, MAX_VISIBILITY_S, sqsInvalidParameter) ?? q.settings.visibilityTimeoutS;
    const waitS = optInt(req, "WaitTimeSeconds", 0, 20, sqsInvalidParameter) ?? q.settings.waitTimeS;
    const deadline = this.now() + waitS * 1000;
    const toDlq = (m: StoredMessage) => {
      const dlq = q.settings.redrive ? this.queueByArn(q.settings.redrive.deadLetterTargetArn) : undefined;
      dlq?.send({ body: m.body, attributes: m.attributes, traceHeader: m.traceHeader, groupId: m.groupId, dedupId: m.dedupId, id: m.id, sentAt: m.sentAt });
    };
    for (;;) {
      if (signal.aborted) return {};
      const got = q.receive(max, visibility, toDlq);
      if (got.length > 0) return { Messages: got.map((m) => this.view(m, req)) };
      const left = deadline - this.now();
      if (left <= 0) return {};
      const next = q.nextVisibleAt();
      await q.waitForChange(next !== undefined ? Math.min(left, next - this.now() + 1) : left, signal);
    }
  }

  /** A received message as ReceiveMessage returns it, with only the attributes asked for. */
  private view(m: StoredMessage, req: Json): Json {
    const wantSystem = new Set([...asList(req["MessageSystemAttributeNames"]), ...asList(req["AttributeNames"])]);
    const all = wantSystem.has("All");
    const system: Record<string, string | undefined> = {
      SenderId: this.opts.accountId,
      SentTimestamp: String(m.sentAt),
      ApproximateReceiveCount: String(m.receiveCount),
      ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
      MessageGroupId: m.groupId,
      MessageDeduplicationId: m.dedupId,
      SequenceNumber: m.sequence,
      AWSTraceHeader: m.traceHeader,
    };
    const Attributes: Record<string, string> = {};
    for (const k of SYSTEM_ATTRIBUTES) {
      const v = system[k];
      if (v !== undefined && (all || wantSystem.has(k))) Attributes[k] = v;
    }
    const names = asList(req["MessageAttributeNames"]);
    const MessageAttributes: Record<string, MessageAttribute> = {};
    for (const [k, v] of Object.entries(m.attributes)) {
      const wanted = names.some((n) => n === "All" || n === ".*" || n === k || (n.endsWith(".*") && k.startsWith(n.slice(0, -1))));
      if (wanted) MessageAttributes[k] = v;
    }
    const hasAttrs = Object.keys(MessageAttributes).length > 0;
    return {
      MessageId: m.id,
      ReceiptHandle: m.handle,
      MD5OfBody: m.md5OfBody,
      Body: m.body,
      ...(Object.keys(Attributes).length > 0 ? { Attributes } : {}),
      ...(hasAttrs ? { MD5OfMessageAttributes: m.md5OfAttributes, MessageAttributes } : {}),
    };
  }
}
