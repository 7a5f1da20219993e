/**
 * SQS message → CloudEvent, for both AWS sources (sending is `sqs-encode.ts`). PURE: no SDK, no I/O,
 * so the fixture tables in `test/unit/connectors/aws-sqs-mapping.test.ts` pin every rule (DESIGN §5,
 * docs/clouds.md §1.3, §1.8, §1.9, docs/cloudevents.md §6.2, §6.6).
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
 * 5. otherwise a plain message: id = MessageId, source = the queue ARN, type
 *    `com.amazonaws.sqs.message`, time = SentTimestamp, data = the body
 *    (`application/json` when it parses, else `text/plain; charset=utf-8`), `partitionkey` =
 *    MessageGroupId, message attributes → extensions `sqs<escaped name>` (see `escapeExtensionName`).
 * Whatever the shape, the `AWSTraceHeader` system attribute (X-Ray form; what an SQS sender, the
 * SQS sink or an EventBridge rule's delivery sets) is the transport trace context, `Decoded.trace`:
 * the engine adds the `traceparent` extension from it to an event that lacks one.
 * With `expect: "eventbridge"` (the aws_eventbridge source) anything that is neither an EventBridge
 * event nor a CloudEvent, plain or in SNS, is refused (CEB_FORMAT).
 * A message that cannot become a CloudEvent becomes a `dev.cebridge.invalid` event with `invalid` set.
 */
import { FormatError, asBridgeError } from "../../src/core/errors.js";
import type { Decoded } from "../../src/core/source.js";
import {
  checkJsonDepth,
  cloneAttributes,
  CORE_ATTRIBUTES,
  decodeCeHeaders,
  DEFAULT_MAX_DEPTH,
  escapeExtensionName,
  eventFromBinary,
  invalidEvent,
  isStructuredMediaType,
  parseStructured,
  parseStructuredObject,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
} from "../../src/cloudevents/index.js";
import { eventFromEnvelope, isEventBridgeEnvelope } from "./eventbridge-mapping.js";
import { traceFromXRay } from "../../src/cloudevents/trace-fields.js";

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

/**
 * Binary mode from `ce-` attributes (`entries` are [name, value] as carried, Numbers already typed):
 * the shared `ce-` codec reads the names (values as they are: SQS and SNS values are Unicode, with no
 * encoding defined), `content-type` is the fallback for `datacontenttype`, and an extension that
 * travelled as a `Number` comes back an Integer.
 */
function binaryEvent(entries: readonly (readonly [string, AttributeValue])[], body: string): CloudEvent {
  const strings: [string, string][] = [];
  const integers = new Map<string, number>();
  let ct: string | undefined;
  for (const [name, value] of entries) {
    const lower = name.toLowerCase();
    if (lower === "content-type") ct ??= String(value);
    strings.push([name, String(value)]);
    if (typeof value === "number" && lower.startsWith("ce-")) integers.set(lower.slice(3), value);
  }
  const attrs = decodeCeHeaders(strings, "ce-", { percent: false });
  const ev = eventFromBinary(attrs, Buffer.from(body, "utf8"), attrs["datacontenttype"] !== undefined ? undefined : ct);
  let attributes: Record<string, AttributeValue> | undefined;
  for (const [k, v] of integers) {
    if (CORE_ATTRIBUTES.has(k) || ev.attributes[k] !== String(v)) continue;
    attributes ??= cloneAttributes(ev.attributes);
    attributes[k] = v;
  }
  return attributes ? validateEvent({ attributes, data: ev.data }) : ev;
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
  if (hasCePrefix(attrs.map(([n]) => n))) return binaryEvent(attrs, message);
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

/**
 * Decodes one received message, with its `AWSTraceHeader` as `trace`. Never throws: failures come
 * back as an invalid-message event.
 */
export function decodeSqsMessage(m: SqsInbound, opts: SqsDecodeOptions): Decoded {
  const decoded = decodeEvent(m, opts);
  const trace = traceFromXRay(m.attributes["AWSTraceHeader"]);
  return trace === undefined ? decoded : { ...decoded, trace };
}

function decodeEvent(m: SqsInbound, opts: SqsDecodeOptions): Decoded {
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
