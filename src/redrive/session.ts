/**
 * What one redrive run shares between its inputs (a dead-letter file or a configured source): the
 * config, the `--filter`, the sinks (opened on first use, closed at the end), the redriver, the
 * counts and progress display, and the stop signals of the first and second Ctrl-C.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import type { BridgeConfig } from "../config/schema.js";
import type { Registry } from "../core/connector.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { CompiledCesql } from "../filter/index.js";
import { deadLetterInfo, targetOf } from "./dead-letters.js";
import type { Counts, Progress } from "./progress.js";
import { Redriver, type HandleResult } from "./redriver.js";

export interface SessionOptions {
  readonly config: BridgeConfig;
  readonly registry: Registry;
  readonly log: Logger;
  readonly to?: string;
  readonly filter?: CompiledCesql;
  readonly dryRun: boolean;
  readonly parallel: number;
  readonly counts: Counts;
  readonly progress: Progress;
}

/** What became of one dead letter. `handled` means: do not send it again. */
export type Verdict =
  | { readonly handled: true; readonly result: HandleResult & { kind: "delivered" | "dead_lettered" }; readonly sinks: readonly string[] }
  | { readonly handled: false; readonly why: "not_matching" | "skipped" | "left" | "dry_run" };

export class Session {
  /** First Ctrl-C: start nothing new, no further retries. */
  readonly stop = new AbortController();
  /** Second Ctrl-C: abandon the writes in progress. */
  readonly hardStop = new AbortController();
  private readonly sinks = new Map<string, Promise<Sink>>();
  private readonly redriver: Redriver;

  constructor(readonly opts: SessionOptions) {
    this.redriver = new Redriver({
      config: opts.config,
      sink: (id) => this.sink(id),
      stop: this.stop.signal,
      onRetry: (id, error) => opts.progress.message(`sink "${id}" failed transiently (${error.code}: ${error.message}); retrying with the route's backoff (Ctrl-C to stop)`),
    });
    this.hardStop.signal.addEventListener("abort", () => this.redriver.abortAll(this.hardStop.signal.reason), { once: true });
  }

  get stopping(): boolean {
    return this.stop.signal.aborted;
  }

  /** Filters, targets and re-sends one dead letter; counts and reports what happened. `where` names it in messages. */
  async process(dl: CloudEvent, where: string): Promise<Verdict> {
    const { counts, progress, config, filter } = this.opts;
    const id = String(dl.attributes["id"] ?? "?");
    try {
      if (filter && !filter.matches(dl)) {
        counts.notMatching++;
        return { handled: false, why: "not_matching" };
      }
      const info = deadLetterInfo(dl);
      const target = targetOf(info, config, this.opts.to);
      if (target.kind === "skip") {
        counts.skipped++;
        progress.message(`${where}: event ${id} skipped: ${target.reason}`);
        return { handled: false, why: "skipped" };
      }
      if (this.opts.dryRun) {
        counts.wouldSend++;
        progress.message(`${where}: would send event ${id} to ${target.sinks.join(", ")}${target.route ? ` (route "${target.route.name}")` : ""}`);
        return { handled: false, why: "dry_run" };
      }
      if (this.stopping) {
        counts.left++;
        return { handled: false, why: "left" };
      }
      let result: HandleResult;
      try {
        result = await this.redriver.handle(dl, info, target.sinks, target.route);
      } catch (err) {
        result = { kind: "left", reason: (err as Error).message };
      }
      switch (result.kind) {
        case "delivered":
          counts.delivered++;
          return { handled: true, result, sinks: target.sinks };
        case "dead_lettered":
          counts.deadLettered++;
          progress.message(`${where}: event ${id} failed again and was dead-lettered to "${target.route!.dead_letter}": ${result.reasons.join("; ")}`);
          return { handled: true, result, sinks: target.sinks };
        case "left":
          counts.left++;
          if (!this.hardStop.signal.aborted) progress.message(`${where}: event ${id} left for the next run: ${result.reason}`);
          return { handled: false, why: "left" };
      }
    } finally {
      progress.update();
    }
  }

  /** Closes every sink opened. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.sinks.values()].map((p) =>
        p.then(
          (s) => s.close(),
          () => undefined,
        ),
      ),
    ).catch((err) => this.opts.log.warn({ err }, "closing a sink failed"));
  }

  private sink(id: string): Promise<Sink> {
    let p = this.sinks.get(id);
    if (!p) {
      p = this.openSink(id);
      this.sinks.set(id, p);
    }
    return p;
  }

  private async openSink(id: string): Promise<Sink> {
    const { config, registry, log } = this.opts;
    const comp = config.sinks[id]!;
    const factory = await registry.sink(comp.type)!.load();
    const sink = factory(comp.options as never, {
      id,
      instanceId: config.engine.instance_id,
      log: log.child({ component: `sink:${id}` }),
      setUp() {},
      countDropped() {},
    });
    // Opening may wait for a broker that is down; the first Ctrl-C gives up on it.
    await new Promise<void>((resolve, reject) => {
      const onStop = () => reject(new Error(`sink "${id}" was still connecting when the redrive stopped`));
      if (this.stop.signal.aborted) return onStop();
      this.stop.signal.addEventListener("abort", onStop, { once: true });
      sink.open().then(resolve, (err: Error) => reject(new Error(`sink "${id}" could not open: ${err.message}`))).finally(() => this.stop.signal.removeEventListener("abort", onStop));
    });
    return sink;
  }
}
