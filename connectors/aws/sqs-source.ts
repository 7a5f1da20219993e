/**
 * The two AWS sources, one machinery (`sqs-receiver.ts`): `aws_sqs` maps whatever arrives (plain
 * messages, SNS notifications, EventBridge events, CloudEvents); `aws_eventbridge` reads the queue an
 * EventBridge rule targets and dead-letters a message that is neither an EventBridge event nor a
 * CloudEvent (a target with an input transformer, a stray sender), so a misconfigured rule is seen.
 */
import type { ConnectorContext } from "../../src/core/connector.js";
import type { Source } from "../../src/core/source.js";
import type { SqsSourceConfig } from "./definition.js";
import { SqsPullSource } from "./sqs-receiver.js";

export function createSqsSource(cfg: SqsSourceConfig, ctx: ConnectorContext): Source {
  return new SqsPullSource(cfg, ctx, "any");
}

export function createEventBridgeSource(cfg: SqsSourceConfig, ctx: ConnectorContext): Source {
  return new SqsPullSource(cfg, ctx, "eventbridge");
}
