/**
 * Shared sink-side helpers: subject template, encoding with limits, nats.js headers.
 */
import type { MsgHdrs } from "@nats-io/nats-core";
import type { CloudEvent, EventFormat, TraceContext } from "../../src/cloudevents/index.js";
import { SinkError, asBridgeError } from "../../src/core/errors.js";
import { compileTemplate, type Template } from "../../src/core/template.js";
import { asMsgHdrs, encodeHeaderBlock } from "./header-block.js";
import { encodeNatsMessage, type HeaderEntries, type NatsMode } from "./mapping.js";
import { sanitizeNats } from "./names.js";

export function subjectTemplate(subject: string): Template {
  return compileTemplate(subject, sanitizeNats);
}

export interface Prepared {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: MsgHdrs;
}

/**
 * Renders the subject and encodes the event, with `extra` headers after the event's own (a JetStream
 * sink's `Nats-Msg-Id` and expected stream). Throws `TemplateError` (missing attribute) or a
 * permanent `SinkError` (unserializable data, a header nats cannot carry, over `maxPayload`).
 */
export function prepare(
  ev: CloudEvent,
  tpl: Template,
  mode: NatsMode,
  maxPayload: number | undefined,
  format: EventFormat = "json",
  trace?: TraceContext,
  extra?: HeaderEntries,
): Prepared {
  const subject = tpl.render(ev);
  let out;
  try {
    out = encodeNatsMessage(ev, mode, format, trace);
  } catch (err) {
    const e = asBridgeError(err);
    throw new SinkError(`cannot encode the event: ${e.message}`, false, { cause: err });
  }
  const block = encodeHeaderBlock(extra === undefined || extra.length === 0 ? out.headers : [...out.headers, ...extra]);
  // Headers count against the server's max_payload too.
  const size = out.payload.byteLength + block.byteLength;
  if (maxPayload !== undefined && maxPayload > 0 && size > maxPayload) {
    throw new SinkError(`message of ${size} bytes is over the limit of ${maxPayload} bytes`, false, { code: "CEB_TOO_LARGE" });
  }
  return { subject, payload: out.payload, headers: asMsgHdrs(block) };
}

// Shared with every connector (src/core/abort.ts); re-exported for the NATS modules that import them from here.
export { abortable, abortError } from "../../src/core/abort.js";
