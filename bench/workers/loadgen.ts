/**
 * The load generator: a separate process (forked by `bench/lib/load.ts`) that publishes the bench
 * events, paced by an end-to-end window (or at a fixed rate), and receives them at the far end,
 * measuring throughput and per-event latency. It runs one task, sends its result and exits.
 *
 * Publisher and subscriber share this process (and its clock), for the bridged flows and for the
 * raw baselines alike, so the load generator costs the same CPU in both.
 */
import { Agent, request } from "node:http";
import { connect as mqttConnect, type IClientPublishOptions, type MqttClient } from "mqtt";
import { connect as natsConnect, type NodeConnectionOptions } from "@nats-io/transport-node";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/nats-core";
import { jetstream } from "@nats-io/jetstream";
import rhea, { type Connection, type EventContext } from "rhea";
import {
  amqpProperties,
  asBuffer,
  BATCH_CT,
  DATA_BUF,
  httpBinaryHeaders,
  mqttUserProperties,
  scanStructured,
  seqOfId,
  structured,
  structuredJson,
  STRUCTURED_CT,
} from "../lib/events.js";
import { percentiles } from "../lib/stats.js";
import type { FlowResult, FlowTask, HammerResult, HammerTask, PubSpec, SubSpec, Task, WatchResult, WatchTask, WorkerMessage } from "../lib/protocol.js";

function send(msg: WorkerMessage): void {
  process.send?.(msg);
}

/** The client options the cebridge NATS connectors use (connectors/nats/connect.ts). */
function natsOptions(url: string, name: string): NodeConnectionOptions {
  return { servers: [url], name, noAsyncTraces: true, waitOnFirstConnect: true, maxReconnectAttempts: -1 };
}

async function mqttClient(url: string, id: string): Promise<MqttClient> {
  const client = mqttConnect(url, { clientId: id, protocolVersion: 5, clean: true, reconnectPeriod: 1000, keepalive: 60 });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  return client;
}

/** A plain rhea connection (guest/guest, as the private bench broker allows from loopback). */
async function amqpConnection(url: string): Promise<Connection> {
  const u = new URL(url);
  const conn = rhea.create_container().connect({ host: u.hostname, port: Number(u.port), username: "guest", password: "guest", reconnect: false });
  conn.on("error", () => {});
  await new Promise<void>((resolve, reject) => {
    conn.once("connection_open", () => resolve());
    conn.once("disconnected", (c: EventContext) => reject(new Error(`AMQP: ${String(c.error ?? "disconnected")}`)));
  });
  return conn;
}

function closeAmqp(conn: Connection): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 2000);
    conn.once("connection_close", () => {
      clearTimeout(t);
      resolve();
    });
    conn.close();
  });
}

type OnEvent = (seq: number, ts: number) => void;

interface Subscriber {
  close(): Promise<void>;
}

async function subscribe(spec: SubSpec, onEvent: OnEvent, tag: string): Promise<Subscriber> {
  switch (spec.kind) {
    case "none":
      return { async close() {} };
    case "nats": {
      const nc = await natsConnect(natsOptions(spec.url, `bench-sub-${tag}`));
      nc.subscribe(spec.subject, {
        callback: (err, msg) => {
          if (err) return;
          const { seq, ts } = scanStructured(asBuffer(msg.data));
          onEvent(seq, ts);
        },
      });
      await nc.flush();
      return { close: () => nc.close() };
    }
    case "amqp": {
      const conn = await amqpConnection(spec.url);
      // rhea's session buffers (2048 deliveries by default) throw when they overflow.
      const session = conn.create_session({ incoming: 1 << 16, outgoing: 64 });
      session.begin();
      const rcv = session.open_receiver({ source: { address: spec.address }, autoaccept: true, credit_window: 1000 });
      rcv.on("message", (c: EventContext) => {
        const props = (c.message as unknown as { application_properties?: Record<string, unknown> }).application_properties ?? {};
        const id = props["cloudEvents:id"];
        const ts = props["cloudEvents:benchts"];
        onEvent(seqOfId(typeof id === "string" ? id : undefined), typeof ts === "string" ? Number(ts) : Number.NaN);
      });
      await new Promise<void>((resolve) => rcv.once("receiver_open", () => resolve()));
      return { close: () => closeAmqp(conn) };
    }
    case "mqtt": {
      const client = await mqttClient(spec.url, `bench-sub-${tag}-${process.pid}`);
      if (spec.format === "structured") {
        client.on("message", (_topic, payload) => {
          const { seq, ts } = scanStructured(payload);
          onEvent(seq, ts);
        });
      } else {
        client.on("message", (_topic, _payload, packet) => {
          const up = packet.properties?.userProperties as Record<string, string | string[]> | undefined;
          const id = up?.["id"];
          const ts = up?.["benchts"];
          onEvent(seqOfId(typeof id === "string" ? id : undefined), typeof ts === "string" ? Number(ts) : Number.NaN);
        });
      }
      await new Promise<void>((resolve, reject) => client.subscribe(spec.topic, { qos: spec.qos ?? 0 }, (err) => (err ? reject(err) : resolve())));
      return { close: () => new Promise<void>((r) => client.end(true, {}, () => r())) };
    }
  }
}

/** A publisher sends events `[seq, seq+n)`; `done(ok, status)` is called when the transport confirms (if it does). */
interface Publisher {
  /** events per send() call */
  readonly unit: number;
  /** true when the publisher itself confirms (HTTP answer, PubAck) */
  readonly confirms: boolean;
  send(seq: number, n: number, ts: number, done: (ok: boolean, status: string) => void): void;
  close(): Promise<void>;
}

async function publisher(spec: PubSpec, tag: string): Promise<Publisher> {
  switch (spec.kind) {
    case "mqtt": {
      const client = await mqttClient(spec.url, `bench-pub-${tag}-${process.pid}`);
      const qos = spec.qos ?? 0;
      const sOpts: IClientPublishOptions = { qos, properties: { contentType: STRUCTURED_CT } };
      return {
        unit: 1,
        confirms: false,
        send(seq, _n, ts) {
          if (spec.format === "structured") client.publish(spec.topic, structured(tag, seq, ts), sOpts);
          else
            client.publish(spec.topic, DATA_BUF, {
              qos,
              properties: { contentType: "application/json", userProperties: mqttUserProperties(tag, seq, ts) },
            });
        },
        close: () => new Promise<void>((r) => client.end(false, {}, () => r())),
      };
    }
    case "nats": {
      const nc = await natsConnect(natsOptions(spec.url, `bench-pub-${tag}`));
      return {
        unit: 1,
        confirms: false,
        send(seq, _n, ts) {
          nc.publish(spec.subject, structured(tag, seq, ts));
        },
        close: () => nc.drain(),
      };
    }
    case "jetstream": {
      const nc: NatsConnection = await natsConnect(natsOptions(spec.url, `bench-js-${tag}`));
      const js = jetstream(nc);
      return {
        unit: 1,
        confirms: true,
        send(seq, _n, ts, done) {
          // What the nats_jetstream sink sends: Content-Type header, Nats-Msg-Id, expected stream.
          const h = natsHeaders();
          h.append("Content-Type", STRUCTURED_CT);
          js.publish(spec.subject, structured(tag, seq, ts), { headers: h, msgID: `${tag}-${seq}`, expect: { streamName: spec.stream } }).then(
            () => done(true, "ack"),
            (err: Error) => done(false, err.message.slice(0, 40)),
          );
        },
        close: () => nc.drain(),
      };
    }
    case "amqp": {
      const conn = await amqpConnection(spec.url);
      // Accepts may trail deliveries to the consumer (the broker batches its disk writes), so more
      // than the load generator's window can await an outcome: a large outgoing buffer.
      const session = conn.create_session({ incoming: 64, outgoing: 1 << 16 });
      session.begin();
      const snd = session.open_sender({ target: { address: spec.address } });
      await new Promise<void>((resolve) => snd.once("sendable", () => resolve()));
      const waiting = new Map<unknown, (ok: boolean, status: string) => void>();
      const outcome = (ok: boolean, status: string) => (c: EventContext) => {
        const done = waiting.get(c.delivery);
        if (!done) return;
        waiting.delete(c.delivery);
        done(ok, status);
      };
      snd.on("accepted", outcome(true, "accepted"));
      snd.on("released", outcome(false, "released"));
      snd.on("rejected", outcome(false, "rejected"));
      const body = rhea.message.data_section(DATA_BUF);
      return {
        unit: 1,
        confirms: true,
        send(seq, _n, ts, done) {
          const d = snd.send({ message_id: `${tag}-${seq}`, durable: true, content_type: "application/json", application_properties: amqpProperties(tag, seq, ts), body } as never);
          waiting.set(d, done);
        },
        close: () => closeAmqp(conn),
      };
    }
    case "http": {
      const u = new URL(spec.url);
      const agent = new Agent({ keepAlive: true, maxSockets: spec.connections, noDelay: true } as ConstructorParameters<typeof Agent>[0]);
      const unit = spec.mode === "batch" ? (spec.batch ?? 100) : 1;
      return {
        unit,
        confirms: true,
        send(seq, n, ts, done) {
          let headers: Record<string, string>;
          let body: Buffer;
          if (spec.mode === "binary") {
            body = DATA_BUF;
            headers = httpBinaryHeaders(tag, seq, ts, body.length);
          } else if (spec.mode === "structured") {
            body = structured(tag, seq, ts);
            headers = { "content-type": STRUCTURED_CT, "content-length": String(body.length) };
          } else {
            const parts: string[] = [];
            for (let i = 0; i < n; i++) parts.push(structuredJson(tag, seq + i, ts));
            body = Buffer.from(`[${parts.join(",")}]`, "utf8");
            headers = { "content-type": BATCH_CT, "content-length": String(body.length) };
          }
          const req = request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: "POST", headers }, (res) => {
            const status = res.statusCode ?? 0;
            res.resume();
            res.on("end", () => done(status >= 200 && status < 300, String(status)));
          });
          req.on("error", (err) => done(false, (err as NodeJS.ErrnoException).code ?? "error"));
          req.end(body);
        },
        async close() {
          agent.destroy();
        },
      };
    }
  }
}

async function runFlow(task: FlowTask): Promise<FlowResult> {
  const total = task.warmup + task.count;
  const seen = new Uint8Array(total);
  const latency = new Float64Array(task.count);
  let nLat = 0;
  let sent = 0;
  let distinct = 0; // distinct completed, warmup included
  let measuredDistinct = 0;
  let declaredLost = 0;
  let duplicates = 0;
  let retries = 0;
  let stalls = 0;
  const statuses: Record<string, number> = {};
  const retryQueue: number[] = [];
  let lowestOpen = 0; // every seq below is completed or declared lost

  let phaseStart = 0;
  let measuring = false;
  let lastMeasured = 0;
  let lastProgress = performance.now();
  let finished = false;
  let cpu0 = process.cpuUsage();

  let resolveDone!: () => void;
  const allDone = new Promise<void>((r) => (resolveDone = r));

  // seen[seq]: 0 not yet, 1 completed, 2 declared lost after a stall (a late arrival still counts)
  const complete = (seq: number, ts: number) => {
    if (seq < 0 || seq >= total) return;
    if (seen[seq] === 1) {
      duplicates++;
      return;
    }
    if (seen[seq] === 2) declaredLost--;
    seen[seq] = 1;
    distinct++;
    const now = performance.now();
    lastProgress = now;
    if (seq >= task.warmup) {
      measuredDistinct++;
      lastMeasured = now;
      if (Number.isFinite(ts)) latency[nLat++] = now - ts;
    }
    schedule();
  };

  const sub = await subscribe(task.sub, complete, task.tag);
  const pub = await publisher(task.pub, task.tag);

  const inFlight = () => sent - distinct - declaredLost;
  const phaseEnd = () => (measuring ? total : task.warmup);

  const startMeasuring = () => {
    measuring = true;
    phaseStart = performance.now();
    lastMeasured = phaseStart;
    cpu0 = process.cpuUsage();
  };

  const sendOne = (seq: number, n: number) => {
    const ts = performance.now();
    pub.send(seq, n, ts, (ok, status) => {
      statuses[status] = (statuses[status] ?? 0) + n;
      if (!pub.confirms) return;
      if (task.sub.kind === "none") {
        if (ok) for (let i = 0; i < n; i++) complete(seq + i, ts);
        else {
          // Refused (429, 503, a failed PubAck): send the same events again shortly.
          retries += n;
          setTimeout(() => {
            retryQueue.push(seq, n);
            schedule();
          }, 5);
        }
      } else if (!ok) {
        for (let i = 0; i < n; i++) {
          if (seen[seq + i] === 0) {
            seen[seq + i] = 2;
            declaredLost++;
          }
        }
        schedule();
      }
    });
  };

  let scheduled = false;
  function schedule() {
    if (scheduled || finished) return;
    scheduled = true;
    setImmediate(pump);
  }

  function pump() {
    scheduled = false;
    if (finished) return;
    if (!measuring && distinct + declaredLost >= task.warmup) startMeasuring();
    // Retries first (they are already counted as sent).
    while (retryQueue.length > 0) {
      const seq = retryQueue.shift()!;
      const n = retryQueue.shift()!;
      sendOne(seq, n);
    }
    const end = phaseEnd();
    let budget = Number.POSITIVE_INFINITY;
    if (task.rate !== undefined && measuring) {
      const due = Math.floor(((performance.now() - phaseStart) * task.rate) / 1000) + task.warmup;
      budget = due - sent;
    }
    while (sent < end && budget > 0 && inFlight() + pub.unit <= Math.max(task.window, pub.unit)) {
      const n = Math.min(pub.unit, end - sent);
      sendOne(sent, n);
      sent += n;
      budget -= n;
    }
    if (!measuring && distinct + declaredLost >= task.warmup) {
      schedule();
      return;
    }
    if (measuring && sent >= total && inFlight() <= 0) finish(false);
  }

  let timedOut = false;
  function finish(byTimeout: boolean) {
    if (finished) return;
    finished = true;
    timedOut = byTimeout;
    resolveDone();
  }

  const watchdog = setInterval(() => {
    const now = performance.now();
    if (inFlight() > 0 && now - lastProgress > task.stallMs) {
      // Whatever is in flight now is not coming: count it lost and carry on (a late one still counts).
      stalls++;
      for (let i = lowestOpen; i < sent; i++) {
        if (seen[i] === 0) {
          seen[i] = 2;
          declaredLost++;
        }
      }
      lastProgress = now;
      schedule();
    }
    while (lowestOpen < sent && seen[lowestOpen] !== 0) lowestOpen++;
  }, 100);
  const ticker = task.rate !== undefined ? setInterval(schedule, 1) : undefined;
  const timer = setTimeout(() => finish(true), task.timeoutMs);

  schedule();
  await allDone;
  const cpu = process.cpuUsage(cpu0);
  clearInterval(watchdog);
  if (ticker) clearInterval(ticker);
  clearTimeout(timer);
  if (!measuring) startMeasuring();
  const elapsedMs = Math.max(1e-3, lastMeasured - phaseStart);
  await Promise.race([Promise.all([pub.close(), sub.close()]), new Promise((r) => setTimeout(r, 2000))]);
  return {
    sent: Math.max(0, sent - task.warmup),
    received: measuredDistinct,
    lost: task.count - measuredDistinct,
    duplicates,
    elapsedMs,
    rate: (measuredDistinct / elapsedMs) * 1000,
    latencyMs: percentiles(latency.subarray(0, nLat)),
    statuses,
    retries,
    stalls,
    timedOut,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function runWatch(task: WatchTask): Promise<WatchResult> {
  const seen = new Uint8Array(task.count);
  let received = 0;
  let duplicates = 0;
  let first = Number.NaN;
  let last = Number.NaN;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const sub = await subscribe(
    task.sub,
    (seq) => {
      if (seq < 0 || seq >= task.count) return;
      if (seen[seq]) {
        duplicates++;
        return;
      }
      seen[seq] = 1;
      received++;
      last = performance.now();
      if (received === 1) first = last;
      if (received === task.count) resolveDone();
    },
    task.tag,
  );
  const t0 = performance.now();
  send({ type: "ready" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    resolveDone();
  }, task.timeoutMs);
  const stall = setInterval(() => {
    if (received > 0 && performance.now() - last > task.stallMs) resolveDone();
  }, 100);
  await done;
  clearTimeout(timer);
  clearInterval(stall);
  await sub.close();
  const span = last - first;
  return {
    received,
    duplicates,
    firstMs: first - t0,
    lastMs: last - t0,
    rate: received > 1 && span > 0 ? ((received - 1) / span) * 1000 : Number.NaN,
    timedOut,
  };
}

async function runHammer(task: HammerTask): Promise<HammerResult> {
  const pub = await publisher({ kind: "http", url: task.url, mode: "binary", connections: task.connections }, "hammer");
  const statuses: Record<string, number> = {};
  let requests = 0;
  let errors = 0;
  let seq = 0;
  let active = 0;
  let stopping = false;
  const t0 = performance.now();
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const loop = () => {
    if (stopping) {
      if (active === 0) resolveDone();
      return;
    }
    active++;
    pub.send(seq++, 1, performance.now(), (_ok, status) => {
      active--;
      requests++;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (!/^\d+$/.test(status)) errors++;
      // Keep pushing at once, as a client that ignores Retry-After would.
      setImmediate(loop);
    });
  };
  for (let i = 0; i < task.connections; i++) loop();
  setTimeout(() => {
    stopping = true;
    if (active === 0) resolveDone();
  }, task.durationMs);
  await Promise.race([done, new Promise((r) => setTimeout(r, task.durationMs + 10_000))]);
  const elapsedMs = performance.now() - t0;
  await pub.close();
  return { requests, statuses, errors, elapsedMs };
}

process.once("message", (task: Task) => {
  const run = task.type === "flow" ? runFlow(task) : task.type === "watch" ? runWatch(task) : runHammer(task);
  run.then(
    (result) => {
      send({ type: "result", result });
      process.disconnect?.();
      setTimeout(() => process.exit(0), 200).unref();
    },
    (err: unknown) => {
      send({ type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      process.disconnect?.();
      setTimeout(() => process.exit(1), 200).unref();
    },
  );
});
