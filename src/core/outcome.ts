import type { BridgeError } from "./errors.js";

/**
 * The result of offering one received message to its route, handed to `Received.settle` exactly once.
 *
 * - `delivered`: every sink confirmed every event (filtered and loop-cut events count as delivered).
 *   The source acknowledges (JetStream ack, MQTT PUBACK, HTTP 2xx).
 * - `dead_lettered`: at least one event failed permanently and was written to the route's dead-letter
 *   sink; the source acknowledges, since nothing is lost.
 * - `rejected`: a permanent failure with no dead-letter sink. The source acknowledges or terminates
 *   the message (JetStream term, HTTP 4xx): redelivery would fail the same way.
 * - `errored`: a transient failure outlasted the retry budget, or the daemon is stopping. The source
 *   releases the message for redelivery (JetStream nak, HTTP 503 with Retry-After); `release` says
 *   which, so a source can hand a message back at once at shutdown and after a delay otherwise
 *   (see `release-delay.ts`).
 */
export type Outcome =
  | { readonly status: "delivered" }
  | { readonly status: "dead_lettered"; readonly error: BridgeError }
  | { readonly status: "rejected"; readonly error: BridgeError }
  | ErroredOutcome;

/**
 * Why an `errored` message is released:
 * - `shutdown`: the daemon is stopping; release at once so another replica can take it.
 * - `retries_spent`: a transient failure outlasted its retry budget (a sink's, or the dead-letter
 *   sink's), an earlier event of its ordering key awaits redelivery, or an internal error occurred;
 *   release after a delay.
 */
export type ReleaseReason = "shutdown" | "retries_spent";

export interface ErroredOutcome {
  readonly status: "errored";
  readonly error: BridgeError;
  readonly release: ReleaseReason;
  /** The remote's hint for when to try again (Retry-After), in ms. */
  readonly retryAfterMs?: number;
}

export type OutcomeStatus = Outcome["status"];

const RANK: Record<OutcomeStatus, number> = { delivered: 0, dead_lettered: 1, rejected: 2, errored: 3 };

/** Worst result wins: errored > rejected > dead_lettered > delivered. */
export function worse(a: Outcome, b: Outcome): Outcome {
  return RANK[b.status] > RANK[a.status] ? b : a;
}

export const DELIVERED: Outcome = Object.freeze({ status: "delivered" });
