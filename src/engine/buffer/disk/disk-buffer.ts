/**
 * A disk buffer in front of a route's window: events are written to a segment log in this route's
 * directory and acknowledged to their source once written (and synced, with `fsync: always`); the
 * buffer then delivers them to the window at the sinks' pace and forgets an event only once the
 * route settled it delivered, dead-lettered or rejected.
 *
 * - Order: the log is read in the order it was written; what a previous run left comes before what
 *   this run writes. An event released for redelivery waits its backoff (`releaseDelay`); with
 *   `ordering: partitionkey`, later events of its key wait behind it, so no later event of that key
 *   overtakes it.
 * - Bounds: at most one window (`max_in_flight`) of events is out of the log at a time (in the
 *   window, waiting to be retried, or read ahead), so a sink that is down holds memory flat.
 * - Full (`max_bytes`, or the disk refused a write): `offer` refuses; reservations wait for room.
 */
import type { DiskBufferSettings } from "../../../config/buffer.js";
import { BridgeError } from "../../../core/errors.js";
import type { Logger } from "../../../core/logger.js";
import { DELIVERED, type Outcome } from "../../../core/outcome.js";
import type { Received, Reservation } from "../../../core/source.js";
import { Pump } from "../pump.js";
import { Room } from "../room.js";
import type { BufferStats } from "../stats.js";
import type { BufferedRoute, RouteBuffer } from "../types.js";
import { withTraceExtension } from "../../../cloudevents/trace-context.js";
import { decodeEvent, encodeEvent, type StoredEvent } from "./codec.js";
import { SegmentLog, type AppendEntry, type LogRecord } from "./log.js";
import { HEADER_BYTES } from "./record.js";
import { Redelivery, type Redeliverable } from "./redelivery.js";

export interface DiskBufferOptions {
  /** The route orders by `partitionkey`. */
  readonly ordered: boolean;
}

/** An event out of the log: read ahead, in the window, or waiting to be redelivered. */
interface Item extends Redeliverable {
  readonly rec: LogRecord<StoredEvent>;
  received: Received;
}

export class DiskBuffer implements RouteBuffer {
  readonly type = "disk";
  private readonly log: SegmentLog<StoredEvent>;
  private readonly pump: Pump;
  private readonly room: Room;
  private open_ = false;
  private stopped = false;

  /** Items out of the log and not yet acknowledged or left for the next run. */
  private readonly out = new Set<Item>();
  /** The log's next record, wrapped, once `peek` looked at it. */
  private head: Item | undefined;
  private readonly redelivery: Redelivery<Item>;
  private appending = 0;
  private appended: (() => void)[] = [];

  constructor(
    private readonly settings: DiskBufferSettings,
    private readonly route: BufferedRoute,
    private readonly stats: BufferStats,
    private readonly logger: Logger,
    private readonly opts: DiskBufferOptions,
  ) {
    this.log = new SegmentLog<StoredEvent>({
      dir: settings.path,
      maxBytes: settings.maxBytes,
      fsync: settings.fsync,
      fsyncIntervalMs: settings.fsyncIntervalMs,
      decode: decodeEvent,
      onReadable: () => this.pump.kick(),
      onSpace: () => this.room.wake(),
      onCorrupt: (r) => {
        stats.corrupt(r);
        logger.error(
          { dir: settings.path, file: r.file, offset: r.offset, bytes: r.bytes, kind: r.kind },
          r.kind === "torn"
            ? "disk buffer: a record cut off mid-write was skipped (it had not been acknowledged to its source)"
            : "disk buffer: corrupted bytes skipped; the events stored there are lost",
        );
      },
      log: logger,
    });
    const buffer = this;
    this.pump = new Pump(route, {
      peek: () => this.peek(),
      take: () => this.take(),
      get readyEvents() {
        return buffer.redelivery.due.length + buffer.log.readyCount;
      },
      refused: (msg) => this.leftInWindow(msg),
    });
    this.room = new Room({
      capacity: route.capacity,
      get accepting() {
        return buffer.open_;
      },
      hasRoom: () => this.log.hasRoom(),
      admitReserved: (msg) => void this.store(msg, true),
    });
    this.redelivery = new Redelivery<Item>(byLogOrder, () => this.pump.kick());
  }

  get capacity(): number {
    return this.route.capacity;
  }

  get free(): number {
    return this.log.hasRoom() ? this.route.capacity - this.room.held : 0;
  }

  get accepting(): boolean {
    return this.open_;
  }

  get blocking(): boolean {
    return this.settings.whenFull === "block";
  }

  reading() {
    let oldest = this.log.oldestUnreadTime ?? Infinity;
    for (const item of this.out) if (item.rec.time < oldest) oldest = item.rec.time;
    return {
      type: "disk" as const,
      events: this.log.events,
      bytes: this.log.bytes,
      oldestAgeSeconds: Number.isFinite(oldest) && this.log.events > 0 ? Math.max(0, (Date.now() - oldest) / 1000) : 0,
    };
  }

  async open(): Promise<void> {
    const found = await this.log.open();
    if (found > 0) {
      this.logger.info({ dir: this.settings.path, events: found }, "disk buffer: delivering the events a previous run left, before the ones this run receives");
    }
    this.open_ = true;
    this.pump.kick();
  }

  offer(msg: Received): boolean {
    if (!this.open_) return false;
    return this.store(msg, false);
  }

  reserve(min: number, max: number, signal: AbortSignal): Promise<Reservation> {
    return this.room.reserve(min, max, signal);
  }

  stopAccepting(): void {
    this.open_ = false;
  }

  async drain(): Promise<void> {
    // Appends already accepted still answer their sources.
    while (this.appending > 0) await new Promise<void>((resolve) => this.appended.push(resolve));
    this.stopped = true;
    this.pump.stop();
    this.redelivery.stop();
    this.route.stopAccepting();
    await this.route.drain();
  }

  abort(): void {
    this.stopped = true;
    this.pump.stop();
    this.redelivery.stop();
    this.route.stopAccepting();
    this.route.abort();
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.pump.stop();
    this.redelivery.stop();
    await this.log.close();
  }

  // ---------------------------------------------------------------------------------------------
  // Writing

  /** Writes the message's events; the source is settled once they are durable. */
  private store(msg: Received, reserved: boolean): boolean {
    const n = msg.events.length;
    const entries: AppendEntry<StoredEvent>[] = [];
    let bytes = 0;
    for (const received of msg.events) {
      // The transport's trace context does not outlive the message; the extension it implies does.
      const event = withTraceExtension(received, msg.trace);
      const payload = encodeEvent(event, msg.invalid);
      bytes += HEADER_BYTES + payload.length;
      entries.push({ payload, value: msg.invalid ? { event, invalid: msg.invalid } : { event } });
    }
    if (!reserved && !this.log.fits(bytes)) {
      this.stats.dropped(this.log.diskFull ? "disk_full" : "full", n);
      return false;
    }
    this.stats.wrote(n);
    this.appending++;
    this.log.append(entries).then(
      () => this.settleSource(msg, DELIVERED),
      (err: unknown) => {
        const full = ["ENOSPC", "EDQUOT"].includes((err as NodeJS.ErrnoException).code ?? "");
        this.stats.dropped(full ? "disk_full" : "write_failed", n);
        const error = new BridgeError("CEB_BUFFER", `the disk buffer could not store the event: ${(err as Error).message}`, true, { cause: err });
        this.settleSource(msg, { status: "errored", error, release: "retries_spent", retryAfterMs: 1000 });
      },
    ).finally(() => {
      if (--this.appending === 0) {
        const waiters = this.appended;
        this.appended = [];
        for (const w of waiters) w();
      }
    });
    return true;
  }

  private settleSource(msg: Received, outcome: Outcome): void {
    try {
      msg.settle(outcome);
    } catch (err) {
      this.logger.error({ err }, "source settle threw");
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Delivering

  private peek(): Received | undefined {
    if (this.stopped) return undefined;
    const due = this.redelivery.due[0];
    if (due) return due.received;
    while (!this.head && this.out.size < this.route.capacity) {
      const rec = this.log.take();
      if (!rec) return undefined;
      const item = this.wrap(rec);
      this.out.add(item);
      // An earlier event of its key awaits redelivery: it waits too.
      if (!this.redelivery.holdIfKeyHeld(item)) this.head = item;
    }
    return this.head?.received;
  }

  private take(): Received {
    const item = this.redelivery.shift() ?? this.head!;
    if (item === this.head) this.head = undefined;
    item.deliveries++;
    item.received = this.received(item);
    this.stats.read(1);
    return item.received;
  }

  private wrap(rec: LogRecord<StoredEvent>): Item {
    const k = this.opts.ordered ? rec.value.event.attributes["partitionkey"] : undefined;
    const item: Item = { rec, key: k === undefined || k === "" ? undefined : String(k), deliveries: 0, dueAt: 0, received: undefined as unknown as Received };
    item.received = this.received(item);
    return item;
  }

  private received(item: Item): Received {
    const { event, invalid } = item.rec.value;
    return {
      events: [event],
      ...(invalid ? { invalid } : {}),
      deliveryCount: Math.max(1, item.deliveries),
      settle: (outcome) => this.settled(item, outcome),
    };
  }

  /** The route settled an item. */
  private settled(item: Item, outcome: Outcome): void {
    if (outcome.status !== "errored") {
      this.out.delete(item);
      this.log.ack(item.rec);
      this.pump.kick();
      return;
    }
    if (this.stopped || outcome.release === "shutdown") {
      // Left in the log: the next run delivers it.
      this.out.delete(item);
      return;
    }
    this.redelivery.failed(item, outcome);
  }

  /** The window refused an item (the route stopped): it stays in the log for the next run. */
  private leftInWindow(msg: Received): void {
    for (const item of this.out) {
      if (item.received === msg) {
        this.out.delete(item);
        return;
      }
    }
  }
}

function byLogOrder(a: Item, b: Item): number {
  return a.rec.seg.id - b.rec.seg.id || a.rec.offset - b.rec.offset;
}
