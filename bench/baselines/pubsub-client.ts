/**
 * The bare `@google-cloud/pubsub` client on the same emulator as cebridge, as a team would write it:
 *   - `drain`: subscribe with flow control at `window` messages, `streams` streams (the client's
 *     default is 5, each asking the server for `window` messages, so it prefetches 5 × window) and the
 *     connector's ack batching
 *     (10 ms; with the client's default of 100 ms a 256-message window caps the drain at about
 *     2.5k/s, since the client counts a message as outstanding until its ack batch is sent), turn
 *     each binary-mode message into the JSON event (attributes without `ce-`, data parsed), publish it
 *     on core NATS, ack. Runs until SIGTERM (the orchestrator counts arrivals on NATS).
 *   - `publish`: publish `warmup` + `count` binary-mode events (the attributes the cebridge sink
 *     writes) with at most `window` publishes in flight and the client's default batching; answers
 *     `result` when every publish resolved (the orchestrator times arrivals at the emulator).
 *
 * Forked by the orchestrator; answers `ready` once connected.
 */
import { PubSub } from "@google-cloud/pubsub";
import { connect as natsConnect } from "@nats-io/transport-node";
import { DATA_BUF, EVENT_SOURCE, EVENT_TIME, EVENT_TYPE } from "../lib/events.js";
import type { WorkerMessage } from "../lib/protocol.js";

export type PubSubClientTask =
  | { mode: "drain"; endpoint: string; project: string; subscription: string; window: number; streams: number; natsUrl: string; subject: string }
  | { mode: "publish"; endpoint: string; project: string; topic: string; window: number; tag: string; count: number; warmup: number };

function send(m: WorkerMessage): void {
  process.send?.(m);
}

/** The attributes of one bench event in Pub/Sub binary mode (what the cebridge sink writes). */
export function benchAttributes(tag: string, seq: number): Record<string, string> {
  return {
    "ce-specversion": "1.0",
    "ce-id": `${tag}-${seq}`,
    "ce-source": EVENT_SOURCE,
    "ce-type": EVENT_TYPE,
    "ce-time": EVENT_TIME,
    "ce-datacontenttype": "application/json",
    "ce-benchts": "0",
    "content-type": "application/json",
  };
}

async function drain(task: Extract<PubSubClientTask, { mode: "drain" }>): Promise<void> {
  const nc = await natsConnect({ servers: task.natsUrl });
  const ps = new PubSub({ projectId: task.project, apiEndpoint: task.endpoint });
  const sub = ps.subscription(task.subscription, {
    flowControl: { maxMessages: task.window, allowExcessMessages: false },
    streamingOptions: { maxStreams: task.streams },
    batching: { maxMilliseconds: 10 },
  });
  sub.on("message", (m) => {
    const event: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(m.attributes)) if (k.startsWith("ce-")) event[k.slice(3)] = v;
    event["data"] = JSON.parse(m.data.toString("utf8"));
    nc.publish(task.subject, JSON.stringify(event));
    m.ack();
  });
  sub.on("error", (err) => send({ type: "error", message: err.message }));
  send({ type: "ready", info: { pid: process.pid } });
  process.once("SIGTERM", () => void Promise.allSettled([sub.close(), nc.drain()]).then(() => process.exit(0)));
}

async function publish(task: Extract<PubSubClientTask, { mode: "publish" }>): Promise<void> {
  const ps = new PubSub({ projectId: task.project, apiEndpoint: task.endpoint });
  const topic = ps.topic(task.topic);
  await topic.get();
  send({ type: "ready", info: { pid: process.pid } });
  const total = task.warmup + task.count;
  let next = 0;
  let failed = 0;
  await new Promise<void>((resolve) => {
    let inFlight = 0;
    let done = 0;
    const pump = () => {
      while (inFlight < task.window && next < total) {
        const seq = next++;
        // Warm-up events get another tag, so only the measured ones are counted at the emulator.
        const tag = seq < task.warmup ? `${task.tag}w` : task.tag;
        inFlight++;
        topic
          .publishMessage({ data: DATA_BUF, attributes: benchAttributes(tag, seq < task.warmup ? seq : seq - task.warmup) })
          .catch(() => void failed++)
          .finally(() => {
            inFlight--;
            if (++done === total) resolve();
            else pump();
          });
      }
    };
    pump();
  });
  await ps.close();
  send({ type: "result", result: { failed } });
}

process.once("message", (task: PubSubClientTask) => {
  (task.mode === "drain" ? drain(task) : publish(task)).catch((err: unknown) => {
    send({ type: "error", message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
});
