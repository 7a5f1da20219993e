/**
 * A subscription's queue is a route buffer (src/engine/buffer): the memory buffer by default, the
 * disk buffer (its own directory under `state_dir/queues/<id>`) for durability. Both refuse when
 * full (`when_full: drop_newest`): the stream offers and never waits, so a full queue drops the new
 * event (counted by the subscription) instead of holding the route back.
 *
 * The buffers record into a private `Metrics` per subscription: the subscription reports its own
 * queue figures (`cebridge_subscription_queued`, `/status`), and a route buffer metric per
 * subscription id would outlive deleted subscriptions.
 */
import type { Logger } from "../core/logger.js";
import { DiskBuffer } from "../engine/buffer/disk/disk-buffer.js";
import { MemoryBuffer } from "../engine/buffer/memory.js";
import { BufferStats } from "../engine/buffer/stats.js";
import { Metrics } from "../observability/metrics.js";
import type { QueueTarget, SubscriptionQueue } from "./queue.js";
import type { StreamSettings } from "./subscription.js";

export function makeQueue(settings: StreamSettings["queue"], target: QueueTarget, dir: string, log: Logger): SubscriptionQueue {
  let probe = () => ({ type: settings.type, events: 0, bytes: 0, oldestAgeSeconds: 0 });
  const stats = new BufferStats(new Metrics(), "subscription", settings.type, { type: settings.type, max_bytes: settings.max_bytes }, () => probe());
  const queueLog = log.child({ queue: settings.type });
  const buffer =
    settings.type === "memory"
      ? new MemoryBuffer({ type: "memory", maxBytes: settings.max_bytes, whenFull: "drop_newest" }, target, stats, queueLog)
      : new DiskBuffer(
          { type: "disk", path: dir, maxBytes: settings.max_bytes, fsync: settings.fsync, fsyncIntervalMs: 1000, whenFull: "drop_newest" },
          target,
          stats,
          queueLog,
          { ordered: false },
        );
  probe = () => buffer.reading();
  return buffer;
}
