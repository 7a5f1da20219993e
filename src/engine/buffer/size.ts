/**
 * What a buffered message weighs toward a memory buffer's `max_bytes`: attribute names and values
 * plus the data, in bytes as they would be written out. Only messages that are queued are weighed;
 * the direct path to the window never calls this.
 */
import type { CloudEvent } from "../../cloudevents/event.js";
import type { Received } from "../../core/source.js";

/** Fixed cost per event for the objects that hold it (measured order of magnitude, not exact). */
const EVENT_OVERHEAD = 64;

/**
 * Weights already computed: one event can be queued in several buffers (a stream's subscriptions
 * each hold it), and JSON data is weighed by serializing it. Events are immutable, so the weight
 * of an object never changes.
 */
const weights = new WeakMap<CloudEvent, number>();

export function eventBytes(event: CloudEvent): number {
  let w = weights.get(event);
  if (w === undefined) {
    w = weigh(event);
    weights.set(event, w);
  }
  return w;
}

function weigh(event: CloudEvent): number {
  let n = EVENT_OVERHEAD;
  const attrs = event.attributes;
  for (const name in attrs) {
    const v = attrs[name]!;
    n += name.length + (typeof v === "string" ? Buffer.byteLength(v) : 8);
  }
  const d = event.data;
  if (d === undefined) return n;
  if (d.kind === "bytes") return n + d.bytes.byteLength;
  if (d.kind === "text") return n + Buffer.byteLength(d.text);
  return n + Buffer.byteLength(d.text ?? JSON.stringify(d.value) ?? "null");
}

export function messageBytes(msg: Received): number {
  let n = 0;
  for (const e of msg.events) n += eventBytes(e);
  return n;
}
