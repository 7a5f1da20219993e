/**
 * How long a source should wait before a released message comes back, one rule for every source
 * (JetStream `nak(delay)`, SQS visibility, Event Grid release delay, AMQP has none).
 */
import type { ErroredOutcome } from "./outcome.js";

export interface ReleaseDelayPolicy {
  /** Delay after the first delivery; doubles with each further delivery. Default 1 s. */
  readonly baseMs?: number;
  /** Largest backoff delay. Default 30 s. */
  readonly maxMs?: number;
  /**
   * The only delays the remote accepts, in ms, ascending. The computed delay is rounded up to the
   * next allowed value (the largest when it is above all), so a message never comes back sooner
   * than the policy asked.
   */
  readonly allowedMs?: readonly number[];
}

/** Event Grid namespaces accept a release delay of 0, 10, 60, 600 or 3600 seconds only. */
export const EVENT_GRID_RELEASE_DELAYS_MS: readonly number[] = Object.freeze([0, 10_000, 60_000, 600_000, 3_600_000]);

/** A sink's Retry-After hint is honoured up to this, however large the backoff cap. */
const MAX_RETRY_AFTER_MS = 300_000;

/**
 * The delay before a released message should be redelivered, in ms.
 * - `shutdown`: 0, so another replica takes the message at once.
 * - a Retry-After hint from the sink: honoured, capped at max(maxMs, 5 min).
 * - otherwise exponential: baseMs · 2^(deliveryCount − 1), capped at maxMs; an unknown delivery
 *   count counts as the first delivery.
 */
export function releaseDelay(outcome: ErroredOutcome, deliveryCount: number | undefined, policy: ReleaseDelayPolicy = {}): number {
  const base = policy.baseMs ?? 1_000;
  const max = policy.maxMs ?? 30_000;
  let ms: number;
  if (outcome.release === "shutdown") ms = 0;
  else if (outcome.retryAfterMs !== undefined && outcome.retryAfterMs >= 0) ms = Math.min(outcome.retryAfterMs, Math.max(max, MAX_RETRY_AFTER_MS));
  else ms = Math.min(max, base * 2 ** Math.max(0, Math.min((deliveryCount ?? 1) - 1, 30)));
  return policy.allowedMs ? roundUpTo(policy.allowedMs, ms) : ms;
}

function roundUpTo(allowed: readonly number[], ms: number): number {
  for (const a of allowed) if (a >= ms) return a;
  return allowed[allowed.length - 1] ?? ms;
}
