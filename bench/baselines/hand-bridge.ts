/**
 * The hand-written bridge: what a strong team writes with the same clients as cebridge, no SDK, no
 * window, no retries, no metrics, no loop markers — one Node process, encoding the CloudEvent with the
 * same binding as cebridge does. Rows 1 and 2 report cebridge against it (issue #12: ≥ 0.85 of it).
 *
 * It still does what any correct bridge must: parse the event, check the four required attributes,
 * and write the other side's binding. It does not re-validate types or limits.
 *
 * Forked by the orchestrator with `{ dir, mqttUrl, natsUrl, from, to }`; answers `ready` once
 * subscribed and runs until SIGTERM.
 *   - `mqtt-nats`: MQTT 5 QoS 0 structured → JSON.parse → checks → JSON.stringify → NATS core
 *     structured with `content-type: application/cloudevents+json; charset=utf-8`
 *   - `nats-mqtt`: NATS core structured → JSON.parse → checks → MQTT 5 QoS 0 binary: one user property
 *     per attribute, `datacontenttype` as the Content Type property, the data as the payload
 */
import { connect as natsConnect, headers as natsHeaders } from "@nats-io/transport-node";
import { mqttClient, serveBridge, type BridgeTask, type RunningBridge } from "./bridge-process.js";

export type HandBridgeTask = BridgeTask;

const STRUCTURED = "application/cloudevents+json; charset=utf-8";

/** The event object if it has the required attributes as strings, else undefined. */
function required(text: string): Record<string, unknown> | undefined {
  const ev = JSON.parse(text) as Record<string, unknown>;
  if (typeof ev !== "object" || ev === null) return undefined;
  for (const k of ["specversion", "id", "source", "type"]) if (typeof ev[k] !== "string") return undefined;
  return ev;
}

async function start(task: BridgeTask): Promise<RunningBridge> {
  const nc = await natsConnect({ servers: task.natsUrl, noAsyncTraces: true });
  const client = await mqttClient(task.mqttUrl, `hand-bridge-${process.pid}`);
  let errors = 0;
  if (task.dir === "mqtt-nats") {
    client.on("message", (_topic, payload) => {
      try {
        const ev = required(payload.toString("utf8"));
        if (!ev) return void errors++;
        const h = natsHeaders();
        h.set("content-type", STRUCTURED);
        nc.publish(task.to, JSON.stringify(ev), { headers: h });
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
          const ev = required(msg.string());
          if (!ev) return void errors++;
          const userProperties: Record<string, string> = {};
          let contentType: string | undefined;
          let body: string | Buffer = "";
          for (const k in ev) {
            const v = ev[k];
            if (k === "data") body = typeof v === "string" ? v : JSON.stringify(v);
            else if (k === "data_base64") body = Buffer.from(v as string, "base64");
            else if (k === "datacontenttype") contentType = v as string;
            else userProperties[k] = typeof v === "string" ? v : String(v);
          }
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
