/**
 * The one place a route buffer records what happened, in the metrics and in `/status`, so the two
 * agree. Counters are bound to their labels once; the gauges (events, bytes, oldest age) are read
 * from the buffer when scraped or when `/status` is asked, so nothing per event updates them.
 */
import type { BufferReading, Metrics } from "../../observability/metrics.js";
import type { RouteState } from "../../observability/status.js";

export type BufferDropReason = "full" | "disk_full" | "write_failed" | "shutdown";
export type CorruptionKind = "checksum" | "torn";

/** One torn or corrupted region found in a disk buffer. */
export interface CorruptionReport {
  readonly kind: CorruptionKind;
  /** Segment file, relative to the buffer directory. */
  readonly file: string;
  /** Byte offset of the region in that file. */
  readonly offset: number;
  readonly bytes: number;
  readonly at: string;
}

const KEEP_REPORTS = 10;

export class BufferStats {
  private readonly m;
  private readonly counts = { writes: 0, reads: 0, dropped: { full: 0, disk_full: 0, write_failed: 0, shutdown: 0 }, corruptions: 0, corruptBytes: 0 };
  private readonly reports: CorruptionReport[] = [];

  constructor(
    private readonly metrics: Metrics,
    private readonly route: string,
    private readonly type: "memory" | "disk",
    private readonly settings: Record<string, unknown>,
    private readonly probe: () => BufferReading,
  ) {
    const l = { route, type };
    this.m = {
      writes: metrics.bufferWrites.labels(l),
      reads: metrics.bufferReads.labels(l),
      dropped: {
        full: metrics.bufferDropped.labels({ ...l, reason: "full" }),
        disk_full: metrics.bufferDropped.labels({ ...l, reason: "disk_full" }),
        write_failed: metrics.bufferDropped.labels({ ...l, reason: "write_failed" }),
        shutdown: metrics.bufferDropped.labels({ ...l, reason: "shutdown" }),
      },
    };
  }

  /** Makes the buffer visible on `/metrics` and in the route's `/status` entry. */
  attach(state: RouteState): void {
    this.metrics.bufferProbes.set(this.route, this.probe);
    state.buffer = { snapshot: () => this.snapshot() };
  }

  wrote(events: number): void {
    this.counts.writes += events;
    this.m.writes.inc(events);
  }

  read(events: number): void {
    this.counts.reads += events;
    this.m.reads.inc(events);
  }

  dropped(reason: BufferDropReason, events: number): void {
    this.counts.dropped[reason] += events;
    this.m.dropped[reason].inc(events);
  }

  corrupt(report: CorruptionReport): void {
    this.counts.corruptions++;
    this.counts.corruptBytes += report.bytes;
    this.metrics.bufferCorruptions.inc({ route: this.route, kind: report.kind });
    this.metrics.bufferCorruptBytes.inc({ route: this.route }, report.bytes);
    this.reports.push(report);
    if (this.reports.length > KEEP_REPORTS) this.reports.shift();
  }

  snapshot(): Record<string, unknown> {
    const r = this.probe();
    return {
      ...this.settings,
      events: r.events,
      bytes: r.bytes,
      oldest_event_age_seconds: r.oldestAgeSeconds,
      writes: this.counts.writes,
      reads: this.counts.reads,
      dropped: { ...this.counts.dropped },
      corruption: { regions: this.counts.corruptions, bytes: this.counts.corruptBytes, last: [...this.reports] },
    };
  }
}
