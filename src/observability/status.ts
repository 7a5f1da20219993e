/**
 * Live state of every component and route, read by `/readyz` and `/status`.
 */
export interface ComponentState {
  readonly id: string;
  readonly kind: "source" | "sink";
  readonly type: string;
  up: boolean;
  /** Last connection error message (never contains a secret: messages come from our error classes). */
  lastError?: string;
  since: string;
}

export interface RouteCounters {
  received: number;
  delivered: number;
  filtered: number;
  /** Sink writes retried after a transient failure. */
  retries: number;
  /** Sink writes that failed for good or ran out of retries. */
  failed: number;
  deadLettered: number;
  rejected: number;
  released: number;
  dropped: number;
}

export interface RouteState {
  readonly name: string;
  readonly from: string;
  readonly to: readonly string[];
  readonly deadLetter: string | undefined;
  readonly capacity: number;
  inFlight: number;
  readonly counters: RouteCounters;
}

/** A route's state with every counter at zero. */
export function newRouteState(name: string, from: string, to: readonly string[], deadLetter: string | undefined, capacity: number): RouteState {
  return {
    name,
    from,
    to,
    deadLetter,
    capacity,
    inFlight: 0,
    counters: { received: 0, delivered: 0, filtered: 0, retries: 0, failed: 0, deadLettered: 0, rejected: 0, released: 0, dropped: 0 },
  };
}

/** The one place state is kept for the admin server. */
export class StatusBoard {
  readonly components = new Map<string, ComponentState>();
  readonly routes = new Map<string, RouteState>();
  readonly startedAt = new Date().toISOString();
  stopping = false;
  started = false;

  key(kind: "source" | "sink", id: string): string {
    return `${kind}:${id}`;
  }

  /** Ready once every component is connected and the engine started, and not while stopping. */
  ready(): boolean {
    if (!this.started || this.stopping) return false;
    for (const c of this.components.values()) if (!c.up) return false;
    return true;
  }
}
