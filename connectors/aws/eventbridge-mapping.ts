/**
 * EventBridge ⇔ CloudEvent. PURE: no SDK, no I/O, so the fixture tables in
 * `test/unit/connectors/aws-eventbridge-mapping.test.ts` pin every rule (DESIGN §5, docs/clouds.md
 * §1.2, §1.6, §1.7, docs/cloudevents.md §6.7).
 *
 * Sink (CloudEvent → PutEvents entry): `Source` = `source`, `DetailType` = `type`, `Time` = `time`,
 * `Resources` from the `awsresources` extension, `TraceHeader` = the write's hop context in X-Ray
 * form (`toXRay`; none without one: the event's own `traceparent` extension travels inside a
 * `detail: event` Detail), `EventBusName` = the configured bus (name or ARN). `detail: event` (default) puts the whole
 * structured CloudEvent in `Detail`, so nothing is lost; `detail: data` puts only the data, which must
 * then be a JSON object.
 *
 * Source (the envelope a rule writes into an SQS target → CloudEvent): a CloudEvent in `detail` (what
 * the sink writes with `detail: event`) is restored as it was; any other envelope maps to `id`,
 * `source`, `type` = `detail-type`, `time`, `subject` = the first resource, data = `detail` as JSON,
 * and the extensions `awsaccount`, `awsregion`, `awsresources` (the JSON text of the list, when not
 * empty) and `awsreplayname` (replayed events).
 */
import { SinkError } from "../../src/core/errors.js";
import {
  isJsonMediaType,
  parseStructuredObject,
  serializeStructured,
  validateEvent,
  type AttributeValue,
  type CloudEvent,
} from "../../src/cloudevents/index.js";
import type { TraceContext } from "../../src/cloudevents/trace-context.js";
import { toXRay } from "../../src/cloudevents/trace-fields.js";

/** A PutEvents request entry, with the member names of the API. */
export interface PutEventsEntry {
  readonly Source: string;
  readonly DetailType: string;
  readonly Detail: string;
  readonly EventBusName: string;
  readonly Time?: Date;
  readonly Resources?: string[];
  readonly TraceHeader?: string;
}

export type DetailMode = "event" | "data";

export interface EntryOptions {
  /** Event bus name or ARN. */
  readonly eventBus: string;
  readonly detail: DetailMode;
}

/** EventBridge's limit on `DetailType`. */
export const MAX_DETAIL_TYPE = 128;

/**
 * Builds the PutEvents entry for an event, with `trace` (the bridge's hop, see `Sink.write`) as its
 * `TraceHeader`. Throws a permanent `SinkError` saying why it cannot.
 */
export function encodePutEventsEntry(ev: CloudEvent, opts: EntryOptions, trace?: TraceContext): PutEventsEntry {
  const a = ev.attributes;
  const type = String(a["type"]);
  if (type.length > MAX_DETAIL_TYPE) {
    throw new SinkError(`type is ${type.length} characters; EventBridge DetailType allows at most ${MAX_DETAIL_TYPE}`, false);
  }
  const detail = opts.detail === "event" ? serializeStructured(ev) : detailFromData(ev);
  const entry: { -readonly [K in keyof PutEventsEntry]: PutEventsEntry[K] } = {
    Source: String(a["source"]),
    DetailType: type,
    Detail: detail,
    EventBusName: opts.eventBus,
  };
  const time = a["time"];
  if (typeof time === "string") entry.Time = new Date(time);
  const resources = resourcesOf(a["awsresources"]);
  if (resources) entry.Resources = resources;
  const header = trace !== undefined ? toXRay(trace) : undefined;
  if (header !== undefined) entry.TraceHeader = header;
  return entry;
}

/** `detail: data`: the event's data as the JSON object text EventBridge requires. */
function detailFromData(ev: CloudEvent): string {
  const data = ev.data;
  const ct = ev.attributes["datacontenttype"];
  const refuse = (what: string) =>
    new SinkError(`detail: data needs data that is a JSON object, and this event's data is ${what}; use detail: event to send any event`, false);
  if (data === undefined) throw refuse("absent");
  let value: unknown;
  let text: string | undefined;
  if (data.kind === "json") {
    value = data.value;
    text = data.text;
  } else if (data.kind === "bytes" && (typeof ct !== "string" || isJsonMediaType(ct))) {
    text = Buffer.from(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength).toString("utf8");
    try {
      value = JSON.parse(text);
    } catch {
      throw refuse("not valid JSON");
    }
  } else throw refuse(`not JSON (datacontenttype ${typeof ct === "string" ? ct : "absent"})`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw refuse(Array.isArray(value) ? "a JSON array" : `a JSON ${value === null ? "null" : typeof value}`);
  return text ?? JSON.stringify(value);
}

/** `awsresources`: the JSON text of a list of ARNs (as the source writes it), or a single ARN. */
function resourcesOf(v: AttributeValue | undefined): string[] | undefined {
  if (typeof v !== "string" || v === "") return undefined;
  if (!v.startsWith("[")) return [v];
  let list: unknown;
  try {
    list = JSON.parse(v);
  } catch {
    list = undefined;
  }
  if (!Array.isArray(list) || list.some((r) => typeof r !== "string")) {
    throw new SinkError("awsresources must be a JSON list of ARNs (or one ARN); it cannot become EventBridge Resources", false);
  }
  return list.length > 0 ? (list as string[]) : undefined;
}

/**
 * The entry's size as EventBridge counts it: Time 14 bytes if set, then the UTF-8 bytes of Source,
 * DetailType, Detail and each resource (`TraceHeader` does not count).
 */
export function putEventsEntrySize(e: PutEventsEntry): number {
  let n = e.Time !== undefined ? 14 : 0;
  n += Buffer.byteLength(e.Source) + Buffer.byteLength(e.DetailType) + Buffer.byteLength(e.Detail);
  if (e.Resources) for (const r of e.Resources) n += Buffer.byteLength(r);
  return n;
}

/** The event envelope a rule delivers to an SQS target (the target's default input). */
export interface EventBridgeEnvelope {
  readonly version: string;
  readonly id: string;
  readonly "detail-type": string;
  readonly source: string;
  readonly account?: unknown;
  readonly time?: unknown;
  readonly region?: unknown;
  readonly resources?: unknown;
  readonly detail: Record<string, unknown>;
  readonly "replay-name"?: unknown;
}

/** Whether a parsed JSON document is an EventBridge envelope: `version`, `id`, `detail-type`, `source` strings and a `detail` object. */
export function isEventBridgeEnvelope(doc: unknown): doc is EventBridgeEnvelope {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return false;
  const o = doc as Record<string, unknown>;
  const detail = o["detail"];
  return (
    typeof o["version"] === "string" &&
    typeof o["id"] === "string" &&
    typeof o["detail-type"] === "string" &&
    typeof o["source"] === "string" &&
    typeof detail === "object" &&
    detail !== null &&
    !Array.isArray(detail)
  );
}

/**
 * The CloudEvent of an envelope: the one inside `detail` when `detail` has a `specversion` member,
 * else the mapping above. Validated; throws `EventValidationError` or `FormatError` naming the problem.
 */
export function eventFromEnvelope(env: EventBridgeEnvelope): CloudEvent {
  if (Object.hasOwn(env.detail, "specversion")) return parseStructuredObject(env.detail);
  const attributes: Record<string, AttributeValue> = {
    specversion: "1.0",
    id: env.id,
    source: env.source,
    type: env["detail-type"],
    datacontenttype: "application/json",
  };
  if (typeof env.time === "string") attributes["time"] = env.time;
  const resources = Array.isArray(env.resources) ? env.resources.filter((r): r is string => typeof r === "string") : [];
  if (resources.length > 0) {
    attributes["subject"] = resources[0]!;
    attributes["awsresources"] = JSON.stringify(resources);
  }
  if (typeof env.account === "string" && env.account !== "") attributes["awsaccount"] = env.account;
  if (typeof env.region === "string" && env.region !== "") attributes["awsregion"] = env.region;
  if (typeof env["replay-name"] === "string" && env["replay-name"] !== "") attributes["awsreplayname"] = env["replay-name"];
  return validateEvent({ attributes, data: { kind: "json", value: env.detail } });
}
