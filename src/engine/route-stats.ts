/**
 * The one place a route records what happened, in both the Prometheus metrics and the `/status`
 * counters, so the two can never disagree. Metric children are bound to the route's labels once:
 * the hot path does no label hashing. Received and delivered counts and the in-flight gauge reach
 * prom-client only when the metrics are read (`Metrics.deferred`).
 */
import type { Outcome } from "../core/outcome.js";
import type { Metrics } from "../observability/metrics.js";
import { newRouteState, type RouteCounters, type RouteState } from "../observability/status.js";

export type DropReason = "loop" | "dedupe" | "overflow";

export interface RouteStatsSetup {
  readonly name: string;
  readonly sourceId: string;
  readonly sinkIds: readonly string[];
  readonly deadLetter?: string | undefined;
  readonly capacity: number;
  /** The counters of the route's earlier definition, when a reload restarts it under the same name. */
  readonly counters?: RouteCounters;
}

export class RouteStats {
  /** The live counters `/status` shows for this route. */
  readonly state: RouteState;
  private readonly m;
  private pendingReceived = 0;
  private readonly pendingDelivered: number[];

  constructor(
    private readonly metrics: Metrics,
    private readonly setup: RouteStatsSetup,
  ) {
    const { name } = setup;
    this.state = newRouteState(setup.name, setup.sourceId, setup.sinkIds, setup.deadLetter, setup.capacity, setup.counters);
    this.m = {
      received: metrics.received.labels(name, setup.sourceId),
      inFlight: metrics.inFlight.labels(name),
      filtered: metrics.filtered.labels(name),
      delivery: metrics.deliverySeconds.labels(name),
      dropped: {
        loop: metrics.dropped.labels(name, "loop"),
        dedupe: metrics.dropped.labels(name, "dedupe"),
        overflow: metrics.dropped.labels(name, "overflow"),
      },
      delivered: setup.sinkIds.map((id) => metrics.delivered.labels(name, id)),
      retries: setup.sinkIds.map((id) => metrics.retries.labels(name, id)),
    };
    this.pendingDelivered = setup.sinkIds.map(() => 0);
    metrics.deferred(() => this.flush());
  }

  private flush(): void {
    const m = this.m;
    if (this.pendingReceived > 0) m.received.inc(this.pendingReceived);
    this.pendingReceived = 0;
    for (let i = 0; i < this.pendingDelivered.length; i++) {
      if (this.pendingDelivered[i]! > 0) m.delivered[i]!.inc(this.pendingDelivered[i]!);
      this.pendingDelivered[i] = 0;
    }
    m.inFlight.set(this.state.inFlight);
  }

  received(n: number): void {
    this.pendingReceived += n;
    this.state.counters.received += n;
  }

  inFlight(n: number): void {
    this.state.inFlight = n;
  }

  filtered(): void {
    this.m.filtered.inc();
    this.state.counters.filtered++;
  }

  /** Sink number `sink` (its index in the route's `to`) confirmed an event. */
  delivered(sink: number): void {
    this.pendingDelivered[sink]!++;
    this.state.counters.delivered++;
  }

  retried(sink: number): void {
    this.m.retries[sink]!.inc();
    this.state.counters.retries++;
  }

  /** A sink write failed for good or ran out of retries. */
  failed(sinkId: string, code: string): void {
    this.metrics.failed.inc({ route: this.setup.name, sink: sinkId, reason: code });
    this.state.counters.failed++;
  }

  deadLettered(code: string): void {
    this.metrics.deadLettered.inc({ route: this.setup.name, reason: code });
    this.state.counters.deadLettered++;
  }

  dropped(reason: DropReason): void {
    this.m.dropped[reason].inc();
    this.state.counters.dropped++;
  }

  /** A message settled `outcome`, `seconds` after it was received. */
  settled(outcome: Outcome, seconds: number): void {
    this.m.delivery.observe(seconds);
    const c = this.state.counters;
    if (outcome.status === "rejected") c.rejected++;
    else if (outcome.status === "errored") c.released++;
  }
}
