/**
 * A wire-level Google Cloud Pub/Sub emulator for tests and benchmarks: an in-process @grpc/grpc-js
 * server over the protos shipped with the client (see protos.ts), serving the RPCs the real
 * `@google-cloud/pubsub` client makes — topic and subscription admin, Publish, StreamingPull,
 * Acknowledge, ModifyAckDeadline — on a loopback port, with the delivery rules of model.ts.
 *
 *   const ps = await startPubSubEmulator({ timeScale: 0.1 });
 *   new PubSub({ projectId: "p", apiEndpoint: ps.endpoint })   // or PUBSUB_EMULATOR_HOST=ps.endpoint
 *
 * Fault injection: `fail(rpc, …)` answers the next calls of an RPC with a status (optionally only
 * requests that `match`), `delay(rpc, ms)` slows it, `failAcks(…)` makes exactly-once acks of chosen
 * messages fail per ack id, `resetStreams()` ends every StreamingPull with UNAVAILABLE (the client
 * reopens). Publish validates what the service validates (attribute limits, `goog` prefix, empty
 * messages, one ordering key per request, 1000 messages, 10 MB) with INVALID_ARGUMENT. The
 * `googclient_` prefix is let through: Google's client libraries publish `googclient_traceparent`
 * (their OpenTelemetry propagation) and the service takes it (INFER: no service document says so
 * beyond the libraries doing it in production).
 */
import * as grpc from "@grpc/grpc-js";
import { ackFailureDetails, loadServices } from "./protos.js";
import { Broker, RpcError, type Delivery, type StoredMessage, type StreamSink, type SubscriptionSpec, type SubscriptionState } from "./model.js";

export type { StoredMessage, SubscriptionStats } from "./model.js";

export type RpcName =
  | "CreateTopic"
  | "GetTopic"
  | "DeleteTopic"
  | "Publish"
  | "CreateSubscription"
  | "GetSubscription"
  | "DeleteSubscription"
  | "StreamingPull"
  | "Acknowledge"
  | "ModifyAckDeadline";

export interface EmulatorOptions {
  /** Multiplies every ack deadline and retry backoff (default 1). */
  timeScale?: number;
  /** Keep published messages for `published()` (default true; benchmarks turn it off). */
  record?: boolean;
  /** Bind a specific port (default: a free one). */
  port?: number;
  /** Serve TLS with this key pair instead of plaintext h2c. */
  tls?: { cert: string; key: string };
  /** Called for every accepted message (benchmarks count arrivals without recording). */
  onPublish?: (topic: string, m: StoredMessage) => void;
  /** Checks the `authorization` header of every call; false answers UNAUTHENTICATED. */
  authorize?: (authorization: string | undefined) => boolean;
}

export interface FailOptions {
  /** gRPC status code (default UNAVAILABLE). */
  code?: number;
  details?: string;
  /** How many matching calls fail (default 1). */
  times?: number;
  /** Only calls whose request matches fail. */
  match?: (request: any) => boolean;
}

export interface PubSubEmulator {
  /** `127.0.0.1:<port>`, for `apiEndpoint` or `PUBSUB_EMULATOR_HOST`. */
  readonly endpoint: string;
  readonly port: number;
  /** Every call received, by RPC name. */
  readonly calls: Record<string, number>;
  /** Injected failures that fired, by RPC name. */
  readonly injected: Record<string, number>;
  /** Authorization headers seen (for credential tests). */
  readonly authorizations: string[];
  createTopic(name: string): void;
  createSubscription(spec: Partial<SubscriptionSpec> & { name: string; topic: string }): void;
  /** Messages accepted on a topic, in publish order. */
  published(topic: string): readonly StoredMessage[];
  /** Publishes directly, as another publisher would. Returns the message id. */
  publish(topic: string, m: { data?: Buffer | string; attributes?: Record<string, string>; orderingKey?: string }): string;
  subscription(name: string): SubscriptionState;
  fail(rpc: RpcName, opts?: FailOptions): void;
  delay(rpc: RpcName, ms: number): void;
  /** Exactly-once: the next `times` acks of messages that `match` fail with this per-ack-id kind. */
  failAcks(opts: { match: (m: StoredMessage) => boolean; kind: "permanent" | "transient"; times?: number }): void;
  /** Ends every open StreamingPull with `code` (default UNAVAILABLE); returns how many. */
  resetStreams(code?: number): number;
  close(): Promise<void>;
}

const MAX_ATTRIBUTES = 100;
const MAX_KEY_BYTES = 256;
const MAX_VALUE_BYTES = 1024;
const MAX_ORDERING_KEY_BYTES = 1024;
const MAX_REQUEST_BYTES = 10_000_000;

/** Validates one PublishRequest as the service does; throws INVALID_ARGUMENT naming the problem. */
function validatePublish(req: { messages: { data: Buffer; attributes: Record<string, string>; orderingKey: string }[] }): void {
  const bad = (msg: string) => new RpcError(grpc.status.INVALID_ARGUMENT, msg);
  if (req.messages.length === 0) throw bad("The request contains no messages");
  if (req.messages.length > 1000) throw bad(`The request contains ${req.messages.length} messages, more than 1000`);
  let total = 0;
  const keys = new Set<string>();
  for (const [i, m] of req.messages.entries()) {
    const attrs = Object.entries(m.attributes ?? {});
    if (m.data.length === 0 && attrs.length === 0) throw bad(`messages[${i}]: a message needs data or at least one attribute`);
    if (attrs.length > MAX_ATTRIBUTES) throw bad(`messages[${i}]: ${attrs.length} attributes, more than ${MAX_ATTRIBUTES}`);
    for (const [k, v] of attrs) {
      if (Buffer.byteLength(k) > MAX_KEY_BYTES) throw bad(`messages[${i}]: attribute key over ${MAX_KEY_BYTES} bytes`);
      if (Buffer.byteLength(v) > MAX_VALUE_BYTES) throw bad(`messages[${i}]: attribute ${k} value over ${MAX_VALUE_BYTES} bytes`);
      if (k.startsWith("goog") && !k.startsWith("googclient_")) throw bad(`messages[${i}]: attribute key ${k} starts with the reserved prefix goog`);
      total += Buffer.byteLength(k) + Buffer.byteLength(v);
    }
    if (Buffer.byteLength(m.orderingKey) > MAX_ORDERING_KEY_BYTES) throw bad(`messages[${i}]: ordering key over ${MAX_ORDERING_KEY_BYTES} bytes`);
    keys.add(m.orderingKey);
    total += m.data.length;
  }
  if (keys.size > 1) throw bad("All messages in a publish request must share one ordering key");
  if (total > MAX_REQUEST_BYTES) throw bad(`The request is ${total} bytes, more than ${MAX_REQUEST_BYTES}`);
}

/** google.protobuf.Duration as the loader hands it (seconds as a string) → ms. */
function durationMs(d: { seconds?: string | number; nanos?: number } | null | undefined): number {
  return d ? Number(d.seconds ?? 0) * 1000 + Math.floor((d.nanos ?? 0) / 1e6) : 0;
}

function toWire(d: Delivery): object {
  const t = d.message.publishTime.getTime();
  return {
    ackId: d.ackId,
    deliveryAttempt: d.deliveryAttempt,
    message: {
      data: d.message.data,
      attributes: d.message.attributes,
      messageId: d.message.messageId,
      orderingKey: d.message.orderingKey,
      publishTime: { seconds: String(Math.floor(t / 1000)), nanos: (t % 1000) * 1e6 },
    },
  };
}

export async function startPubSubEmulator(opts: EmulatorOptions = {}): Promise<PubSubEmulator> {
  const broker = new Broker(opts.timeScale ?? 1, opts.record ?? true, opts.onPublish);
  const subscriptionsWire = new Map<string, object>();
  const calls: Record<string, number> = {};
  const injected: Record<string, number> = {};
  const authorizations: string[] = [];
  const faults: (FailOptions & { rpc: RpcName; left: number })[] = [];
  const delays = new Map<RpcName, number>();
  const ackFaults: { match: (m: StoredMessage) => boolean; kind: "permanent" | "transient"; left: number }[] = [];
  const openStreams = new Set<{ call: grpc.ServerDuplexStream<any, any>; sink: StreamSink }>();

  /** Counts the call, checks auth, applies delays and faults; throws the status to answer with. */
  async function enter(rpc: RpcName, metadata: grpc.Metadata, request: unknown): Promise<void> {
    calls[rpc] = (calls[rpc] ?? 0) + 1;
    const auth = metadata.get("authorization")[0];
    if (auth !== undefined) authorizations.push(String(auth));
    if (opts.authorize && !opts.authorize(auth === undefined ? undefined : String(auth))) {
      throw new RpcError(grpc.status.UNAUTHENTICATED, "Request had invalid authentication credentials");
    }
    const ms = delays.get(rpc);
    if (ms) await new Promise((r) => setTimeout(r, ms));
    const f = faults.find((x) => x.rpc === rpc && x.left > 0 && (!x.match || x.match(request)));
    if (f) {
      f.left--;
      injected[rpc] = (injected[rpc] ?? 0) + 1;
      throw new RpcError(f.code ?? grpc.status.UNAVAILABLE, f.details ?? `injected ${rpc} failure`);
    }
  }

  function unary<Req>(rpc: RpcName, fn: (req: Req) => object) {
    return (call: grpc.ServerUnaryCall<Req, object>, cb: grpc.sendUnaryData<object>) => {
      enter(rpc, call.metadata, call.request)
        .then(() => cb(null, fn(call.request)))
        .catch((err: unknown) => {
          if (err instanceof RpcError) {
            const e: Partial<grpc.StatusObject> = { code: err.code, details: err.message };
            const md = (err as RpcError & { metadata?: grpc.Metadata }).metadata;
            if (md) e.metadata = md;
            cb(e);
          } else cb({ code: grpc.status.INTERNAL, details: String(err) });
        });
    };
  }

  function topicWire(name: string): object {
    if (!broker.topics.has(name)) throw new RpcError(grpc.status.NOT_FOUND, `Topic not found: ${name}`);
    return { name };
  }

  function specOf(s: any): SubscriptionSpec {
    const dl = s.deadLetterPolicy;
    const rp = s.retryPolicy;
    return {
      name: s.name,
      topic: s.topic,
      ackDeadlineSeconds: s.ackDeadlineSeconds || 10,
      ordering: !!s.enableMessageOrdering,
      exactlyOnce: !!s.enableExactlyOnceDelivery,
      deadLetter: dl && dl.deadLetterTopic ? { topic: dl.deadLetterTopic, maxDeliveryAttempts: dl.maxDeliveryAttempts || 5 } : undefined,
      retry: rp ? { minMs: durationMs(rp.minimumBackoff) || 10_000, maxMs: durationMs(rp.maximumBackoff) || 600_000 } : undefined,
    };
  }

  function createSubscription(s: any): object {
    const spec = specOf(s);
    broker.createSubscription(spec);
    const wire = { ...s, ackDeadlineSeconds: spec.ackDeadlineSeconds, state: "ACTIVE" };
    subscriptionsWire.set(spec.name, wire);
    return wire;
  }

  /**
   * Exactly-once ack/modack results: per-ack-id failures as ErrorInfo, like the service. `failAcks`
   * faults apply to Acknowledge only (`faultable`), not to the client's receipt modAcks.
   */
  function settle(sub: SubscriptionState, ackIds: string[], apply: (ids: string[]) => string[], faultable: boolean): object {
    if (!sub.spec.exactlyOnce) {
      apply(ackIds);
      return {};
    }
    const failures = new Map<string, string>();
    const ok: string[] = [];
    for (const id of ackIds) {
      const lease = sub.leases.get(id);
      const f = faultable && lease && ackFaults.find((x) => x.left > 0 && x.match(lease.entry.msg));
      if (f) {
        f.left--;
        failures.set(id, f.kind === "permanent" ? "PERMANENT_FAILURE_INVALID_ACK_ID" : "TRANSIENT_FAILURE_UNORDERED_ACK_ID");
      } else ok.push(id);
    }
    for (const id of apply(ok)) failures.set(id, "PERMANENT_FAILURE_INVALID_ACK_ID");
    if (failures.size === 0) return {};
    const err = new RpcError(grpc.status.INVALID_ARGUMENT, `${failures.size} ack id(s) failed`) as RpcError & { metadata: grpc.Metadata };
    err.metadata = new grpc.Metadata();
    err.metadata.set("grpc-status-details-bin", ackFailureDetails(err.code, err.message, failures));
    throw err;
  }

  function streamingPull(call: grpc.ServerDuplexStream<any, any>): void {
    let state: "new" | "opening" | "open" | "closed" = "new";
    let sub: SubscriptionState | undefined;
    let sink: StreamSink | undefined;
    const entry = { call, sink: undefined as unknown as StreamSink };
    const close = () => {
      if (state === "closed") return;
      state = "closed";
      openStreams.delete(entry);
      if (sink && sub) {
        sink.closed = true;
        sub.streams.splice(sub.streams.indexOf(sink), 1);
      }
    };
    const props = () => ({ exactlyOnceDeliveryEnabled: sub!.spec.exactlyOnce, messageOrderingEnabled: sub!.spec.ordering });
    const open = async (req: any) => {
      await enter("StreamingPull", call.metadata, req);
      sub = broker.subscription(req.subscription);
      const s = sub;
      sink = entry.sink = {
        maxMessages: Number(req.maxOutstandingMessages ?? 0),
        maxBytes: Number(req.maxOutstandingBytes ?? 0),
        deadlineSeconds: req.streamAckDeadlineSeconds || s.spec.ackDeadlineSeconds,
        closed: false,
        outstanding: 0,
        outstandingBytes: 0,
        write: (ds) => {
          if (!call.cancelled && !call.writableEnded) call.write({ receivedMessages: ds.map(toWire), subscriptionProperties: props() });
        },
      };
      if (state !== "opening") return;
      state = "open";
      openStreams.add(entry);
      s.streams.push(sink);
      call.write({ receivedMessages: [], subscriptionProperties: props() });
      s.schedulePump();
    };
    call.on("data", (req: any) => {
      if (state === "new") {
        state = "opening";
        open(req).catch((err: RpcError) => {
          close();
          call.emit("error", { code: err.code ?? grpc.status.INTERNAL, details: err.message });
        });
        return;
      }
      if (state !== "open") return;
      if (req.streamAckDeadlineSeconds) sink!.deadlineSeconds = req.streamAckDeadlineSeconds;
      if (req.ackIds?.length) sub!.ack(req.ackIds);
      (req.modifyDeadlineAckIds ?? []).forEach((id: string, i: number) => sub!.modifyDeadline([id], req.modifyDeadlineSeconds[i] ?? 0));
    });
    call.on("end", () => {
      close();
      call.end();
    });
    call.on("cancelled", close);
    call.on("error", close);
  }

  const { Publisher, Subscriber } = loadServices();
  const server = new grpc.Server({ "grpc.max_receive_message_length": 20 << 20, "grpc.max_send_message_length": 20 << 20 });
  server.addService(Publisher, {
    CreateTopic: unary<any>("CreateTopic", (t) => (broker.createTopic(t.name), { name: t.name, labels: t.labels })),
    GetTopic: unary<any>("GetTopic", (r) => topicWire(r.topic)),
    DeleteTopic: unary<any>("DeleteTopic", (r) => (broker.deleteTopic(r.topic), {})),
    Publish: unary<any>("Publish", (r) => {
      if (!broker.topics.has(r.topic)) throw new RpcError(grpc.status.NOT_FOUND, `Topic not found: ${r.topic}`);
      validatePublish(r);
      return { messageIds: r.messages.map((m: any) => broker.publish(r.topic, m)) };
    }),
  });
  server.addService(Subscriber, {
    CreateSubscription: unary<any>("CreateSubscription", createSubscription),
    GetSubscription: unary<any>("GetSubscription", (r) => {
      broker.subscription(r.subscription);
      return subscriptionsWire.get(r.subscription)!;
    }),
    DeleteSubscription: unary<any>("DeleteSubscription", (r) => (broker.deleteSubscription(r.subscription), subscriptionsWire.delete(r.subscription), {})),
    Acknowledge: unary<any>("Acknowledge", (r) => {
      const sub = broker.subscription(r.subscription);
      return settle(sub, r.ackIds, (ids) => sub.ack(ids), true);
    }),
    ModifyAckDeadline: unary<any>("ModifyAckDeadline", (r) => {
      const sub = broker.subscription(r.subscription);
      return settle(sub, r.ackIds, (ids) => sub.modifyDeadline(ids, r.ackDeadlineSeconds), false);
    }),
    StreamingPull: streamingPull,
  });

  const creds = opts.tls
    ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(opts.tls.cert), private_key: Buffer.from(opts.tls.key) }], false)
    : grpc.ServerCredentials.createInsecure();
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${opts.port ?? 0}`, creds, (err, p) => (err ? reject(err) : resolve(p))),
  );

  return {
    endpoint: `127.0.0.1:${port}`,
    port,
    calls,
    injected,
    authorizations,
    createTopic: (name) => broker.createTopic(name),
    createSubscription: (s) => void createSubscription({ ackDeadlineSeconds: 10, ...s, enableMessageOrdering: s.ordering, enableExactlyOnceDelivery: s.exactlyOnce, ...wireExtras(s) }),
    published: (topic) => broker.topics.get(topic)?.published ?? [],
    publish: (topic, m) =>
      broker.publish(topic, { data: Buffer.from(m.data ?? ""), attributes: m.attributes ?? {}, orderingKey: m.orderingKey ?? "" }),
    subscription: (name) => broker.subscription(name),
    fail: (rpc, f = {}) => void faults.push({ ...f, rpc, left: f.times ?? 1 }),
    delay: (rpc, ms) => void delays.set(rpc, ms),
    failAcks: (f) => void ackFaults.push({ ...f, left: f.times ?? 1 }),
    resetStreams(code = grpc.status.UNAVAILABLE) {
      const all = [...openStreams];
      for (const s of all) {
        s.sink.closed = true;
        s.call.emit("error", { code, details: "The service was unable to fulfill your request. Please try again. [stream reset by the emulator]" });
      }
      return all.length;
    },
    async close() {
      broker.close();
      for (const s of [...openStreams]) s.call.emit("error", { code: grpc.status.UNAVAILABLE, details: "emulator shutting down" });
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => (server.forceShutdown(), resolve()), 1000);
        server.tryShutdown(() => (clearTimeout(force), resolve()));
      });
    },
  };
}

/** The spec's dead-letter and retry settings in wire form, for subscriptions made from a test. */
function wireExtras(s: Partial<SubscriptionSpec>): object {
  const out: Record<string, unknown> = {};
  if (s.deadLetter) out["deadLetterPolicy"] = { deadLetterTopic: s.deadLetter.topic, maxDeliveryAttempts: s.deadLetter.maxDeliveryAttempts };
  if (s.retry) {
    const d = (ms: number) => ({ seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 });
    out["retryPolicy"] = { minimumBackoff: d(s.retry.minMs), maximumBackoff: d(s.retry.maxMs) };
  }
  return out;
}
