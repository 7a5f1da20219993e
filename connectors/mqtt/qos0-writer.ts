/**
 * QoS 0 PUBLISH packets written straight to the MQTT client's socket: one buffer per packet, and the
 * packets of one event-loop turn in one socket write.
 *
 * Why not `client.publish`: mqtt.js hands the packet to mqtt-packet's `writeToStream`, which writes
 * every field of it as a stream chunk of its own (a user property is four), so each event became
 * dozens of chunks in the socket's writev; with the ~10 user properties of binary mode those chunks
 * were 17 % of the NATS → MQTT daemon's CPU, more than all of cebridge's own code (measured with
 * --cpu-prof, bench scenario 2). `mqtt-packet`'s `generate` — the same encoder — builds the packet as
 * one buffer instead. QoS 0 has nothing mqtt.js must track (no packet id, no store, no PUBACK), so
 * writing it ourselves skips nothing but mqtt.js's topic aliases, which the sink does not use, and its
 * offline queue, which the sink never wants (it refuses writes while disconnected).
 */
import { generate, type IPublishPacket } from "mqtt-packet";
import type { MqttClient } from "mqtt";
import type { MqttOutbound } from "./mapping.js";

export class Qos0Writer {
  /** The stream corked for the current turn, if any (a reconnect brings a new one). */
  private corked: MqttClient["stream"] | undefined;
  /** One promise per stream for every write waiting on the socket, instead of a listener each. */
  private drain: { stream: MqttClient["stream"]; done: Promise<void> } | undefined;

  /**
   * Undefined while `client`'s socket takes more; else a promise that resolves when it drained or
   * closed (the caller checks the connection again). QoS 0 has nothing else to wait for: without
   * this, a sink would queue without bound in the socket while the broker reads slowly.
   */
  backpressure(client: MqttClient): Promise<void> | undefined {
    const stream = client.stream;
    if (!stream.writableNeedDrain) return undefined;
    if (this.drain?.stream !== stream) {
      const done = new Promise<void>((resolve) => {
        const settle = () => {
          stream.off("drain", settle);
          stream.off("close", settle);
          if (this.drain?.stream === stream) this.drain = undefined;
          resolve();
        };
        stream.on("drain", settle);
        stream.on("close", settle);
      });
      this.drain = { stream, done };
    }
    return this.drain.done;
  }

  constructor(private readonly protocolVersion: 4 | 5) {}

  /**
   * Encodes and queues one QoS 0 PUBLISH on `client`'s current connection, which the caller checked
   * is up. Throws (an invalid topic or property, from mqtt-packet) before anything is written.
   */
  write(client: MqttClient, topic: string, out: MqttOutbound, retain: boolean): void {
    const packet: IPublishPacket = { cmd: "publish", topic, payload: out.payload, qos: 0, retain, dup: false };
    if (this.protocolVersion === 5 && out.properties) packet.properties = out.properties;
    const bytes = generate(packet, { protocolVersion: this.protocolVersion });
    const stream = client.stream;
    if (this.corked !== stream) {
      this.corked = stream;
      stream.cork();
      process.nextTick(() => {
        this.corked = undefined;
        stream.uncork();
      });
    }
    stream.write(bytes);
  }
}
