/**
 * A memory buffer in front of a route's window, for sources that cannot pause.
 *
 * While nothing is queued, an offer goes straight to the window (the route's own `offer`: no copy,
 * no weighing). When the window is full the message is queued, up to `max_bytes`, and the pump
 * hands queued messages to the window in arrival order as slots free; while anything is queued,
 * new messages queue behind it, so order is kept. A queued message is settled by the route as if
 * it had been offered directly: the source acknowledges (if it can) once the sinks confirmed.
 *
 * Full: `offer` refuses (a source that cannot pause drops and counts `overflow`; HTTP answers
 * 429). Reservations wait for room, so with `when_full: block` a source that can stall its input
 * (`Inbox.blocking`) is held back instead of dropping.
 */
import { BridgeError } from "../../core/errors.js";
import type { Logger } from "../../core/logger.js";
import type { Received, Reservation } from "../../core/source.js";
import type { MemoryBufferSettings } from "../../config/buffer.js";
import { Deque } from "./deque.js";
import { Pump } from "./pump.js";
import { Room } from "./room.js";
import { messageBytes } from "./size.js";
import type { BufferStats } from "./stats.js";
import type { BufferedRoute, RouteBuffer } from "./types.js";

interface Queued {
  readonly msg: Received;
  readonly bytes: number;
  readonly at: number;
}

export class MemoryBuffer implements RouteBuffer {
  readonly type = "memory";
  private readonly queue = new Deque<Queued>();
  private queuedBytes = 0;
  private queuedEvents = 0;
  private open_ = true;
  private readonly pump: Pump;
  private readonly room: Room;
  private emptied: (() => void)[] = [];

  constructor(
    private readonly settings: MemoryBufferSettings,
    private readonly route: BufferedRoute,
    private readonly stats: BufferStats,
    private readonly log: Logger,
  ) {
    const buffer = this;
    this.pump = new Pump(route, {
      peek: () => this.queue.peek()?.msg,
      take: () => this.take(),
      get readyEvents() {
        return buffer.queuedEvents;
      },
      refused: (msg) => this.giveUp([msg]),
    });
    this.room = new Room({
      capacity: route.capacity,
      get accepting() {
        return buffer.open_;
      },
      hasRoom: () => this.queuedBytes < this.settings.maxBytes,
      admitReserved: (msg) => void this.accept(msg, true),
    });
  }

  get capacity(): number {
    return this.route.capacity;
  }

  get free(): number {
    return this.queue.length === 0 ? this.route.free : 0;
  }

  get accepting(): boolean {
    return this.open_;
  }

  get blocking(): boolean {
    return this.settings.whenFull === "block";
  }

  /** Events queued, bytes queued and the age of the oldest, for the metrics and `/status`. */
  reading() {
    const head = this.queue.peek();
    return { type: "memory" as const, events: this.queuedEvents, bytes: this.queuedBytes, oldestAgeSeconds: head ? (Date.now() - head.at) / 1000 : 0 };
  }

  async open(): Promise<void> {}

  offer(msg: Received): boolean {
    if (!this.open_) return false;
    if (this.queue.length === 0 && this.route.offer(msg)) return true;
    return this.accept(msg, false);
  }

  reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    return this.room.reserve(min, max, signal);
  }

  stopAccepting(): void {
    this.open_ = false;
  }

  async drain(): Promise<void> {
    if (this.queue.length > 0) await new Promise<void>((resolve) => this.emptied.push(resolve));
    this.pump.stop();
    this.route.stopAccepting();
    await this.route.drain();
  }

  abort(): void {
    this.pump.stop();
    const left = this.queue.drainAll().map((q) => q.msg);
    this.queuedBytes = 0;
    this.queuedEvents = 0;
    this.giveUp(left);
    this.route.stopAccepting();
    this.route.abort();
    this.notifyEmpty();
  }

  async close(): Promise<void> {
    this.pump.stop();
  }

  /** Queues `msg` behind what is already queued. Refused when full, unless it was reserved. */
  private accept(msg: Received, reserved: boolean): boolean {
    const n = msg.events.length;
    if (n > this.route.capacity) return false; // could never enter the window (HTTP answers 413 first)
    if (reserved && this.queue.length === 0 && this.route.offer(msg)) return true;
    const bytes = messageBytes(msg);
    if (!reserved && this.queuedBytes + bytes > this.settings.maxBytes) {
      this.stats.dropped("full", n);
      return false;
    }
    this.queue.push({ msg, bytes, at: Date.now() });
    this.queuedBytes += bytes;
    this.queuedEvents += n;
    this.stats.wrote(n);
    this.pump.kick();
    return true;
  }

  private take(): Received {
    const q = this.queue.shift()!;
    this.queuedBytes -= q.bytes;
    this.queuedEvents -= q.msg.events.length;
    this.stats.read(q.msg.events.length);
    if (this.queue.length === 0) this.notifyEmpty();
    this.room.wake();
    return q.msg;
  }

  /** Settles messages that will never reach the window (shutdown deadline): the source releases them. */
  private giveUp(msgs: readonly Received[]): void {
    if (msgs.length === 0) return;
    const events = msgs.reduce((n, m) => n + m.events.length, 0);
    this.stats.dropped("shutdown", events);
    this.log.warn({ events }, "shutdown deadline: events still in the memory buffer were not delivered");
    const error = new BridgeError("CEB_SHUTTING_DOWN", "the daemon stopped before this event left the memory buffer", true);
    for (const m of msgs) {
      try {
        m.settle({ status: "errored", error, release: "shutdown" });
      } catch (err) {
        this.log.error({ err }, "source settle threw");
      }
    }
  }

  private notifyEmpty(): void {
    const waiters = this.emptied;
    this.emptied = [];
    for (const w of waiters) w();
  }
}
