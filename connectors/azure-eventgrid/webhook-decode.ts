/**
 * An Event Grid push request → what the webhook source must do with it. PURE (headers and body in).
 *
 * - `application/cloudevents+json` → one CloudEvent; `application/cloudevents-batch+json` → a batch
 *   (CloudEvents delivery schema);
 * - `ce-` headers → one binary-mode CloudEvent;
 * - `application/json` → the Event Grid delivery schema: an array (Event Grid always sends one) or a
 *   single object; an element with a `specversion` member is read as a CloudEvent, any other as an
 *   Event Grid event (mapping.ts). With `aeg-event-type: SubscriptionValidation`, or when the only
 *   event is a `Microsoft.EventGrid.SubscriptionValidationEvent`, the request is the validation
 *   handshake: its `validationCode` (and `validationUrl`) are returned instead of events;
 *   `aeg-event-type: SubscriptionDeletion` is a notice with nothing to deliver;
 * - anything else is refused (415).
 *
 * The nesting limit applies to each event as in the HTTP source (the array adds one level).
 * `aeg-delivery-count` (0 on the first delivery) becomes `deliveryCount` = count + 1.
 */
import { checkJsonDepth, decodeCeHeaders, eventFromBinary, eventFromJson, isBatchMediaType, isStructuredMediaType, mediaEssence, parseBatch, parseStructured, type CloudEvent } from "../../src/cloudevents/index.js";
import { EventValidationError, FormatError, UnsupportedMediaTypeError } from "../../src/core/errors.js";
import { VALIDATION_EVENT_TYPE, eventGridToCloudEvent } from "./mapping.js";

/** Headers as node gives them with `headersDistinct`: lower-case names, every value kept. */
export type DistinctHeaders = Readonly<Record<string, readonly string[] | undefined>>;

export type PushRequest =
  | { readonly kind: "events"; readonly events: CloudEvent[]; readonly deliveryCount: number | undefined }
  | { readonly kind: "validation"; readonly code: string; readonly url: string | undefined }
  | { readonly kind: "deletion" };

export interface PushDecodeOptions {
  readonly maxDepth: number;
}

const UTF8 = new TextDecoder("utf-8", { fatal: true });

function single(headers: DistinctHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined || v.length === 0) return undefined;
  if (v.length > 1) throw new FormatError(`header "${name}" appears ${v.length} times`);
  return v[0];
}

/** `aeg-delivery-count` as our delivery count (1 on the first delivery), or undefined when absent or garbled. */
export function deliveryCountOf(headers: DistinctHeaders): number | undefined {
  const v = headers["aeg-delivery-count"]?.[0];
  if (v === undefined || !/^\d{1,9}$/.test(v.trim())) return undefined;
  return Number(v.trim()) + 1;
}

function withIndex(err: unknown, i: number): unknown {
  if (err instanceof EventValidationError) return new EventValidationError(`event[${i}]: ${err.message}`, err.attribute);
  if (err instanceof FormatError) return new FormatError(`event[${i}]: ${err.message}`, { cause: err });
  return err;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function validation(doc: Record<string, unknown>): PushRequest {
  const data = doc["data"];
  const code = isObject(data) ? data["validationCode"] : undefined;
  if (typeof code !== "string" || code === "") throw new FormatError('the validation event has no "data.validationCode" string');
  const url = isObject(data) && typeof data["validationUrl"] === "string" ? data["validationUrl"] : undefined;
  return { kind: "validation", code, url };
}

/** Decides what a push request carries. Throws typed errors the source maps to 400/413/415. */
export function decodePush(headers: DistinctHeaders, body: Buffer, opts: PushDecodeOptions): PushRequest {
  const eventType = single(headers, "aeg-event-type");
  if (eventType === "SubscriptionDeletion") return { kind: "deletion" };
  const deliveryCount = deliveryCountOf(headers);
  const contentType = single(headers, "content-type");
  const essence = mediaEssence(contentType);
  if (isBatchMediaType(contentType)) {
    if (essence !== "application/cloudevents-batch+json") throw new UnsupportedMediaTypeError(`event format "${essence}" is not supported`);
    return { kind: "events", events: parseBatch(body, { maxDepth: opts.maxDepth }), deliveryCount };
  }
  if (isStructuredMediaType(contentType)) {
    if (essence !== "application/cloudevents+json") throw new UnsupportedMediaTypeError(`event format "${essence}" is not supported`);
    return { kind: "events", events: [parseStructured(body, { maxDepth: opts.maxDepth })], deliveryCount };
  }
  if (essence !== "application/json" && essence !== "text/json") {
    const ce: [string, string][] = [];
    for (const name in headers) if (name.length > 3 && name.startsWith("ce-")) ce.push([name, single(headers, name)!]);
    if (ce.length > 0) return { kind: "events", events: [eventFromBinary(decodeCeHeaders(ce, "ce-"), body, contentType)], deliveryCount };
    throw new UnsupportedMediaTypeError(
      `content type ${contentType ? `"${contentType}"` : "absent"} is not an Event Grid delivery: expected application/json (Event Grid schema) or application/cloudevents+json`,
    );
  }
  let text: string;
  try {
    text = UTF8.decode(body);
  } catch {
    throw new FormatError("body is not valid UTF-8");
  }
  checkJsonDepth(text, opts.maxDepth + 1);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`malformed JSON: ${(err as Error).message}`);
  }
  const items: unknown[] = Array.isArray(doc) ? doc : [doc];
  const first = items[0];
  if (eventType === "SubscriptionValidation" || (items.length === 1 && isObject(first) && first["eventType"] === VALIDATION_EVENT_TYPE)) {
    if (items.length !== 1 || !isObject(first)) throw new FormatError("a validation request must carry exactly one validation event");
    return validation(first);
  }
  const events = new Array<CloudEvent>(items.length);
  for (let i = 0; i < items.length; i++) {
    const item = items[i];
    try {
      events[i] = isObject(item) && Object.hasOwn(item, "specversion") ? eventFromJson(item) : eventGridToCloudEvent(item);
    } catch (err) {
      throw Array.isArray(doc) ? withIndex(err, i) : err;
    }
  }
  return { kind: "events", events, deliveryCount };
}
