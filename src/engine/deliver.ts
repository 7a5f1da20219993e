/**
 * One event to one sink, with a deadline per attempt and retries for transient failures.
 * Each sink retries on its own, so while retries last a healthy sink never sees a duplicate
 * because another one flapped.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import type { TraceContext } from "../cloudevents/trace-context.js";
import { asBridgeError, type BridgeError, SinkError } from "../core/errors.js";
import type { Sink } from "../core/sink.js";
import { sleep } from "../core/sleep.js";
import { backoffDelay, type RetryPolicy } from "./backoff.js";
import type { Deadlines, Slot } from "./deadlines.js";

export type WriteResult =
  | { readonly ok: true; readonly attempts: number }
  /** `final: true` — permanent failure; `final: false` — transient failure that outlasted the budget or shutdown. */
  | { readonly ok: false; readonly final: boolean; readonly error: BridgeError; readonly attempts: number; readonly retryAfterMs?: number };

export interface WriteOptions {
  readonly retry: RetryPolicy;
  /** Gives each attempt its deadline and aborts every attempt at hard shutdown. */
  readonly deadlines: Deadlines;
  readonly timeoutMs: number;
  /** Aborted at hard shutdown: no retry follows. */
  readonly signal: AbortSignal;
  readonly onRetry?: (error: BridgeError, attempt: number) => void;
}

/** `trace`: the hop context each attempt writes natively (see `Sink.write`). */
export async function writeWithRetry(sink: Sink, event: CloudEvent, opts: WriteOptions, trace?: TraceContext): Promise<WriteResult> {
  const started = Date.now();
  const error = await attemptOnce(sink, event, opts, trace);
  if (error === undefined) return FIRST_TRY;
  return retryAfter(sink, event, opts, trace, error, started);
}

const FIRST_TRY: WriteResult = Object.freeze({ ok: true, attempts: 1 });

/**
 * The rest of `writeWithRetry` once its first attempt failed with `error`; `started` is `Date.now()`
 * before that attempt. For callers that make the first attempt themselves (the route's fast path).
 */
export async function retryAfter(sink: Sink, event: CloudEvent, opts: WriteOptions, trace: TraceContext | undefined, first: BridgeError, started: number): Promise<WriteResult> {
  let error: BridgeError | undefined = first;
  for (let attempt = 1; ; attempt++) {
    if (attempt > 1) {
      error = await attemptOnce(sink, event, opts, trace);
      if (error === undefined) return { ok: true, attempts: attempt };
    }
    if (!error.retryable) return { ok: false, final: true, error, attempts: attempt };
    const retryAfterMs = error instanceof SinkError ? error.retryAfterMs : undefined;
    const delay = backoffDelay(opts.retry, attempt, retryAfterMs);
    if (opts.signal.aborted || Date.now() - started + delay > opts.retry.max_elapsed) {
      return { ok: false, final: false, error, attempts: attempt, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
    }
    opts.onRetry?.(error, attempt);
    if (!(await sleep(delay, opts.signal))) return { ok: false, final: false, error, attempts: attempt };
  }
}

/** What a failed attempt in `slot` counts as: a timeout when the slot's deadline aborted it, else `err` as a `BridgeError`. */
export function attemptError(err: unknown, slot: Slot, opts: WriteOptions): BridgeError {
  if (slot.timedOut) {
    return new SinkError(`write did not complete within ${opts.timeoutMs} ms`, true, { code: "CEB_SINK_TIMEOUT", cause: err });
  }
  return asBridgeError(err);
}

async function attemptOnce(sink: Sink, event: CloudEvent, opts: WriteOptions, trace: TraceContext | undefined): Promise<BridgeError | undefined> {
  const slot = opts.deadlines.start();
  try {
    await sink.write(event, slot.controller.signal, trace);
    return undefined;
  } catch (err) {
    return attemptError(err, slot, opts);
  }
}
