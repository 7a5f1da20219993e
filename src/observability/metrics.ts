/**
 * The Prometheus metrics of DESIGN §7. Labels are fixed (route, source, sink, reason, component);
 * nothing per event becomes a label.
 */
import { Counter, Gauge, Registry } from "./prom.js";
import { RouteHistogram } from "./route-histogram.js";

/** The bounds of `cebridge_delivery_seconds`, in seconds. */
export const DELIVERY_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What a route buffer reports when scraped. */
export interface BufferReading {
  readonly type: "memory" | "disk";
  readonly events: number;
  readonly bytes: number;
  readonly oldestAgeSeconds: number;
}

export class Metrics {
  readonly registry = new Registry();
  /** See `deferred`. */
  private readonly flushes = new Set<() => void>();
  readonly received = this.counter("cebridge_events_received_total", "Events handed to a route by its source", ["route", "source"], true);
  readonly delivered = this.counter("cebridge_events_delivered_total", "Events a sink confirmed", ["route", "sink"], true);
  readonly filtered = this.counter("cebridge_events_filtered_total", "Events a route's filter left out (settled as delivered)", ["route"]);
  readonly failed = this.counter("cebridge_events_failed_total", "Sink writes that failed for good or ran out of retries", ["route", "sink", "reason"]);
  readonly deadLettered = this.counter("cebridge_events_dead_lettered_total", "Events written to a dead-letter sink", ["route", "reason"]);
  readonly retries = this.counter("cebridge_retries_total", "Sink write retries after a transient failure", ["route", "sink"]);
  readonly dropped = this.counter("cebridge_events_dropped_total", "Events dropped on purpose (loop, dedupe, overflow)", ["route", "reason"]);
  readonly filterErrors = this.counter("cebridge_filter_errors_total", "CESQL evaluation errors (the event is treated as not matching)", ["route"]);
  readonly inFlight = new Gauge({
    name: "cebridge_in_flight",
    help: "Events in a route's window",
    labelNames: ["route"],
    registers: [this.registry],
    collect: () => this.flushDeferred(),
  });
  readonly connectorUp = new Gauge({ name: "cebridge_connector_up", help: "1 while the component is connected", labelNames: ["component"], registers: [this.registry] });
  readonly deliverySeconds = new RouteHistogram({
    name: "cebridge_delivery_seconds",
    help: "Time from receive to settle",
    labelName: "route",
    buckets: DELIVERY_BUCKETS,
    registers: [this.registry],
  });

  // Route buffers (src/engine/buffer). The gauges are read from each buffer when scraped.
  readonly bufferWrites = this.counter("cebridge_buffer_writes_total", "Events written into a route's buffer", ["route", "type"]);
  readonly bufferReads = this.counter("cebridge_buffer_reads_total", "Events handed from a route's buffer to its window (redeliveries included)", ["route", "type"]);
  readonly bufferDropped = this.counter(
    "cebridge_buffer_dropped_total",
    "Events a route's buffer refused or gave up (full, disk_full, write_failed, shutdown)",
    ["route", "type", "reason"],
  );
  readonly bufferCorruptions = this.counter("cebridge_buffer_corruptions_total", "Torn or corrupted regions found in a disk buffer, and skipped", ["route", "kind"]);
  readonly bufferCorruptBytes = this.counter("cebridge_buffer_corrupt_bytes_total", "Bytes of a disk buffer skipped as torn or corrupted", ["route"]);
  /** Live readings of every buffer, by route. */
  readonly bufferProbes = new Map<string, () => BufferReading>();
  readonly bufferEvents = this.bufferGauge("cebridge_buffer_events", "Events held in a route's buffer", (r) => r.events);
  readonly bufferBytes = this.bufferGauge("cebridge_buffer_bytes", "Bytes held by a route's buffer (a disk buffer: its segment files)", (r) => r.bytes);
  readonly bufferOldest = this.bufferGauge("cebridge_buffer_oldest_event_age_seconds", "Age of the oldest event held in a route's buffer", (r) => r.oldestAgeSeconds);

  private bufferGauge(name: string, help: string, read: (r: BufferReading) => number): Gauge<string> {
    const probes = this.bufferProbes;
    return new Gauge({
      name,
      help,
      labelNames: ["route", "type"],
      registers: [this.registry],
      collect() {
        for (const [route, probe] of probes) {
          const r = probe();
          this.set({ route, type: r.type }, read(r));
        }
      },
    });
  }

  /**
   * Registers `flush`, which hands counts kept as plain numbers to the metrics above; it runs before
   * every read of `received`, `delivered` and `inFlight` (a scrape, `get()`). The per-event updates
   * of those three cost more than the rest of a route's bookkeeping through prom-client (measured:
   * 4 % of the MQTT → NATS daemon's CPU). Flushes run in the order they were registered, so of two
   * registrations setting the same gauge child, the later one wins. Never unregistered: a retired
   * route's last counts must still reach the metrics.
   */
  deferred(flush: () => void): void {
    this.flushes.add(flush);
  }

  private flushDeferred(): void {
    for (const f of this.flushes) f();
  }

  private counter(name: string, help: string, labelNames: string[], deferred = false): Counter<string> {
    return new Counter({ name, help, labelNames, registers: [this.registry], ...(deferred ? { collect: () => this.flushDeferred() } : {}) });
  }
}
