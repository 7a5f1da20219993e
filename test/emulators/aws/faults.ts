/**
 * Fault injection for the AWS emulator: request-level faults (throttling, 5xx, dropped connections,
 * delays) chosen by operation and count, and per-entry failures inside a batch call that otherwise
 * succeeds (HTTP 200 with `FailedEntryCount` / `Failed`), which is what the SDK never retries.
 */

/** A request-level fault. */
export interface FaultRule {
  /** Operation name without the service prefix (`PutEvents`, `ReceiveMessage`, `AssumeRole`); default: every operation. */
  readonly op?: string | readonly string[];
  /**
   * - `throttle`: 400 with the service's throttling error (`ThrottlingException`, SQS `RequestThrottled`)
   * - `server-error`: 500 `InternalFailure` (`status` overrides the status)
   * - `drop`: the socket is destroyed without an answer (the SDK sees ECONNRESET)
   * - `delay`: the request is answered normally after `delayMs`
   */
  readonly kind: "throttle" | "server-error" | "drop" | "delay";
  /** How many matching requests it hits (default: every one until removed). */
  readonly times?: number;
  readonly delayMs?: number;
  readonly status?: number;
}

/** A failure for one entry of a batch call: the AWS error code and message (and SQS `SenderFault`). */
export interface EntryFault {
  readonly code: string;
  readonly message?: string;
  readonly senderFault?: boolean;
}

/**
 * Decides the fate of one entry: `op` is the operation, `entry` the request entry (parsed JSON),
 * `index` its position in the call, `call` the 1-based number of that operation's calls so far.
 */
export type EntryFaultFn = (op: string, entry: Record<string, unknown>, index: number, call: number) => EntryFault | undefined;

interface LiveRule {
  readonly rule: FaultRule;
  left: number;
}

export class Faults {
  private rules: LiveRule[] = [];
  private entryFn: EntryFaultFn | undefined;
  /** Requests a rule was applied to, by kind. */
  readonly hits: Record<FaultRule["kind"], number> = { throttle: 0, "server-error": 0, drop: 0, delay: 0 };

  /** Adds a rule; returns a function that removes it. */
  add(rule: FaultRule): () => void {
    const live: LiveRule = { rule, left: rule.times ?? Infinity };
    this.rules.push(live);
    return () => {
      this.rules = this.rules.filter((r) => r !== live);
    };
  }

  /** Sets (or with `undefined` clears) the per-entry fault function. */
  entries(fn: EntryFaultFn | undefined): void {
    this.entryFn = fn;
  }

  clear(): void {
    this.rules = [];
    this.entryFn = undefined;
  }

  /** The rule that applies to this request, consuming one of its `times`. */
  take(op: string): FaultRule | undefined {
    for (const live of this.rules) {
      const ops = live.rule.op;
      const matches = ops === undefined || (typeof ops === "string" ? ops === op : ops.includes(op));
      if (!matches || live.left <= 0) continue;
      live.left--;
      this.hits[live.rule.kind]++;
      return live.rule;
    }
    return undefined;
  }

  entryFault(op: string, entry: Record<string, unknown>, index: number, call: number): EntryFault | undefined {
    return this.entryFn?.(op, entry, index, call);
  }
}
