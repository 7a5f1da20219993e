/**
 * A pipeline: one source, the inbox switch it was started with, and the route currently behind it
 * (with the route's buffer in front of it, where it has one: then the switch points at the buffer).
 * The engine keeps one per source id (a source feeds exactly one route); hot reloads replace the
 * route behind the switch, or the whole pipeline. `buildRoute` turns a route's config into a
 * running `Route` over the engine's sinks, reusing the dedupe memory and the per-key sequencer of the
 * route's previous definition when those settings did not change, so a reload neither forgets what
 * was delivered nor lets a later event of a key overtake an earlier one still draining.
 */
import type { BufferSettings } from "../config/buffer.js";
import type { ComponentConfig, RouteConfig } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { Inbox, Source } from "../core/source.js";
import { compileFilter, type FilterSpec } from "../filter/index.js";
import type { Metrics } from "../observability/metrics.js";
import { createBuffer, type RouteBuffer } from "./buffer/index.js";
import { Deduper } from "./dedupe.js";
import type { InboxSwitch } from "./inbox-switch.js";
import { KeyedSequencer } from "./ordering.js";
import { deepEqual } from "./reload-plan.js";
import { Route } from "./route.js";
import type { RouteStats } from "./route-stats.js";
import type { DeliveryTracer } from "./tracer.js";
import { compileTransform } from "./transform.js";

export interface Pipeline {
  readonly sourceId: string;
  source: Source;
  sourceConfig: ComponentConfig;
  readonly inbox: InboxSwitch;
  /** The route behind the switch; undefined while a restart holds the source back. */
  route: Route | undefined;
  /** The route's buffer, in front of it; the switch points here when there is one. */
  buffer: RouteBuffer | undefined;
  routeConfig: RouteConfig;
  /** The current route's stats (drops counted by the source land here). */
  stats: RouteStats;
  dedupe: Deduper | undefined;
  ordering: KeyedSequencer | undefined;
}

/**
 * Where a source's messages enter a route, and what shutdown and reload steps act on: the buffer
 * when the route has one (it stops, drains and aborts its route itself), else the route.
 */
export interface Inlet extends Inbox {
  stopAccepting(): void;
  drain(): Promise<void>;
  abort(): void;
  /** Releases the buffer's files and timers, once drained; a bare route has nothing to close. */
  close?(): Promise<void>;
}

/** The pipeline's inlet (see `Inlet`), or undefined while a restart holds its source back. */
export function inletOf(p: Pick<Pipeline, "route" | "buffer">): Inlet | undefined {
  return p.buffer ?? p.route;
}

export interface RouteDeps {
  readonly sinks: ReadonlyMap<string, { readonly sink: Sink }>;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly instanceId: string;
  /** Records spans per delivery when tracing is on. */
  readonly tracer?: DeliveryTracer;
}

/**
 * The route for `rc`, and its buffer when `buffer` (the resolved settings) says so; the buffer is
 * not opened yet. `previous` is the pipeline's earlier state, whose dedupe/ordering state carries over.
 */
export function buildRoute(
  rc: RouteConfig,
  stats: RouteStats,
  deps: RouteDeps,
  buffer: BufferSettings | undefined,
  previous?: { readonly routeConfig: RouteConfig; readonly dedupe: Deduper | undefined; readonly ordering: KeyedSequencer | undefined },
): { route: Route; buffer: RouteBuffer | undefined; dedupe: Deduper | undefined; ordering: KeyedSequencer | undefined } {
  const sinkOf = (id: string): Sink => {
    const entry = deps.sinks.get(id);
    if (!entry) throw new Error(`route "${rc.name}": sink "${id}" is not running (a bug: please report it)`);
    return entry.sink;
  };
  const filterErrors = deps.metrics.filterErrors.labels({ route: rc.name });
  const dedupe = rc.dedupe
    ? previous?.dedupe && deepEqual(previous.routeConfig.dedupe, rc.dedupe)
      ? previous.dedupe
      : new Deduper(rc.dedupe.window, rc.dedupe.max_keys)
    : undefined;
  const ordering = rc.ordering ? (previous?.ordering ?? new KeyedSequencer()) : undefined;
  const route = new Route(
    {
      name: rc.name,
      sourceId: rc.from,
      sinks: rc.to.map((id) => ({ id, sink: sinkOf(id) })),
      ...(rc.dead_letter !== undefined ? { deadLetter: { id: rc.dead_letter, sink: sinkOf(rc.dead_letter) } } : {}),
      ...(rc.filter !== undefined ? { filter: compileFilter(rc.filter as FilterSpec, () => filterErrors.inc()) } : {}),
      ...(rc.transform !== undefined ? { transform: compileTransform(rc.transform) } : {}),
      window: rc.max_in_flight,
      retry: rc.retry,
      timeoutMs: rc.timeout,
      ...(rc.max_deliveries !== undefined ? { maxDeliveries: rc.max_deliveries } : {}),
      loopPrevention: rc.loop_prevention,
      maxHops: rc.max_hops,
      instanceId: deps.instanceId,
      ...(dedupe ? { dedupe } : {}),
      ...(ordering ? { ordering } : {}),
      ...(deps.tracer ? { tracer: deps.tracer } : {}),
    },
    stats,
    deps.log,
  );
  const routeBuffer = buffer
    ? createBuffer(buffer, route, { routeName: rc.name, metrics: deps.metrics, state: stats.state, log: deps.log, ordered: rc.ordering !== undefined })
    : undefined;
  return { route, buffer: routeBuffer, dedupe, ordering };
}
