/**
 * The digest that names one event across retries: the lower-case hex SHA-256 of `source` + U+0000 +
 * `id` (64 characters). Deterministic, so a retried write of the same event is recognised by a
 * broker's deduplication (JetStream `Nats-Msg-Id`, SQS FIFO `MessageDeduplicationId`); hashed, so any
 * source/id (long, non-ASCII, with spaces) fits a header value or an id field; the NUL separator
 * keeps the pair unambiguous (neither attribute may contain U+0000).
 */
import { sha256Hex } from "../core/sha256.js";
import type { CloudEvent } from "./event.js";

export function eventIdDigest(ev: CloudEvent): string {
  return sha256Hex(`${String(ev.attributes["source"])}\u0000${String(ev.attributes["id"])}`);
}
