/**
 * The subscription manager: every stream and every subscription, the state file, the dead-letter
 * sinks, and the operations the API calls. One manager per daemon; `main.ts` makes it when the
 * config has a `subscriptions:` section.
 *
 * Consistency: the state file is the truth. An operation first does what may fail slowly outside
 * any lock (connect the sink, ask the handshake), then commits: the new set of records is written
 * (atomically, one write at a time), and only then does the change take effect and the request get
 * its answer. Operations on one subscription run one at a time. A delete stops matching before it
 * writes, so no event is queued for a subscription being deleted.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { streamQueue, type StreamConfig, type SubscriptionsConfig } from "../config/subscriptions.js";
import type { ComponentConfig } from "../config/schema.js";
import type { Registry } from "../core/connector.js";
import { BridgeError, SubscriptionInvalidError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { CloudEvent } from "../cloudevents/event.js";
import { displaySink, publicView, type StoredSubscription } from "./model.js";
import { makeQueue } from "./queues.js";
import { StateFile, type RawRecord } from "./state-file.js";
import { SubscriptionMetrics } from "./stats.js";
import { LiveSubscription, type StreamSettings, type SubscriptionDeps } from "./subscription.js";
import { readSubscription, type StreamRules } from "./validate.js";
import type { Registry as PromRegistry } from "prom-client";

/** An API failure with its HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly error: BridgeError,
  ) {
    super(error.message);
  }
}

interface Entry {
  readonly record: StoredSubscription | RawRecord;
  readonly live?: LiveSubscription | undefined;
  /** Why a record has no live subscription: its stream is not configured, or it no longer validates. */
  readonly dormant?: { readonly state: "orphaned" | "invalid"; readonly reason: string } | undefined;
}

interface Stream {
  settings: StreamSettings;
  rules: StreamRules;
  /** Live subscriptions the stream's events go to: an array, walked per event. */
  subs: LiveSubscription[];
}

export interface ManagerDeps {
  readonly registry: Registry;
  readonly log: Logger;
  readonly promRegistry: PromRegistry;
  readonly instanceId: string;
  /** The config's sink components, for the streams' dead-letter sinks. */
  readonly sinks: Readonly<Record<string, ComponentConfig>>;
}

export class SubscriptionManager {
  private config: SubscriptionsConfig;
  private sinkComponents: Readonly<Record<string, ComponentConfig>>;
  private readonly stateFile: StateFile;
  private readonly streams = new Map<string, Stream>();
  private committed = new Map<string, Entry>();
  private writes: Promise<unknown> = Promise.resolve();
  private readonly locks = new Map<string, Promise<unknown>>();
  private creating = 0;
  private readonly deadLetters = new Map<string, { id: string; sink: Sink; config: ComponentConfig }>();
  readonly metrics: SubscriptionMetrics;
  private readonly log: Logger;
  private stopped = false;

  constructor(
    config: SubscriptionsConfig,
    private readonly deps: ManagerDeps,
  ) {
    this.config = config;
    this.sinkComponents = deps.sinks;
    this.stateFile = new StateFile(config.state_dir);
    this.metrics = new SubscriptionMetrics(deps.promRegistry);
    this.log = deps.log.child({ component: "subscriptions" });
  }

  /** The token requests must carry, and the body limit: read per request, so a reload applies at once. */
  get settings(): SubscriptionsConfig {
    return this.config;
  }

  /** Reads the state file and brings every subscription back (their sinks connect in the background). */
  async start(): Promise<void> {
    const records = await this.stateFile.load();
    await this.applyStreams(this.config);
    for (const raw of records) {
      const entry = await this.revive(raw);
      this.committed.set(raw.subscription.id, entry);
    }
    this.refreshCounts();
    const live = [...this.committed.values()].filter((e) => e.live).length;
    this.log.info({ subscriptions: this.committed.size, live, state: this.stateFile.path }, "subscriptions loaded");
  }

  /** A reload: streams are matched by name; a removed stream orphans its subscriptions, a returning one revives them. */
  async reconfigure(next: SubscriptionsConfig, sinks: Readonly<Record<string, ComponentConfig>>): Promise<void> {
    this.config = next;
    this.sinkComponents = sinks;
    await this.applyStreams(next);
    await this.exclusive("*", async () => {
      for (const [id, e] of [...this.committed]) {
        const stream = this.streams.get(e.record.stream);
        if (e.live && !stream) {
          await e.live.stop("orphan");
          this.committed.set(id, { record: e.record, dormant: { state: "orphaned", reason: `stream "${e.record.stream}" is not configured` } });
        } else if (e.live && stream) {
          try {
            // Expiry is the subscription's own business (it suspends itself), not a reason to refuse it here.
            readSubscription(e.record.subscription, { rules: stream.rules, id, now: new Date(0) });
            e.live.restream(stream.settings);
            if (!stream.subs.includes(e.live)) stream.subs.push(e.live);
          } catch (err) {
            await e.live.stop("orphan");
            this.committed.set(id, { record: e.record, dormant: { state: "invalid", reason: (err as Error).message } });
          }
        } else if (!e.live && stream) {
          this.committed.set(id, await this.revive(e.record));
        }
      }
    });
    this.refreshCounts();
  }

  /** Stops every subscription (in-flight deliveries may finish until `deadline`), and the dead-letter sinks. */
  async stop(deadline: AbortSignal): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.committed.values()].map((e) => e.live?.stop("shutdown", deadline).catch((err) => this.log.warn({ err }, "subscription stop failed"))));
    await Promise.all([...this.deadLetters.values()].map((d) => d.sink.close().catch(() => undefined)));
  }

  // ---------------------------------------------------------------------------------------------
  // The stream side: what the virtual sink `subscriptions:<stream>` calls per event.

  /** Hands `event` to every matching subscription of `stream`; resolves once each queue took it. */
  deliver(stream: string, event: CloudEvent): Promise<void> | undefined {
    const s = this.streams.get(stream);
    if (!s || s.subs.length === 0) return undefined;
    let waits: Promise<void>[] | undefined;
    for (let i = 0; i < s.subs.length; i++) {
      const p = s.subs[i]!.accept(event);
      if (p) (waits ??= []).push(p);
    }
    return waits ? Promise.all(waits).then(() => undefined) : undefined;
  }

  hasStream(name: string): boolean {
    return this.streams.has(name);
  }

  // ---------------------------------------------------------------------------------------------
  // The API's operations. Each throws `ApiError` with the status to answer.

  streamNames(): { name: string; protocols: readonly string[] }[] {
    return [...this.streams].map(([name, s]) => ({ name, protocols: s.rules.protocols }));
  }

  list(stream: string): Record<string, unknown>[] {
    this.streamOr404(stream);
    return [...this.committed.values()].filter((e) => e.record.stream === stream && e.live).map((e) => publicView(e.live!.spec));
  }

  get(stream: string, id: string): Record<string, unknown> {
    this.streamOr404(stream);
    return publicView(this.liveOr404(stream, id).spec);
  }

  async create(stream: string, body: unknown): Promise<{ id: string; view: Record<string, unknown> }> {
    const s = this.streamOr404(stream);
    if (this.committed.size + this.creating >= this.config.max_subscriptions) {
      throw new ApiError(403, new BridgeError("CEB_SUBSCRIPTION_LIMIT", `the manager holds ${this.config.max_subscriptions} subscriptions (max_subscriptions); delete one first`, false));
    }
    this.creating++;
    try {
      const id = randomUUID();
      const spec = this.read(body, s, id, undefined);
      const record: StoredSubscription = { stream, createdat: new Date().toISOString(), subscription: spec };
      LiveSubscriptionCheck(spec, s, this.subDeps());
      const live = await this.connect(() => LiveSubscription.create(record, s.settings, this.subDeps()));
      try {
        await this.commit((m) => m.set(id, { record, live }));
      } catch (err) {
        await live.stop("delete");
        throw err;
      }
      if (this.stopped) await live.stop("shutdown");
      else s.subs.push(live);
      this.refreshCounts();
      this.log.info({ subscription: id, stream, protocol: spec.protocol, sink: displaySink(spec.sink) }, "subscription created");
      return { id, view: publicView(spec) };
    } finally {
      this.creating--;
    }
  }

  async replace(stream: string, id: string, body: unknown): Promise<Record<string, unknown>> {
    const s = this.streamOr404(stream);
    return this.exclusive(id, async () => {
      const e = this.committed.get(id);
      if (!e || e.record.stream !== stream) throw notFound(stream, id);
      const previous = e.live?.spec;
      const spec = this.read(body, s, id, previous);
      const record: StoredSubscription = { stream, createdat: e.record.createdat, subscription: spec };
      LiveSubscriptionCheck(spec, s, this.subDeps());
      if (e.live) {
        const live = e.live;
        await this.connect(() => live.replace(record, s.settings, () => this.commit((m) => m.set(id, { record, live }))));
      } else {
        // A record that had stopped validating is set right by a replace: it starts afresh.
        const live = await this.connect(() => LiveSubscription.create(record, s.settings, this.subDeps()));
        try {
          await this.commit((m) => m.set(id, { record, live }));
        } catch (err) {
          await live.stop("delete");
          throw err;
        }
        s.subs.push(live);
      }
      this.log.info({ subscription: id, stream }, "subscription replaced");
      return publicView(spec);
    });
  }

  async remove(stream: string, id: string): Promise<Record<string, unknown>> {
    this.streamOr404(stream);
    return this.exclusive(id, async () => {
      const e = this.committed.get(id);
      if (!e || e.record.stream !== stream || !e.live) throw notFound(stream, id);
      const live = e.live;
      const s = this.streams.get(stream);
      // Stop matching first: from here on no event is queued for it.
      if (s) s.subs = s.subs.filter((x) => x !== live);
      try {
        await this.commit((m) => m.delete(id));
      } catch (err) {
        if (s && !s.subs.includes(live)) s.subs.push(live);
        throw err;
      }
      this.refreshCounts();
      // Aborts queued and in-flight deliveries now (synchronously); closing the sink may take a moment.
      void live.stop("delete").catch((err) => this.log.warn({ err }, "stopping a deleted subscription failed"));
      this.log.info({ subscription: id, stream }, "subscription deleted");
      return publicView(live.spec);
    });
  }

  /** Every subscription for `/status`, orphaned and invalid ones included. No secret in it. */
  snapshot(): Record<string, unknown>[] {
    return [...this.committed.values()].map((e) => {
      if (e.live) return e.live.snapshot();
      const sub = e.record.subscription as { id: string; protocol?: unknown; sink?: unknown };
      return {
        id: sub.id,
        stream: e.record.stream,
        protocol: typeof sub.protocol === "string" ? sub.protocol : null,
        sink: typeof sub.sink === "string" ? displaySink(sub.sink) : null,
        state: e.dormant?.state ?? "invalid",
        reason: e.dormant?.reason ?? null,
        created_at: e.record.createdat,
      };
    });
  }

  // ---------------------------------------------------------------------------------------------

  private read(body: unknown, s: Stream, id: string, previous: StoredSubscription["subscription"] | undefined): StoredSubscription["subscription"] {
    try {
      return readSubscription(body, { rules: s.rules, id, previous, now: new Date() });
    } catch (err) {
      if (err instanceof SubscriptionInvalidError) throw new ApiError(400, err);
      throw err;
    }
  }

  /** Runs a connect step; its failures are the subscriber's to fix (400). */
  private async connect<T>(step: () => Promise<T>): Promise<T> {
    try {
      return await step();
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof SubscriptionInvalidError) throw new ApiError(400, err);
      if (err instanceof BridgeError && err.code === "CEB_STATE") throw new ApiError(503, err);
      if (err instanceof BridgeError && (err.code === "CEB_HANDSHAKE" || err.code === "CEB_CONNECT")) throw new ApiError(400, err);
      throw err;
    }
  }

  /** Writes the records with `change` applied; the change takes effect only once the file is written. */
  private commit(change: (m: Map<string, Entry>) => void): Promise<void> {
    const run = this.writes.then(async () => {
      const next = new Map(this.committed);
      change(next);
      try {
        await this.stateFile.save([...next.values()].map((e) => e.record));
      } catch (err) {
        this.log.error({ err: (err as Error).message }, "state file write failed; the change was not made");
        throw new ApiError(503, err instanceof BridgeError ? err : new BridgeError("CEB_STATE", String(err), true));
      }
      this.committed = next;
    });
    this.writes = run.catch(() => undefined);
    return run;
  }

  /** Runs `fn` alone among the operations on `key` (`*`: a reload, alone among everything it touches). */
  private async exclusive<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.locks.set(key, tail);
    try {
      return await run;
    } finally {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }

  private streamOr404(name: string): Stream {
    const s = this.streams.get(name);
    if (!s) throw new ApiError(404, new BridgeError("CEB_NOT_FOUND", `no stream named "${clip(name)}"`, false));
    return s;
  }

  private liveOr404(stream: string, id: string): LiveSubscription {
    const e = this.committed.get(id);
    if (!e || e.record.stream !== stream || !e.live) throw notFound(stream, id);
    return e.live;
  }

  /** A record from the state file (or a returning stream) made live, or kept dormant with the reason. */
  private async revive(raw: StoredSubscription | RawRecord): Promise<Entry> {
    const id = raw.subscription.id;
    const s = this.streams.get(raw.stream);
    if (!s) return { record: raw, dormant: { state: "orphaned", reason: `stream "${raw.stream}" is not configured` } };
    let spec;
    try {
      spec = readSubscription(raw.subscription, { rules: s.rules, id, now: new Date(0) });
      LiveSubscriptionCheck(spec, s, this.subDeps());
    } catch (err) {
      this.log.warn({ subscription: id, stream: raw.stream, reason: (err as Error).message }, "stored subscription no longer valid; kept, not delivered");
      return { record: raw, dormant: { state: "invalid", reason: (err as Error).message } };
    }
    const record: StoredSubscription = { stream: raw.stream, createdat: raw.createdat, subscription: spec };
    const live = await LiveSubscription.restore(record, s.settings, this.subDeps());
    s.subs.push(live);
    return { record, live };
  }

  /** Makes `streams` match the config: settings refreshed, dead-letter sinks made or replaced. */
  private async applyStreams(config: SubscriptionsConfig): Promise<void> {
    const names = new Set(Object.keys(config.streams));
    for (const name of [...this.streams.keys()]) if (!names.has(name)) this.streams.delete(name);
    for (const [name, sc] of Object.entries(config.streams)) {
      const deadLetter = await this.deadLetterSink(name, sc);
      const settings = streamSettings(name, sc, deadLetter);
      const rules: StreamRules = { protocols: sc.protocols, allowedSinks: sc.allowed_sinks };
      const existing = this.streams.get(name);
      if (existing) {
        existing.settings = settings;
        existing.rules = rules;
      } else this.streams.set(name, { settings, rules, subs: [] });
    }
    for (const [name, d] of [...this.deadLetters]) {
      if (!names.has(name)) {
        this.deadLetters.delete(name);
        void d.sink.close().catch(() => undefined);
      }
    }
  }

  /** The stream's own instance of its dead-letter sink (opened in the background: writes retry until it is up). */
  private async deadLetterSink(stream: string, sc: StreamConfig): Promise<{ id: string; sink: Sink } | undefined> {
    const current = this.deadLetters.get(stream);
    const comp = sc.dead_letter !== undefined ? this.sinkComponents[sc.dead_letter] : undefined;
    if (current && comp && current.id === sc.dead_letter && JSON.stringify(current.config) === JSON.stringify(comp)) return current;
    if (current) {
      this.deadLetters.delete(stream);
      void current.sink.close().catch(() => undefined);
    }
    if (!comp || sc.dead_letter === undefined) return undefined;
    const def = this.deps.registry.sink(comp.type);
    if (!def) return undefined;
    const factory = await def.load();
    const component = `subscriptions-dead-letter-${stream}`;
    const log = this.log.child({ component });
    const sink = factory(comp.options as never, { id: component, instanceId: this.deps.instanceId, log, setUp: () => undefined, countDropped: () => undefined });
    sink.open().catch((err) => log.warn({ err: (err as Error).message }, "dead-letter sink did not open"));
    const entry = { id: sc.dead_letter, sink, config: comp };
    this.deadLetters.set(stream, entry);
    return entry;
  }

  private subDeps(): SubscriptionDeps {
    return {
      registry: this.deps.registry,
      log: this.log,
      instanceId: this.deps.instanceId,
      origin: this.config.origin ?? this.deps.instanceId,
      metrics: this.metrics,
      makeQueue,
      queueDir: (id) => join(this.config.state_dir, "queues", id),
    };
  }

  private refreshCounts(): void {
    const counts = new Map<string, number>();
    for (const e of this.committed.values()) counts.set(e.record.stream, (counts.get(e.record.stream) ?? 0) + 1);
    this.metrics.setCounts(counts);
  }
}

/** Checks a subscription's sink against its connector (throws `SubscriptionInvalidError`). */
function LiveSubscriptionCheck(spec: StoredSubscription["subscription"], s: Stream, deps: SubscriptionDeps): void {
  try {
    LiveSubscription.check(spec, s.settings, deps);
  } catch (err) {
    if (err instanceof SubscriptionInvalidError) throw new ApiError(400, err);
    throw err;
  }
}

function streamSettings(name: string, sc: StreamConfig, deadLetter: { id: string; sink: Sink } | undefined): StreamSettings {
  return {
    name,
    route: sc.route,
    maxInFlight: sc.max_in_flight,
    retry: sc.retry,
    timeoutMs: sc.timeout,
    connectTimeoutMs: sc.connect_timeout,
    queue: streamQueue(sc),
    deadLetter,
  };
}

function notFound(stream: string, id: string): ApiError {
  return new ApiError(404, new BridgeError("CEB_NOT_FOUND", `stream "${clip(stream)}" has no subscription "${clip(id)}"`, false));
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}
