/**
 * The event a broker source dead-letters when a native message cannot become a CloudEvent (bad JSON,
 * invalid attributes, undecodable headers): the original bytes, the native metadata and the error are
 * preserved as JSON data so that an operator can inspect and redrive it.
 */
import { randomUUID } from "node:crypto";
import type { CloudEvent } from "./event.js";
import { validateEvent } from "./validate.js";

/** The `type` of an invalid-message event. */
export const INVALID_EVENT_TYPE = "dev.cebridge.invalid";

/** What `invalidEvent` needs to know about the message that failed. */
export interface InvalidEventInput {
  /** The native message body, exactly as received. */
  readonly raw: Uint8Array;
  /** The source URI-reference of the connector that received it (becomes the event `source`). */
  readonly source: string;
  /** The failure: a stable error code (`CEB_FORMAT`, ...) and its message. */
  readonly error: { readonly code: string; readonly message: string };
  /** Native metadata (headers, message attributes) as strings; `{}` when absent. */
  readonly metadata?: Record<string, string>;
  /** The event id; a random UUID when absent. Pass the native message id to keep redrives idempotent. */
  readonly id?: string;
}

/**
 * Builds the `dev.cebridge.invalid` event: `specversion` 1.0, `id` as given or a random UUID, `source`
 * as given, `datacontenttype` application/json, data = `{ raw_base64, metadata, error }`. The result
 * is validated; throws `EventValidationError` when `source` or `id` is unusable.
 */
export function invalidEvent(input: InvalidEventInput): CloudEvent {
  const raw = input.raw;
  return validateEvent({
    attributes: {
      specversion: "1.0",
      id: input.id ?? randomUUID(),
      source: input.source,
      type: INVALID_EVENT_TYPE,
      datacontenttype: "application/json",
    },
    data: {
      kind: "json",
      value: {
        raw_base64: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString("base64"),
        metadata: input.metadata ?? {},
        error: { code: input.error.code, message: input.error.message },
      },
    },
  });
}
