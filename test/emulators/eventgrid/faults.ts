/**
 * Fault injection for the Event Grid emulator: the next N requests of an operation fail with a given
 * status (and optional Retry-After), are delayed, or have their connection dropped.
 */

/** Operations a fault can target. */
export type Operation =
  | "topic.publish"
  | "namespace.publish"
  | "namespace.receive"
  | "namespace.acknowledge"
  | "namespace.release"
  | "namespace.reject"
  | "namespace.renewLock";

export interface Fault {
  readonly op: Operation;
  /** Answer with this status (and an Azure error body) instead of handling the request. */
  readonly status?: number;
  /** `error.code` of the body (default: derived from the status). */
  readonly code?: string;
  /** Retry-After header in seconds. */
  readonly retryAfterSeconds?: number;
  /** Wait this long before handling (or failing) the request. */
  readonly delayMs?: number;
  /** Destroy the connection without an answer. */
  readonly drop?: boolean;
  /** How many requests it applies to (default 1). */
  readonly count?: number;
  /** Only requests for this topic (or namespace topic) name. */
  readonly topic?: string;
}

interface Armed {
  fault: Fault;
  left: number;
}

export class Faults {
  private armed: Armed[] = [];

  inject(fault: Fault): void {
    this.armed.push({ fault, left: fault.count ?? 1 });
  }

  /** The fault that applies to this request, consumed; undefined when none. */
  take(op: Operation, topic: string): Fault | undefined {
    const a = this.armed.find((x) => x.fault.op === op && (x.fault.topic === undefined || x.fault.topic === topic) && x.left > 0);
    if (!a) return undefined;
    a.left--;
    this.armed = this.armed.filter((x) => x.left > 0);
    return a.fault;
  }

  clear(): void {
    this.armed = [];
  }
}

export function codeFor(status: number): string {
  if (status === 400) return "BadRequest";
  if (status === 401) return "Unauthorized";
  if (status === 403) return "Forbidden";
  if (status === 404) return "NotFound";
  if (status === 413) return "PayloadTooLarge";
  if (status === 429) return "TooManyRequests";
  if (status === 503) return "ServiceUnavailable";
  return status >= 500 ? "InternalServerError" : "Error";
}
