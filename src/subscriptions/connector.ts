/**
 * Builds a subscription's sink through the connector registry, exactly as the daemon builds a
 * configured sink: the plan's options are validated against the connector's schema (defaults
 * filled in), units converted, the connector's own lint applied, and the implementation loaded
 * lazily. A problem is reported against the subscription member the option came from.
 *
 * The sink's context does not touch the status board's components: a subscriber's endpoint going
 * down never makes the daemon unready. Its warnings are kept (scrubbed of the subscription's
 * secrets) as the subscription's last error.
 */
import { convertUnits } from "../config/units.js";
import { validateAgainst } from "../config/validate.js";
import type { ConnectorContext, Registry } from "../core/connector.js";
import { SubscriptionInvalidError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import type { Sink } from "../core/sink.js";
import type { SinkPlan } from "./sink-plan.js";

/** Checks a plan against its connector and returns the typed options. Throws `SubscriptionInvalidError`. */
export function checkPlan(registry: Registry, plan: SinkPlan): Record<string, unknown> {
  const def = registry.sink(plan.type);
  if (!def) throw new SubscriptionInvalidError(`this daemon has no ${plan.type} sink`, "/protocol");
  const options = structuredClone(plan.options);
  const problems = validateAgainst(def.schema, options, []);
  const first = problems[0];
  if (first) throw new SubscriptionInvalidError(`${first.path.join(".")}: ${first.message}`, fieldOf(plan, first.path));
  const typed = convertUnits(def.schema as never, options) as Record<string, unknown>;
  const error = (def.lint?.(typed as never) ?? []).find((l) => l.level === "error");
  if (error) throw new SubscriptionInvalidError(error.message, fieldOf(plan, error.path));
  return typed;
}

function fieldOf(plan: SinkPlan, path: readonly (string | number)[]): string {
  return plan.fields[String(path[0] ?? "")] ?? "/sink";
}

/** What a subscription's sink reports back. */
export interface SinkReports {
  setUp(up: boolean): void;
  /** A warning or error the connector logged (its message, already scrubbed). */
  problem(message: string): void;
}

/** Creates the sink (no I/O yet: `open` connects). */
export async function createSubscriptionSink(
  registry: Registry,
  plan: SinkPlan,
  typed: Record<string, unknown>,
  ids: { readonly component: string; readonly instanceId: string },
  log: Logger,
  reports: SinkReports,
): Promise<Sink> {
  const def = registry.sink(plan.type)!;
  const factory = await def.load();
  const ctx: ConnectorContext = {
    id: ids.component,
    instanceId: ids.instanceId,
    log: reportingLogger(log, reports),
    setUp: (up) => reports.setUp(up),
    countDropped: () => undefined,
  };
  return factory(typed as never, ctx);
}

/** A logger that also hands every warning and error message to `reports.problem`. */
function reportingLogger(log: Logger, reports: SinkReports): Logger {
  const note = (obj: object, msg?: string) => {
    const o = obj as { error?: unknown; err?: unknown };
    const detail = typeof o.error === "string" ? o.error : typeof o.err === "string" ? o.err : o.err instanceof Error ? o.err.message : undefined;
    reports.problem(detail ? `${msg ?? "problem"}: ${detail}` : (msg ?? "problem"));
  };
  const wrap = (l: Logger): Logger => ({
    debug: (obj, msg) => l.debug(obj, msg),
    info: (obj, msg) => l.info(obj, msg),
    warn: (obj, msg) => {
      note(obj, msg);
      l.warn(obj, msg);
    },
    error: (obj, msg) => {
      note(obj, msg);
      l.error(obj, msg);
    },
    child: (bindings) => wrap(l.child(bindings)),
  });
  return wrap(log);
}
