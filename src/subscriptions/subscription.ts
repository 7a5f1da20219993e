/**
 * One live subscription: its compiled match, its queue, its deliverer and its sink, and its state.
 *
 * States: `connecting` (the sink is connecting, or the handshake is being asked), `active`,
 * `down` (the sink lost its connection and is reconnecting), `refused` (the HTTP target did not grant
 * the handshake), `gone` (it answered 410), `expired` (its access token expired). In `connecting`
 * and `down` matching events queue up; in `refused`, `gone` and `expired` they are not taken (counted
 * as dropped, reason `inactive`) until a replace (PUT) sets things right. `orphaned` and `invalid`
 * records are kept by the manager without a live subscription.
 */
import { rm } from "node:fs/promises";
import type { CloudEvent } from "../cloudevents/event.js";
import type { Registry } from "../core/connector.js";
import { BridgeError, ConnectError, HandshakeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { Received } from "../core/source.js";
import { compileFilter, type FilterPredicate } from "../filter/index.js";
import { checkPlan, createSubscriptionSink } from "./connector.js";
import { Deliverer } from "./deliverer.js";
import { displaySink, scrub, secretValues, type StoredSubscription, type Subscription } from "./model.js";
import type { SubscriptionQueue, QueueTarget } from "./queue.js";
import { planSink, type SinkPlan } from "./sink-plan.js";
import type { SubscriptionMetrics, SubscriptionStats } from "./stats.js";

export type LiveState = "connecting" | "active" | "down" | "refused" | "gone" | "expired";

/** A stream's settings, as a subscription needs them (from the config, already in ms and bytes). */
export interface StreamSettings {
  readonly name: string;
  readonly route: string;
  readonly maxInFlight: number;
  readonly retry: { readonly initial: number; readonly max: number; readonly max_elapsed: number };
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly queue: { readonly type: "memory"; readonly max_bytes: number } | { readonly type: "disk"; readonly max_bytes: number; readonly fsync: "always" | "interval" };
  readonly deadLetter: { readonly id: string; readonly sink: Sink } | undefined;
}

export interface SubscriptionDeps {
  readonly registry: Registry;
  readonly log: Logger;
  readonly instanceId: string;
  readonly origin: string;
  readonly metrics: SubscriptionMetrics;
  /** Makes the queue in front of `target` (memory, or disk under `dir`). */
  makeQueue(settings: StreamSettings["queue"], target: QueueTarget, dir: string, log: Logger): SubscriptionQueue;
  /** The directory of a subscription's disk queue. */
  queueDir(id: string): string;
}

/** Builds the match of a subscription: `source` equal, `type` one of `types`, every filter true. */
export function compileMatch(s: Subscription, onFilterError: () => void): FilterPredicate {
  const parts: FilterPredicate[] = [];
  if (s.source !== undefined) {
    const want = s.source;
    parts.push((e) => e.attributes["source"] === want);
  }
  if (s.types !== undefined) {
    const types = new Set(s.types);
    parts.push((e) => types.has(e.attributes["type"] as string));
  }
  for (const f of s.filters ?? []) parts.push(compileFilter(f, onFilterError));
  if (parts.length === 0) return () => true;
  return (e) => {
    for (let i = 0; i < parts.length; i++) if (!parts[i]!(e)) return false;
    return true;
  };
}

/** The members that decide where and how events go; a replace that keeps them keeps the sink. */
function sinkKey(s: Subscription): string {
  return JSON.stringify([s.protocol, s.sink, s.protocolsettings, s.sinkcredential ?? null]);
}

interface Pipeline {
  readonly sink: Sink;
  readonly deliverer: Deliverer;
  readonly queue: SubscriptionQueue;
}

export class LiveSubscription {
  state: LiveState = "connecting";
  private match: FilterPredicate;
  private pipeline: Pipeline | undefined;
  private secrets: string[];
  private expiry: NodeJS.Timeout | undefined;
  private opening = new AbortController();
  private readonly log: Logger;
  readonly stats: SubscriptionStats;

  private constructor(
    public record: StoredSubscription,
    private stream: StreamSettings,
    private readonly deps: SubscriptionDeps,
  ) {
    this.log = deps.log.child({ subscription: record.subscription.id, stream: record.stream });
    this.secrets = secretValues(record.subscription);
    this.stats = deps.metrics.subscription({
      stream: record.stream,
      id: record.subscription.id,
      queued: () => this.queuedNow(),
      inFlight: () => this.pipeline?.deliverer.inFlight ?? 0,
    });
    this.match = compileMatch(record.subscription, () => this.stats.filterError());
  }

  get id(): string {
    return this.record.subscription.id;
  }

  get spec(): Subscription {
    return this.record.subscription;
  }

  /**
   * Checks the sink the subscription asks for against its connector. Throws
   * `SubscriptionInvalidError` naming the member at fault.
   */
  static check(s: Subscription, stream: StreamSettings, deps: SubscriptionDeps): { plan: SinkPlan; typed: Record<string, unknown> } {
    const plan = planSink(s, { origin: deps.origin, timeoutMs: stream.timeoutMs });
    return { plan, typed: checkPlan(deps.registry, plan) };
  }

  /**
   * A new subscription (create) whose sink must connect, and an HTTP target grant the handshake,
   * within the stream's `connect_timeout`: otherwise it throws (`CEB_HANDSHAKE`, `CEB_CONNECT`) and
   * leaves nothing behind. The subscription takes events only once `activate` is called.
   */
  static async create(record: StoredSubscription, stream: StreamSettings, deps: SubscriptionDeps): Promise<LiveSubscription> {
    const live = new LiveSubscription(record, stream, deps);
    try {
      await live.build(true);
      return live;
    } catch (err) {
      live.stats.forget();
      throw err;
    }
  }

  /** A subscription read back from the state file: it connects in the background and queues meanwhile. */
  static async restore(record: StoredSubscription, stream: StreamSettings, deps: SubscriptionDeps): Promise<LiveSubscription> {
    const live = new LiveSubscription(record, stream, deps);
    await live.build(false);
    return live;
  }

  /**
   * Offers a matching event to the queue. Returns a promise only when the queue confirms later
   * (a disk queue: once the event is durable); never waits for the subscriber.
   */
  accept(event: CloudEvent): Promise<void> | undefined {
    if (!this.match(event)) return undefined;
    this.stats.matched();
    const p = this.pipeline;
    if (!p || this.state === "refused" || this.state === "gone" || this.state === "expired") {
      this.stats.dropped("inactive");
      return undefined;
    }
    if (p.queue.type === "memory") {
      if (!p.queue.offer({ events: [event], settle: noop })) this.stats.dropped("overflow");
      return undefined;
    }
    return new Promise<void>((resolve) => {
      const msg: Received = {
        events: [event],
        settle: (o) => {
          // Refused by the disk (full, write failed): the stream does not wait, the event is counted.
          if (o.status !== "delivered") this.stats.dropped("overflow");
          resolve();
        },
      };
      if (!p.queue.offer(msg)) {
        this.stats.dropped("overflow");
        resolve();
      }
    });
  }

  /**
   * Applies a replace. Filters and the like change at once; a changed sink (protocol, URL,
   * settings, credential) is connected first (as on create: it must connect in time, or this throws
   * and nothing changes), then takes over from the old one, whose in-flight deliveries are cut off.
   */
  async replace(next: StoredSubscription, stream: StreamSettings, commit: () => Promise<void>): Promise<void> {
    // A suspended subscription (refused, gone, expired) starts afresh on any replace: a new sink, a new handshake.
    const suspended = this.state === "refused" || this.state === "gone" || this.state === "expired";
    const sinkChanged = suspended || sinkKey(next.subscription) !== sinkKey(this.spec);
    if (!sinkChanged) {
      await commit();
      this.adopt(next, stream);
      return;
    }
    const { plan, typed } = LiveSubscription.check(next.subscription, stream, this.deps);
    const sink = await this.makeSink(plan, typed, secretValues(next.subscription));
    await this.openStrict(sink, next.subscription, stream);
    try {
      await commit();
    } catch (err) {
      await sink.close().catch(() => undefined);
      throw err;
    }
    const old = this.pipeline;
    this.adopt(next, stream);
    if (old && this.stream.queue.type === "disk") {
      // One disk queue per directory: the old one closes (keeping its events) before the new one opens them.
      this.pipeline = undefined;
      await this.retire(old, "replace");
      this.pipeline = await this.makePipeline(sink);
    } else {
      // The new pipeline takes events at once; the old one's queued and in-flight events are cut off.
      this.pipeline = await this.makePipeline(sink);
      if (old) void this.retire(old, "replace").catch((err) => this.log.warn({ err }, "retiring the replaced sink failed"));
    }
    this.pipeline.deliverer.resume(sink);
    this.setState("active");
  }

  private adopt(next: StoredSubscription, stream: StreamSettings): void {
    this.record = next;
    this.stream = stream;
    this.secrets = secretValues(next.subscription);
    this.match = compileMatch(next.subscription, () => this.stats.filterError());
    this.armExpiry();
  }

  /** New settings for the stream (a reload): they apply from the next replace or restart. */
  restream(stream: StreamSettings): void {
    this.stream = stream;
  }

  /**
   * Stops for good. `delete`: queued and in-flight events are aborted and counted as unsubscribed,
   * a disk queue is removed. `shutdown`: in-flight deliveries may finish until `deadline` aborts (a
   * disk queue keeps the rest). `orphan`: the stream is gone; stops at once, keeping a disk queue.
   */
  async stop(how: "delete" | "shutdown" | "orphan", deadline?: AbortSignal): Promise<void> {
    this.opening.abort();
    clearTimeout(this.expiry);
    const p = this.pipeline;
    this.pipeline = undefined;
    if (p) await this.retire(p, how, deadline);
    if (how === "delete" || how === "orphan") this.stats.forget();
    if (how === "delete" && this.stream.queue.type === "disk") await rm(this.deps.queueDir(this.id), { recursive: true, force: true }).catch(() => undefined);
  }

  /** Events waiting (not in flight): a disk queue counts an event until it is delivered. */
  private queuedNow(): number {
    const p = this.pipeline;
    if (!p) return 0;
    const events = p.queue.reading().events;
    return p.queue.type === "disk" ? Math.max(0, events - p.deliverer.inFlight) : events;
  }

  /** What `/status` shows: no credentials, no header values, the sink without user info or query. */
  snapshot(): Record<string, unknown> {
    const q = this.pipeline?.queue.reading() ?? { events: 0, bytes: 0 };
    const inFlight = this.pipeline?.deliverer.inFlight ?? 0;
    const queued = this.queuedNow();
    return {
      id: this.id,
      stream: this.record.stream,
      protocol: this.spec.protocol,
      sink: displaySink(this.spec.sink),
      state: this.state,
      created_at: this.record.createdat,
      queue: this.stream.queue.type,
      queued,
      queued_bytes: q.bytes,
      in_flight: inFlight,
      counters: { ...this.stats.counters },
      last_error: this.stats.lastError ?? null,
    };
  }

  // ---------------------------------------------------------------------------------------------

  private async build(strict: boolean): Promise<void> {
    const { plan, typed } = LiveSubscription.check(this.spec, this.stream, this.deps);
    const sink = await this.makeSink(plan, typed, this.secrets);
    if (strict) {
      await this.openStrict(sink, this.spec, this.stream);
      this.pipeline = await this.makePipeline(sink);
      this.pipeline.deliverer.resume(sink);
      this.setState("active");
    } else {
      this.pipeline = await this.makePipeline(sink);
      void this.openInBackground(sink, this.pipeline);
    }
    this.armExpiry();
  }

  private async makeSink(plan: SinkPlan, typed: Record<string, unknown>, secrets: readonly string[]): Promise<Sink> {
    let sink: Sink | undefined;
    sink = await createSubscriptionSink(this.deps.registry, plan, typed, { component: `subscription-${this.id}`, instanceId: this.deps.instanceId }, this.log, {
      // Connection changes of the sink in use, once it was first opened (opening sets `active`).
      setUp: (up) => {
        if (this.pipeline?.sink === sink && (this.state === "active" || this.state === "down")) this.setState(up ? "active" : "down");
      },
      problem: (message) => this.stats.error("CEB_CONNECT", scrub(message, secrets)),
    });
    return sink;
  }

  private async makePipeline(sink: Sink): Promise<Pipeline> {
    const s = this.stream;
    const deliverer = new Deliverer(
      { subscriptionId: this.id, route: s.route, window: s.maxInFlight, retry: s.retry, timeoutMs: s.timeoutMs, deadLetter: () => this.stream.deadLetter },
      {
        delivered: () => this.stats.delivered(),
        failed: (error, deadLettered) => this.stats.failed(error, scrub(error.message, this.secrets), deadLettered),
        retried: () => this.stats.retried(),
        unsubscribed: () => this.stats.dropped("unsubscribed"),
        gone: () => this.suspend("gone"),
      },
      this.log,
    );
    const queue = this.deps.makeQueue(s.queue, deliverer, this.deps.queueDir(this.id), this.log);
    await queue.open();
    return { sink, deliverer, queue };
  }

  /** Opens `sink` within the stream's connect_timeout, or closes it and throws. */
  private async openStrict(sink: Sink, spec: Subscription, stream: StreamSettings): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const last = this.stats.lastError?.message;
        reject(new ConnectError(`${displaySink(spec.sink)} did not ${spec.protocol === "HTTP" ? "grant the handshake" : "accept a connection"} within ${stream.connectTimeoutMs} ms${last ? ` (${last})` : ""}`));
      }, stream.connectTimeoutMs);
    });
    try {
      await Promise.race([sink.open(), timedOut]);
    } catch (err) {
      await sink.close().catch(() => undefined);
      if (err instanceof HandshakeError) throw new HandshakeError(scrub(err.message, secretValues(spec)));
      if (err instanceof BridgeError) throw new ConnectError(scrub(err.message, secretValues(spec)));
      throw new ConnectError(scrub(String(err), secretValues(spec)));
    } finally {
      clearTimeout(timer);
    }
  }

  /** Restart: connect (and ask the handshake) for as long as it takes; deliveries start once open. */
  private async openInBackground(sink: Sink, p: Pipeline): Promise<void> {
    try {
      await sink.open();
      if (this.pipeline !== p) return;
      p.deliverer.resume(sink);
      this.setState("active");
    } catch (err) {
      if (this.pipeline !== p || this.opening.signal.aborted) return;
      const e = err as BridgeError;
      this.stats.error(e.code ?? "CEB_CONNECT", scrub(e.message ?? String(err), this.secrets));
      if (err instanceof HandshakeError) this.suspend("refused");
      else this.log.warn({ code: e.code }, "subscription sink did not open");
    }
  }

  private suspend(state: "refused" | "gone" | "expired"): void {
    if (this.state === state) return;
    this.setState(state);
    this.pipeline?.deliverer.pause();
    this.log.warn({ state }, state === "gone" ? "subscriber answered 410 Gone: deliveries suspended until the subscription is replaced" : `subscription ${state}: deliveries suspended until it is replaced`);
  }

  private setState(state: LiveState): void {
    this.state = state;
  }

  private armExpiry(): void {
    clearTimeout(this.expiry);
    const c = this.spec.sinkcredential;
    if (c?.credentialtype !== "ACCESSTOKEN" || c.accesstokenexpiresutc === undefined) return;
    const ms = Date.parse(c.accesstokenexpiresutc) - Date.now();
    if (ms <= 0) {
      this.suspend("expired");
      return;
    }
    // setTimeout holds at most ~24.8 days; re-arm until the instant is reached.
    this.expiry = setTimeout(() => this.armExpiry(), Math.min(ms, 2 ** 31 - 1));
    this.expiry.unref();
    if (this.state === "expired") this.setState("connecting");
  }

  private async retire(p: Pipeline, how: "delete" | "shutdown" | "orphan" | "replace", deadline?: AbortSignal): Promise<void> {
    const queued = p.queue.reading().events;
    if (how === "shutdown" && deadline && !deadline.aborted) {
      p.queue.stopAccepting();
      const drained = p.queue.drain();
      const cut = new Promise<void>((resolve) => deadline.addEventListener("abort", () => resolve(), { once: true }));
      await Promise.race([drained, cut]);
      if (deadline.aborted) {
        if (p.queue.type === "memory") this.stats.dropped("inactive", p.queue.reading().events);
        p.queue.abort();
      }
    } else {
      if (how === "delete") {
        p.deliverer.markDeleted();
        this.stats.dropped("unsubscribed", queued);
      } else if (p.queue.type === "memory") {
        // A memory queue's events die with it; a disk queue keeps them for whoever opens it next.
        this.stats.dropped(how === "replace" ? "unsubscribed" : "inactive", queued + p.deliverer.inFlight);
      }
      p.queue.stopAccepting();
      // A memory queue's pump stops first, so nothing it held is handed to a stopping window (and
      // reported as given up at shutdown); a disk queue is aborted like a route's, then closed.
      // (`close` stops the pump before its first await: both happen now, before any answer is sent.)
      const closing = p.queue.type === "memory" ? p.queue.close() : (p.queue.abort(), Promise.resolve());
      p.deliverer.abort();
      await closing;
    }
    await p.deliverer.drain();
    await p.queue.close().catch((err) => this.log.warn({ err }, "queue close failed"));
    await p.sink.close().catch((err) => this.log.warn({ err: (err as Error).message }, "subscription sink close failed"));
  }
}

function noop(): void {}
