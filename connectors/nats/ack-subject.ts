/**
 * Delivery facts from a JetStream message's reply (ack) subject, read in one pass.
 *
 * nats.js's `m.info` splits the subject, and `m.timestampNanos` splits it again (the exact
 * nanoseconds need a bigint, which `info.timestampNanos` is not): two splits and a dozen parsed
 * fields per message where the source needs four.
 */

/** What the JetStream source needs of one delivery. */
export interface AckSubjectInfo {
  readonly stream: string;
  readonly deliveryCount: number;
  readonly streamSequence: number;
  /** Stream timestamp, nanoseconds since the epoch (exact). */
  readonly timestampNanos: bigint;
}

/**
 * Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>` (9 tokens) and the
 * newer `$JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<dseq>.<ts>.<pending>[.<token>]`.
 * Returns undefined for anything else (then the caller falls back to nats.js, which throws).
 */
export function parseAckSubject(reply: string): AckSubjectInfo | undefined {
  const t = reply.split(".");
  if (t[0] !== "$JS" || t[1] !== "ACK") return undefined;
  const o = t.length === 9 ? 0 : t.length >= 11 ? 2 : -1;
  if (o < 0) return undefined;
  const ts = t[7 + o]!;
  const deliveryCount = Number(t[4 + o]);
  const streamSequence = Number(t[5 + o]);
  if (!/^\d+$/.test(ts) || !Number.isInteger(deliveryCount) || !Number.isInteger(streamSequence)) return undefined;
  return { stream: t[2 + o]!, deliveryCount, streamSequence, timestampNanos: BigInt(ts) };
}
