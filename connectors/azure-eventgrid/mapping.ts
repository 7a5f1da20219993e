/**
 * Event Grid schema ⇔ CloudEvent. PURE: no SDK, no I/O; the clock comes in through `now`.
 * `test/unit/connectors/azure-eventgrid-mapping.test.ts` pins every rule with real system events.
 *
 * Event Grid → CloudEvent (DESIGN §5, docs/cloudevents.md §6.8):
 *   id ← `id`; source ← `topic` (the ARM resource path); type ← `eventType`; subject ← `subject`
 *   (absent when empty: CloudEvents forbids an empty subject); time ← `eventTime` (a time without an
 *   offset is UTC, as Event Grid documents, and gets `Z`); data ← `data` as JSON with
 *   `datacontenttype: application/json` (no data member → no data); extensions `dataversion` ←
 *   `dataVersion` and `metadataversion` ← `metadataVersion`, kept even when empty. Never `dataschema`:
 *   values such as `1.0` are not absolute URIs. Other members are not part of the schema and are ignored.
 *
 * CloudEvent → Event Grid (the sink with `schema: eventgrid`):
 *   id, eventType ← type, subject ← subject (empty when absent: the schema requires it), eventTime ←
 *   time (now when absent: required too), data ← the data as the JSON format would write it (a JSON
 *   value, a string for text, the base64 text for other bytes), dataVersion ← the `dataversion`
 *   extension when it is a string, topic ← the domain topic when publishing to a domain. `source`,
 *   `dataschema`, `datacontenttype` and every other extension have no slot and are not sent (Event
 *   Grid sets `topic` itself; use the CloudEvents schema for a lossless trip).
 */
import { EventValidationError, FormatError } from "../../src/core/errors.js";
import { toJsonObject, validateEvent, type AttributeValue, type CloudEvent } from "../../src/cloudevents/index.js";

/** The event type of Event Grid's subscription validation handshake. */
export const VALIDATION_EVENT_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent";

/** Which Event Grid member each CloudEvent attribute comes from (for error messages on the wire). */
const MEMBER_OF: Readonly<Record<string, string>> = {
  id: "id",
  source: "topic",
  type: "eventType",
  subject: "subject",
  time: "eventTime",
  dataversion: "dataVersion",
  metadataversion: "metadataVersion",
};

const NO_OFFSET = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$/;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stringMember(o: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = o[key];
  if (v === undefined || v === null) {
    if (required) throw new FormatError(`member "${key}" is missing`);
    return undefined;
  }
  if (typeof v !== "string") throw new FormatError(`member "${key}" must be a string`);
  return v;
}

/**
 * One Event Grid schema event (a parsed JSON object) as a CloudEvent. Throws `FormatError` or
 * `EventValidationError` naming the Event Grid member.
 */
export function eventGridToCloudEvent(doc: unknown): CloudEvent {
  if (!isObject(doc)) throw new FormatError("an Event Grid event must be a JSON object");
  const id = stringMember(doc, "id", true)!;
  const topic = stringMember(doc, "topic", true)!;
  const eventType = stringMember(doc, "eventType", true)!;
  const subject = stringMember(doc, "subject", false);
  let time = stringMember(doc, "eventTime", true)!;
  if (NO_OFFSET.test(time)) time += "Z";
  const attributes: Record<string, AttributeValue> = { specversion: "1.0", id, source: topic, type: eventType };
  if (subject !== undefined && subject !== "") attributes["subject"] = subject;
  attributes["time"] = time;
  const hasData = Object.hasOwn(doc, "data");
  if (hasData) attributes["datacontenttype"] = "application/json";
  const dataVersion = stringMember(doc, "dataVersion", false);
  if (dataVersion !== undefined) attributes["dataversion"] = dataVersion;
  const metadataVersion = stringMember(doc, "metadataVersion", false);
  if (metadataVersion !== undefined) attributes["metadataversion"] = metadataVersion;
  try {
    return validateEvent(hasData ? { attributes, data: { kind: "json", value: doc["data"] } } : { attributes });
  } catch (err) {
    if (err instanceof EventValidationError && err.attribute !== undefined && MEMBER_OF[err.attribute] !== undefined) {
      throw new EventValidationError(`member "${MEMBER_OF[err.attribute]}": ${err.message}`, err.attribute);
    }
    throw err;
  }
}

export interface EventGridOutOptions {
  /** The domain topic to publish to (`topic` member), when the endpoint is a domain. */
  readonly domainTopic?: string;
  /** `eventTime` for an event without `time` (ISO 8601). */
  readonly now: () => string;
}

/** The Event Grid schema object the sink publishes for `ev`. */
export function cloudEventToEventGrid(ev: CloudEvent, opts: EventGridOutOptions): Record<string, unknown> {
  const a = ev.attributes;
  const out: Record<string, unknown> = {
    id: a["id"],
    subject: typeof a["subject"] === "string" ? a["subject"] : "",
    eventType: a["type"],
    eventTime: typeof a["time"] === "string" ? a["time"] : opts.now(),
  };
  if (ev.data !== undefined) {
    const json = toJsonObject({ attributes: { datacontenttype: a["datacontenttype"] ?? "application/json" }, data: ev.data });
    out["data"] = Object.hasOwn(json, "data") ? json["data"] : json["data_base64"];
  }
  if (typeof a["dataversion"] === "string") out["dataVersion"] = a["dataversion"];
  if (opts.domainTopic !== undefined) out["topic"] = opts.domainTopic;
  return out;
}
