/**
 * The error catalog. One class per failure kind, each with a stable code that appears in logs, HTTP
 * error bodies and dead-letter extensions (`cebridgeerror`). The README's "Error codes" table lists
 * exactly the codes in `ERROR_CODES`; `test/unit/core/errors.test.ts` keeps the two in sync.
 */

/** Every stable error code, with the one-line meaning documented in the README. */
export const ERROR_CODES = {
  CEB_CONFIG: "the config file is invalid (every problem is listed with its location)",
  CEB_USAGE: "the command line is invalid",
  CEB_EVENT_INVALID: "a CloudEvent breaks a rule of the specification (the message names the attribute and the rule)",
  CEB_FORMAT: "a message body could not be decoded (malformed JSON, bad base64, wrong member types)",
  CEB_UNSUPPORTED_MEDIA: "the content type is neither a CloudEvent nor configured for plain wrapping",
  CEB_TOO_LARGE: "a message is over the configured size or depth limit",
  CEB_UNAUTHORIZED: "a request lacks valid credentials",
  CEB_NOT_FOUND: "an HTTP request went to a path that takes no events",
  CEB_METHOD: "an HTTP request used a method other than POST (or OPTIONS for the handshake)",
  CEB_WINDOW_FULL: "the route's in-flight window is full; retry later",
  CEB_SHUTTING_DOWN: "the daemon is stopping and takes no new events",
  CEB_SINK_TRANSIENT: "a sink failed in a way that may succeed later (network, 5xx, 408, 429)",
  CEB_SINK_PERMANENT: "a sink refused the event for good (4xx other than 408/429)",
  CEB_SINK_TIMEOUT: "a sink write passed its deadline",
  CEB_RETRIES_EXHAUSTED: "a transient failure outlasted the retry budget; the source releases the message",
  CEB_TEMPLATE: "a subject/topic/URL template names an attribute the event lacks",
  CEB_TRANSFORM: "a transform would produce an invalid CloudEvent",
  CEB_NOT_CONNECTED: "a connector has no connection right now",
  CEB_CONNECT: "a connector could not connect or bind",
  CEB_LEASE_LOST: "a message's lease (visibility timeout, lock) could not be kept; the broker will redeliver it",
  CEB_SETTLE: "a native settle call (delete, acknowledge, release) failed; the broker will redeliver the message",
  CEB_BUFFER: "a route's disk buffer could not store an event (disk full, I/O error); the source releases it",
  CEB_DEAD_LETTER: "writing to the dead-letter sink failed; the source message is released, not acked",
  CEB_RELOAD: "a hot reload could not be applied (a new sink did not open); the running config stays in force",
  CEB_INTERNAL: "an unexpected error inside the daemon (a bug: please report it)",
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class: a stable `code`, whether retrying may help, and an optional cause chain. */
export class BridgeError extends Error {
  readonly code: ErrorCode;
  /** True when the same operation may succeed later (transient); false when it never will (permanent). */
  readonly retryable: boolean;
  constructor(code: ErrorCode, message: string, retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.retryable = retryable;
  }
}

/** A CloudEvent is invalid. `attribute` names the offending attribute (or member) when there is one. */
export class EventValidationError extends BridgeError {
  readonly attribute: string | undefined;
  constructor(message: string, attribute?: string) {
    super("CEB_EVENT_INVALID", message, false);
    this.attribute = attribute;
  }
}

/** A body or header could not be decoded into a CloudEvent (malformed JSON, bad base64, wrong member types). */
export class FormatError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super("CEB_FORMAT", message, false, options);
  }
}

/** The content type is not one we can read. */
export class UnsupportedMediaTypeError extends BridgeError {
  constructor(message: string) {
    super("CEB_UNSUPPORTED_MEDIA", message, false);
  }
}

/** Input over a size or nesting limit. */
export class TooLargeError extends BridgeError {
  constructor(message: string) {
    super("CEB_TOO_LARGE", message, false);
  }
}

/** A sink write failed. `retryable` splits transient from permanent; `retryAfterMs` is the remote's hint. */
export class SinkError extends BridgeError {
  readonly retryAfterMs: number | undefined;
  constructor(message: string, retryable: boolean, options?: ErrorOptions & { retryAfterMs?: number; code?: ErrorCode }) {
    super(options?.code ?? (retryable ? "CEB_SINK_TRANSIENT" : "CEB_SINK_PERMANENT"), message, retryable, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
}

/** A template placeholder names an attribute the event does not have (and no default was given). */
export class TemplateError extends BridgeError {
  constructor(message: string) {
    super("CEB_TEMPLATE", message, false);
  }
}

/** A transform produced an invalid event. */
export class TransformError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super("CEB_TRANSFORM", message, false, options);
  }
}

/** The connector is not connected; the caller should wait for reconnection. Transient. */
export class NotConnectedError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super("CEB_NOT_CONNECTED", message, true, options);
  }
}

/** A connector could not connect or bind (bad address, refused, auth). Transient: the engine keeps trying. */
export class ConnectError extends BridgeError {
  constructor(message: string, options?: ErrorOptions) {
    super("CEB_CONNECT", message, true, options);
  }
}

/** Wraps anything that is not a BridgeError so it still carries a code. */
export function asBridgeError(err: unknown): BridgeError {
  if (err instanceof BridgeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new BridgeError("CEB_INTERNAL", message, true, { cause: err });
}
