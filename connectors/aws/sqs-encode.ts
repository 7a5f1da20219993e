/**
 * CloudEvent → SQS message (the `aws_sqs` sink; receiving is `sqs-mapping.ts`). PURE, with fixture
 * tables in `test/unit/connectors/aws-sqs-mapping.test.ts`.
 *
 * Sending: `binary` puts the data in the body and each attribute in a `ce-<attr>` message attribute
 * (`datacontenttype` as `content-type`; Integers typed `Number`), as long as that fits SQS: at most 10
 * attributes, a non-empty body of valid SQS text. Otherwise, and in `structured` mode, the body is
 * the JSON event with `content-type: application/cloudevents+json; charset=utf-8`. Nothing is ever
 * cut. FIFO queues get `MessageGroupId` from `partitionkey` (or the configured default) and
 * `MessageDeduplicationId` = SHA-256 of `source` + NUL + `id`. The write's hop context (see
 * `Sink.write`) becomes the `AWSTraceHeader` system attribute in X-Ray form; the event's own
 * `traceparent` extension stays in its encoding (`ce-traceparent` or the JSON event).
 */
import { SinkError } from "../../src/core/errors.js";
import { sha256Hex } from "../../src/core/sha256.js";
import { binaryBody, serializeStructured, type CloudEvent } from "../../src/cloudevents/index.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { toXRay } from "../../src/cloudevents/trace-fields.js";
import { eventIdDigest } from "../../src/cloudevents/id-digest.js";

export const STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8";

/** A SendMessageBatch entry without its `Id`, with the member names of the API. */
export interface SqsOutbound {
  readonly MessageBody: string;
  readonly MessageAttributes: Record<string, { DataType: string; StringValue: string }>;
  readonly MessageGroupId?: string;
  readonly MessageDeduplicationId?: string;
  readonly MessageSystemAttributes?: { AWSTraceHeader: { DataType: "String"; StringValue: string } };
}

export interface SqsEncodeOptions {
  readonly mode: "binary" | "structured";
  /** The queue is FIFO (its URL ends in `.fifo`). */
  readonly fifo: boolean;
  /** `MessageGroupId` for events without `partitionkey` (FIFO). */
  readonly messageGroupId?: string | undefined;
}

/** SQS's message attribute limit. */
export const MAX_MESSAGE_ATTRIBUTES = 10;

/** Characters SQS accepts in a body or attribute value: #x9 #xA #xD #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF. */
export function isSqsText(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x9 || c === 0xa || c === 0xd || (c >= 0x20 && c <= 0xd7ff) || (c >= 0xe000 && c <= 0xfffd)) continue;
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        i++;
        continue;
      }
    }
    return false;
  }
  return true;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

/** The binary-mode message, or undefined when it does not fit SQS (then structured mode is used). */
function binaryMessage(ev: CloudEvent): Pick<SqsOutbound, "MessageBody" | "MessageAttributes"> | undefined {
  const { body, contentType } = binaryBody(ev);
  if (body === undefined || body.byteLength === 0) return undefined;
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    return undefined;
  }
  if (!isSqsText(text)) return undefined;
  const attrs: Record<string, { DataType: string; StringValue: string }> = {};
  let n = 0;
  for (const name in ev.attributes) {
    if (name === "datacontenttype") continue;
    const v = ev.attributes[name]!;
    const s = String(v);
    if (s === "" || !isSqsText(s) || ++n > MAX_MESSAGE_ATTRIBUTES) return undefined;
    attrs[`ce-${name}`] = { DataType: typeof v === "number" ? "Number" : "String", StringValue: s };
  }
  if (contentType !== undefined) {
    if (contentType === "" || !isSqsText(contentType) || ++n > MAX_MESSAGE_ATTRIBUTES) return undefined;
    attrs["content-type"] = { DataType: "String", StringValue: contentType };
  }
  return { MessageBody: text, MessageAttributes: attrs };
}

const GROUP_ID = /^[!-~]{1,128}$/;

/**
 * Encodes an event for SendMessage(Batch), with `trace` as its `AWSTraceHeader`. Throws a permanent
 * `SinkError` when it cannot be sent.
 */
export function encodeSqsMessage(ev: CloudEvent, opts: SqsEncodeOptions, trace?: TraceContext): SqsOutbound {
  const bin = opts.mode === "binary" ? binaryMessage(ev) : undefined;
  let out: { -readonly [K in keyof SqsOutbound]: SqsOutbound[K] } = bin ?? {
    MessageBody: serializeStructured(ev),
    MessageAttributes: { "content-type": { DataType: "String", StringValue: STRUCTURED_CONTENT_TYPE } },
  };
  if (opts.fifo) {
    const key = ev.attributes["partitionkey"];
    let group: string | undefined;
    if (key !== undefined && String(key) !== "") {
      const k = String(key);
      // A key SQS cannot take as it is keeps its grouping through its digest.
      group = GROUP_ID.test(k) ? k : sha256Hex(k);
    } else group = opts.messageGroupId;
    if (group === undefined) {
      throw new SinkError("a FIFO queue needs a MessageGroupId: the event has no partitionkey and message_group_id is not set", false);
    }
    out = { ...out, MessageGroupId: group, MessageDeduplicationId: deduplicationId(ev) };
  }
  const header = trace !== undefined ? toXRay(trace) : undefined;
  if (header !== undefined) out.MessageSystemAttributes = { AWSTraceHeader: { DataType: "String", StringValue: header } };
  return out;
}

/** `MessageDeduplicationId`: lower-case hex SHA-256 of `source` + U+0000 + `id` (64 characters, within SQS's 128). */
export function deduplicationId(ev: CloudEvent): string {
  return eventIdDigest(ev);
}

/**
 * Bytes that count toward SQS's message size: the body plus every attribute's name, type and value
 * (system attributes such as `AWSTraceHeader` do not count).
 */
export function sqsMessageSize(m: SqsOutbound): number {
  let n = Buffer.byteLength(m.MessageBody);
  for (const name in m.MessageAttributes) {
    const a = m.MessageAttributes[name]!;
    n += Buffer.byteLength(name) + Buffer.byteLength(a.DataType) + Buffer.byteLength(a.StringValue);
  }
  return n;
}
