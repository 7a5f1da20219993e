/**
 * PUBACKs in the order the PUBLISH packets arrived, for many QoS 1 messages in flight on one
 * connection (MQTT 3.1.1 §4.6, MQTT 5 §4.6: a client MUST send PUBACKs in the order in which it
 * received the PUBLISH packets).
 *
 * mqtt.js sends a PUBACK only from its one-at-a-time message handler, so the source takes the
 * acknowledgement over: each received QoS 1 PUBLISH takes a place in line, the route's settle marks
 * it ready (or withheld), and the settled places at the head of the line go out together, once per
 * event-loop turn, in one socket write. A withheld place is never acknowledged on this connection:
 * the line then takes no new place, and once every place has settled it writes what is due and
 * hands the socket back to be closed, so the broker resends the withheld messages. The PUBACKs that
 * are sent keep the arrival order.
 */
import type { Writable } from "node:stream";

const enum Place {
  Waiting,
  Ready,
  Withheld,
}

/**
 * The PUBACK line of one transport connection (one socket). Discard it with the socket: a packet
 * id means nothing on the next connection, where the broker resends what was not acknowledged.
 */
export class PubackLine {
  private ids: number[] = [];
  private states: Place[] = [];
  /** Index of the head of the line in `ids`/`states` (dropped in bulk, not shifted one by one). */
  private head = 0;
  /** How many places were dropped from the front of `ids`/`states`: a place's number is absolute. */
  private base = 0;
  private waiting = 0;
  private scheduled = false;
  private dead = false;
  private withheldAny = false;
  private onSettled: (() => void) | undefined;

  /**
   * @param stream the socket the PUBLISH packets came in on
   * @param hangUp called once, after the due PUBACKs were written, when a place was withheld and
   *   every place settled: the caller closes the socket so that the broker resends
   */
  constructor(
    private readonly stream: Writable,
    private readonly hangUp: () => void,
    private readonly onWriteError: (err: Error) => void,
  ) {}

  /** False once a place was withheld or the line was discarded: take no new place. */
  get open(): boolean {
    return !this.dead && !this.withheldAny;
  }

  /**
   * Takes the next place in line for the PUBLISH with this packet id and returns its number. Call
   * in arrival order. (A number, not a ticket object: one allocation fewer per message.)
   */
  take(messageId: number): number {
    const seq = this.base + this.ids.length;
    this.ids.push(messageId);
    this.states.push(Place.Waiting);
    this.waiting++;
    return seq;
  }

  /** The route settled place `seq` accepted: it is acknowledged once those before it settled. */
  ready(seq: number): void {
    this.settle(seq, Place.Ready);
  }

  /** Place `seq` must come back: it is never acknowledged here, and the connection is to be dropped. */
  withhold(seq: number): void {
    this.settle(seq, Place.Withheld);
  }

  private settle(seq: number, to: Place): void {
    const i = seq - this.base;
    if (this.dead || this.states[i] !== Place.Waiting) return;
    this.states[i] = to;
    this.waiting--;
    if (to === Place.Withheld) return this.drop();
    if (this.waiting === 0 && this.onSettled) return this.settled();
    if (i === this.head && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Takes no new place, and once every place has settled writes what is due and calls `hangUp`:
   * something on this connection must come back.
   */
  drop(): void {
    if (this.dead) return;
    if (!this.withheldAny) {
      this.withheldAny = true;
      this.onSettled = () => this.flush(() => this.hangUp());
    }
    if (this.waiting === 0) this.settled();
  }

  private settled(): void {
    const then = this.onSettled;
    this.onSettled = undefined;
    then?.();
  }

  /**
   * Writes the PUBACKs of the settled places at the head of the line, now, and calls `written` once
   * the write completed (at once when there was nothing to write).
   */
  flush(written?: () => void): void {
    this.scheduled = false;
    if (this.dead) return written?.();
    let end = this.head;
    let n = 0;
    while (end < this.ids.length && this.states[end] !== Place.Waiting) {
      if (this.states[end] === Place.Ready) n++;
      end++;
    }
    if (n > 0 && (this.stream.destroyed || !this.stream.writable)) {
      this.discard();
      return written?.();
    }
    // PUBACK with a Remaining Length of 2: the packet id only. MQTT 5 §3.4.2.1 allows leaving out
    // the reason code (Success) and the properties, so these four bytes are the same on 3.1.1 and 5.
    const buf = n > 0 ? Buffer.allocUnsafe(4 * n) : undefined;
    let o = 0;
    for (let k = this.head; k < end; k++) {
      if (this.states[k] !== Place.Ready) continue;
      const id = this.ids[k]!;
      buf![o++] = 0x40;
      buf![o++] = 2;
      buf![o++] = id >> 8;
      buf![o++] = id & 0xff;
    }
    this.head = end;
    if (this.head === this.ids.length || (this.head > 1024 && this.head * 2 > this.ids.length)) {
      this.base += this.head;
      this.ids = this.ids.slice(this.head);
      this.states = this.states.slice(this.head);
      this.head = 0;
    }
    if (!buf) return written?.();
    this.stream.write(buf, (err) => {
      if (err) this.onWriteError(err);
      written?.();
    });
  }

  /** Forgets every place: nothing more is acknowledged on this connection. */
  discard(): void {
    this.dead = true;
    this.onSettled = undefined;
    this.ids = [];
    this.states = [];
    this.head = 0;
  }
}
