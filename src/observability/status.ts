/**
 * Live state of every component and route, read by `/readyz`, `/status` and the status page.
 */
import { Redactor } from "./redact.js";

export interface ComponentState {
  readonly id: string;
  readonly kind: "source" | "sink";
  readonly type: string;
  up: boolean;
  /** Last connection error message (never contains a secret: messages come from our error classes). */
  lastError?: string;
  /** When `lastError` was recorded. */
  lastErrorAt?: string;
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
  /** Counters of the route's name; a route restarted by a reload keeps them (as its metrics do). */
  readonly counters: RouteCounters;
  /** When this route (this definition of it) started: a reload that leaves it alone keeps it. */
  readonly since: string;
  /** The route's buffer, when it has one: read when `/status` is asked. */
  buffer?: { snapshot(): Record<string, unknown> };
}

/** A route's state; counters start at zero unless the counters of its earlier definition are passed. */
export function newRouteState(
  name: string,
  from: string,
  to: readonly string[],
  deadLetter: string | undefined,
  capacity: number,
  counters?: RouteCounters,
): RouteState {
  return {
    name,
    from,
    to,
    deadLetter,
    capacity,
    inFlight: 0,
    counters: counters ?? { received: 0, delivered: 0, filtered: 0, retries: 0, failed: 0, deadLettered: 0, rejected: 0, released: 0, dropped: 0 },
    since: new Date().toISOString(),
  };
}

/** One problem kept for `/status`: a warning or error the daemon logged, already redacted. */
export interface RecentError {
  readonly at: string;
  readonly level: "warn" | "error";
  /** `route:<name>`, `source:<id>`, `sink:<id>` or `engine`. */
  readonly where: string;
  readonly code?: string;
  /** The event's id, when the problem concerns one event. */
  readonly event?: string;
  /** The sink the problem is about, when it names one (a route's write failure). */
  readonly sink?: string;
  readonly message: string;
}

/** Text kept per entry, at most. */
const MAX_ERROR_TEXT = 500;

/** A bounded ring of the latest problems, newest last. Text passes through the redactor on the way in. */
export class RecentErrors {
  private readonly ring: RecentError[] = [];

  constructor(
    readonly capacity: number,
    private readonly redactor: Redactor,
  ) {}

  add(entry: Omit<RecentError, "at" | "message"> & { message: string }): RecentError {
    const message = this.redactor.redact(entry.message);
    const kept: RecentError = {
      at: new Date().toISOString(),
      level: entry.level,
      where: entry.where,
      ...(entry.code !== undefined ? { code: entry.code } : {}),
      ...(entry.event !== undefined ? { event: this.redactor.redact(entry.event).slice(0, 200) } : {}),
      ...(entry.sink !== undefined ? { sink: entry.sink } : {}),
      message: message.length > MAX_ERROR_TEXT ? message.slice(0, MAX_ERROR_TEXT - 3) + "..." : message,
    };
    if (this.ring.length >= this.capacity) this.ring.shift();
    this.ring.push(kept);
    return kept;
  }

  /** Newest first. */
  list(): RecentError[] {
    return [...this.ring].reverse();
  }
}

/** The running config's identity, and what the last reload did. */
export interface ConfigState {
  readonly file: string;
  /** 1 for the config the daemon started with; +1 for every reload that was applied. */
  generation: number;
  loadedAt: string;
  /** True while a reload is being applied (old routes draining). */
  reloading: boolean;
  lastReload?: ReloadReport;
}

export interface ReloadReport {
  readonly at: string;
  /** What asked for it: `SIGHUP` or `watch`. */
  readonly trigger: string;
  /** `applied`, `unchanged` (nothing to do), `refused` (invalid config; the old one keeps running) or `failed`. */
  readonly result: "applied" | "unchanged" | "refused" | "failed";
  /** For `refused`: the config problems, as `FILE:LINE:COL error CODE path: message` lines. */
  readonly errors?: readonly string[];
  /** For `applied`: route names by what happened to them. */
  readonly routes?: Readonly<Record<string, readonly string[]>>;
  /** Engine settings that changed but need a restart of the daemon. */
  readonly needsRestart?: readonly string[];
  readonly message?: string;
}

/** The one place state is kept for the admin server. */
export class StatusBoard {
  readonly components = new Map<string, ComponentState>();
  readonly routes = new Map<string, RouteState>();
  readonly startedAt = new Date().toISOString();
  stopping = false;
  started = false;
  /** Hides config secrets (and secret-shaped text) in everything below. */
  readonly redactor = new Redactor();
  readonly errors = new RecentErrors(50, this.redactor);
  config: ConfigState = { file: "", generation: 0, loadedAt: this.startedAt, reloading: false };

  /** Keeps a problem for `/status`; when it concerns a component, it also becomes its `lastError`. */
  recordError(entry: Omit<RecentError, "at">): void {
    const kept = this.errors.add(entry);
    // A route's write failure names its sink: that sink's health shows it too (an HTTP sink has no connection to lose).
    for (const key of entry.sink !== undefined ? [entry.where, this.key("sink", entry.sink)] : [entry.where]) {
      const c = this.components.get(key);
      if (!c) continue;
      c.lastError = kept.code ? `${kept.code}: ${kept.message}` : kept.message;
      c.lastErrorAt = kept.at;
    }
  }

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
