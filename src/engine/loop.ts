/**
 * Loop prevention for two-way bridges: every sink write appends this daemon's id to `cebridgevia`
 * and increments `cebridgehops`; a route drops an event that already passed through this daemon or
 * has made too many hops. Header-borne markers arrive as strings, so both forms are read.
 */
import { cloneAttributes, type CloudEvent } from "../cloudevents/event.js";

/** Why a route must drop the event, or undefined when it may pass. */
export function loopVerdict(event: CloudEvent, instanceId: string, maxHops: number): "visited" | "hops" | undefined {
  const via = event.attributes["cebridgevia"];
  if (typeof via === "string" && via.split(",").includes(instanceId)) return "visited";
  if (hopsOf(event) >= maxHops) return "hops";
  return undefined;
}

/** The event as written to sinks: the markers updated, everything else untouched. */
export function withLoopMarkers(event: CloudEvent, instanceId: string): CloudEvent {
  const via = event.attributes["cebridgevia"];
  const attributes = cloneAttributes(event.attributes);
  attributes["cebridgevia"] = typeof via === "string" && via !== "" ? `${via},${instanceId}` : instanceId;
  attributes["cebridgehops"] = hopsOf(event) + 1;
  return { attributes, data: event.data };
}

function hopsOf(event: CloudEvent): number {
  const hops = event.attributes["cebridgehops"];
  const n = typeof hops === "number" ? hops : typeof hops === "string" ? Number.parseInt(hops, 10) : 0;
  return Number.isFinite(n) && n > 0 ? n : 0;
}
