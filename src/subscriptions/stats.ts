/**
 * What the Subscriptions API records, in the Prometheus metrics and in `/status`, from one place so
 * the two agree. Labels are `stream`, `subscription` (an id: bounded by `max_subscriptions`, and
 * removed when the subscription is deleted), `outcome`, `reason`, `method`, `code`: never a sink
 * URL, a header or a credential. Gauges are read when scraped, so nothing per event updates them.
 */
import { Counter, Gauge, type Registry } from "../observability/prom.js";
import type { BridgeError } from "../core/errors.js";

export type DropReason = "overflow" | "unsubscribed" | "inactive";

/** Counters of one subscription, as `/status` shows them. */
export interface SubscriptionCounters {
  matched: number;
  delivered: number;
  failed: number;
  dead_lettered: number;
  retries: number;
  dropped: number;
  filter_errors: number;
}

export interface LastError {
  readonly at: string;
  readonly code: string;
  readonly message: string;
}

/** Live gauges of one subscription, read at scrape time. */
export interface Probe {
  readonly stream: string;
  readonly id: string;
  queued(): number;
  inFlight(): number;
}

export class SubscriptionMetrics {
  private readonly events: Counter<"stream" | "subscription" | "outcome">;
  private readonly dropped: Counter<"stream" | "reason">;
  private readonly requests: Counter<"method" | "code">;
  private readonly probes = new Map<string, Probe>();
  private readonly counts = new Map<string, number>();

  constructor(registry: Registry) {
    const probes = this.probes;
    const counts = this.counts;
    this.events = new Counter({
      name: "cebridge_subscription_events_total",
      help: "Events per subscription by outcome (delivered, failed, dead_lettered, dropped)",
      labelNames: ["stream", "subscription", "outcome"],
      registers: [registry],
    });
    this.dropped = new Counter({
      name: "cebridge_subscription_dropped_total",
      help: "Events a stream did not deliver to a subscriber, by reason (overflow: its queue was full; unsubscribed: deleted while queued or in flight; inactive: the subscription was suspended or orphaned)",
      labelNames: ["stream", "reason"],
      registers: [registry],
    });
    this.requests = new Counter({
      name: "cebridge_subscription_api_requests_total",
      help: "Subscriptions API requests by method and status code",
      labelNames: ["method", "code"],
      registers: [registry],
    });
    new Gauge({
      name: "cebridge_subscriptions",
      help: "Subscriptions per stream",
      labelNames: ["stream"],
      registers: [registry],
      collect() {
        this.reset();
        for (const [stream, n] of counts) this.set({ stream }, n);
      },
    });
    new Gauge({
      name: "cebridge_subscription_queued",
      help: "Events waiting in a subscription's queue",
      labelNames: ["stream", "subscription"],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of probes.values()) this.set({ stream: p.stream, subscription: p.id }, p.queued());
      },
    });
    new Gauge({
      name: "cebridge_subscription_in_flight",
      help: "Deliveries in flight to a subscriber",
      labelNames: ["stream", "subscription"],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of probes.values()) this.set({ stream: p.stream, subscription: p.id }, p.inFlight());
      },
    });
  }

  /** Counts subscriptions per stream (orphaned ones under their old stream name). */
  setCounts(byStream: ReadonlyMap<string, number>): void {
    this.counts.clear();
    for (const [k, v] of byStream) this.counts.set(k, v);
  }

  request(method: string, code: number): void {
    const m = ["GET", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "HEAD"].includes(method) ? method : "OTHER";
    this.requests.inc({ method: m, code: String(code) });
  }

  /** A recorder for one subscription; `forget` removes its series. */
  subscription(probe: Probe): SubscriptionStats {
    this.probes.set(probe.id, probe);
    const labels = { stream: probe.stream, subscription: probe.id };
    const m = {
      delivered: this.events.labels({ ...labels, outcome: "delivered" }),
      failed: this.events.labels({ ...labels, outcome: "failed" }),
      deadLettered: this.events.labels({ ...labels, outcome: "dead_lettered" }),
      dropped: this.events.labels({ ...labels, outcome: "dropped" }),
    };
    return new SubscriptionStats(m, (reason, n) => this.dropped.inc({ stream: probe.stream, reason }, n), () => {
      this.probes.delete(probe.id);
      for (const outcome of ["delivered", "failed", "dead_lettered", "dropped"]) this.events.remove({ ...labels, outcome });
    });
  }
}

type Child = { inc(n?: number): void };

export class SubscriptionStats {
  readonly counters: SubscriptionCounters = { matched: 0, delivered: 0, failed: 0, dead_lettered: 0, retries: 0, dropped: 0, filter_errors: 0 };
  lastError: LastError | undefined;

  constructor(
    private readonly m: { delivered: Child; failed: Child; deadLettered: Child; dropped: Child },
    private readonly onDrop: (reason: DropReason, n: number) => void,
    readonly forget: () => void,
  ) {}

  matched(): void {
    this.counters.matched++;
  }

  delivered(): void {
    this.counters.delivered++;
    this.m.delivered.inc();
  }

  failed(error: BridgeError, message: string, deadLettered: boolean): void {
    this.counters.failed++;
    this.m.failed.inc();
    if (deadLettered) {
      this.counters.dead_lettered++;
      this.m.deadLettered.inc();
    }
    this.error(error.code, message);
  }

  retried(): void {
    this.counters.retries++;
  }

  dropped(reason: DropReason, n = 1): void {
    if (n <= 0) return;
    this.counters.dropped += n;
    this.m.dropped.inc(n);
    this.onDrop(reason, n);
  }

  filterError(): void {
    this.counters.filter_errors++;
  }

  /** Records a problem; `message` must already be scrubbed of the subscription's secrets. */
  error(code: string, message: string): void {
    this.lastError = { at: new Date().toISOString(), code, message: message.length > 500 ? `${message.slice(0, 500)}...` : message };
  }
}
