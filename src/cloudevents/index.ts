/**
 * The public API of the CloudEvents layer: the event model, validation, media types, the JSON format
 * (single and batch), binary mode with its `ce-` header codec, percent-encoding, 0.3 upconversion and
 * the invalid-message event.
 */
export * from "./event.js";
export {
  BATCH_JSON_CONTENT_TYPE,
  STRUCTURED_JSON_CONTENT_TYPE,
  charsetOf,
  eventFormatOf,
  isBatchMediaType,
  isJsonMediaType,
  isStructuredMediaType,
  isTextMediaType,
  mediaEssence,
} from "./media.js";
export type { EventFormat } from "./media.js";
export {
  checkAttribute,
  isAbsoluteUri,
  isBase64,
  isMediaType,
  isRfc3339,
  isUriReference,
  isValidAttributeName,
  stringProblem,
  validateEvent,
} from "./validate.js";
export { percentDecode, percentEncode } from "./percent.js";
export { decodeCeHeaders, encodeCeHeaders } from "./headers.js";
export type { CeHeaderOptions } from "./headers.js";
export { binaryBody, eventFromBinary } from "./binary.js";
export type { BinaryBody } from "./binary.js";
export {
  checkJsonDepth,
  DEFAULT_MAX_DEPTH,
  eventFromJson,
  parseBatch,
  parseIfStructured,
  parseStructured,
  parseStructuredObject,
  serializeBatch,
  serializeStructured,
  toJsonObject,
} from "./json-format.js";
export type { JsonLimits } from "./json-format.js";
export { attributeFrom03Json, decodeBase64, SPEC_VERSION_03, upconvertAttributes } from "./upconvert.js";
export type { ContentEncoding } from "./upconvert.js";
export { INVALID_EVENT_TYPE, invalidEvent } from "./invalid.js";
export type { InvalidEventInput } from "./invalid.js";
export {
  decodeProtobuf,
  decodeProtobufBatch,
  encodeProtobuf,
  encodeProtobufBatch,
  joinProtobufBatch,
  protobufBatchEntrySize,
  PROTOBUF_BATCH_MEDIA_TYPE,
  PROTOBUF_DATA_MEDIA_TYPE,
  PROTOBUF_MEDIA_TYPE,
} from "./protobuf-format.js";
export {
  formatBatch,
  formatStructured,
  parseBatchAs,
  parseStructuredAs,
} from "./structured.js";
export type { FormattedBody } from "./structured.js";
export { exactInstant, exactMillis, formatInstant, parseInstant } from "./timestamp.js";
export type { Instant } from "./timestamp.js";
export { nanosToRfc3339 } from "./time.js";
export { escapeExtensionName } from "./extension-name.js";
export {
  eventTraceContext,
  formatTraceparent,
  hopParent,
  ownHop,
  parseTraceparent,
  traceContextOf,
  TRACEPARENT,
  TRACESTATE,
  validTracestate,
  withTraceExtension,
} from "./trace-context.js";
export type { TraceContext, Traceparent } from "./trace-context.js";
export {
  PUBSUB_TRACE_ATTRIBUTES,
  toXRay,
  traceAttributes,
  traceFromAttributes,
  traceFromHeaders,
  traceFromUserProperties,
  traceFromXRay,
  traceHeaders,
  traceUserProperties,
  TRACEPARENT_HEADER,
  TRACESTATE_HEADER,
} from "./trace-fields.js";
export type { TraceAttributeNames, UserPropertyMap } from "./trace-fields.js";
