import type { Inbox } from "../../core/source.js";

/**
 * A route buffer: what the source sees as its `Inbox`, in front of the route's window.
 *
 * Lifecycle: `open` once, before the source starts → `stopAccepting` (shutdown phase 1: refuse new
 * messages) → `drain` (hand what must be delivered to the window, stop the window, wait for it) →
 * `abort` if the shutdown deadline passes first → `close`.
 */
export interface RouteBuffer extends Inbox {
  readonly type: "memory" | "disk";
  /** Prepares the buffer (a disk buffer locks its directory and finds what a previous run left). */
  open(): Promise<void>;
  /** Refuses further offers. The window keeps taking what the buffer hands it. */
  stopAccepting(): void;
  /**
   * Resolves once the route is drained: a memory buffer first hands every queued message to the
   * window; a disk buffer keeps its backlog on disk for the next run and waits only for what is in
   * the window. Ends by stopping the route.
   */
  drain(): Promise<void>;
  /** The shutdown deadline passed: gives up what is left and aborts the route. */
  abort(): void;
  /** Releases files and timers. Call after `drain` resolved. */
  close(): Promise<void>;
}

/** The route's side the buffer needs: its window as an `Inbox`, and its shutdown steps. */
export interface BufferedRoute extends Inbox {
  stopAccepting(): void;
  drain(): Promise<void>;
  abort(): void;
}
