/**
 * Shared sink-side helpers: subject template, encoding with limits, nats.js headers.
 */
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/nats-core";
import type { CloudEvent, TraceContext } from "../../src/cloudevents/index.js";
import { BridgeError, SinkError, asBridgeError } from "../../src/core/errors.js";
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
export function prepare(ev: CloudEvent, tpl: Template, mode: NatsMode, maxPayload: number | undefined, trace?: TraceContext): Prepared {
  const subject = tpl.render(ev);
  let out;
  try {
    out = encodeNatsMessage(ev, mode, trace);
  } catch (err) {
    const e = asBridgeError(err);
    throw new SinkError(`cannot encode the event: ${e.message}`, false, { cause: err });
  }
  const h = natsHeaders();
  for (const [k, v] of out.headers) h.append(k, v);
  if (maxPayload !== undefined && maxPayload > 0) {
    // Headers count against the server's max_payload too.
    const size = out.payload.byteLength + h.toString().length;
    if (size > maxPayload) {
      throw new SinkError(`message of ${size} bytes is over the limit of ${maxPayload} bytes`, false, { code: "CEB_TOO_LARGE" });
    }
  }
  return { subject, payload: out.payload, headers: h };
}

/** Rejects when `signal` aborts before `p` settles. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal));
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

export function abortError(signal: AbortSignal): BridgeError {
  const reason: unknown = signal.reason;
  if (reason instanceof BridgeError) return reason;
  return new SinkError(`write aborted${reason instanceof Error ? `: ${reason.message}` : ""}`, true, { code: "CEB_SINK_TIMEOUT", cause: reason });
}
