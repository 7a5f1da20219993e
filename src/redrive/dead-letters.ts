/**
 * Dead letters as `cebridge redrive` reads and writes them, as pure functions: what a dead letter
 * says about its failure, the event to re-send (the error extensions removed), where it goes, and
 * the dead letter to write when the re-send fails again (the new reason, with the previous one kept).
 */
import { cloneAttributes, type CloudEvent } from "../cloudevents/event.js";
import type { BridgeConfig, RouteConfig } from "../config/schema.js";
import type { BridgeError } from "../core/errors.js";
import { deadLetterEvent, reasonText } from "../engine/dead-letter.js";

/**
 * The extensions a dead letter carries about its failure, removed before the event is re-sent.
 * `cebridgepreviouserror`, `cebridgepreviousreason` and `cebridgeredrives` are added by a redrive
 * that failed again.
 */
export const ERROR_EXTENSIONS = [
  "cebridgeerror",
  "cebridgereason",
  "cebridgeroute",
  "cebridgesink",
  "cebridgeattempts",
  "cebridgepreviouserror",
  "cebridgepreviousreason",
  "cebridgeredrives",
] as const;

export interface DeadLetterInfo {
  readonly error?: string;
  readonly reason?: string;
  readonly route?: string;
  readonly sink?: string;
  /** How many redrives of this event have failed before (0 for a first dead letter). */
  readonly redrives: number;
}

export function deadLetterInfo(dl: CloudEvent): DeadLetterInfo {
  const a = dl.attributes;
  const str = (k: string) => (typeof a[k] === "string" && a[k] !== "" ? (a[k] as string) : undefined);
  const redrives = Number(a["cebridgeredrives"] ?? 0);
  const error = str("cebridgeerror");
  const reason = str("cebridgereason");
  const route = str("cebridgeroute");
  const sink = str("cebridgesink");
  return {
    ...(error !== undefined ? { error } : {}),
    ...(reason !== undefined ? { reason } : {}),
    ...(route !== undefined ? { route } : {}),
    ...(sink !== undefined ? { sink } : {}),
    redrives: Number.isInteger(redrives) && redrives > 0 ? redrives : 0,
  };
}

/** The event as it was before it was dead-lettered: every error extension removed, the rest untouched. */
export function withoutErrorExtensions(dl: CloudEvent): CloudEvent {
  const attributes = cloneAttributes(dl.attributes);
  for (const name of ERROR_EXTENSIONS) delete attributes[name];
  return { attributes, data: dl.data };
}

/**
 * The dead letter for an event whose redrive to `sink` failed again: the current failure in the usual
 * extensions, the failure it was dead-lettered for before in `cebridgepreviouserror` and
 * `cebridgepreviousreason`, and `cebridgeredrives` counting the failed redrives.
 */
export function redriveFailure(dl: CloudEvent, error: BridgeError, ctx: { route: string; sink?: string; attempts: number }): CloudEvent {
  const before = deadLetterInfo(dl);
  const next = deadLetterEvent(withoutErrorExtensions(dl), error, ctx);
  const attributes = cloneAttributes(next.attributes);
  if (before.error !== undefined) attributes["cebridgepreviouserror"] = before.error;
  if (before.reason !== undefined) attributes["cebridgepreviousreason"] = reasonText(before.reason);
  attributes["cebridgeredrives"] = before.redrives + 1;
  return { attributes, data: next.data };
}

/** Where a dead letter goes: the sinks to write, and the route whose settings apply. */
export type Target =
  | {
      readonly kind: "send";
      readonly sinks: readonly string[];
      /** The route named by `cebridgeroute`, when the config still has it: its transform, retry, timeout and dead-letter sink apply. */
      readonly route?: RouteConfig;
    }
  | { readonly kind: "skip"; readonly reason: string };

/**
 * `to` (from `--to`) wins; else the sink the dead letter names (one dead letter per refusing sink);
 * else, for a failure before any sink (it names none), every sink of its route.
 */
export function targetOf(info: DeadLetterInfo, config: BridgeConfig, to?: string): Target {
  const route = info.route !== undefined ? config.routes.find((r) => r.name === info.route) : undefined;
  const sinks = to !== undefined ? [to] : info.sink !== undefined ? [info.sink] : route ? [...route.to] : [];
  if (sinks.length === 0) {
    const why = info.route === undefined ? "it names no route" : `its route "${info.route}" is not in the config`;
    return { kind: "skip", reason: `no sink to send to: the dead letter names none and ${why}; give --to SINK` };
  }
  const missing = sinks.find((s) => config.sinks[s] === undefined);
  if (missing !== undefined) return { kind: "skip", reason: `sink "${missing}" is not in the config; give --to SINK` };
  return { kind: "send", sinks, ...(route ? { route } : {}) };
}
