/**
 * The virtual sink `subscriptions:<stream>` that the config loader adds to a stream's route (see
 * `config/subscriptions.ts`). It hands each event to every matching subscription's queue and
 * confirms once they took it (a disk queue: once it is durable), so the route never waits for a
 * subscriber: a slow or dead one fills only its own queue, whose overflow is counted.
 *
 * It is registered (only in the registry the engine runs with, never in the one `lint` and the
 * JSON Schema see) as sink type `subscriptions`, whose factory closes over the manager.
 */
import { Type } from "../core/type.js";
import type { CloudEvent } from "../cloudevents/event.js";
import { STREAM_SINK_TYPE } from "../config/subscriptions.js";
import { defineSink, type SinkDefinition } from "../core/connector.js";
import type { Sink } from "../core/sink.js";
import type { SubscriptionManager } from "./manager.js";

const StreamSinkSchema = Type.Object({ stream: Type.String({ minLength: 1 }) }, { additionalProperties: false });

export function streamSinkDefinition(manager: SubscriptionManager): SinkDefinition {
  return defineSink({
    kind: "sink",
    type: STREAM_SINK_TYPE,
    summary: "Hands a stream's events to its subscriptions' queues (made by the config loader, never written by users)",
    stability: "beta",
    schema: StreamSinkSchema,
    guarantee: () => "confirmed",
    load: async () => (cfg, ctx): Sink => ({
      guarantee: "confirmed",
      async open() {
        ctx.setUp(true);
      },
      async write(event: CloudEvent) {
        await manager.deliver(cfg.stream, event);
      },
      async close() {
        ctx.setUp(false);
      },
    }),
  });
}
