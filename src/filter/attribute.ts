/**
 * Attribute lookup shared by the CESQL evaluator and the Subscriptions API dialects.
 *
 * Attributes are a plain object, so `attrs[name]` would find Object.prototype members: with names limited to
 * `[a-z0-9]+` the only one reachable is `constructor`, which would read as a present attribute. Those names are
 * looked up with `Object.hasOwn`; every other name keeps the plain property read, which is what the hot path wants.
 */
import type { Attributes } from "../cloudevents/event.js";

/** Returns a reader for one attribute name: the value, or `undefined` when the event lacks it. */
export function attributeReader(name: string): (attrs: Attributes) => unknown {
  if (name in Object.prototype) return (attrs) => (Object.hasOwn(attrs, name) ? attrs[name] : undefined);
  return (attrs) => attrs[name];
}
