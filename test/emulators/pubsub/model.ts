/**
 * The Pub/Sub emulator's state and delivery rules, independent of gRPC: topics, subscriptions, leases.
 *
 * - Publish fans a message out to every subscription of its topic (one `Entry` each).
 * - A subscription hands entries to its open streams, round robin, never more than a stream's
 *   `maxOutstandingMessages` / `maxOutstandingBytes` unacknowledged (0 = no limit; one message is
 *   always allowed so a big one cannot wedge the stream), each delivery with a new ack id and a lease
 *   of the stream's ack deadline.
 * - A lease ends by ack, by nack (ModifyAckDeadline 0) or by expiry; the last two redeliver, after the
 *   retry policy's backoff when the subscription has one. Leases outlive the stream that took them.
 * - Ordering: on a subscription with message ordering, one message per ordering key is out at a time,
 *   the next held until it is acked; a redelivered message goes back to the head of its key.
 * - Dead-letter policy: `deliveryAttempt` counts deliveries; a message that failed
 *   `maxDeliveryAttempts` times is published to the dead-letter topic (with Google's
 *   CloudPubSubDeadLetter* attributes) instead of coming back.
 * - Exactly-once: acks and modacks of ack ids that are not leased now fail (the caller reports them).
 *
 * Durations from the wire are multiplied by `timeScale` (0.1 turns a 10 s ack deadline into 1 s).
 */

export interface StoredMessage {
  readonly messageId: string;
  readonly data: Buffer;
  readonly attributes: Readonly<Record<string, string>>;
  readonly orderingKey: string;
  readonly publishTime: Date;
  /** Bytes as flow control counts them: data + attribute keys and values. */
  readonly size: number;
}

export interface SubscriptionSpec {
  readonly name: string;
  readonly topic: string;
  readonly ackDeadlineSeconds: number;
  readonly ordering: boolean;
  readonly exactlyOnce: boolean;
  readonly deadLetter?: { readonly topic: string; readonly maxDeliveryAttempts: number } | undefined;
  /** Backoff bounds in wire milliseconds (before scaling). */
  readonly retry?: { readonly minMs: number; readonly maxMs: number } | undefined;
}

export interface Delivery {
  readonly ackId: string;
  readonly message: StoredMessage;
  /** 0 unless the subscription has a dead-letter policy (as the real service). */
  readonly deliveryAttempt: number;
}

/** One open StreamingPull, as the model sees it. */
export interface StreamSink {
  readonly maxMessages: number;
  readonly maxBytes: number;
  /** Seconds of the lease each delivery on this stream starts with. */
  deadlineSeconds: number;
  closed: boolean;
  outstanding: number;
  outstandingBytes: number;
  write(deliveries: Delivery[]): void;
}

interface Entry {
  readonly msg: StoredMessage;
  attempts: number;
}

interface Lease {
  readonly ackId: string;
  readonly entry: Entry;
  readonly stream: StreamSink;
  deadline: number;
}

export interface SubscriptionStats {
  deliveries: number;
  acks: number;
  nacks: number;
  expired: number;
  deadLettered: number;
  /** The most leases outstanding at once, over all streams. */
  maxOutstanding: number;
}

/** Deliveries per stream response. */
const MAX_BATCH = 1000;

export class SubscriptionState {
  readonly leases = new Map<string, Lease>();
  readonly streams: StreamSink[] = [];
  readonly stats: SubscriptionStats = { deliveries: 0, acks: 0, nacks: 0, expired: 0, deadLettered: 0, maxOutstanding: 0 };
  private queue: Entry[] = [];
  private head = 0;
  private readonly keyQueues = new Map<string, Entry[]>();
  private readonly busyKeys = new Set<string>();
  private readonly readyKeys = new Set<string>();
  private rr = 0;
  private pumpScheduled = false;
  private readonly delayed = new Set<NodeJS.Timeout>();

  constructor(
    readonly spec: SubscriptionSpec,
    private readonly broker: Broker,
  ) {}

  /** Messages waiting for delivery (not counting those leased or waiting out a backoff). */
  get backlog(): number {
    let n = this.queue.length - this.head;
    for (const q of this.keyQueues.values()) n += q.length;
    return n;
  }

  enqueue(entry: Entry, front = false): void {
    const key = this.spec.ordering ? entry.msg.orderingKey : "";
    if (key !== "") {
      let q = this.keyQueues.get(key);
      if (!q) this.keyQueues.set(key, (q = []));
      if (front) q.unshift(entry);
      else q.push(entry);
      if (!this.busyKeys.has(key)) this.readyKeys.add(key);
    } else if (front && this.head > 0) {
      this.queue[--this.head] = entry;
    } else if (front) {
      this.queue.unshift(entry);
    } else {
      this.queue.push(entry);
    }
    this.schedulePump();
  }

  private next(): Entry | undefined {
    for (const key of this.readyKeys) {
      this.readyKeys.delete(key);
      const q = this.keyQueues.get(key)!;
      const e = q.shift()!;
      if (q.length === 0) this.keyQueues.delete(key);
      this.busyKeys.add(key);
      return e;
    }
    if (this.head >= this.queue.length) return undefined;
    const e = this.queue[this.head]!;
    this.queue[this.head++] = undefined as never;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    return e;
  }

  schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private hasRoom(s: StreamSink, size: number): boolean {
    if (s.closed) return false;
    if (s.maxMessages > 0 && s.outstanding >= s.maxMessages) return false;
    if (s.maxBytes > 0 && s.outstanding > 0 && s.outstandingBytes + size > s.maxBytes) return false;
    return true;
  }

  private pump(): void {
    const live = this.streams.filter((s) => !s.closed);
    if (live.length === 0) return;
    const batches = new Map<StreamSink, Delivery[]>();
    let idle = 0;
    while (idle < live.length) {
      const s = live[this.rr++ % live.length]!;
      const batch = batches.get(s) ?? [];
      if (batch.length >= MAX_BATCH || !this.hasRoom(s, 0)) {
        idle++;
        continue;
      }
      const entry = this.next();
      if (!entry) break;
      idle = 0;
      batch.push(this.lease(entry, s));
      batches.set(s, batch);
    }
    for (const [s, batch] of batches) if (batch.length > 0) s.write(batch);
    if (this.backlog > 0 && [...batches.values()].some((b) => b.length >= MAX_BATCH)) this.schedulePump();
  }

  private lease(entry: Entry, stream: StreamSink): Delivery {
    entry.attempts++;
    const ackId = this.broker.newAckId();
    this.leases.set(ackId, { ackId, entry, stream, deadline: this.broker.now() + this.broker.scaled(stream.deadlineSeconds * 1000) });
    stream.outstanding++;
    stream.outstandingBytes += entry.msg.size;
    this.stats.deliveries++;
    this.stats.maxOutstanding = Math.max(this.stats.maxOutstanding, this.leases.size);
    return { ackId, message: entry.msg, deliveryAttempt: this.spec.deadLetter ? entry.attempts : 0 };
  }

  private endLease(lease: Lease): void {
    this.leases.delete(lease.ackId);
    lease.stream.outstanding--;
    lease.stream.outstandingBytes -= lease.entry.msg.size;
    const key = this.spec.ordering ? lease.entry.msg.orderingKey : "";
    if (key !== "") {
      this.busyKeys.delete(key);
      if (this.keyQueues.has(key)) this.readyKeys.add(key);
    }
    this.schedulePump();
  }

  /** Returns the ack ids that were not leased (exactly-once reports them as failures). */
  ack(ackIds: readonly string[]): string[] {
    const invalid: string[] = [];
    for (const id of ackIds) {
      const lease = this.leases.get(id);
      if (!lease) {
        invalid.push(id);
        continue;
      }
      this.stats.acks++;
      this.endLease(lease);
    }
    return invalid;
  }

  /** Extends leases, or with 0 seconds nacks them. Returns the ack ids that were not leased. */
  modifyDeadline(ackIds: readonly string[], seconds: number): string[] {
    const invalid: string[] = [];
    for (const id of ackIds) {
      const lease = this.leases.get(id);
      if (!lease) {
        invalid.push(id);
        continue;
      }
      if (seconds > 0) {
        lease.deadline = this.broker.now() + this.broker.scaled(seconds * 1000);
      } else {
        this.stats.nacks++;
        this.release(lease);
      }
    }
    return invalid;
  }

  /** Ends leases whose deadline passed; called by the broker's sweep. */
  expire(now: number): void {
    for (const lease of this.leases.values()) {
      if (lease.deadline > now) continue;
      this.stats.expired++;
      this.release(lease);
    }
  }

  /** A failed delivery: dead-letter it, or redeliver it (after the retry backoff). */
  private release(lease: Lease): void {
    this.endLease(lease);
    const { entry } = lease;
    const dl = this.spec.deadLetter;
    if (dl && entry.attempts >= dl.maxDeliveryAttempts && this.broker.deadLetter(this, entry.msg, entry.attempts)) {
      this.stats.deadLettered++;
      return;
    }
    const retry = this.spec.retry;
    if (!retry) return this.enqueue(entry, true);
    const ms = this.broker.scaled(Math.min(retry.maxMs, retry.minMs * 2 ** Math.max(0, entry.attempts - 1)));
    // Hold the key while the backoff runs, so later messages of the key cannot overtake it.
    const key = this.spec.ordering ? entry.msg.orderingKey : "";
    if (key !== "") {
      this.busyKeys.add(key);
      this.readyKeys.delete(key);
    }
    const t = setTimeout(() => {
      this.delayed.delete(t);
      if (key !== "") this.busyKeys.delete(key);
      this.enqueue(entry, true);
    }, ms);
    t.unref();
    this.delayed.add(t);
  }

  close(): void {
    for (const t of this.delayed) clearTimeout(t);
    this.delayed.clear();
    for (const s of this.streams) s.closed = true;
  }
}

/** Error with a gRPC status code, thrown by the model and turned into a status by the server. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export class Broker {
  readonly topics = new Map<string, { readonly subscriptions: Set<string>; readonly published: StoredMessage[] }>();
  readonly subscriptions = new Map<string, SubscriptionState>();
  private messageSeq = 0;
  private ackSeq = 0;
  private readonly sweep: NodeJS.Timeout;

  constructor(
    private readonly timeScale: number,
    /** Keep every published message per topic for `published()` (off for benchmarks). */
    private readonly record: boolean,
    private readonly onPublish?: (topic: string, m: StoredMessage) => void,
    readonly now: () => number = Date.now,
  ) {
    this.sweep = setInterval(() => {
      const t = this.now();
      for (const s of this.subscriptions.values()) s.expire(t);
    }, Math.max(10, Math.min(250, this.scaled(1000) / 4)));
    this.sweep.unref();
  }

  scaled(ms: number): number {
    return ms * this.timeScale;
  }

  newAckId(): string {
    return `ack-${++this.ackSeq}-${Math.random().toString(36).slice(2, 8)}`;
  }

  createTopic(name: string): void {
    if (this.topics.has(name)) throw new RpcError(6, `Topic already exists: ${name}`);
    this.topics.set(name, { subscriptions: new Set(), published: [] });
  }

  deleteTopic(name: string): void {
    if (!this.topics.delete(name)) throw new RpcError(5, `Topic not found: ${name}`);
  }

  createSubscription(spec: SubscriptionSpec): SubscriptionState {
    if (this.subscriptions.has(spec.name)) throw new RpcError(6, `Subscription already exists: ${spec.name}`);
    const topic = this.topics.get(spec.topic);
    if (!topic) throw new RpcError(5, `Topic not found: ${spec.topic}`);
    const sub = new SubscriptionState(spec, this);
    this.subscriptions.set(spec.name, sub);
    topic.subscriptions.add(spec.name);
    return sub;
  }

  deleteSubscription(name: string): void {
    const sub = this.subscriptions.get(name);
    if (!sub) throw new RpcError(5, `Subscription does not exist: ${name}`);
    sub.close();
    this.subscriptions.delete(name);
    this.topics.get(sub.spec.topic)?.subscriptions.delete(name);
  }

  subscription(name: string): SubscriptionState {
    const sub = this.subscriptions.get(name);
    if (!sub) throw new RpcError(5, `Subscription does not exist: ${name}`);
    return sub;
  }

  /** Stores one message and fans it out; returns its message id. */
  publish(topicName: string, m: { data: Buffer; attributes: Record<string, string>; orderingKey: string }): string {
    const topic = this.topics.get(topicName);
    if (!topic) throw new RpcError(5, `Topic not found: ${topicName}`);
    let size = m.data.length;
    for (const [k, v] of Object.entries(m.attributes)) size += Buffer.byteLength(k) + Buffer.byteLength(v);
    const msg: StoredMessage = {
      messageId: String(++this.messageSeq),
      data: Buffer.from(m.data),
      attributes: { ...m.attributes },
      orderingKey: m.orderingKey,
      publishTime: new Date(this.now()),
      size,
    };
    if (this.record) topic.published.push(msg);
    this.onPublish?.(topicName, msg);
    for (const name of topic.subscriptions) this.subscriptions.get(name)?.enqueue({ msg, attempts: 0 });
    return msg.messageId;
  }

  /** Forwards a message that ran out of delivery attempts; false when the dead-letter topic is missing. */
  deadLetter(sub: SubscriptionState, msg: StoredMessage, attempts: number): boolean {
    const topic = sub.spec.deadLetter!.topic;
    if (!this.topics.has(topic)) return false;
    const [, project = ""] = /^projects\/([^/]+)\//.exec(sub.spec.name) ?? [];
    this.publish(topic, {
      data: msg.data,
      orderingKey: msg.orderingKey,
      attributes: {
        ...msg.attributes,
        CloudPubSubDeadLetterSourceDeliveryCount: String(attempts),
        CloudPubSubDeadLetterSourceSubscription: sub.spec.name.slice(sub.spec.name.lastIndexOf("/") + 1),
        CloudPubSubDeadLetterSourceSubscriptionProject: project,
        CloudPubSubDeadLetterSourceTopicPublishTime: msg.publishTime.toISOString(),
      },
    });
    return true;
  }

  close(): void {
    clearInterval(this.sweep);
    for (const s of this.subscriptions.values()) s.close();
  }
}
