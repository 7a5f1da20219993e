/**
 * What the two baseline bridges (the SDK one and the hand-written one) share as processes: the
 * forked task, the MQTT connection, and the lifecycle — connect, answer `ready` once subscribed,
 * close both clients on SIGTERM and exit 3 if any message could not be bridged.
 */
import { connect as mqttConnect, type MqttClient } from "mqtt";
import type { NatsConnection } from "@nats-io/transport-node";
import type { WorkerMessage } from "../lib/protocol.js";

/** Sent by the orchestrator: the direction, both brokers, and the topic or subject on each side. */
export interface BridgeTask {
  dir: "mqtt-nats" | "nats-mqtt";
  mqttUrl: string;
  natsUrl: string;
  from: string;
  to: string;
}

/** A bridge once subscribed: its clients and its count of messages it could not bridge. */
export interface RunningBridge {
  readonly nc: NatsConnection;
  readonly client: MqttClient;
  errors(): number;
}

function send(m: WorkerMessage): void {
  process.send?.(m);
}

/** An MQTT 5 client, connected. */
export async function mqttClient(url: string, clientId: string): Promise<MqttClient> {
  const client = mqttConnect(url, { protocolVersion: 5, clientId });
  await new Promise<void>((resolve, reject) => {
    client.once("connect", () => resolve());
    client.once("error", reject);
  });
  return client;
}

/** Runs `start` on the task the orchestrator sends, then serves until SIGTERM. */
export function serveBridge(start: (task: BridgeTask) => Promise<RunningBridge>): void {
  process.once("message", (task: BridgeTask) => {
    start(task).then(
      (b) => {
        send({ type: "ready", info: { pid: process.pid } });
        process.once("SIGTERM", () => {
          void Promise.allSettled([b.nc.close(), new Promise<void>((r) => b.client.end(true, {}, () => r()))]).then(() => process.exit(b.errors() > 0 ? 3 : 0));
        });
      },
      (err: unknown) => {
        send({ type: "error", message: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
  });
}
