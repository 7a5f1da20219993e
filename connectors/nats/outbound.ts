/**
 * Shared sink-side helpers: subject template, encoding with limits, nats.js headers.
 */
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/nats-core";
import type { CloudEvent, EventFormat, TraceContext } from "../../src/cloudevents/index.js";
import { SinkError, asBridgeError } from "../../src/core/errors.js";
import { compileTemplate, type Template } from "../../src/core/template.js";
import { encodeNatsMessage, type NatsMode } from "./mapping.js";
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
 * Renders the subject and encodes the event. Throws `TemplateError` (missing attribute) or a
 * permanent `SinkError` (unserializable data, over `maxPayload`).
 */
export function prepare(
  ev: CloudEvent,
  tpl: Template,
  mode: NatsMode,
  maxPayload: number | undefined,
  format: EventFormat = "json",
  trace?: TraceContext,
): Prepared {
  const subject = tpl.render(ev);
  let out;
  try {
    out = encodeNatsMessage(ev, mode, format, trace);
  } catch (err) {
    const e = asBridgeError(err);
    throw new SinkError(`cannot encode the event: ${e.message}`, false, { cause: err });
  }
  const h = natsHeaders();
  for (const [k, v] of out.headers) h.append(k, v);
  if (maxPayload !== undefined && maxPayload > 0) {
    // Headers count against the server's max_payload too.
    const size = out.payload.byteLength + headerBlockLength(out.headers);
    if (size > maxPayload) {
      throw new SinkError(`message of ${size} bytes is over the limit of ${maxPayload} bytes`, false, { code: "CEB_TOO_LARGE" });
    }
  }
  return { subject, payload: out.payload, headers: h };
}

/**
 * The length of the header block nats.js writes for `headers` (`NATS/1.0`, then `\r\nname: value`
 * per value with the value trimmed, then `\r\n\r\n`), without building it: `MsgHdrs.toString()`
 * per event only to measure it showed in the profile.
 */
export function headerBlockLength(headers: readonly (readonly [string, string])[]): number {
  if (headers.length === 0) return 0;
  let n = 12;
  for (const [k, v] of headers) n += 4 + k.length + v.trim().length;
  return n;
}

// Shared with every connector (src/core/abort.ts); re-exported for the NATS modules that import them from here.
export { abortable, abortError } from "../../src/core/abort.js";
