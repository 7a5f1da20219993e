/**
 * SQS message ⇔ CloudEvent. PURE: no SDK, no I/O, so the fixture tables in
 * `test/unit/connectors/aws-sqs-mapping.test.ts` pin every rule (DESIGN §5, docs/clouds.md §1.3,
 * §1.8, §1.9, docs/cloudevents.md §6.2, §6.6).
 *
 * Receiving, first match wins:
 * 1. a message attribute named `ce-<attr>` (any case) → binary mode: attributes from the `ce-`
 *    message attributes (a `Number` extension that is an Integer comes back as one), data = the body,
 *    `datacontenttype` from `ce-datacontenttype`, else the `content-type` attribute;
 * 2. the `content-type` attribute says `application/cloudevents+json`, or the body is a JSON object
 *    with `specversion` → structured mode;
 * 3. an SNS notification (`Type` Notification, `TopicArn`, `MessageId`, string `Message`) is
 *    unwrapped: a CloudEvent in `Message` (structured, or `ce-` SNS message attributes) or an
 *    EventBridge envelope in it is decoded as such; anything else maps to id = SNS MessageId,
 *    source = TopicArn, type `com.amazonaws.sns.notification`, subject = Subject, time = Timestamp,
 *    data = Message, SNS message attributes → extensions `sns<escaped name>`;
 * 4. an EventBridge envelope (a rule's SQS target) → `eventFromEnvelope`;
 * 5. otherwise a plain message: id = MessageId, source = the
 *    queue ARN, type `com.amazonaws.sqs.message`, time = SentTimestamp, data = the body
 *    (`application/json` when it parses, else `text/plain; charset=utf-8`), `partitionkey` =
 *    MessageGroupId, `traceparent` from AWSTraceHeader, message attributes → extensions
 *    `sqs<escaped name>` (see `escapeExtensionName`).
 * With `expect: "eventbridge"` (the aws_eventbridge source) anything that is neither an EventBridge
 * event nor a CloudEvent, plain or in SNS, is refused (CEB_FORMAT).
 * A message that cannot become a CloudEvent becomes a `dev.cebridge.invalid` event with `invalid` set.
 *
 * Sending: `binary` puts the data in the body and each attribute in a `ce-<attr>` message attribute
 * (`datacontenttype` as `content-type`; Integers typed `Number`), as long as that fits SQS: at most 10
 * attributes, a non-empty body of valid SQS text. Otherwise, and in `structured` mode, the body is
 * the JSON event with `content-type: application/cloudevents+json; charset=utf-8`. Nothing is ever
 * cut. FIFO queues get `MessageGroupId` from `partitionkey` (or the configured default) and
 * `MessageDeduplicationId` = SHA-256 of `source` + NUL + `id`.
 */
import { createHash } from "node:crypto";
import { EventValidationError, FormatError, SinkError, asBridgeError } from "../../src/core/errors.js";
import type { Decoded } from "../../src/core/source.js";
import {
  binaryBody,
  checkJsonDepth,
  cloneAttributes,
  CORE_ATTRIBUTES,
  DEFAULT_MAX_DEPTH,
  escapeExtensionName,
  eventFromBinary,
  invalidEvent,
  isStructuredMediaType,
  isValidAttributeName,
  parseStructured,
  parseStructuredObject,
  serializeStructured,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
} from "../../src/cloudevents/index.js";
import { eventFromEnvelope, isEventBridgeEnvelope } from "./eventbridge-mapping.js";
import { traceparentFromXray, xrayFromTraceparent } from "./xray.js";

/** A message attribute as the SDK returns and takes it. */
export interface SqsAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
  readonly BinaryValue?: Uint8Array;
}

/** What the mapping needs from a received SQS message. */
export interface SqsInbound {
  readonly messageId: string;
  readonly body: string;
  /** System attributes (`SentTimestamp`, `MessageGroupId`, `AWSTraceHeader`, ...). */
  readonly attributes: Readonly<Record<string, string>>;
  readonly messageAttributes: Readonly<Record<string, SqsAttribute>>;
}

export interface SqsDecodeOptions {
  /** `source` of plain messages and of invalid-message events. */
  readonly queueArn: string;
  /** `eventbridge`: a message that is neither an EventBridge event nor a CloudEvent is invalid. */
  readonly expect: "any" | "eventbridge";
  readonly maxDepth?: number;
}

export const SQS_MESSAGE_TYPE = "com.amazonaws.sqs.message";
export const SNS_NOTIFICATION_TYPE = "com.amazonaws.sns.notification";
export const STRUCTURED_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8";
const JSON_TYPE = "application/json";
const TEXT_TYPE = "text/plain; charset=utf-8";
const INT32_MIN = -2_147_483_648;
const INT32_MAX = 2_147_483_647;

/** `arn:<partition>:sqs:<region>:<account>:<name>` for a queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`). */
export function queueArnFromUrl(url: string, region: string): string {
  const path = new URL(url).pathname.replace(/\/+$/, "").split("/");
  const name = path[path.length - 1] ?? "";
  const account = path[path.length - 2] ?? "";
  const partition = region.startsWith("cn-") ? "aws-cn" : region.startsWith("us-gov-") ? "aws-us-gov" : "aws";
  return `arn:${partition}:sqs:${region}:${account}:${name}`;
}

/** An Integer when the text is one in CloudEvents' range, else the text. */
function numberValue(text: string): AttributeValue {
  if (!/^-?(0|[1-9]\d{0,9})$/.test(text)) return text;
  const n = Number(text);
  return n >= INT32_MIN && n <= INT32_MAX ? n : text;
}

/** A message attribute's value as an extension value: Number → Integer where it is one, Binary → base64. */
function attributeValue(a: SqsAttribute): AttributeValue {
  if (a.DataType.startsWith("Binary")) return Buffer.from(a.BinaryValue ?? new Uint8Array(0)).toString("base64");
  const s = a.StringValue ?? "";
  return a.DataType.startsWith("Number") ? numberValue(s) : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Parses `text` when it looks like a JSON object; undefined when it is not JSON. Throws TooLargeError when too deep. */
function jsonObjectOf(text: string, maxDepth: number): Record<string, unknown> | undefined {
  let i = 0;
  while (i < text.length && (text[i] === " " || text[i] === "\n" || text[i] === "\r" || text[i] === "\t")) i++;
  if (text[i] !== "{") return undefined;
  checkJsonDepth(text, maxDepth);
  try {
    const doc: unknown = JSON.parse(text);
    return isObject(doc) ? doc : undefined;
  } catch {
    return undefined;
  }
}

function isJsonText(text: string, maxDepth: number): boolean {
  const t = text.trim();
  if (t === "") return false;
  try {
    checkJsonDepth(t, maxDepth);
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}

/** Binary mode from `ce-` attributes: `entries` are [name, value, isNumber] as carried. */
function binaryEvent(entries: readonly (readonly [string, AttributeValue])[], body: string, contentType: string | undefined): CloudEvent {
  const strings: Record<string, string> = {};
  const integers: [string, number][] = [];
  let ct = contentType;
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (lower === "content-type") {
      ct ??= String(value);
      continue;
    }
    if (!lower.startsWith("ce-")) continue;
    const attr = lower.slice(3);
    if (!isValidAttributeName(attr)) throw new EventValidationError(`message attribute "${name}": "${attr}" is not a valid attribute name (lower-case a-z, 0-9)`, attr);
    if (Object.hasOwn(strings, attr)) throw new EventValidationError(`message attribute "${name}": attribute "${attr}" appears more than once`, attr);
    strings[attr] = String(value);
    if (typeof value === "number" && !CORE_ATTRIBUTES.has(attr)) integers.push([attr, value]);
  }
  const explicit = strings["datacontenttype"];
  const ev = eventFromBinary(strings, Buffer.from(body, "utf8"), explicit !== undefined ? undefined : ct);
  if (integers.length === 0) return ev;
  const attributes = cloneAttributes(ev.attributes);
  for (const [k, v] of integers) attributes[k] = v;
  return validateEvent({ attributes, data: ev.data });
}

function hasCePrefix(names: Iterable<string>): boolean {
  for (const n of names) if (n.length > 3 && n.slice(0, 3).toLowerCase() === "ce-") return true;
  return false;
}

/** The SNS notification envelope (raw message delivery off). */
function isSnsNotification(doc: Record<string, unknown>): boolean {
  return doc["Type"] === "Notification" && typeof doc["TopicArn"] === "string" && typeof doc["MessageId"] === "string" && typeof doc["Message"] === "string";
}

/** SNS message attributes `{ Type, Value }` as [name, value] pairs (Number → Integer where it is one). */
function snsAttributes(doc: Record<string, unknown>): [string, AttributeValue][] {
  const attrs = doc["MessageAttributes"];
  if (!isObject(attrs)) return [];
  const out: [string, AttributeValue][] = [];
  for (const [name, a] of Object.entries(attrs)) {
    if (!isObject(a) || typeof a["Value"] !== "string") continue;
    out.push([name, a["Type"] === "Number" ? numberValue(a["Value"]) : a["Value"]]);
  }
  return out;
}

function fromSns(doc: Record<string, unknown>, opts: SqsDecodeOptions, maxDepth: number): CloudEvent {
  const message = doc["Message"] as string;
  const attrs = snsAttributes(doc);
  if (hasCePrefix(attrs.map(([n]) => n))) return binaryEvent(attrs, message, undefined);
  const inner = jsonObjectOf(message, maxDepth);
  if (inner && Object.hasOwn(inner, "specversion")) return parseStructuredObject(inner);
  if (inner && isEventBridgeEnvelope(inner)) return eventFromEnvelope(inner);
  if (opts.expect === "eventbridge") throw notEventBridge("an SNS notification whose message");
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: doc["MessageId"] as string,
    source: doc["TopicArn"] as string,
    type: SNS_NOTIFICATION_TYPE,
    datacontenttype: inner || isJsonText(message, maxDepth) ? JSON_TYPE : TEXT_TYPE,
  };
  if (typeof doc["Subject"] === "string" && doc["Subject"] !== "") attributes["subject"] = doc["Subject"];
  if (typeof doc["Timestamp"] === "string") attributes["time"] = doc["Timestamp"];
  for (const [name, value] of attrs) attributes[escapeExtensionName("sns", name)] = value;
  return validateEvent({ attributes, data: { kind: "bytes", bytes: Buffer.from(message, "utf8") } });
}

function plainEvent(m: SqsInbound, opts: SqsDecodeOptions, maxDepth: number, isJson: boolean): CloudEvent {
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: m.messageId,
    source: opts.queueArn,
    type: SQS_MESSAGE_TYPE,
    datacontenttype: isJson || isJsonText(m.body, maxDepth) ? JSON_TYPE : TEXT_TYPE,
  };
  const sent = Number(m.attributes["SentTimestamp"]);
  if (m.attributes["SentTimestamp"] !== undefined && Number.isFinite(sent)) attributes["time"] = new Date(sent).toISOString();
  const group = m.attributes["MessageGroupId"];
  if (group !== undefined && group !== "") attributes["partitionkey"] = group;
  const trace = traceparentFromXray(m.attributes["AWSTraceHeader"]);
  if (trace) attributes["traceparent"] = trace;
  for (const [name, a] of Object.entries(m.messageAttributes)) attributes[escapeExtensionName("sqs", name)] = attributeValue(a);
  return validateEvent({ attributes, data: { kind: "bytes", bytes: Buffer.from(m.body, "utf8") } });
}

function decodeOrThrow(m: SqsInbound, opts: SqsDecodeOptions): CloudEvent {
  const maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  const names = Object.keys(m.messageAttributes);
  if (hasCePrefix(names)) {
    return binaryEvent(
      Object.entries(m.messageAttributes).map(([n, a]) => [n, attributeValue(a)] as const),
      m.body,
      undefined,
    );
  }
  const ctAttr = Object.entries(m.messageAttributes).find(([n]) => n.toLowerCase() === "content-type")?.[1];
  if (ctAttr && isStructuredMediaType(ctAttr.StringValue)) return parseStructured(m.body, { maxDepth });
  const doc = jsonObjectOf(m.body, maxDepth);
  if (doc) {
    if (Object.hasOwn(doc, "specversion")) return parseStructuredObject(doc);
    if (isSnsNotification(doc)) return fromSns(doc, opts, maxDepth);
    if (isEventBridgeEnvelope(doc)) return eventFromEnvelope(doc);
  }
  if (opts.expect === "eventbridge") throw notEventBridge("the message");
  return plainEvent(m, opts, maxDepth, doc !== undefined);
}

function notEventBridge(what: string): FormatError {
  return new FormatError(`${what} is not an EventBridge event (no version, id, detail-type, source and detail object), nor a CloudEvent`);
}

/** Native metadata kept in an invalid-message event. */
function metadataOf(m: SqsInbound): Record<string, string> {
  const md: Record<string, string> = { message_id: m.messageId };
  for (const [k, v] of Object.entries(m.attributes)) md[`attribute:${k}`] = v;
  for (const [k, a] of Object.entries(m.messageAttributes)) md[`message_attribute:${k}`] = String(attributeValue(a));
  return md;
}

/** Decodes one received message. Never throws: failures come back as an invalid-message event. */
export function decodeSqsMessage(m: SqsInbound, opts: SqsDecodeOptions): Decoded {
  try {
    return { event: decodeOrThrow(m, opts) };
  } catch (err) {
    const error = asBridgeError(err);
    const raw = Buffer.from(m.body, "utf8");
    const md = metadataOf(m);
    let event: CloudEvent;
    try {
      event = invalidEvent({ raw, source: opts.queueArn, error: { code: error.code, message: error.message }, metadata: md, id: m.messageId });
    } catch {
      event = invalidEvent({ raw, source: "urn:cebridge:aws:sqs", error: { code: error.code, message: error.message }, metadata: md });
    }
    return { event, invalid: error };
  }
}

// ---------------------------------------------------------------------------------------------------
// Sending

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

/** Encodes an event for SendMessage(Batch). Throws a permanent `SinkError` when it cannot be sent. */
export function encodeSqsMessage(ev: CloudEvent, opts: SqsEncodeOptions): SqsOutbound {
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
      group = GROUP_ID.test(k) ? k : createHash("sha256").update(k).digest("hex");
    } else group = opts.messageGroupId;
    if (group === undefined) {
      throw new SinkError("a FIFO queue needs a MessageGroupId: the event has no partitionkey and message_group_id is not set", false);
    }
    out = { ...out, MessageGroupId: group, MessageDeduplicationId: deduplicationId(ev) };
  }
  const trace = xrayFromTraceparent(ev.attributes["traceparent"]);
  if (trace) out.MessageSystemAttributes = { AWSTraceHeader: { DataType: "String", StringValue: trace } };
  return out;
}

/** `MessageDeduplicationId`: lower-case hex SHA-256 of `source` + U+0000 + `id` (64 characters, within SQS's 128). */
export function deduplicationId(ev: CloudEvent): string {
  return createHash("sha256").update(String(ev.attributes["source"])).update("\u0000").update(String(ev.attributes["id"])).digest("hex");
}

/** Bytes that count toward SQS's message size: the body plus every attribute's name, type and value. */
export function sqsMessageSize(m: SqsOutbound): number {
  let n = Buffer.byteLength(m.MessageBody);
  for (const name in m.MessageAttributes) {
    const a = m.MessageAttributes[name]!;
    n += Buffer.byteLength(name) + Buffer.byteLength(a.DataType) + Buffer.byteLength(a.StringValue);
  }
  return n;
}
