/**
 * A subscription's queue: bounded, in front of its deliverer's window, so that the stream's route
 * never waits for a subscriber. The stream offers each matching event without blocking; a full
 * queue refuses it (the caller counts the drop).
 *
 * The shape is the route buffer's (`RouteBuffer` of src/engine/buffer: an `Inbox` with open,
 * stopAccepting, drain, abort, close), and `queues.ts` makes one of the buffer layer's memory or
 * disk buffers.
 */
import type { Inbox, Received } from "../core/source.js";

/** The deliverer's side the queue feeds: its window, and its shutdown steps. */
export interface QueueTarget extends Inbox {
  stopAccepting(): void;
  drain(): Promise<void>;
  abort(): void;
}

export interface SubscriptionQueue {
  readonly type: "memory" | "disk";
  /** Prepares the queue (a disk queue finds what a previous run left). */
  open(): Promise<void>;
  /** Never blocks. False when the queue is full or closed: the event is not taken. */
  offer(msg: Received): boolean;
  stopAccepting(): void;
  /** Hands what must be delivered to the window and waits for it (a disk queue keeps its backlog). */
  drain(): Promise<void>;
  /** Gives up what is queued and aborts the window. */
  abort(): void;
  close(): Promise<void>;
  /** Events and bytes held, for `/status` and the metrics. */
  reading(): { readonly events: number; readonly bytes: number };
}
