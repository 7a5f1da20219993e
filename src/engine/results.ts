/**
 * What a route does with the sinks' answers for one event, as a pure function: each sink's failed
 * `WriteResult` becomes a verdict (dead-letter it, or release the message), and the
 * route's outcome is the worst of them once the dead letters are written. Keeping this apart from the
 * I/O makes the rules readable in one place and testable without sinks.
 */
import { BridgeError } from "../core/errors.js";
import type { ErroredOutcome } from "../core/outcome.js";
import type { WriteResult } from "./deliver.js";

export type SinkVerdict =
  /** Write a dead letter naming this sink; the message is acknowledged once that succeeds. */
  | { readonly kind: "dead_letter"; readonly error: BridgeError; readonly attempts: number }
  /** Release the source message for redelivery. `counted` is false for a cut-off at shutdown. */
  | { readonly kind: "release"; readonly outcome: ErroredOutcome; readonly counted: boolean };

export interface JudgeContext {
  readonly sinkId: string;
  /** Set when the daemon is stopping hard: unfinished writes are released, whatever else holds. */
  readonly shutdown?: BridgeError | undefined;
  /** The source's delivery count for this message, where it reports one. */
  readonly deliveryCount?: number | undefined;
  /** The route's `max_deliveries`. */
  readonly maxDeliveries?: number | undefined;
}

export type FailedWrite = Extract<WriteResult, { ok: false }>;

/**
 * One sink's failed write → what to do.
 * - cut off by shutdown → release at once (not counted as a failure);
 * - permanent → dead letter;
 * - transient past its budget, at or past `max_deliveries` → dead letter (retries exhausted);
 * - transient past its budget otherwise → release after a delay.
 */
export function judge(result: FailedWrite, ctx: JudgeContext): SinkVerdict {
  if (ctx.shutdown) {
    return { kind: "release", outcome: { status: "errored", error: ctx.shutdown, release: "shutdown" }, counted: false };
  }
  if (result.final) return { kind: "dead_letter", error: result.error, attempts: result.attempts };
  if (ctx.maxDeliveries !== undefined && ctx.deliveryCount !== undefined && ctx.deliveryCount >= ctx.maxDeliveries) {
    const error = new BridgeError("CEB_RETRIES_EXHAUSTED", `gave up after ${ctx.deliveryCount} deliveries: ${result.error.message}`, false, {
      cause: result.error,
    });
    return { kind: "dead_letter", error, attempts: result.attempts };
  }
  const error = new BridgeError("CEB_RETRIES_EXHAUSTED", `sink "${ctx.sinkId}": ${result.error.message}`, true, { cause: result.error });
  return {
    kind: "release",
    outcome: { status: "errored", error, release: "retries_spent", ...(result.retryAfterMs !== undefined ? { retryAfterMs: result.retryAfterMs } : {}) },
    counted: true,
  };
}
