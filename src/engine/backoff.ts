/**
 * Exponential backoff with jitter. "Equal jitter": half the exponential step is kept so that a
 * flapping sink is not hammered, half is random so that many events do not retry in lockstep.
 */
export interface RetryPolicy {
  readonly initial: number;
  readonly max: number;
  readonly max_elapsed: number;
}

/** Delay before retry number `attempt` (1 = the first retry). A remote `Retry-After` is honoured. */
export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const step = Math.min(policy.max, policy.initial * 2 ** Math.min(attempt - 1, 30));
  const jittered = step / 2 + random() * (step / 2);
  return retryAfterMs !== undefined ? Math.max(retryAfterMs, jittered) : jittered;
}
