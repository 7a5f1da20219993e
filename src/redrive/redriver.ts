/**
 * Re-sends one dead letter the way its route would have: the error extensions removed, the route's
 * transform applied (a dead letter holds the event as the route received it), the loop markers
 * added, and each target sink written with the route's retry policy and write timeout.
 *
 * What happens per target sink:
 * - confirmed → delivered;
 * - refused for good (or the transform fails) → a new dead letter naming that sink, with the new
 *   reason and the previous one (`redriveFailure`), written to the route's dead-letter sink;
 * - a transient failure that outlasts the retry budget, an interruption, or a failure with no
 *   dead-letter sink to record it → left: nothing is recorded, so a later run tries again.
 * The dead letter counts as handled (journaled, or acknowledged to its source) only when no target
 * was left.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import type { BridgeConfig, RouteConfig } from "../config/schema.js";
import { asBridgeError, type BridgeError } from "../core/errors.js";
import type { Sink } from "../core/sink.js";
import type { RetryPolicy } from "../engine/backoff.js";
import { Deadlines } from "../engine/deadlines.js";
import { writeWithRetry, type WriteOptions } from "../engine/deliver.js";
import { withLoopMarkers } from "../engine/loop.js";
import { compileTransform, type Transform } from "../engine/transform.js";
import { redriveFailure, withoutErrorExtensions, type DeadLetterInfo } from "./dead-letters.js";

export type HandleResult =
  | { readonly kind: "delivered" }
  | { readonly kind: "dead_lettered"; readonly reasons: readonly string[] }
  | { readonly kind: "left"; readonly reason: string };

export interface RedriverDeps {
  readonly config: BridgeConfig;
  /** Opens a sink on first use (memoized by the caller). */
  sink(id: string): Promise<Sink>;
  /** Aborted on the first Ctrl-C: no retry starts after it. */
  readonly stop: AbortSignal;
  /** Called on a sink's first transient failure (to tell the operator why it is slow). */
  onRetry?(sinkId: string, error: BridgeError): void;
}

/** Defaults for a dead letter whose route is no longer in the config (the route schema's defaults). */
const DEFAULT_RETRY: RetryPolicy = { initial: 100, max: 30_000, max_elapsed: 300_000 };
const DEFAULT_TIMEOUT_MS = 30_000;

export class Redriver {
  private readonly deadlines = new Map<number, Deadlines>();
  private readonly transforms = new Map<string, Transform>();
  private readonly warned = new Set<string>();

  constructor(private readonly deps: RedriverDeps) {}

  async handle(dl: CloudEvent, info: DeadLetterInfo, sinks: readonly string[], route: RouteConfig | undefined): Promise<HandleResult> {
    const routeName = route?.name ?? info.route ?? "(redrive)";
    let out: CloudEvent;
    try {
      out = this.prepare(dl, route);
    } catch (err) {
      // The transform refuses the event: a permanent failure before any sink, as in the route.
      return this.failedAgain(dl, [{ sink: undefined, error: asBridgeError(err), attempts: 1 }], route, routeName);
    }
    const results = await Promise.all(sinks.map(async (id) => ({ id, r: await writeWithRetry(await this.deps.sink(id), out, this.writeOptions(route, id)) })));
    const permanent: { sink: string | undefined; error: BridgeError; attempts: number }[] = [];
    for (const { id, r } of results) {
      if (r.ok) continue;
      if (!r.final) return { kind: "left", reason: `sink "${id}": ${r.error.message}` };
      permanent.push({ sink: id, error: r.error, attempts: r.attempts });
    }
    if (permanent.length === 0) return { kind: "delivered" };
    return this.failedAgain(dl, permanent, route, routeName);
  }

  /** Hard stop (second Ctrl-C): aborts the writes in progress; their dead letters are left. */
  abortAll(reason: unknown): void {
    for (const d of this.deadlines.values()) d.abortAll(reason);
  }

  private prepare(dl: CloudEvent, route: RouteConfig | undefined): CloudEvent {
    let out = withoutErrorExtensions(dl);
    if (route?.transform) {
      let t = this.transforms.get(route.name);
      if (!t) this.transforms.set(route.name, (t = compileTransform(route.transform)));
      out = t(out);
    }
    if (route?.loop_prevention ?? true) out = withLoopMarkers(out, this.deps.config.engine.instance_id);
    return out;
  }

  private async failedAgain(
    dl: CloudEvent,
    failures: readonly { sink: string | undefined; error: BridgeError; attempts: number }[],
    route: RouteConfig | undefined,
    routeName: string,
  ): Promise<HandleResult> {
    const reasons = failures.map((f) => `${f.sink !== undefined ? `sink "${f.sink}"` : "transform"}: ${f.error.code} ${f.error.message}`);
    const dlSink = route?.dead_letter;
    if (dlSink === undefined) {
      return { kind: "left", reason: `${reasons.join("; ")} — and route "${routeName}" has no dead_letter sink in the config to record it` };
    }
    for (const f of failures) {
      const next = redriveFailure(dl, f.error, { route: routeName, ...(f.sink !== undefined ? { sink: f.sink } : {}), attempts: f.attempts });
      const r = await writeWithRetry(await this.deps.sink(dlSink), next, this.writeOptions(route, dlSink));
      if (!r.ok) return { kind: "left", reason: `${reasons.join("; ")} — and the dead-letter sink "${dlSink}" failed: ${r.error.message}` };
    }
    return { kind: "dead_lettered", reasons };
  }

  private writeOptions(route: RouteConfig | undefined, sinkId: string): WriteOptions {
    const timeoutMs = route?.timeout ?? DEFAULT_TIMEOUT_MS;
    let deadlines = this.deadlines.get(timeoutMs);
    if (!deadlines) this.deadlines.set(timeoutMs, (deadlines = new Deadlines(timeoutMs)));
    return {
      retry: route?.retry ?? DEFAULT_RETRY,
      deadlines,
      timeoutMs,
      signal: this.deps.stop,
      onRetry: (error) => {
        if (this.warned.has(sinkId)) return;
        this.warned.add(sinkId);
        this.deps.onRetry?.(sinkId, error);
      },
    };
  }
}
