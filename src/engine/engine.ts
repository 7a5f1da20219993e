/**
 * Runs the pipelines of a frozen config (one per source: the source, its inbox switch and its
 * route), opens the sinks they write to, applies hot reloads and shuts down.
 *
 * - Start: sinks open before the sources that feed them start, and a route's buffer opens before its
 *   source starts (a disk buffer locks its directory and finds what a previous run left). Only
 *   components some route uses are created (an unused source would never report ready).
 * - Reload (`reload`): the plan comes from the pure `planReload` (see reload-plan.ts). New sinks open
 *   first, and if one cannot, nothing changes. Unchanged pipelines are never touched; changed routes
 *   stop accepting and drain (up to `shutdown_timeout`, then the rest is released for redelivery)
 *   while, where the source is unchanged, the new route already takes its messages. Components
 *   whose options changed close after the routes using them drained, then open anew. Reloads run one
 *   at a time.
 * - Stop: stop receiving and drain every route (retired ones too) up to a deadline, then abort what
 *   is left (it is released for redelivery) and close buffers, sinks, then sources.
 * Every lifecycle step acts on a route's inlet: its buffer when it has one (the buffer stops, drains
 * and aborts its route itself), else the route.
 */
import { resolveBuffer, type BufferSettings } from "../config/buffer.js";
import type { BridgeConfig, ComponentConfig, RouteConfig } from "../config/schema.js";
import type { ConnectorContext, Registry } from "../core/connector.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { Source } from "../core/source.js";
import type { Metrics } from "../observability/metrics.js";
import { recordingLogger } from "../observability/recording-logger.js";
import type { StatusBoard } from "../observability/status.js";
import { holdInbox, InboxSwitch } from "./inbox-switch.js";
import { buildRoute, inletOf, type Inlet, type Pipeline } from "./pipeline.js";
import { planReload, routeSinks, type PipelineChange, type ReloadPlan } from "./reload-plan.js";
import { RouteStats } from "./route-stats.js";
import type { DeliveryTracer } from "./tracer.js";

export interface EngineDeps {
  readonly registry: Registry;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly board: StatusBoard;
  /** Records spans per delivery when tracing is on. */
  readonly tracer?: DeliveryTracer;
}

/** What a reload did. `failed`: nothing changed (a new sink could not open) or the daemon is stopping. */
export interface ReloadOutcome {
  readonly result: "applied" | "unchanged" | "failed";
  /** Route names by what happened to their pipeline (`keep` is left alone). */
  readonly routes: Readonly<Record<PipelineChange, readonly string[]>>;
  readonly needsRestart: readonly string[];
  /** Problems met while applying (a component that could not open or start); the rest was applied. */
  readonly problems: readonly string[];
  readonly message?: string;
}

interface SinkEntry {
  readonly sink: Sink;
  readonly config: ComponentConfig;
}

export class Engine {
  private config: BridgeConfig;
  private readonly sinks = new Map<string, SinkEntry>();
  private readonly pipelines = new Map<string, Pipeline>();
  /** Routes (or their buffers) a reload retired that are still draining; a stop drains them too. */
  private readonly retired = new Set<Inlet>();
  /** Sources a reload stopped and has not closed yet; a stop closes them too. */
  private readonly retiredSources = new Set<Source>();
  /** Stats made before any component, so a source can count its drops from the start. */
  private readonly initialStats = new Map<string, RouteStats>();
  private stopping: Promise<void> | undefined;
  private readonly stopRequested = new AbortController();
  private reloads: Promise<unknown> = Promise.resolve();

  constructor(
    config: BridgeConfig,
    private readonly deps: EngineDeps,
  ) {
    this.config = config;
    for (const rc of config.routes) {
      const stats = this.newStats(rc);
      this.initialStats.set(rc.name, stats);
      deps.board.routes.set(rc.name, stats.state);
    }
  }

  /** The config in force (the last one applied). */
  get current(): BridgeConfig {
    return this.config;
  }

  /** Creates every used component, opens sinks, then starts sources. Throws if a component cannot start. */
  async start(): Promise<void> {
    const { config, deps } = this;
    for (const id of usedSinkIds(config.routes)) this.sinks.set(id, { sink: await this.createSink(id, config.sinks[id]!), config: config.sinks[id]! });
    for (const rc of config.routes) {
      const p = await this.newPipeline(rc, config, this.initialStats.get(rc.name)!);
      this.pipelines.set(rc.from, p);
    }
    await Promise.all([...this.sinks.values()].map((s) => s.sink.open()));
    await Promise.all([...this.pipelines.values()].map((p) => p.buffer?.open()));
    await Promise.all([...this.pipelines.values()].map((p) => p.source.start(p.inbox)));
    deps.board.started = true;
    deps.log.info({ routes: config.routes.map((r) => r.name) }, "cebridge started");
  }

  /**
   * Applies `next` (already validated). Resolves with what was done; never rejects for a component
   * problem (those are in `problems`). Calls are queued: one reload at a time.
   */
  reload(next: BridgeConfig): Promise<ReloadOutcome> {
    const run = this.reloads.then(() => this.applyReload(next));
    this.reloads = run.catch(() => undefined);
    return run;
  }

  /** Graceful shutdown; safe to call more than once (later calls wait for the first). */
  stop(timeoutMs = this.config.engine.shutdown_timeout): Promise<void> {
    this.stopping ??= this.doStop(timeoutMs);
    return this.stopping;
  }

  private async doStop(timeoutMs: number): Promise<void> {
    const { deps } = this;
    deps.board.stopping = true;
    this.stopRequested.abort(new Error("the daemon is stopping"));
    // A reload in progress gives up at its next step; what it created is registered, so it is stopped below.
    await Promise.race([this.reloads, sleep(5_000)]);
    const routes = [...this.pipelines.values()].flatMap((p) => inletOf(p) ?? []).concat([...this.retired]);
    // A buffered route keeps taking what its buffer hands it; the buffer stops it once drained.
    for (const r of routes) r.stopAccepting();
    const sources = [...new Set([...this.pipelines.values()].map((p) => p.source).concat([...this.retiredSources]))];
    await Promise.all(sources.map((s) => s.stop().catch((err) => deps.log.warn({ err }, "source stop failed"))));
    // One deadline for the whole shutdown: draining, then the sources' pending native settles.
    const deadline = timeoutSignal(timeoutMs);
    const timedOut = await drainWithin(routes, deadline);
    if (timedOut) deps.log.warn({ timeoutMs }, "shutdown timeout: releasing in-flight events for redelivery");
    await closeInlets(routes, deps.log);
    await Promise.all([...this.sinks.values()].map((s) => s.sink.close().catch((err) => deps.log.warn({ err }, "sink close failed"))));
    // Releases triggered by the abort above still need a moment to reach the broker.
    const settleDeadline = timedOut ? timeoutSignal(SETTLE_GRACE_MS) : deadline;
    await Promise.all(sources.map((s) => s.close(settleDeadline).catch((err) => deps.log.warn({ err }, "source close failed"))));
    deadline.cancel();
    settleDeadline.cancel();
    deps.log.info({}, "cebridge stopped");
  }

  private async applyReload(next: BridgeConfig): Promise<ReloadOutcome> {
    const prev = this.config;
    const plan = planReload(prev, next);
    const routes = routesByChange(plan);
    const base = { routes, needsRestart: plan.needsRestart };
    if (this.stopping) return { ...base, result: "failed", problems: [], message: "the daemon is stopping" };
    if (plan.unchanged) {
      this.adopt(next, plan);
      return { ...base, result: "unchanged", problems: [] };
    }
    const { deps } = this;
    const timeoutMs = next.engine.shutdown_timeout;
    const problems: string[] = [];

    // 1. Sinks with new ids open before anything changes; if one cannot, the running config stays as it was.
    const added = new Map<string, SinkEntry>();
    try {
      for (const id of plan.sinks.add) added.set(id, { sink: await this.createSink(id, next.sinks[id]!, next), config: next.sinks[id]! });
      await this.within(Promise.all([...added.values()].map((e) => e.sink.open())), timeoutMs, `opening new sinks (${plan.sinks.add.join(", ")})`);
    } catch (err) {
      await Promise.all([...added.values()].map((e) => e.sink.close().catch(() => undefined)));
      for (const id of added.keys()) deps.board.components.delete(deps.board.key("sink", id));
      return { ...base, result: "failed", problems: [], message: `nothing was changed: ${(err as Error).message}` };
    }
    for (const [id, e] of added) this.sinks.set(id, e);

    // 2. Retire the routes that change. Where the source stays, the new route (or a hold) takes over at once.
    const retiring: Inlet[] = [];
    const stoppedSources: Source[] = [];
    const later: { plan: ReloadPlan["pipelines"][number]; rc: RouteConfig }[] = [];
    const retire = (p: Pipeline) => {
      const inlet = inletOf(p);
      if (!inlet) return;
      inlet.stopAccepting();
      this.retired.add(inlet);
      retiring.push(inlet);
      p.route = undefined;
      p.buffer = undefined;
    };
    for (const pp of plan.pipelines) {
      const p = this.pipelines.get(pp.sourceId);
      const rc = pp.newRoute !== undefined ? next.routes.find((r) => r.name === pp.newRoute)! : undefined;
      switch (pp.change) {
        case "keep":
          p!.routeConfig = rc!;
          break;
        case "switch": {
          const old = inletOf(p!);
          await this.installRoute(p!, rc!, next);
          if (old) {
            old.stopAccepting();
            this.retired.add(old);
            retiring.push(old);
          }
          break;
        }
        case "restart":
          p!.inbox.moveTo(holdInbox(p!.routeConfig.max_in_flight));
          retire(p!);
          if (pp.sourceChanged) await this.retireSource(p!.source, stoppedSources);
          later.push({ plan: pp, rc: rc! });
          break;
        case "remove":
          retire(p!);
          await this.retireSource(p!.source, stoppedSources);
          this.pipelines.delete(pp.sourceId);
          break;
        case "add":
          later.push({ plan: pp, rc: rc! });
          break;
      }
    }

    // 3. Drain what was retired, then close what no longer runs: changed and removed sources and sinks.
    const deadline = timeoutSignal(timeoutMs);
    const timedOut = await drainWithin(retiring, deadline, this.stopRequested.signal);
    deadline.cancel();
    if (timedOut && !this.stopRequested.signal.aborted) deps.log.warn({ timeoutMs }, "reload: routes did not drain in time; their in-flight events are released for redelivery");
    for (const r of retiring) this.retired.delete(r);
    if (this.stopRequested.signal.aborted) {
      for (const r of retiring) this.retired.add(r);
      return { ...base, result: "failed", problems, message: "the daemon began stopping during the reload" };
    }
    // A restarted route's new disk buffer locks the same directory: the old one lets go first.
    await closeInlets(retiring, deps.log);
    const settle = timeoutSignal(timedOut ? SETTLE_GRACE_MS : timeoutMs);
    await Promise.all(stoppedSources.map((s) => s.close(settle).catch((err) => deps.log.warn({ err }, "source close failed"))));
    settle.cancel();
    for (const s of stoppedSources) this.retiredSources.delete(s);
    for (const pp of plan.pipelines) {
      if (pp.change === "remove" || (pp.change === "restart" && pp.sourceChanged)) deps.board.components.delete(deps.board.key("source", pp.sourceId));
    }
    for (const id of [...plan.sinks.replace, ...plan.sinks.remove]) {
      await this.sinks.get(id)?.sink.close().catch((err) => deps.log.warn({ err, sink: id }, "sink close failed"));
      this.sinks.delete(id);
      deps.board.components.delete(deps.board.key("sink", id));
    }

    // 4. Open changed sinks, create changed and new sources, put their routes in place and start them.
    for (const id of plan.sinks.replace) this.sinks.set(id, { sink: await this.createSink(id, next.sinks[id]!, next), config: next.sinks[id]! });
    await this.within(
      Promise.all(
        plan.sinks.replace.map((id) =>
          this.sinks
            .get(id)!
            .sink.open()
            .catch((err) => problems.push(`sink "${id}" did not open: ${(err as Error).message}`)),
        ),
      ),
      timeoutMs,
      "opening changed sinks",
    ).catch((err) => problems.push((err as Error).message));
    if (this.stopRequested.signal.aborted) return { ...base, result: "failed", problems, message: "the daemon began stopping during the reload" };
    const starting: Pipeline[] = [];
    for (const { plan: pp, rc } of later) {
      const existing = this.pipelines.get(pp.sourceId);
      if (existing && !pp.sourceChanged) {
        await this.installRoute(existing, rc, next).catch((err) => problems.push(`route "${rc.name}" did not start: ${(err as Error).message}`));
        continue;
      }
      const p = await this.newPipeline(rc, next, this.newStats(rc));
      this.pipelines.set(pp.sourceId, p);
      starting.push(p);
    }
    await Promise.all(starting.map((p) => p.buffer?.open().catch((err) => problems.push(`the buffer of route "${p.routeConfig.name}" did not open: ${(err as Error).message}`))));
    this.adopt(next, plan);
    if (this.stopRequested.signal.aborted) return { ...base, result: "failed", problems, message: "the daemon began stopping during the reload" };
    await this.within(
      Promise.all(starting.map((p) => p.source.start(p.inbox).catch((err) => problems.push(`source "${p.sourceId}" did not start: ${(err as Error).message}`)))),
      timeoutMs,
      "starting sources",
    ).catch((err) => problems.push((err as Error).message));
    for (const text of problems) deps.board.recordError({ level: "error", where: "engine", message: `reload: ${text}` });
    return { ...base, result: "applied", problems };
  }

  /** Makes `next` the config in force and the board's route list match it. */
  private adopt(next: BridgeConfig, plan: ReloadPlan): void {
    const { board } = this.deps;
    const names = new Set(next.routes.map((r) => r.name));
    for (const name of [...board.routes.keys()]) if (!names.has(name)) board.routes.delete(name);
    for (const pp of plan.pipelines) {
      const p = this.pipelines.get(pp.sourceId);
      if (p && pp.newRoute !== undefined) board.routes.set(pp.newRoute, p.stats.state);
    }
    this.config = next;
  }

  /** Builds the route for `rc` (and opens its buffer), then moves the pipeline's source over to it. */
  private async installRoute(p: Pipeline, rc: RouteConfig, config: BridgeConfig): Promise<void> {
    const stats = this.newStats(rc);
    const built = buildRoute(rc, stats, this.routeDeps(rc, config), this.bufferSettings(rc, config), p);
    await built.buffer?.open();
    p.route = built.route;
    p.buffer = built.buffer;
    p.routeConfig = rc;
    p.stats = stats;
    p.dedupe = built.dedupe;
    p.ordering = built.ordering;
    p.inbox.moveTo(built.buffer ?? built.route);
    this.deps.board.routes.set(rc.name, stats.state);
  }

  /** The route's buffer: as configured, or a memory buffer when its source cannot pause. */
  private bufferSettings(rc: RouteConfig, config: BridgeConfig): BufferSettings | undefined {
    const src = config.sources[rc.from]!;
    return resolveBuffer(rc.buffer, this.deps.registry.source(src.type)!.pausable(src.options as never));
  }

  /** Stops a source a reload takes out; it is closed once its route drained (or by a stop). */
  private async retireSource(source: Source, into: Source[]): Promise<void> {
    this.retiredSources.add(source);
    into.push(source);
    await source.stop().catch((err) => this.deps.log.warn({ err }, "source stop failed"));
  }

  private async newPipeline(rc: RouteConfig, config: BridgeConfig, stats: RouteStats): Promise<Pipeline> {
    const comp = config.sources[rc.from]!;
    const built = buildRoute(rc, stats, this.routeDeps(rc, config), this.bufferSettings(rc, config));
    const p: Pipeline = {
      sourceId: rc.from,
      source: undefined as unknown as Source,
      sourceConfig: comp,
      inbox: new InboxSwitch(built.buffer ?? built.route),
      route: built.route,
      buffer: built.buffer,
      routeConfig: rc,
      stats,
      dedupe: built.dedupe,
      ordering: built.ordering,
    };
    p.source = await this.createSource(rc.from, comp, config, () => p.stats);
    return p;
  }

  private routeDeps(rc: RouteConfig, config: BridgeConfig) {
    const { metrics, log, board } = this.deps;
    return {
      sinks: this.sinks,
      metrics,
      log: recordingLogger(log.child({ route: rc.name }), `route:${rc.name}`, board),
      instanceId: config.engine.instance_id,
      ...(this.deps.tracer ? { tracer: this.deps.tracer } : {}),
    };
  }

  /** Stats for a route; a name that already has counters keeps them (its metrics continue too). */
  private newStats(rc: RouteConfig): RouteStats {
    const counters = this.deps.board.routes.get(rc.name)?.counters;
    return new RouteStats(this.deps.metrics, {
      name: rc.name,
      sourceId: rc.from,
      sinkIds: rc.to,
      deadLetter: rc.dead_letter,
      capacity: rc.max_in_flight,
      ...(counters ? { counters } : {}),
    });
  }

  private context(kind: "source" | "sink", id: string, type: string, config: BridgeConfig, stats?: () => RouteStats): ConnectorContext {
    const { board, metrics, log } = this.deps;
    const state = { id, kind, type, up: false, since: new Date().toISOString() };
    board.components.set(board.key(kind, id), state);
    const component = `${kind}:${id}`;
    metrics.connectorUp.set({ component }, 0);
    return {
      id,
      instanceId: config.engine.instance_id,
      log: recordingLogger(log.child({ component }), component, board),
      setUp(up) {
        if (state.up === up) return;
        state.up = up;
        state.since = new Date().toISOString();
        // A replaced instance closing late must not mark its successor down.
        if (board.components.get(component) === state) metrics.connectorUp.set({ component }, up ? 1 : 0);
      },
      countDropped(reason) {
        stats?.().dropped(reason);
      },
    };
  }

  private async createSink(id: string, comp: ComponentConfig, config = this.config): Promise<Sink> {
    const def = this.deps.registry.sink(comp.type)!;
    const factory = await def.load();
    return factory(comp.options as never, this.context("sink", id, comp.type, config));
  }

  private async createSource(id: string, comp: ComponentConfig, config: BridgeConfig, stats: () => RouteStats): Promise<Source> {
    const def = this.deps.registry.source(comp.type)!;
    const factory = await def.load();
    return factory(comp.options as never, this.context("source", id, comp.type, config, stats));
  }

  /** `p`, or a rejection naming `what` after `ms` or when the daemon starts stopping. */
  private within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onStop = () => reject(new Error(`${what}: the daemon is stopping`));
      const timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
      this.stopRequested.signal.addEventListener("abort", onStop, { once: true });
      if (this.stopRequested.signal.aborted) onStop();
      // Always handled, so a late rejection after the timeout is not an unhandled one.
      p.then(resolve, reject).finally(() => {
        clearTimeout(timer);
        this.stopRequested.signal.removeEventListener("abort", onStop);
      });
    });
  }
}

/** After a shutdown timeout, how long sources may still take to hand released messages back. */
const SETTLE_GRACE_MS = 2_000;

function usedSinkIds(routes: readonly RouteConfig[]): string[] {
  return [...new Set(routes.flatMap(routeSinks))];
}

function routesByChange(plan: ReloadPlan): Record<PipelineChange, string[]> {
  const out: Record<PipelineChange, string[]> = { keep: [], switch: [], restart: [], add: [], remove: [] };
  for (const p of plan.pipelines) out[p.change].push((p.newRoute ?? p.oldRoute)!);
  return out;
}

/**
 * Waits for `routes` to drain. When `deadline` aborts first, aborts them (their in-flight events
 * are released for redelivery), waits for that, and returns true. `cut` (a stop) ends the wait
 * early without aborting: the stop drains them itself.
 */
async function drainWithin(routes: readonly Inlet[], deadline: AbortSignal, cut?: AbortSignal): Promise<boolean> {
  const drained = Promise.all(routes.map((r) => r.drain()));
  const first = await Promise.race([drained.then(() => "drained" as const), aborted(deadline).then(() => "deadline" as const), ...(cut ? [aborted(cut).then(() => "cut" as const)] : [])]);
  if (first !== "deadline") return false;
  for (const r of routes) r.abort();
  await drained;
  return true;
}

/** Closes the buffers among `inlets` (after they drained); a bare route has nothing to close. */
async function closeInlets(inlets: readonly Inlet[], log: Logger): Promise<void> {
  await Promise.all(inlets.map((i) => i.close?.().catch((err) => log.warn({ err }, "buffer close failed"))));
}

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
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
