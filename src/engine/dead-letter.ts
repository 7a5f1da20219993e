/**
 * The dead-letter event: the original CloudEvent, unwrapped, plus context extensions that say what
 * failed where (DESIGN §4).
 */
import { cloneAttributes, type CloudEvent } from "../cloudevents/event.js";
import type { BridgeError } from "../core/errors.js";

const MAX_REASON_BYTES = 1024;

export interface DeadLetterContext {
  readonly route: string;
  /** The sink that refused the event; absent when the failure happened before any sink. */
  readonly sink?: string;
  readonly attempts: number;
}

export function deadLetterEvent(event: CloudEvent, error: BridgeError, ctx: DeadLetterContext): CloudEvent {
  const attributes = cloneAttributes(event.attributes);
  attributes["cebridgeerror"] = error.code;
  attributes["cebridgereason"] = reasonText(error.message);
  attributes["cebridgeroute"] = ctx.route;
  if (ctx.sink !== undefined) attributes["cebridgesink"] = ctx.sink;
  attributes["cebridgeattempts"] = ctx.attempts;
  return { attributes, data: event.data };
}

/**
 * A reason that is a valid CloudEvents String: control characters become spaces, and it is cut to
 * at most 1 KiB of UTF-8 without splitting a code point (or a surrogate pair).
 */
export function reasonText(message: string): string {
  // eslint-disable-next-line no-control-regex
  let text = message.replace(/[\u0000-\u001f\u007f-\u009f]/g, " ").replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, "\ufffd");
  if (text === "") text = "(no message)";
  if (Buffer.byteLength(text, "utf8") <= MAX_REASON_BYTES) return text;
  let bytes = 0;
  let end = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch, "utf8");
    if (bytes + size > MAX_REASON_BYTES - 3) break;
    bytes += size;
    end += ch.length;
  }
  return text.slice(0, end) + "...";
}
