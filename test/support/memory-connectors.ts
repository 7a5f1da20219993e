/**
 * In-memory connectors for engine tests (registered in a test registry, never in the product's):
 * - `memory` source: a queue per `queue` name that tests push events into. It behaves like a broker
 *   consumer: it reserves room in the window before it takes messages, and a message settled
 *   `errored` (or refused because the route stopped) goes back to the queue for redelivery.
 * - `memory` sink: records every confirmed write per `name`; `fail` lists ids to refuse for good,
 *   `open_fails` makes `open()` throw, `delay` slows each write.
 * Every instance is counted, so tests can tell whether a reload left a component alone.
 */
import { Type } from "@sinclair/typebox";
import type { CloudEvent } from "../../src/cloudevents/event.js";
import { defineSink, defineSource, Registry } from "../../src/core/connector.js";
import { SinkError } from "../../src/core/errors.js";
import type { Outcome } from "../../src/core/outcome.js";
import type { Inbox, Source } from "../../src/core/source.js";
import { Duration } from "../../src/core/schema-types.js";

interface Pending {
  readonly event: CloudEvent;
  deliveries: number;
  readonly done: (o: Outcome) => void;
}

export class MemoryQueue {
  readonly items: Pending[] = [];
  /** Outcome of every settle, by event id. */
  readonly settled = new Map<string, Outcome[]>();
  wake: (() => void) | undefined;
  /** Source instances started on this queue. */
  starts = 0;
  closes = 0;

  /** Enqueues an event; resolves with its final (non-errored) outcome. */
  push(event: CloudEvent): Promise<Outcome> {
    return new Promise((done) => {
      this.items.push({ event, deliveries: 0, done });
      this.wake?.();
    });
  }
}

export interface SinkRecord {
  /** Confirmed writes, in order, over every instance of this sink name. */
  readonly writes: CloudEvent[];
  instances: number;
  opens: number;
  closes: number;
}

export const queues = new Map<string, MemoryQueue>();
export const sinkRecords = new Map<string, SinkRecord>();

export function queue(name: string): MemoryQueue {
  let q = queues.get(name);
  if (!q) queues.set(name, (q = new MemoryQueue()));
  return q;
}

export function sinkRecord(name: string): SinkRecord {
  let r = sinkRecords.get(name);
  if (!r) sinkRecords.set(name, (r = { writes: [], instances: 0, opens: 0, closes: 0 }));
  return r;
}

const sourceSchema = Type.Object({ queue: Type.String(), batch: Type.Integer({ default: 8 }), tag: Type.Optional(Type.String()) }, { additionalProperties: false });
const sinkSchema = Type.Object(
  {
    name: Type.String(),
    fail: Type.Array(Type.String(), { default: [] }),
    open_fails: Type.Boolean({ default: false }),
    delay: Duration({ default: "0ms" }),
    tag: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

export const memorySource = defineSource({
  kind: "source",
  type: "memory",
  summary: "test queue",
  stability: "experimental",
  schema: sourceSchema,
  pausable: () => true,
  load: async () => (cfg, ctx) => {
    const q = queue(cfg.queue);
    const stop = new AbortController();
    let loop: Promise<void> | undefined;
    const run = async (inbox: Inbox) => {
      while (!stop.signal.aborted) {
        if (q.items.length === 0) {
          await new Promise<void>((r) => {
            q.wake = r;
            stop.signal.addEventListener("abort", () => r(), { once: true });
          });
          q.wake = undefined;
          continue;
        }
        let r;
        try {
          r = await inbox.reserve(1, cfg.batch, stop.signal);
        } catch {
          break;
        }
        try {
          while (r.slots > 0 && q.items.length > 0) {
            const p = q.items.shift()!;
            p.deliveries++;
            const ok = r.offer({
              events: [p.event],
              deliveryCount: p.deliveries,
              settle(outcome) {
                const id = String(p.event.attributes["id"]);
                const list = q.settled.get(id) ?? [];
                list.push(outcome);
                q.settled.set(id, list);
                if (outcome.status === "errored") {
                  q.items.push(p);
                  q.wake?.();
                } else p.done(outcome);
              },
            });
            if (!ok) {
              p.deliveries--;
              q.items.unshift(p);
              break;
            }
          }
        } finally {
          r.release();
        }
      }
    };
    const source: Source = {
      async start(inbox) {
        q.starts++;
        ctx.setUp(true);
        loop = run(inbox);
      },
      async stop() {
        stop.abort();
        await loop;
      },
      async close() {
        stop.abort();
        await loop;
        q.closes++;
        ctx.setUp(false);
      },
    };
    return source;
  },
});

export const memorySink = defineSink({
  kind: "sink",
  type: "memory",
  summary: "test sink",
  stability: "experimental",
  schema: sinkSchema,
  guarantee: () => "confirmed",
  load: async () => (cfg, ctx) => {
    const rec = sinkRecord(cfg.name);
    rec.instances++;
    const fail = new Set(cfg.fail);
    let open = false;
    return {
      guarantee: "confirmed",
      async open() {
        if (cfg.open_fails) throw new Error(`sink ${cfg.name} cannot open`);
        open = true;
        rec.opens++;
        ctx.setUp(true);
      },
      async write(event, signal) {
        if (!open) throw new SinkError(`sink ${cfg.name} is not open`, true);
        if (cfg.delay > 0) {
          await new Promise<void>((resolve, reject) => {
            const t = setTimeout(resolve, cfg.delay);
            signal.addEventListener("abort", () => (clearTimeout(t), reject(signal.reason)), { once: true });
          });
        }
        if (fail.has(String(event.attributes["id"]))) throw new SinkError(`refused ${String(event.attributes["id"])}`, false);
        rec.writes.push(event);
      },
      async close() {
        open = false;
        rec.closes++;
        ctx.setUp(false);
      },
    };
  },
});

export function memoryRegistry(): Registry {
  return new Registry().register(memorySource).register(memorySink);
}

export function testEvent(id: string, extra: Record<string, string> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id, source: "/mem", type: "t", ...extra } };
}
