/**
 * HTTP request → CloudEvents, as a pure function of headers and body (the binding's mode rules).
 * Throws typed errors that the server maps to status codes.
 */
import { randomUUID } from "node:crypto";
import type { CloudEvent } from "../../src/cloudevents/event.js";
import { decodeCeHeaders, eventFromBinary } from "../../src/cloudevents/index.js";
import { isBatchMediaType, isStructuredMediaType, mediaEssence } from "../../src/cloudevents/media.js";
import { parseBatchAs, parseStructuredAs } from "../../src/cloudevents/structured.js";
import { validateEvent } from "../../src/cloudevents/validate.js";
import { FormatError, UnsupportedMediaTypeError } from "../../src/core/errors.js";

export interface DecodeOptions {
  readonly maxDepth: number;
  readonly plain?: { readonly type: string; readonly source: string; readonly id_header?: string };
}

/** Headers as node gives them with `headersDistinct`: lower-case names, every value kept. */
export type DistinctHeaders = Readonly<Record<string, readonly string[] | undefined>>;

export function decodeRequest(headers: DistinctHeaders, body: Buffer, opts: DecodeOptions): CloudEvent[] {
  const contentType = single(headers, "content-type");
  if (isBatchMediaType(contentType)) {
    requireFormat(contentType, BATCH_TYPES);
    return parseBatchAs(contentType, body, { maxDepth: opts.maxDepth });
  }
  if (isStructuredMediaType(contentType)) {
    requireFormat(contentType, STRUCTURED_TYPES);
    return [parseStructuredAs(contentType, body, { maxDepth: opts.maxDepth })];
  }
  const ce: [string, string][] = [];
  for (const name in headers) {
    if (name.length <= 3 || !name.startsWith("ce-")) continue;
    const value = single(headers, name);
    if (value !== undefined) ce.push([name, value]);
  }
  if (ce.length > 0) return [eventFromBinary(decodeCeHeaders(ce, "ce-"), body, contentType)];
  if (opts.plain) return [wrapPlain(headers, body, contentType, opts.plain)];
  throw new UnsupportedMediaTypeError(
    `not a CloudEvent: no ce- headers and content type ${contentType ? `"${contentType}"` : "absent"}; send binary mode (ce-* headers), ` +
      "application/cloudevents+json, application/cloudevents+protobuf or their -batch types",
  );
}

const STRUCTURED_TYPES = ["application/cloudevents+json", "application/cloudevents+protobuf"];
const BATCH_TYPES = ["application/cloudevents-batch+json", "application/cloudevents-batch+protobuf"];

/** HTTP names its formats exactly (415 for a bare `application/cloudevents` or an unknown suffix). */
function requireFormat(contentType: string | undefined, expected: readonly string[]): void {
  const essence = mediaEssence(contentType);
  if (essence === undefined || !expected.includes(essence)) {
    throw new UnsupportedMediaTypeError(`event format "${essence}" is not supported; use ${expected.join(" or ")}`);
  }
}

function single(headers: DistinctHeaders, name: string): string | undefined {
  const values = headers[name];
  if (values === undefined || values.length === 0) return undefined;
  if (values.length > 1) throw new FormatError(`header "${name}" appears ${values.length} times; a CloudEvents header must appear once`);
  return values[0];
}

/** A non-CloudEvents request wrapped per the source's `plain` settings (DESIGN §5 table). */
function wrapPlain(headers: DistinctHeaders, body: Buffer, contentType: string | undefined, plain: NonNullable<DecodeOptions["plain"]>): CloudEvent {
  const id = (plain.id_header !== undefined ? single(headers, plain.id_header.toLowerCase()) : undefined) || randomUUID();
  return validateEvent({
    attributes: {
      specversion: "1.0",
      id,
      source: plain.source,
      type: plain.type,
      time: new Date().toISOString(),
      ...(contentType ? { datacontenttype: contentType } : {}),
    },
    ...(body.length > 0 ? { data: { kind: "bytes", bytes: body } } : {}),
  });
}
