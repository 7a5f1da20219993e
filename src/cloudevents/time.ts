/**
 * Native timestamps → the RFC 3339 `time` attribute, for sources whose broker stamps messages with
 * nanosecond precision (JetStream, Pub/Sub publishTime).
 */

/** RFC 3339 UTC timestamp with nanosecond precision (trailing zeros of the fraction dropped, ≥ 3 digits). */
export function nanosToRfc3339(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const iso = new Date(Number(ms)).toISOString(); // ...T12:34:56.789Z
  const sub = Number(ns % 1_000_000n);
  if (sub === 0) return iso;
  const frac = (iso.slice(20, 23) + String(sub).padStart(6, "0")).replace(/0+$/, "");
  return iso.slice(0, 20) + frac + "Z";
}
