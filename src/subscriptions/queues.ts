/**
 * Which queue a subscription gets. Memory: the bounded `MemoryQueue`. Disk: the buffer layer's disk
 * buffer, once that layer is on main (issue #13); until then a disk queue is refused when the
 * subscription is made, with a message saying so.
 */
import { BridgeError } from "../core/errors.js";
import type { Logger } from "../core/logger.js";
import { MemoryQueue, type QueueTarget, type SubscriptionQueue } from "./queue.js";
import type { StreamSettings } from "./subscription.js";

export function makeQueue(settings: StreamSettings["queue"], target: QueueTarget, _dir: string, _log: Logger): SubscriptionQueue {
  if (settings.type === "memory") return new MemoryQueue(target, settings.max_bytes);
  throw new BridgeError("CEB_CONFIG", "queue type disk needs the route buffer layer, which this build does not have yet", false);
}
