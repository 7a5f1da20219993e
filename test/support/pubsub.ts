/**
 * Pub/Sub test helpers around the emulator (test/emulators/pubsub): start it, name a fresh topic and
 * subscription, publish events with the real `@google-cloud/pubsub` client, and decode what a sink
 * published (the emulator keeps every accepted message with its exact bytes and attributes).
 *
 * Importing this module sets METADATA_SERVER_DETECTION=none: google-auth-library would otherwise probe
 * the GCE metadata server (a non-loopback address) from the test-side clients and any daemon the test
 * spawns (it inherits the environment).
 */
import { PubSub, type Topic } from "@google-cloud/pubsub";
import { decodePubSubMessage, encodePubSubMessage, RAW_TYPE, type PubSubMode } from "../../connectors/gcp-pubsub/mapping.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { startPubSubEmulator, type EmulatorOptions, type PubSubEmulator, type StoredMessage } from "../emulators/pubsub/server.js";
import type { SubscriptionSpec } from "../emulators/pubsub/model.js";

process.env["METADATA_SERVER_DETECTION"] = "none";

export const PROJECT = "cebridge-test";

export function startPubSub(opts: EmulatorOptions = {}): Promise<PubSubEmulator> {
  return startPubSubEmulator(opts);
}

export interface Names {
  readonly topicId: string;
  readonly subscriptionId: string;
  readonly topic: string;
  readonly subscription: string;
}

/** Creates a topic and a subscription on it named after `tag`. */
export function freshTopic(em: PubSubEmulator, tag: string, sub: Partial<Omit<SubscriptionSpec, "name" | "topic">> = {}): Names {
  const topicId = `topic-${tag}`;
  const subscriptionId = `sub-${tag}`;
  const names = { topicId, subscriptionId, topic: `projects/${PROJECT}/topics/${topicId}`, subscription: `projects/${PROJECT}/subscriptions/${subscriptionId}` };
  em.createTopic(names.topic);
  em.createSubscription({ name: names.subscription, topic: names.topic, ...sub });
  return names;
}

/** The real client pointed at the emulator. */
export function realClient(em: PubSubEmulator): PubSub {
  return new PubSub({ projectId: PROJECT, apiEndpoint: em.endpoint });
}

/** Publishes events in order through the real client (one at a time, so the order is the publish order). */
export async function publishEvents(topic: Topic, events: readonly CloudEvent[], mode: PubSubMode = "binary"): Promise<string[]> {
  const ids: string[] = [];
  for (const e of events) {
    const out = encodePubSubMessage(e, { mode, ordering: false });
    ids.push(await topic.publishMessage({ data: out.data, attributes: out.attributes }));
  }
  return ids;
}

/** Decodes a message the emulator stored, as the source would. */
export function decodeStored(m: StoredMessage, topic = "projects/p/topics/t"): CloudEvent {
  const d = decodePubSubMessage(
    {
      messageId: m.messageId,
      data: m.data,
      attributes: m.attributes,
      orderingKey: m.orderingKey,
      publishTime: m.publishTime.toISOString(),
      deliveryAttempt: 0,
    },
    { topic, subscription: "projects/p/subscriptions/s", mapping: "message_published", rawType: RAW_TYPE },
  );
  if (d.invalid) throw new Error(`stored message ${m.messageId} does not decode: ${d.invalid.message}`);
  return d.event;
}
