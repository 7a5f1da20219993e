/**
 * The Subscriptions API as `main.ts` runs it: the manager (state file, streams, subscriptions) and
 * its HTTP(S) listener, plus the sink definition the engine needs to run the streams' virtual
 * sinks. `main.ts` only starts it, hands the engine `registry(...)`, and stops it after the engine.
 */
import type { BridgeConfig } from "../config/schema.js";
import type { Registry } from "../core/connector.js";
import type { Logger } from "../core/logger.js";
import type { Registry as PromRegistry } from "prom-client";
import { startSubscriptionsApi, type ApiServer } from "./api.js";
import { SubscriptionManager } from "./manager.js";
import { streamSinkDefinition } from "./stream-sink.js";
import type { SubscriptionsConfig } from "../config/subscriptions.js";

export interface ServiceDeps {
  /** The connector registry: subscription sinks and dead-letter sinks are made through it. */
  readonly registry: Registry;
  readonly log: Logger;
  readonly promRegistry: PromRegistry;
}

export class SubscriptionService {
  private api: ApiServer | undefined;
  private listening: string;

  private constructor(
    readonly manager: SubscriptionManager,
    private readonly deps: ServiceDeps,
    config: SubscriptionsConfig,
  ) {
    this.listening = listenKey(config);
  }

  /** Loads the state file, brings the subscriptions back and opens the listener. Throws CEB_STATE or a bind error. */
  static async start(config: BridgeConfig & { subscriptions: SubscriptionsConfig }, deps: ServiceDeps): Promise<SubscriptionService> {
    const manager = new SubscriptionManager(config.subscriptions, { registry: deps.registry, log: deps.log, promRegistry: deps.promRegistry, instanceId: config.engine.instance_id, sinks: config.sinks });
    await manager.start();
    const service = new SubscriptionService(manager, deps, config.subscriptions);
    await service.listen(config.subscriptions);
    return service;
  }

  get address(): string | undefined {
    return this.api?.address;
  }

  /** `base` plus the `subscriptions` sink type of the streams' virtual sinks, for the engine. */
  registry(base: Registry): Registry {
    return base.register(streamSinkDefinition(this.manager));
  }

  /** What `/status` lists. */
  snapshot(): Record<string, unknown>[] {
    return this.manager.snapshot();
  }

  /** Applies a reloaded config: streams by name; a changed listener address or TLS reopens the listener. */
  async reload(next: BridgeConfig): Promise<void> {
    if (!next.subscriptions) return;
    await this.manager.reconfigure(next.subscriptions, next.sinks);
    if (listenKey(next.subscriptions) !== this.listening) {
      await this.api?.close();
      this.api = undefined;
      await this.listen(next.subscriptions);
    }
  }

  /** Stops taking requests. Idempotent. */
  async closeApi(): Promise<void> {
    const api = this.api;
    this.api = undefined;
    await api?.close();
  }

  /** Closes the listener (no change during shutdown), then stops every subscription within `timeoutMs`. */
  async stop(timeoutMs: number): Promise<void> {
    await this.closeApi();
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    try {
      await this.manager.stop(ac.signal);
    } finally {
      clearTimeout(timer);
    }
  }

  private async listen(config: SubscriptionsConfig): Promise<void> {
    this.api = await startSubscriptionsApi(this.manager, { listen: config.listen, tls: config.tls }, this.deps.log.child({ component: "subscriptions-api" }));
    this.listening = listenKey(config);
    this.deps.log.info({ address: this.api.address, tls: config.tls !== undefined, mtls: config.tls?.ca !== undefined }, "subscriptions API listening");
  }
}

function listenKey(c: SubscriptionsConfig): string {
  return JSON.stringify([c.listen, c.tls ?? null]);
}

// Kept here for existing importers; it lives with the section it checks, so `run` can use it without loading the service.
export { subscriptionsReloadProblem } from "../config/subscriptions.js";
