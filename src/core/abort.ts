/**
 * Deadlines of sink writes: the engine passes each `write` an AbortSignal (its per-write timeout and
 * shutdown). These helpers turn that signal into the error the engine expects and race a promise
 * against it, for every connector.
 */
import { BridgeError, SinkError } from "./errors.js";

/**
 * The error a write rejects with when its signal aborts: the signal's reason when it already is a
 * `BridgeError`, else a transient `SinkError` with code `CEB_SINK_TIMEOUT`.
 */
export function abortError(signal: AbortSignal): BridgeError {
  const reason: unknown = signal.reason;
  if (reason instanceof BridgeError) return reason;
  return new SinkError(`write aborted${reason instanceof Error ? `: ${reason.message}` : ""}`, true, { code: "CEB_SINK_TIMEOUT", cause: reason });
}

/** Rejects with `abortError(signal)` when `signal` aborts before `p` settles; removes its listener either way. */
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
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
