/**
 * Structured and batch mode across event formats: one place that turns a content type and a body
 * into events, and events into a body with its content type, for every binding (HTTP, NATS, MQTT,
 * AMQP and the cloud connectors). The JSON format is `json-format.ts`, Protobuf `protobuf-format.ts`.
 */
import { UnsupportedMediaTypeError } from "../core/errors.js";
import type { CloudEvent } from "./event.js";
import { parseBatch, parseStructured, serializeBatch, serializeStructured, type JsonLimits } from "./json-format.js";
import { BATCH_JSON_CONTENT_TYPE, eventFormatOf, mediaEssence, STRUCTURED_JSON_CONTENT_TYPE, type EventFormat } from "./media.js";
import {
  decodeProtobuf,
  decodeProtobufBatch,
  encodeProtobuf,
  encodeProtobufBatch,
  PROTOBUF_BATCH_MEDIA_TYPE,
  PROTOBUF_MEDIA_TYPE,
} from "./protobuf-format.js";

/** A serialized event (or batch) and the content type that names its format. */
export interface FormattedBody {
  readonly body: Uint8Array;
  readonly contentType: string;
}

function unsupported(ct: string | undefined, batch: boolean): UnsupportedMediaTypeError {
  const kinds = batch ? "application/cloudevents-batch+json or +protobuf" : "application/cloudevents+json or +protobuf";
  return new UnsupportedMediaTypeError(`event format "${mediaEssence(ct) ?? ""}" is not supported; use ${kinds}`);
}

/**
 * Parses a structured-mode body in the format its content type names (see `eventFormatOf`).
 * Throws `UnsupportedMediaTypeError` for an unknown format, else what the format's parser throws.
 * `limits` apply to JSON (Protobuf has a fixed schema and no nesting to bound).
 */
export function parseStructuredAs(contentType: string | undefined, body: Uint8Array, limits?: JsonLimits): CloudEvent {
  switch (eventFormatOf(contentType)) {
    case "json":
      return parseStructured(body, limits);
    case "protobuf":
      return decodeProtobuf(body);
    default:
      throw unsupported(contentType, false);
  }
}

/** Parses a batch-mode body in the format its content type names. Throws like `parseStructuredAs`. */
export function parseBatchAs(contentType: string | undefined, body: Uint8Array, limits?: JsonLimits): CloudEvent[] {
  switch (eventFormatOf(contentType)) {
    case "json":
      return parseBatch(body, limits);
    case "protobuf":
      return decodeProtobufBatch(body);
    default:
      throw unsupported(contentType, true);
  }
}

/** One event in structured mode. Throws `FormatError` for data that cannot be serialized. */
export function formatStructured(ev: CloudEvent, format: EventFormat): FormattedBody {
  if (format === "protobuf") return { body: encodeProtobuf(ev), contentType: PROTOBUF_MEDIA_TYPE };
  return { body: Buffer.from(serializeStructured(ev), "utf8"), contentType: STRUCTURED_JSON_CONTENT_TYPE };
}

/** Events in batch mode. Throws `FormatError` for data that cannot be serialized. */
export function formatBatch(evs: readonly CloudEvent[], format: EventFormat): FormattedBody {
  if (format === "protobuf") return { body: encodeProtobufBatch(evs), contentType: PROTOBUF_BATCH_MEDIA_TYPE };
  return { body: Buffer.from(serializeBatch(evs), "utf8"), contentType: BATCH_JSON_CONTENT_TYPE };
}
