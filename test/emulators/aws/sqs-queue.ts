/**
 * One emulated SQS queue: its messages, visibility, FIFO groups and deduplication, long-poll waiters
 * and redrive (docs/clouds.md §1.9). Time is read through `now()` so a receive, a visibility change
 * and a redelivery are all computed from timestamps: no timer per message, and state survives the
 * emulator's HTTP server being stopped and started again.
 */
import { createHash, randomUUID } from "node:crypto";

/** A typed message attribute as the JSON protocol carries it (`BinaryValue` as base64 text). */
export interface MessageAttribute {
  readonly DataType: string;
  readonly StringValue?: string;
  readonly BinaryValue?: string;
}

export interface StoredMessage {
  readonly id: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly attributes: Readonly<Record<string, MessageAttribute>>;
  readonly md5OfAttributes: string | undefined;
  readonly traceHeader: string | undefined;
  readonly sentAt: number;
  readonly groupId: string | undefined;
  readonly dedupId: string | undefined;
  readonly sequence: string | undefined;
  /** When it may next be received (send delay, visibility timeout). */
  visibleAt: number;
  receiveCount: number;
  firstReceiveAt: number | undefined;
  /** When the current delivery was received (the 12 h visibility ceiling counts from there). */
  receivedAt: number | undefined;
  /** The receipt handle of the latest delivery; undefined while never received. */
  handle: string | undefined;
}

/** A delivery is out: the message was received and its visibility timeout is not over. */
function inFlight(m: StoredMessage, now: number): boolean {
  return m.handle !== undefined && m.visibleAt > now;
}

export interface QueueSettings {
  visibilityTimeoutS: number;
  delayS: number;
  waitTimeS: number;
  retentionS: number;
  maxMessageBytes: number;
  fifo: boolean;
  contentDedup: boolean;
  redrive: { readonly deadLetterTargetArn: string; readonly maxReceiveCount: number } | undefined;
}

const DEDUP_WINDOW_MS = 5 * 60_000;
export const MAX_VISIBILITY_S = 43_200;

export function md5Hex(data: string | Buffer): string {
  return createHash("md5").update(data).digest("hex");
}

/** MD5OfMessageAttributes as SQS computes it: sorted names, each field length-prefixed, transport type byte. */
export function md5OfAttributes(attrs: Readonly<Record<string, MessageAttribute>>): string | undefined {
  const names = Object.keys(attrs).sort();
  if (names.length === 0) return undefined;
  const h = createHash("md5");
  const field = (b: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len);
    h.update(b);
  };
  for (const name of names) {
    const a = attrs[name]!;
    field(Buffer.from(name, "utf8"));
    field(Buffer.from(a.DataType, "utf8"));
    const binary = a.DataType.startsWith("Binary");
    h.update(Buffer.from([binary ? 2 : 1]));
    field(binary ? Buffer.from(a.BinaryValue ?? "", "base64") : Buffer.from(a.StringValue ?? "", "utf8"));
  }
  return h.digest("hex");
}

export interface NewMessage {
  readonly body: string;
  readonly attributes?: Readonly<Record<string, MessageAttribute>>;
  readonly traceHeader?: string | undefined;
  readonly delayS?: number | undefined;
  readonly groupId?: string | undefined;
  readonly dedupId?: string | undefined;
  /** Keeps the id (and sent time) of a message moved here by redrive. */
  readonly id?: string;
  readonly sentAt?: number;
}

export class SqsQueue {
  /** Insertion order is send order; deleted messages are removed. */
  readonly messages = new Map<string, StoredMessage>();
  private readonly byHandle = new Map<string, StoredMessage>();
  private readonly dedup = new Map<string, { id: string; sequence: string | undefined; at: number }>();
  private waiters = new Set<() => void>();
  private seq = 0n;
  /** Deletes that named an outdated receipt handle (succeeded without deleting, as SQS documents). */
  staleDeletes = 0;
  readonly createdAt: number;

  constructor(
    readonly name: string,
    readonly url: string,
    readonly arn: string,
    readonly settings: QueueSettings,
    private readonly now: () => number,
  ) {
    this.createdAt = now();
  }

  /** Adds a message; returns its id and sequence number (FIFO), or the original's within the dedup window. */
  send(m: NewMessage): { id: string; sequence: string | undefined; md5OfBody: string; md5OfAttributes: string | undefined } {
    const now = this.now();
    const attributes = m.attributes ?? {};
    const md5OfBody = md5Hex(m.body);
    const md5Attrs = md5OfAttributes(attributes);
    let dedupId = m.dedupId;
    if (this.settings.fifo) {
      if (dedupId === undefined && this.settings.contentDedup) dedupId = createHash("sha256").update(m.body).digest("hex");
      this.pruneDedup(now);
      const seen = dedupId !== undefined ? this.dedup.get(dedupId) : undefined;
      if (seen) return { id: seen.id, sequence: seen.sequence, md5OfBody, md5OfAttributes: md5Attrs };
    }
    const id = m.id ?? randomUUID();
    const sequence = this.settings.fifo ? String(++this.seq).padStart(20, "0") : undefined;
    const delayMs = (this.settings.fifo ? this.settings.delayS : (m.delayS ?? this.settings.delayS)) * 1000;
    const msg: StoredMessage = {
      id,
      body: m.body,
      md5OfBody,
      attributes,
      md5OfAttributes: md5Attrs,
      traceHeader: m.traceHeader,
      sentAt: m.sentAt ?? now,
      groupId: m.groupId,
      dedupId,
      sequence,
      visibleAt: now + delayMs,
      receiveCount: 0,
      firstReceiveAt: undefined,
      receivedAt: undefined,
      handle: undefined,
    };
    this.messages.set(id, msg);
    if (this.settings.fifo && dedupId !== undefined) this.dedup.set(dedupId, { id, sequence, at: now });
    this.wake();
    return { id, sequence, md5OfBody, md5OfAttributes: md5Attrs };
  }

  private pruneDedup(now: number): void {
    for (const [k, v] of this.dedup) {
      if (now - v.at < DEDUP_WINDOW_MS) break;
      this.dedup.delete(k);
    }
  }

  private remove(m: StoredMessage): void {
    this.messages.delete(m.id);
    if (m.handle) this.byHandle.delete(m.handle);
  }

  /**
   * Takes up to `max` visible messages, makes them invisible for `visibilityS` and returns them.
   * FIFO: a group with a message in flight gives nothing, and within a group order is kept (a message
   * is never returned ahead of an earlier one of its group). `moveToDlq` receives messages whose
   * receive count reached the redrive policy's `maxReceiveCount`.
   */
  receive(max: number, visibilityS: number, moveToDlq: (m: StoredMessage) => void): StoredMessage[] {
    const now = this.now();
    const retentionMs = this.settings.retentionS * 1000;
    const out: StoredMessage[] = [];
    const blocked = new Set<string>();
    for (const m of this.messages.values()) {
      const group = this.settings.fifo ? (m.groupId ?? "") : undefined;
      if (group !== undefined && blocked.has(group)) continue;
      if (now - m.sentAt > retentionMs) {
        this.remove(m);
        continue;
      }
      const visible = m.visibleAt <= now;
      if (!visible || out.length >= max) {
        if (group !== undefined) blocked.add(group);
        if (out.length >= max && !this.settings.fifo) break;
        continue;
      }
      const redrive = this.settings.redrive;
      if (redrive && m.receiveCount >= redrive.maxReceiveCount) {
        this.remove(m);
        moveToDlq(m);
        continue;
      }
      m.receiveCount++;
      m.firstReceiveAt ??= now;
      m.receivedAt = now;
      m.visibleAt = now + visibilityS * 1000;
      if (m.handle) this.byHandle.delete(m.handle);
      m.handle = receiptHandle(this.name, m.id);
      this.byHandle.set(m.handle, m);
      out.push(m);
    }
    return out;
  }

  /** Deletes by receipt handle. Unknown-but-well-formed handles succeed (SQS: deleting twice is fine). */
  delete(handle: string): "deleted" | "stale" | "gone" | "invalid" {
    const parsed = parseReceiptHandle(handle);
    if (!parsed || parsed.queue !== this.name) return "invalid";
    const m = this.byHandle.get(handle);
    if (m) {
      this.remove(m);
      this.wake();
      return "deleted";
    }
    const current = this.messages.get(parsed.messageId);
    if (current) {
      this.staleDeletes++;
      return "stale";
    }
    return "gone";
  }

  /** Changes the visibility of the delivery that `handle` names, counted from now. */
  changeVisibility(handle: string, visibilityS: number): "ok" | "invalid" | "not-in-flight" | "too-long" {
    const parsed = parseReceiptHandle(handle);
    if (!parsed || parsed.queue !== this.name) return "invalid";
    const now = this.now();
    const m = this.byHandle.get(handle);
    if (!m || !inFlight(m, now)) return "not-in-flight";
    if (now + visibilityS * 1000 - (m.receivedAt ?? now) > MAX_VISIBILITY_S * 1000) return "too-long";
    m.visibleAt = now + visibilityS * 1000;
    if (visibilityS === 0) this.wake();
    return "ok";
  }

  purge(): void {
    for (const m of [...this.messages.values()]) this.remove(m);
  }

  counts(): { visible: number; inFlight: number; delayed: number } {
    const now = this.now();
    let visible = 0;
    let out = 0;
    let delayed = 0;
    for (const m of this.messages.values()) {
      if (inFlight(m, now)) out++;
      else if (m.visibleAt > now) delayed++;
      else visible++;
    }
    return { visible, inFlight: out, delayed };
  }

  /** When the next invisible message becomes visible (for long-poll wake-ups), or undefined. */
  nextVisibleAt(): number | undefined {
    const now = this.now();
    let next: number | undefined;
    for (const m of this.messages.values()) {
      if (m.visibleAt > now && (next === undefined || m.visibleAt < next)) next = m.visibleAt;
    }
    return next;
  }

  /** Resolves at the next send, release or delete (or after `ms`, or when `signal` aborts). */
  waitForChange(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private wake(): void {
    if (this.waiters.size === 0) return;
    const ws = [...this.waiters];
    this.waiters.clear();
    for (const w of ws) w();
  }
}

let handleNonce = 0;

/** An opaque-looking handle that still says which queue and message it names, and which delivery. */
function receiptHandle(queue: string, messageId: string): string {
  return Buffer.from(JSON.stringify({ q: queue, m: messageId, n: ++handleNonce, r: randomUUID() })).toString("base64url");
}

function parseReceiptHandle(handle: string): { queue: string; messageId: string } | undefined {
  try {
    const o = JSON.parse(Buffer.from(handle, "base64url").toString("utf8")) as { q?: unknown; m?: unknown };
    return typeof o.q === "string" && typeof o.m === "string" ? { queue: o.q, messageId: o.m } : undefined;
  } catch {
    return undefined;
  }
}
