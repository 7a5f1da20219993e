/**
 * Route buffers: the layer between a source and its route's window (see `types.ts`).
 * `memory.ts` for bursts from sources that cannot pause; `disk/` for riding out an outage.
 */
import type { BufferSettings } from "../../config/buffer.js";
import type { Logger } from "../../core/logger.js";
import type { Metrics } from "../../observability/metrics.js";
import type { RouteState } from "../../observability/status.js";
import { DiskBuffer } from "./disk/disk-buffer.js";
import { MemoryBuffer } from "./memory.js";
import { BufferStats } from "./stats.js";
import type { BufferedRoute, RouteBuffer } from "./types.js";

export type { RouteBuffer } from "./types.js";

export interface BufferDeps {
  readonly routeName: string;
  readonly metrics: Metrics;
  readonly state: RouteState;
  readonly log: Logger;
  /** The route orders by `partitionkey`. */
  readonly ordered: boolean;
}

export function createBuffer(settings: BufferSettings, route: BufferedRoute, deps: BufferDeps): RouteBuffer {
  const log = deps.log.child({ buffer: settings.type });
  let probe: () => ReturnType<MemoryBuffer["reading"]> | ReturnType<DiskBuffer["reading"]> = () => ({ type: settings.type, events: 0, bytes: 0, oldestAgeSeconds: 0 });
  const shown =
    settings.type === "memory"
      ? { type: "memory", max_bytes: settings.maxBytes, when_full: settings.whenFull }
      : { type: "disk", path: settings.path, max_bytes: settings.maxBytes, fsync: settings.fsync, when_full: settings.whenFull };
  const stats = new BufferStats(deps.metrics, deps.routeName, settings.type, shown, () => probe());
  const buffer =
    settings.type === "memory"
      ? new MemoryBuffer(settings, route, stats, log)
      : new DiskBuffer(settings, route, stats, log, { ordered: deps.ordered });
  probe = () => buffer.reading();
  stats.attach(deps.state);
  return buffer;
}
