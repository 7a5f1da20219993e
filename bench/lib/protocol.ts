/**
 * Messages between the orchestrator (`bench/run.ts`) and the load generator
 * (`bench/workers/loadgen.ts`, a forked process).
 */

export type PubSpec =
  /** MQTT 5, QoS 0 unless `qos` says 1. structured: the JSON event with content type application/cloudevents+json; binary: data + user properties. */
  | { kind: "mqtt"; url: string; topic: string; format: "structured" | "binary"; qos?: 0 | 1 }
  /** Core NATS, structured (NATS binding 1.0.2: the JSON event as payload, no headers). */
  | { kind: "nats"; url: string; subject: string }
  /** JetStream publish awaiting the PubAck, with the options the cebridge sink uses. */
  | { kind: "jetstream"; url: string; subject: string; stream: string }
  /** HTTP POST over keep-alive connections: binary, structured, or batch (`batch` events per request). */
  | { kind: "http"; url: string; mode: "binary" | "structured" | "batch"; connections: number; batch?: number }
  /** AMQP 1.0 with plain rhea: binary mode (`cloudEvents:` properties, the data in one data section), durable, awaiting `accepted`. */
  | { kind: "amqp"; url: string; address: string };

export type SubSpec =
  /** No subscriber: the publisher's own confirmation (HTTP 2xx, PubAck) completes an event. */
  | { kind: "none" }
  /** MQTT 5 subscription at QoS 0 unless `qos` says 1 (mqtt.js's default handler: PUBACK on receipt). */
  | { kind: "mqtt"; url: string; topic: string; format: "structured" | "binary"; qos?: 0 | 1 }
  | { kind: "nats"; url: string; subject: string }
  /** AMQP 1.0 with plain rhea, auto-accepting with a credit window of 1000; reads binary mode. */
  | { kind: "amqp"; url: string; address: string };

export interface FlowTask {
  type: "flow";
  /** id prefix, unique per flow (JetStream deduplicates on it) */
  tag: string;
  pub: PubSpec;
  sub: SubSpec;
  /** measured events */
  count: number;
  /** events sent (and awaited) before the clock starts */
  warmup: number;
  /** max events in flight, end to end (sent − completed) */
  window: number;
  /** fixed rate in events/s (paced by a 1 ms timer) instead of as fast as the window allows */
  rate?: number;
  timeoutMs: number;
  /** in-flight events without any progress for this long are declared lost */
  stallMs: number;
}

export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
  n: number;
}

export interface FlowResult {
  sent: number;
  /** distinct measured events completed */
  received: number;
  lost: number;
  duplicates: number;
  elapsedMs: number;
  /** received / elapsed */
  rate: number;
  latencyMs: LatencySummary;
  statuses: Record<string, number>;
  retries: number;
  stalls: number;
  timedOut: boolean;
  /** CPU time the load generator used during the measured phase (user+system, ms) */
  cpuMs: number;
}

/** Subscribe and count distinct events `<tag>-0 … <tag>-(count-1)` as they arrive (no publisher). */
export interface WatchTask {
  type: "watch";
  tag: string;
  sub: SubSpec;
  count: number;
  timeoutMs: number;
  /** after the first arrival, give up when nothing new arrives for this long */
  stallMs: number;
}

export interface WatchResult {
  received: number;
  duplicates: number;
  /** ms (loadgen clock) of the first and the last distinct arrival, relative to the ready message */
  firstMs: number;
  lastMs: number;
  rate: number;
  timedOut: boolean;
}

/** Keep `connections` HTTP requests in flight for `durationMs`, whatever the answers. */
export interface HammerTask {
  type: "hammer";
  url: string;
  connections: number;
  durationMs: number;
}

export interface HammerResult {
  requests: number;
  statuses: Record<string, number>;
  errors: number;
  elapsedMs: number;
}

export type Task = FlowTask | WatchTask | HammerTask;

export type WorkerMessage =
  | { type: "ready"; info?: Record<string, unknown> }
  | { type: "result"; result: unknown }
  | { type: "error"; message: string };
