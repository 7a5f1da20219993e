/**
 * The "straightforward bridge": what a TypeScript team writes first with the official `cloudevents`
 * SDK, in one Node process — subscribe, turn the message into an SDK `CloudEvent`, serialize it with
 * the SDK for the other side, publish. No window, no retries, no loop markers, no metrics.
 *
 * Forked by the orchestrator with `{ dir, mqttUrl, natsUrl, from, to }`; answers `ready` once
 * subscribed and runs until SIGTERM.
 *   - `mqtt-nats`: MQTT 5 QoS 0 structured → `MQTT.toEvent` → `JSON.stringify(event)` → NATS core
 *   - `nats-mqtt`: NATS core structured → `new CloudEvent(JSON.parse(...))` → `MQTT.binary` → MQTT 5 QoS 0
 */
import { CloudEvent, MQTT, type MQTTMessage } from "cloudevents";
import { connect as natsConnect } from "@nats-io/transport-node";
import { mqttClient, serveBridge, type BridgeTask, type RunningBridge } from "./bridge-process.js";

export type SdkBridgeTask = BridgeTask;

async function start(task: BridgeTask): Promise<RunningBridge> {
  const nc = await natsConnect({ servers: task.natsUrl });
  const client = await mqttClient(task.mqttUrl, `sdk-bridge-${process.pid}`);
  let errors = 0;
  if (task.dir === "mqtt-nats") {
    client.on("message", (_topic, payload, packet) => {
      try {
        const message = {
          headers: (packet.properties?.userProperties ?? {}) as Record<string, string>,
          body: payload.toString("utf8"),
          PUBLISH: { "Content Type": packet.properties?.contentType },
        } as unknown as MQTTMessage;
        const event = MQTT.toEvent(message) as CloudEvent;
        nc.publish(task.to, JSON.stringify(event));
      } catch {
        errors++;
      }
    });
    await new Promise<void>((resolve, reject) => client.subscribe(task.from, { qos: 0 }, (err) => (err ? reject(err) : resolve())));
  } else {
    nc.subscribe(task.from, {
      callback: (err, msg) => {
        if (err) return;
        try {
          const event = new CloudEvent(JSON.parse(msg.string()) as Record<string, unknown>);
          const m = MQTT.binary(event);
          // MQTT.binary leaves unset attributes as undefined, which mqtt.js refuses: drop them.
          const userProperties: Record<string, string> = {};
          for (const [k, v] of Object.entries(m["User Properties"] ?? {})) if (v !== undefined) userProperties[k] = String(v);
          const body = typeof m.payload === "string" || Buffer.isBuffer(m.payload) ? m.payload : JSON.stringify(m.payload);
          const contentType = m.PUBLISH?.["Content Type"];
          client.publish(task.to, body, { qos: 0, properties: { ...(contentType ? { contentType } : {}), userProperties } });
        } catch {
          errors++;
        }
      },
    });
    await nc.flush();
  }
  return { nc, client, errors: () => errors };
}

serveBridge(start);
