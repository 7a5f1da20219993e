/**
 * Counting helpers for the fault and scale tests: a tally of deliveries per id (distinct, duplicates,
 * missing), an HTTP receiver that can be slowed, failed, stopped and restarted on its port, JetStream
 * preloading and reading, admin scraping (/status, /metrics), dead-letter files, the daemon's RSS, and
 * an MQTT wire tap that sees which PUBLISHes the broker acknowledged (PUBACK), independent of the
 * bridge and of the broker's own (non-persistent) queues.
 */
import { createServer as createNetServer, connect as netConnect, type Server as NetServer, type Socket } from "node:net";
import { createServer, type Server } from "node:http";
import { existsSync, readFileSync } from "node:fs";
import type { TestContext } from "node:test";
import { connect as natsConnect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { sleep, waitFor } from "./wait.js";

// ---------------------------------------------------------------------------------------------
// Tally

/** Deliveries per id. `distinct` = ids seen, `duplicates` = deliveries − distinct. */
export class Tally {
  readonly counts = new Map<string, number>();
  deliveries = 0;

  add(id: string): void {
    this.deliveries++;
    this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
  }

  has(id: string): boolean {
    return this.counts.has(id);
  }

  get distinct(): number {
    return this.counts.size;
  }

  get duplicates(): number {
    return this.deliveries - this.counts.size;
  }

  /** Ids of `expected` never seen. */
  missing(expected: Iterable<string>): string[] {
    const out: string[] = [];
    for (const id of expected) if (!this.counts.has(id)) out.push(id);
    return out;
  }

  /** Ids seen that are not in `expected` (must be empty: nothing invented). */
  unexpected(expected: Iterable<string>): string[] {
    const want = new Set(expected);
    return [...this.counts.keys()].filter((id) => !want.has(id));
  }

  hasAll(expected: readonly string[]): boolean {
    return expected.every((id) => this.counts.has(id));
  }
}

export function ids(tag: string, n: number, from = 0): string[] {
  return Array.from({ length: n }, (_, i) => `${tag}-${from + i}`);
}

export interface FaultCounts {
  readonly scenario: string;
  readonly sent: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly deadLettered: number;
  readonly lost: number;
  readonly note?: string;
}

/** Prints the counts as a diagnostic (one grep-able `fault-matrix |` line) and returns them. */
export function report(t: TestContext, c: FaultCounts): FaultCounts {
  t.diagnostic(
    `fault-matrix | ${c.scenario} | sent ${c.sent} | delivered ${c.delivered} | duplicates ${c.duplicates} | dead-lettered ${c.deadLettered} | lost ${c.lost}${c.note ? ` | ${c.note}` : ""}`,
  );
  return c;
}

/** A short, readable list of ids for assertion messages. */
export function sample(list: readonly string[], n = 10): string {
  return list.length <= n ? JSON.stringify(list) : `${JSON.stringify(list.slice(0, n))} … (${list.length} in all)`;
}

// ---------------------------------------------------------------------------------------------
// CloudEvents on the wire

/** A structured-mode CloudEvent as JSON (recognised by every source as structured: it has `specversion`). */
export function structuredEvent(id: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ specversion: "1.0", id, source: "urn:cebridge:faults", type: "dev.cebridge.test.fault", datacontenttype: "application/json", data: { id }, ...extra });
}

/** The event id of a received body: the `ce-id` header (binary) or the JSON `id` (structured). */
export function idOf(headers: Record<string, string | string[] | undefined>, body: Buffer): string | undefined {
  const h = headers["ce-id"];
  if (typeof h === "string") return h;
  try {
    const doc = JSON.parse(body.toString("utf8")) as unknown;
    if (Array.isArray(doc)) return undefined;
    const id = (doc as { id?: unknown }).id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP receiver

export interface ReceiverOptions {
  /** Delay before answering each request. */
  delayMs?: number;
  /** Status for a request (default 200). Only 2xx answers count as delivered. */
  status?: (id: string | undefined) => number;
  /** Extra response headers for a request (e.g. `Retry-After` on a 503). */
  headers?: (id: string | undefined, status: number) => Record<string, string>;
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  /** Ids answered 2xx. */
  readonly tally: Tally;
  /** Every request, whatever its answer. */
  requests: number;
  /** Requests open at once right now, and the most ever. */
  active: number;
  maxActive: number;
  /** Stop listening and drop every connection (the sink is "down": connection refused). */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(opts: ReceiverOptions = {}, port = 0): Promise<Receiver> {
  let server: Server | undefined;
  let boundPort = port;
  const rx: Receiver = {
    get url() {
      return `http://127.0.0.1:${boundPort}/in`;
    },
    get port() {
      return boundPort;
    },
    tally: new Tally(),
    requests: 0,
    active: 0,
    maxActive: 0,
    async stop() {
      const s = server;
      server = undefined;
      if (!s) return;
      await new Promise<void>((r) => {
        s.close(() => r());
        s.closeAllConnections();
      });
    },
    async start() {
      if (server) return;
      const s = createServer((req, res) => {
        rx.requests++;
        rx.active++;
        rx.maxActive = Math.max(rx.maxActive, rx.active);
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", async () => {
          const body = Buffer.concat(chunks);
          const id = idOf(req.headers, body);
          if (opts.delayMs) await sleep(opts.delayMs);
          rx.active--;
          if (res.destroyed) return;
          const status = opts.status ? opts.status(id) : 200;
          if (status >= 200 && status < 300 && id !== undefined) rx.tally.add(id);
          res.writeHead(status, { "content-type": "text/plain", ...opts.headers?.(id, status) }).end(status >= 400 ? `refused ${id ?? "?"}` : "");
        });
        req.on("close", () => {
          if (!req.complete) rx.active--;
        });
      });
      s.keepAliveTimeout = 65_000;
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(boundPort, "127.0.0.1", () => {
          s.off("error", reject);
          resolve();
        });
      });
      boundPort = (s.address() as { port: number }).port;
      server = s;
    },
    close() {
      return rx.stop();
    },
  };
  await rx.start();
  return rx;
}

// ---------------------------------------------------------------------------------------------
// JetStream

/** A test-side NATS connection that reconnects forever (it survives nats-server restarts). */
export function natsClient(url: string): Promise<NatsConnection> {
  return natsConnect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 200, name: "cebridge-test" });
}

export async function createStream(nc: NatsConnection, name: string, subjects: string[]): Promise<void> {
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects });
}

/** Publishes one structured event per id (with `Nats-Msg-Id` = id), in parallel chunks, and waits for every PubAck. */
export async function preload(nc: NatsConnection, subject: string, list: readonly string[], chunk = 500): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < list.length; i += chunk) {
    await Promise.all(list.slice(i, i + chunk).map((id) => js.publish(subject, structuredEvent(id), { msgID: id })));
  }
}

/** Every event id stored in `stream` (structured JSON payloads), with duplicates. */
export async function streamTally(nc: NatsConnection, stream: string): Promise<Tally> {
  const jsm = await jetstreamManager(nc);
  const info = await jsm.streams.info(stream);
  const tally = new Tally();
  const total = info.state.messages;
  if (total === 0) return tally;
  const consumer = await jetstream(nc).consumers.get(stream);
  let read = 0;
  const deadline = Date.now() + 30_000;
  while (read < total && Date.now() < deadline) {
    const batch = await consumer.fetch({ max_messages: Math.min(1000, total - read), expires: 2000 });
    for await (const m of batch) {
      read++;
      const id = idOf({ "ce-id": m.headers?.get("ce-id") || undefined }, Buffer.from(m.data));
      tally.add(id ?? `?seq-${m.seq}`);
    }
  }
  return tally;
}

export async function streamMessages(nc: NatsConnection, stream: string): Promise<number> {
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } catch {
    return -1;
  }
}

/** Waits until the durable has nothing pending and nothing unacknowledged. */
export async function waitConsumerDrained(nc: NatsConnection, stream: string, durable: string, timeoutMs = 30_000): Promise<void> {
  const jsm = await jetstreamManager(nc);
  let last = "";
  await waitFor(
    async () => {
      try {
        const ci = await jsm.consumers.info(stream, durable);
        last = `num_pending ${ci.num_pending}, num_ack_pending ${ci.num_ack_pending}, num_redelivered ${ci.num_redelivered}`;
        return ci.num_pending === 0 && ci.num_ack_pending === 0;
      } catch (err) {
        last = String(err);
        return false;
      }
    },
    timeoutMs,
    () => `consumer ${stream}/${durable} not drained: ${last}`,
    200,
  );
}

// ---------------------------------------------------------------------------------------------
// Admin

export interface RouteStatus {
  name: string;
  capacity: number;
  in_flight: number;
  counters: { received: number; delivered: number; filtered: number; deadLettered: number; rejected: number; released: number; dropped: number };
}

export async function routeStatus(admin: string, route: string): Promise<RouteStatus> {
  const res = await fetch(`http://${admin}/status`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { routes: RouteStatus[] };
  const r = body.routes.find((x) => x.name === route);
  if (!r) throw new Error(`no route ${route} in /status`);
  return r;
}

/** Sum of every sample of `name` whose labels include `labels`. */
export async function metric(admin: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://${admin}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[3] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Files and processes

/** The JSON lines of a file (none if it does not exist). */
export function readJsonl(path: string): Record<string, unknown>[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Resident set size of a process in MiB (Linux /proc), or NaN when it is gone. */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

// ---------------------------------------------------------------------------------------------
// MQTT wire tap

/**
 * A TCP proxy in front of an MQTT 5 broker that reads the bytes it forwards: it maps each QoS ≥ 1
 * PUBLISH the client sends (packet id → the `id` of the structured CloudEvent payload) and records
 * the ids whose PUBACK the broker returned with a success reason code. Those are the publishes the
 * broker took responsibility for: exactly what a sink may count as confirmed. Each client connection
 * gets its own upstream connection; when the broker is down, a client connection is closed at once.
 */
export interface MqttTap {
  readonly url: string;
  /** Ids the broker PUBACKed (success). */
  readonly confirmed: Tally;
  /** Ids published (every attempt, resends included). */
  readonly published: Tally;
  connections: number;
  close(): Promise<void>;
}

export async function startMqttTap(upstreamPort: number): Promise<MqttTap> {
  const sockets = new Set<Socket>();
  const tap: MqttTap = {
    url: "",
    confirmed: new Tally(),
    published: new Tally(),
    connections: 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server: NetServer = createNetServer((down) => {
    tap.connections++;
    const up = netConnect({ port: upstreamPort, host: "127.0.0.1" });
    sockets.add(down);
    sockets.add(up);
    const pending = new Map<number, string>();
    const kill = () => {
      down.destroy();
      up.destroy();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on("error", kill).on("close", kill);
    up.on("error", kill).on("close", kill);
    const fromClient = new FrameReader((type, flags, body) => {
      if (type !== 3) return; // PUBLISH
      const qos = (flags >> 1) & 3;
      if (qos === 0) return;
      const topicLen = body.readUInt16BE(0);
      let pos = 2 + topicLen;
      const pid = body.readUInt16BE(pos);
      pos += 2;
      const [propLen, size] = readVarint(body, pos);
      pos += size + propLen;
      const id = idOf({}, body.subarray(pos));
      if (id !== undefined) {
        pending.set(pid, id);
        tap.published.add(id);
      }
    });
    const fromBroker = new FrameReader((type, _flags, body) => {
      if (type !== 4) return; // PUBACK
      const pid = body.readUInt16BE(0);
      const reason = body.length > 2 ? body[2]! : 0;
      const id = pending.get(pid);
      pending.delete(pid);
      if (id !== undefined && reason < 0x80) tap.confirmed.add(id);
    });
    // Parse before forwarding: a PUBACK can only follow a PUBLISH the proxy already mapped.
    down.on("data", (chunk: Buffer) => {
      fromClient.push(chunk);
      up.write(chunk);
    });
    up.on("data", (chunk: Buffer) => {
      fromBroker.push(chunk);
      down.write(chunk);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  (tap as { url: string }).url = `mqtt://127.0.0.1:${port}`;
  return tap;
}

function readVarint(buf: Buffer, pos: number): [value: number, size: number] {
  let value = 0;
  let mult = 1;
  for (let i = 0; i < 4; i++) {
    const b = buf[pos + i];
    if (b === undefined) return [-1, 0];
    value += (b & 0x7f) * mult;
    if ((b & 0x80) === 0) return [value, i + 1];
    mult *= 128;
  }
  throw new Error("malformed MQTT variable byte integer");
}

/** Splits a byte stream into MQTT control packets. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (type: number, flags: number, body: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    for (;;) {
      if (this.buf.length < 2) return;
      const [len, size] = readVarint(this.buf, 1);
      if (size === 0) return;
      const total = 1 + size + len;
      if (this.buf.length < total) return;
      const b0 = this.buf[0]!;
      const body = this.buf.subarray(1 + size, total);
      try {
        this.onFrame(b0 >> 4, b0 & 0x0f, body);
      } catch {
        // a frame we cannot read is not counted
      }
      this.buf = this.buf.subarray(total);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Sampling

/** Polls `fn` every `everyMs` until stopped; returns the samples. */
export function sampler<T>(fn: () => Promise<T> | T, everyMs: number): { samples: T[]; errors: number; stop(): Promise<void> } {
  let stopped = false;
  const out = { samples: [] as T[], errors: 0, stop: async () => {} };
  const loop = (async () => {
    while (!stopped) {
      try {
        out.samples.push(await fn());
      } catch {
        out.errors++;
      }
      await sleep(everyMs);
    }
  })();
  out.stop = async () => {
    stopped = true;
    await loop;
  };
  return out;
}
