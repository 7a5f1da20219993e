/**
 * What the emulator checks on publish, and how it converts between the Event Grid schema and the
 * CloudEvents schema when a subscription's delivery schema differs from the topic's input schema
 * (docs/clouds.md §3.5: id↔id, topic↔source, subject↔subject, eventType↔type, eventTime↔time,
 * data↔data; CloudEvents extensions have no slot in the Event Grid schema and are dropped).
 */
import { isObject } from "./http.js";

export type Schema = "eventgrid" | "cloudevents";
export type JsonObject = Record<string, unknown>;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;
const CE_NAME = /^[a-z0-9]+$/;

function nonEmpty(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  return typeof v === "string" && v !== "" ? undefined : `member "${key}" must be a non-empty string`;
}

/**
 * Problems of one Event Grid schema event (undefined when fine). `topicRule`: for a custom topic a
 * given `topic` must equal the topic's resource id; for a domain `topic` names the domain topic.
 */
export function checkEventGridEvent(o: unknown, topicRule: { domain: boolean; resourceId: string }): string | undefined {
  if (!isObject(o)) return "an event must be a JSON object";
  for (const k of ["id", "eventType"]) {
    const p = nonEmpty(o, k);
    if (p) return p;
  }
  if (typeof o["subject"] !== "string") return 'member "subject" must be a string';
  const t = o["eventTime"];
  if (typeof t !== "string" || !RFC3339.test(t)) return 'member "eventTime" must be an ISO-8601 date-time with an offset';
  if (o["dataVersion"] !== undefined && typeof o["dataVersion"] !== "string") return 'member "dataVersion" must be a string';
  if (o["metadataVersion"] !== undefined && o["metadataVersion"] !== "1") return 'member "metadataVersion" must be "1" when given';
  const topic = o["topic"];
  if (topicRule.domain) {
    if (typeof topic !== "string" || topic === "") return 'member "topic" must name the domain topic';
  } else if (topic !== undefined && (typeof topic !== "string" || topic.toLowerCase() !== topicRule.resourceId.toLowerCase())) {
    return `member "topic" must be omitted or equal ${topicRule.resourceId}`;
  }
  return undefined;
}

/** Problems of one CloudEvents 1.0 JSON event (undefined when fine). */
export function checkCloudEvent(o: unknown): string | undefined {
  if (!isObject(o)) return "an event must be a JSON object";
  if (o["specversion"] !== "1.0") return 'member "specversion" must be "1.0"';
  for (const k of ["id", "source", "type"]) {
    const p = nonEmpty(o, k);
    if (p) return p;
  }
  for (const k of Object.keys(o)) {
    if (k === "data_base64") continue;
    if (!CE_NAME.test(k)) return `attribute name "${k}" must consist of a-z and 0-9`;
  }
  if (o["data"] !== undefined && o["data_base64"] !== undefined) return 'members "data" and "data_base64" must not both be present';
  if (o["data_base64"] !== undefined && typeof o["data_base64"] !== "string") return 'member "data_base64" must be a base64 string';
  const t = o["time"];
  if (t !== undefined && (typeof t !== "string" || !RFC3339.test(t))) return 'member "time" must be an RFC 3339 timestamp';
  return undefined;
}

/** An event as the subscription's delivery schema shows it. `resourceId` becomes `topic` / `source`. */
export function toDeliverySchema(event: JsonObject, input: Schema, delivery: Schema, resourceId: string): JsonObject {
  if (input === "eventgrid" && delivery === "eventgrid") {
    return { ...event, topic: resourceId, dataVersion: event["dataVersion"] ?? "", metadataVersion: "1" };
  }
  if (input === "cloudevents" && delivery === "cloudevents") return event;
  if (input === "eventgrid") {
    const out: JsonObject = { specversion: "1.0", id: event["id"], source: resourceId, type: event["eventType"] };
    if (typeof event["subject"] === "string" && event["subject"] !== "") out["subject"] = event["subject"];
    out["time"] = event["eventTime"];
    if (event["data"] !== undefined) out["data"] = event["data"];
    return out;
  }
  const data = event["data"] !== undefined ? event["data"] : event["data_base64"];
  return {
    id: event["id"],
    topic: resourceId,
    subject: typeof event["subject"] === "string" ? event["subject"] : "",
    eventType: event["type"],
    eventTime: typeof event["time"] === "string" ? event["time"] : new Date().toISOString(),
    ...(data !== undefined ? { data } : {}),
    dataVersion: "",
    metadataVersion: "1",
  };
}

/** The Event Grid resource id of a topic (or of a topic in a domain). */
export function resourceIdOf(name: string, domainTopic?: string): string {
  const base = "/subscriptions/00000000-0000-4000-8000-000000000000/resourceGroups/emulator/providers/Microsoft.EventGrid";
  return domainTopic === undefined ? `${base}/topics/${name}` : `${base}/domains/${name}/topics/${domainTopic}`;
}
