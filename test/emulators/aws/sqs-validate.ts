/**
 * SQS request validation the emulator shares between its calls: batch entry rules, message attribute
 * rules, the bytes a message counts toward `MaximumMessageSize`, and the errors of receipt handles
 * (docs/clouds.md §1.3, §1.9).
 */
import type { MessageAttribute, SqsQueue } from "./sqs-queue.js";
import { AwsError, hasOnlySqsCharacters, sqsError, sqsInvalidParameter } from "./wire.js";

type Json = Record<string, unknown>;

const BATCH_ID = /^[A-Za-z0-9_-]{1,80}$/;
const ATTRIBUTE_NAME = /^[A-Za-z0-9_.-]{1,256}$/;

/** Batch entry rules common to every batch call: 1–10 entries, distinct valid ids. */
export function checkBatch(req: Json): Json[] {
  const entries = req["Entries"];
  if (!Array.isArray(entries) || entries.length === 0) {
    throw sqsError(400, "EmptyBatchRequest", "There should be at least one SendMessageBatchRequestEntry in the request.", "AWS.SimpleQueueService.EmptyBatchRequest");
  }
  if (entries.length > 10) {
    throw sqsError(400, "TooManyEntriesInBatchRequest", `Maximum number of entries per request are 10. You have sent ${entries.length}.`, "AWS.SimpleQueueService.TooManyEntriesInBatchRequest");
  }
  const ids = new Set<string>();
  for (const e of entries as Json[]) {
    const id = e["Id"];
    if (typeof id !== "string" || !BATCH_ID.test(id)) {
      throw sqsError(400, "InvalidBatchEntryId", "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.", "AWS.SimpleQueueService.InvalidBatchEntryId");
    }
    if (ids.has(id)) throw sqsError(400, "BatchEntryIdsNotDistinct", `Id ${id} repeated.`, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct");
    ids.add(id);
  }
  return entries as Json[];
}

export function validateAttributesLoose(v: unknown): Record<string, MessageAttribute> {
  try {
    return validateAttributes(v);
  } catch {
    return {};
  }
}

/** SQS message attribute rules: ≤ 10, names `[A-Za-z0-9_.-]` without AWS./Amazon. or dot rules, typed values. */
export function validateAttributes(v: unknown): Record<string, MessageAttribute> {
  if (v === undefined || v === null) return {};
  if (typeof v !== "object" || Array.isArray(v)) throw sqsInvalidParameter("MessageAttributes must be a map");
  const entries = Object.entries(v as Record<string, MessageAttribute>);
  if (entries.length > 10) throw sqsInvalidParameter(`Number of message attributes [${entries.length}] exceeds the allowed maximum [10].`);
  const out: Record<string, MessageAttribute> = {};
  for (const [name, a] of entries) {
    const lower = name.toLowerCase();
    if (!ATTRIBUTE_NAME.test(name) || lower.startsWith("aws.") || lower.startsWith("amazon.") || name.startsWith(".") || name.endsWith(".") || name.includes("..")) {
      throw sqsInvalidParameter(`Message attribute name '${name}' is invalid.`);
    }
    const type = a?.DataType;
    if (typeof type !== "string" || !/^(String|Number|Binary)(\.[A-Za-z0-9_.-]+)?$/.test(type)) {
      throw sqsInvalidParameter(`The message attribute '${name}' has an invalid message attribute type.`);
    }
    if (type.startsWith("Binary")) {
      if (typeof a.BinaryValue !== "string" || a.BinaryValue === "") throw sqsInvalidParameter(`The message attribute '${name}' must contain a non-empty message attribute value.`);
      out[name] = { DataType: type, BinaryValue: a.BinaryValue };
    } else {
      const s = a.StringValue;
      if (typeof s !== "string" || s === "") throw sqsInvalidParameter(`The message attribute '${name}' must contain a non-empty message attribute value.`);
      if (!hasOnlySqsCharacters(s)) throw sqsError(400, "InvalidMessageContents", `The message attribute '${name}' contains invalid characters.`, "InvalidMessageContents");
      if (type.startsWith("Number") && !/^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(s)) throw sqsInvalidParameter(`Can't cast the value of message attribute '${name}' to a number.`);
      out[name] = { DataType: type, StringValue: s };
    }
  }
  return out;
}

/** An X-Ray trace header's `Root` (other fields such as `Parent`, `Sampled`, `Lineage` are optional). */
const XRAY_ROOT = /(^|;)\s*Root=1-[0-9a-fA-F]{8}-[0-9a-fA-F]{24}\s*(;|$)/;

/** Whether a value is an X-Ray trace header (what SQS requires of `AWSTraceHeader`, and EventBridge keeps of `TraceHeader`). */
export function isXRayHeader(v: unknown): v is string {
  return typeof v === "string" && v.length <= 500 && XRAY_ROOT.test(v);
}

/**
 * `MessageSystemAttributes` of a send: SQS supports only `AWSTraceHeader`, a `String` holding an
 * X-Ray trace header; it does not count toward the message size. Returns the header, if any.
 */
export function validateSystemAttributes(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) throw sqsInvalidParameter("MessageSystemAttributes must be a map");
  let trace: string | undefined;
  for (const [name, a] of Object.entries(v as Record<string, MessageAttribute>)) {
    if (name !== "AWSTraceHeader") throw sqsInvalidParameter(`Message system attribute name '${name}' is invalid.`);
    if (a?.DataType !== "String") throw sqsInvalidParameter(`The message system attribute '${name}' has an invalid message attribute type.`);
    if (!isXRayHeader(a.StringValue)) throw sqsInvalidParameter(`The message system attribute '${name}' must be a correctly formatted AWS X-Ray trace header.`);
    trace = a.StringValue;
  }
  return trace;
}

/** Bytes that count toward MaximumMessageSize: every attribute's name, type and value. */
export function attributeBytes(attrs: Readonly<Record<string, MessageAttribute>>): number {
  let n = 0;
  for (const [name, a] of Object.entries(attrs)) {
    n += Buffer.byteLength(name) + Buffer.byteLength(a.DataType);
    n += a.BinaryValue !== undefined ? Buffer.from(a.BinaryValue, "base64").length : Buffer.byteLength(a.StringValue ?? "");
  }
  return n;
}

export function asList(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

export function invalidHandle(): AwsError {
  return sqsError(404, "ReceiptHandleIsInvalid", "The input receipt handle is invalid.", "ReceiptHandleIsInvalid");
}

export function visibilityProblem(r: ReturnType<SqsQueue["changeVisibility"]>): { code: string; queryCode: string; message: string } | undefined {
  switch (r) {
    case "ok":
      return undefined;
    case "invalid":
      return { code: "ReceiptHandleIsInvalid", queryCode: "ReceiptHandleIsInvalid", message: "The input receipt handle is invalid." };
    case "not-in-flight":
      return { code: "MessageNotInflight", queryCode: "AWS.SimpleQueueService.MessageNotInflight", message: "The message referred to isn't in flight." };
    case "too-long":
      return { code: "InvalidParameterValueException", queryCode: "InvalidParameterValue", message: "Value for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]" };
  }
}
