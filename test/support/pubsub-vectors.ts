/**
 * Google's Pub/Sub CloudEvents vectors from the shared folder (`<shared>/vectors/pubsub/`): the example
 * events and MessagePublishedData payloads, and a validator compiled from
 * `schema_pubsub_v1_MessagePublishedData.json`. The schema declares draft-04, whose keywords used
 * there (properties, type, $ref, additionalProperties) mean the same in ajv's default draft, so the
 * `$schema` member is dropped before compiling; `date-time` is checked by Date.parse plus a strict
 * RFC 3339 pattern, `binary` as base64.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv, type ValidateFunction } from "ajv";

const root = process.env["CEBRIDGE_ROOT"] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../..");
const shared = process.env["CEBRIDGE_SHARED"] ?? path.resolve(root, "../shared");

export function pubsubVector(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(shared, "vectors/pubsub", name), "utf8")) as Record<string, unknown>;
}

let validator: ValidateFunction | undefined;

/** Validates a MessagePublishedData value; returns ajv's error text, or undefined when it is valid. */
export function messagePublishedDataProblem(value: unknown): string | undefined {
  if (!validator) {
    const { $schema: _drop, ...schema } = pubsubVector("schema_pubsub_v1_MessagePublishedData.json");
    const ajv = new Ajv({ strict: false, allErrors: true });
    ajv.addFormat("date-time", (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
    ajv.addFormat("binary", (s: string) => /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(s));
    validator = ajv.compile(schema);
  }
  return validator(value) ? undefined : JSON.stringify(validator.errors);
}
