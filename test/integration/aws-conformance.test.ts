/**
 * The shared conformance suites for the AWS connectors, with the real SDK clients against our
 * loopback emulator, and the SQS ones again against fauxqs (an independent SQS emulator from npm),
 * so our emulator is not the only judge of what SQS does.
 *
 * - aws_sqs source on a FIFO queue with 4 receivers (FIFO keeps the publish order the suite checks
 *   even with parallel receivers) and on a standard queue with 1 receiver (SQS does not order a
 *   standard queue across parallel receives), on our emulator and on fauxqs.
 * - aws_eventbridge source: events published with PutEvents, routed by a rule into a FIFO queue.
 * - aws_eventbridge sink: read back through a rule into a queue; aws_sqs sink in both modes.
 */
import { after, before } from "node:test";
import { startFauxqs, type FauxqsServer } from "fauxqs";
import type { EventBridgeClient } from "@aws-sdk/client-eventbridge";
import type { SQSClient } from "@aws-sdk/client-sqs";
import { eventBridgeSink, eventBridgeSource, sqsSink, sqsSource } from "../../connectors/aws/definition.js";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { startAwsEmulator, type AwsEmulator } from "../emulators/aws/index.js";
import { createQueue, eventBridgeClient, putEvents, readQueue, ruleToQueue, sendEvents, sqsClient, type AwsTarget } from "../support/aws.js";
import { sinkFactory, sourceFactory } from "../support/component.js";
import { sinkConformance, sourceConformance } from "../support/conformance.js";
import { testContext } from "../support/context.js";

let aws: AwsEmulator;
let fauxqs: FauxqsServer;
let ours: AwsTarget;
let theirs: AwsTarget;
let sqs: SQSClient;
let fsqs: SQSClient;
let eb: EventBridgeClient;
const makeSqsSource = await sourceFactory(sqsSource);
const makeEbSource = await sourceFactory(eventBridgeSource);
const makeEbSink = await sinkFactory(eventBridgeSink);
const makeSqsSink = await sinkFactory(sqsSink);

before(async () => {
  aws = await startAwsEmulator({ credentials: { AKIDCONFORMANCE: "conformance-secret" } });
  ours = { endpoint: aws.url, region: aws.region, credentials: aws.credentials };
  fauxqs = await startFauxqs({ port: 0, logger: false });
  theirs = { endpoint: `http://127.0.0.1:${fauxqs.port}`, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" } };
  sqs = sqsClient(ours);
  fsqs = sqsClient(theirs);
  eb = eventBridgeClient(ours);
});

after(async () => {
  sqs?.destroy();
  fsqs?.destroy();
  eb?.destroy();
  await aws?.close();
  await fauxqs?.stop();
});

function connection(t: AwsTarget): Record<string, unknown> {
  return { endpoint: t.endpoint, region: t.region, credentials: { access_key_id: t.credentials.accessKeyId, secret_access_key: t.credentials.secretAccessKey } };
}

function sourceOptions(t: AwsTarget, url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { queue_url: url, ...connection(t), visibility_timeout: "1s", wait_time: "2s", ...extra };
}

sourceConformance("aws_sqs (FIFO, 4 receivers)", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  async fresh(tag, opts) {
    const q = await createQueue(sqs, `${tag}.fifo`);
    return {
      make: () => makeSqsSource(sourceOptions(ours, q.url, { receivers: opts?.parallelism ?? 4 }), testContext(`sqs-${tag}`)),
      publish: (evs) => sendEvents(sqs, q.url, evs),
    };
  },
});

sourceConformance("aws_sqs (standard queue, 1 receiver unless the case asks for more)", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  async fresh(tag, opts) {
    const q = await createQueue(sqs, tag);
    return {
      make: () => makeSqsSource(sourceOptions(ours, q.url, { receivers: opts?.parallelism ?? 1 }), testContext(`sqs-${tag}`)),
      publish: (evs) => sendEvents(sqs, q.url, evs),
    };
  },
});

sourceConformance("aws_sqs (fauxqs, FIFO, 4 receivers)", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  async fresh(tag, opts) {
    const q = await createQueue(fsqs, `${tag}.fifo`);
    return {
      make: () => makeSqsSource(sourceOptions(theirs, q.url, { receivers: opts?.parallelism ?? 4 }), testContext(`fsqs-${tag}`)),
      publish: (evs) => sendEvents(fsqs, q.url, evs),
    };
  },
});

sourceConformance("aws_sqs (fauxqs, standard queue, 1 receiver unless the case asks for more)", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  async fresh(tag, opts) {
    const q = await createQueue(fsqs, tag);
    return {
      make: () => makeSqsSource(sourceOptions(theirs, q.url, { receivers: opts?.parallelism ?? 1, wait_time: "1s" }), testContext(`fsqs-${tag}`)),
      publish: (evs) => sendEvents(fsqs, q.url, evs),
    };
  },
});

sourceConformance("aws_eventbridge (PutEvents → rule → FIFO queue, 4 receivers)", {
  redelivers: true,
  pausable: true,
  reportsDeliveryCount: true,
  async fresh(tag, opts) {
    const q = await createQueue(sqs, `${tag}.fifo`);
    const bus = `bus-${tag}`;
    aws.events.buses.add(bus);
    await ruleToQueue(eb, `r-${tag}`, q.arn, { bus });
    return {
      make: () => makeEbSource(sourceOptions(ours, q.url, { receivers: opts?.parallelism ?? 4 }), testContext(`eb-${tag}`)),
      publish: (evs) => putEvents(eb, evs, bus),
    };
  },
});

/** An event EventBridge refuses for good: custom events may not claim an `aws.` source. */
const AWS_SOURCE_EVENT: CloudEvent = { attributes: { specversion: "1.0", id: "aws-source", source: "aws.ec2", type: "t" } };
/** An event no SQS queue takes: 300 KiB over the 256 KiB limit. */
const HUGE_EVENT: CloudEvent = {
  attributes: { specversion: "1.0", id: "huge", source: "urn:x", type: "t", datacontenttype: "text/plain" },
  data: { kind: "bytes", bytes: Buffer.alloc(300 * 1024, 0x61) },
};

sinkConformance("aws_eventbridge", {
  async fresh(tag) {
    const q = await createQueue(sqs, `out-${tag}`);
    const bus = `sink-${tag}`;
    aws.events.buses.add(bus);
    await ruleToQueue(eb, `r-${tag}`, q.arn, { bus });
    return {
      make: () => makeEbSink({ event_bus: bus, ...connection(ours) }, testContext()),
      reader: async () => readQueue(sqs, q.url, { expect: "eventbridge" }),
      unroutable: AWS_SOURCE_EVENT,
    };
  },
});

for (const [name, target, client] of [
  ["ours", () => ours, () => sqs],
  ["fauxqs", () => theirs, () => fsqs],
] as const) {
  for (const mode of ["binary", "structured"] as const) {
    sinkConformance(`aws_sqs (${mode}, ${name})`, {
      stringly: mode === "binary",
      async fresh(tag) {
        const q = await createQueue(client(), `sink-${tag}`);
        return {
          make: () => makeSqsSink({ queue_url: q.url, mode, ...connection(target()) }, testContext()),
          reader: async () => readQueue(client(), q.url),
          unroutable: HUGE_EVENT,
        };
      },
    });
  }
}
