/**
 * The built-in connectors. Each entry is a definition (type, schema, docs) that is cheap to import;
 * the implementation and its SDK load lazily through `definition.load()` only when a config uses it.
 * Only `src/main.ts` imports this file.
 */
import { Registry } from "../src/core/connector.js";
import { amqpSink, amqpSource } from "./amqp/definition.js";
import { eventBridgeSink, eventBridgeSource, sqsSink, sqsSource } from "./aws/definition.js";
import { eventGridSink, eventGridSource, namespaceSink, namespaceSource } from "./azure-eventgrid/definition.js";
import { fileSink } from "./file/definition.js";
import { pubsubSink, pubsubSource } from "./gcp-pubsub/definition.js";
import { httpSink, httpSource } from "./http/definition.js";
import { mqttSink, mqttSource } from "./mqtt/definition.js";
import { jetstreamSink, jetstreamSource, natsSink, natsSource } from "./nats/definition.js";
import { stdoutSink } from "./stdout/definition.js";

export function builtinRegistry(): Registry {
  return new Registry()
    .register(httpSource)
    .register(httpSink)
    .register(stdoutSink)
    .register(fileSink)
    .register(natsSource)
    .register(natsSink)
    .register(jetstreamSource)
    .register(jetstreamSink)
    .register(mqttSource)
    .register(mqttSink)
    .register(pubsubSource)
    .register(pubsubSink)
    .register(eventGridSource)
    .register(eventGridSink)
    .register(namespaceSource)
    .register(namespaceSink)
    .register(eventBridgeSource)
    .register(eventBridgeSink)
    .register(sqsSource)
    .register(sqsSink)
    .register(amqpSource)
    .register(amqpSink);
}
