/**
 * The Prometheus metrics of DESIGN §7. Labels are fixed (route, source, sink, reason, component);
 * nothing per event becomes a label.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class Metrics {
  readonly registry = new Registry();
  readonly received = this.counter("cebridge_events_received_total", "Events handed to a route by its source", ["route", "source"]);
  readonly delivered = this.counter("cebridge_events_delivered_total", "Events a sink confirmed", ["route", "sink"]);
  readonly filtered = this.counter("cebridge_events_filtered_total", "Events a route's filter left out (settled as delivered)", ["route"]);
  readonly failed = this.counter("cebridge_events_failed_total", "Sink writes that failed for good or ran out of retries", ["route", "sink", "reason"]);
  readonly deadLettered = this.counter("cebridge_events_dead_lettered_total", "Events written to a dead-letter sink", ["route", "reason"]);
  readonly retries = this.counter("cebridge_retries_total", "Sink write retries after a transient failure", ["route", "sink"]);
  readonly dropped = this.counter("cebridge_events_dropped_total", "Events dropped on purpose (loop, dedupe, overflow)", ["route", "reason"]);
  readonly filterErrors = this.counter("cebridge_filter_errors_total", "CESQL evaluation errors (the event is treated as not matching)", ["route"]);
  readonly inFlight = new Gauge({ name: "cebridge_in_flight", help: "Events in a route's window", labelNames: ["route"], registers: [this.registry] });
  readonly connectorUp = new Gauge({ name: "cebridge_connector_up", help: "1 while the component is connected", labelNames: ["component"], registers: [this.registry] });
  readonly deliverySeconds = new Histogram({
    name: "cebridge_delivery_seconds",
    help: "Time from receive to settle",
    labelNames: ["route"],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [this.registry],
  });

  private counter(name: string, help: string, labelNames: string[]): Counter<string> {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }
}
