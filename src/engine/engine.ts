/**
 * Builds routes from the frozen config, starts components in dependency order (sinks before the
 * sources that feed them) and shuts down in two phases: stop receiving and drain up to a deadline,
 * then abort what is left (it is released for redelivery) and close sinks, then sources.
 */
import type { ComponentConfig, BridgeConfig, RouteConfig } from "../config/schema.js";
import type { ConnectorContext, Registry } from "../core/connector.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { Source } from "../core/source.js";
import { compileFilter, type FilterSpec } from "../filter/index.js";
import type { Metrics } from "../observability/metrics.js";
import type { StatusBoard } from "../observability/status.js";
import { Deduper } from "./dedupe.js";
import { KeyedSequencer } from "./ordering.js";
import { Route } from "./route.js";
import { RouteStats } from "./route-stats.js";
import { compileTransform } from "./transform.js";
import type { DeliveryTracer } from "./tracer.js";

export interface EngineDeps {
  readonly registry: Registry;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly board: StatusBoard;
  /** Records spans per delivery when tracing is on. */
  readonly tracer?: DeliveryTracer;
}

export class Engine {
  private readonly sinks = new Map<string, Sink>();
  private readonly sources = new Map<string, Source>();
  private readonly routes: Route[] = [];
  /** Per route name; made before any component so a source can count its drops from the start. */
  private readonly stats = new Map<string, RouteStats>();
  private stopping: Promise<void> | undefined;

  constructor(
    private readonly config: BridgeConfig,
    private readonly deps: EngineDeps,
  ) {
    for (const rc of config.routes) {
      const stats = new RouteStats(deps.metrics, { name: rc.name, sourceId: rc.from, sinkIds: rc.to, deadLetter: rc.dead_letter, capacity: rc.max_in_flight });
      this.stats.set(rc.name, stats);
      deps.board.routes.set(rc.name, stats.state);
    }
  }

  /** Creates every component, opens sinks, then starts sources. Throws if a component cannot start. */
  async start(): Promise<void> {
    const { config, deps } = this;
    for (const [id, comp] of Object.entries(config.sinks)) this.sinks.set(id, await this.createSink(id, comp));
    for (const [id, comp] of Object.entries(config.sources)) this.sources.set(id, await this.createSource(id, comp));

    await Promise.all([...this.sinks.values()].map((s) => s.open()));
    for (const rc of config.routes) this.routes.push(this.createRoute(rc));
    await Promise.all(this.routes.map((route, i) => this.sources.get(config.routes[i]!.from)!.start(route)));
    deps.board.started = true;
    deps.log.info({ routes: config.routes.map((r) => r.name) }, "cebridge started");
  }

  /** Graceful shutdown; safe to call more than once (later calls wait for the first). */
  stop(timeoutMs = this.config.engine.shutdown_timeout): Promise<void> {
    this.stopping ??= this.doStop(timeoutMs);
    return this.stopping;
  }

  private async doStop(timeoutMs: number): Promise<void> {
    const { deps } = this;
    deps.board.stopping = true;
    for (const r of this.routes) r.stopAccepting();
    await Promise.all([...this.sources.values()].map((s) => s.stop().catch((err) => deps.log.warn({ err }, "source stop failed"))));
    // One deadline for the whole shutdown: draining, then the sources' pending native settles.
    const deadline = timeoutSignal(timeoutMs);
    const drained = Promise.all(this.routes.map((r) => r.drain()));
    const timedOut = await Promise.race([drained.then(() => false), aborted(deadline).then(() => true)]);
    if (timedOut) {
      deps.log.warn({ timeoutMs }, "shutdown timeout: releasing in-flight events for redelivery");
      for (const r of this.routes) r.abort();
      await drained;
    }
    await Promise.all([...this.sinks.values()].map((s) => s.close().catch((err) => deps.log.warn({ err }, "sink close failed"))));
    // Releases triggered by the abort above still need a moment to reach the broker.
    const settleDeadline = timedOut ? timeoutSignal(SETTLE_GRACE_MS) : deadline;
    await Promise.all([...this.sources.values()].map((s) => s.close(settleDeadline).catch((err) => deps.log.warn({ err }, "source close failed"))));
    deadline.cancel();
    settleDeadline.cancel();
    deps.log.info({}, "cebridge stopped");
  }

  private context(kind: "source" | "sink", id: string, type: string): ConnectorContext {
    const { board, metrics, log } = this.deps;
    const state = { id, kind, type, up: false, since: new Date().toISOString() };
    board.components.set(board.key(kind, id), state);
    const component = `${kind}:${id}`;
    metrics.connectorUp.set({ component }, 0);
    const route = this.config.routes.find((r) => r.from === id)?.name;
    const stats = route !== undefined ? this.stats.get(route) : undefined;
    return {
      id,
      instanceId: this.config.engine.instance_id,
      log: log.child({ component }),
      setUp(up) {
        if (state.up === up) return;
        state.up = up;
        state.since = new Date().toISOString();
        metrics.connectorUp.set({ component }, up ? 1 : 0);
      },
      countDropped(reason) {
        stats?.dropped(reason);
      },
    };
  }

  private async createSink(id: string, comp: ComponentConfig): Promise<Sink> {
    const def = this.deps.registry.sink(comp.type)!;
    const factory = await def.load();
    return factory(comp.options as never, this.context("sink", id, comp.type));
  }

  private async createSource(id: string, comp: ComponentConfig): Promise<Source> {
    const def = this.deps.registry.source(comp.type)!;
    const factory = await def.load();
    return factory(comp.options as never, this.context("source", id, comp.type));
  }

  private createRoute(rc: RouteConfig): Route {
    const { metrics, log } = this.deps;
    const routeLog = log.child({ route: rc.name });
    const filterErrors = metrics.filterErrors.labels({ route: rc.name });
    return new Route(
      {
        name: rc.name,
        sourceId: rc.from,
        sinks: rc.to.map((id) => ({ id, sink: this.sinks.get(id)! })),
        ...(rc.dead_letter !== undefined ? { deadLetter: { id: rc.dead_letter, sink: this.sinks.get(rc.dead_letter)! } } : {}),
        ...(rc.filter !== undefined ? { filter: compileFilter(rc.filter as FilterSpec, () => filterErrors.inc()) } : {}),
        ...(rc.transform !== undefined ? { transform: compileTransform(rc.transform) } : {}),
        window: rc.max_in_flight,
        retry: rc.retry,
        timeoutMs: rc.timeout,
        ...(rc.max_deliveries !== undefined ? { maxDeliveries: rc.max_deliveries } : {}),
        loopPrevention: rc.loop_prevention,
        maxHops: rc.max_hops,
        instanceId: this.config.engine.instance_id,
        ...(rc.dedupe ? { dedupe: new Deduper(rc.dedupe.window, rc.dedupe.max_keys) } : {}),
        ...(rc.ordering ? { ordering: new KeyedSequencer() } : {}),
        ...(this.deps.tracer ? { tracer: this.deps.tracer } : {}),
      },
      this.stats.get(rc.name)!,
      routeLog,
    );
  }
}

/** After a shutdown timeout, how long sources may still take to hand released messages back. */
const SETTLE_GRACE_MS = 2_000;

/**
 * Aborts after `ms`. Unlike `AbortSignal.timeout`, its timer keeps the process alive, so a shutdown
 * waiting on nothing but its deadline still reaches the end instead of exiting mid-way.
 */
function timeoutSignal(ms: number): AbortSignal & { cancel(): void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(new Error("shutdown deadline")), ms);
  return Object.assign(ac.signal, { cancel: () => clearTimeout(timer) });
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}
