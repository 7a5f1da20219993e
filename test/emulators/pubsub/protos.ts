/**
 * The Pub/Sub v1 service definitions, loaded from the .proto files that ship inside the npm packages
 * (`@google-cloud/pubsub/build/protos` and, for the google/api and google/protobuf imports,
 * `google-gax/build/protos`), so the emulator speaks exactly the wire the installed client speaks.
 * Also encodes the `grpc-status-details-bin` trailer (google.rpc.Status with an ErrorInfo) that
 * exactly-once subscriptions use to report per-ack-id failures.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const require = createRequire(import.meta.url);

/** `<pkg>/build/protos`: both packages resolve their main file to `build/src/index.js`. */
function protosDir(pkg: string): string {
  return join(dirname(require.resolve(pkg)), "..", "protos");
}

export interface PubSubServices {
  readonly Publisher: grpc.ServiceDefinition;
  readonly Subscriber: grpc.ServiceDefinition;
}

let cached: PubSubServices | undefined;

export function loadServices(): PubSubServices {
  if (cached) return cached;
  const def = protoLoader.loadSync("google/pubsub/v1/pubsub.proto", {
    includeDirs: [protosDir("@google-cloud/pubsub"), protosDir("google-gax")],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const v1 = (grpc.loadPackageDefinition(def) as unknown as { google: { pubsub: { v1: Record<string, { service: grpc.ServiceDefinition }> } } }).google.pubsub.v1;
  cached = { Publisher: v1["Publisher"]!.service, Subscriber: v1["Subscriber"]!.service };
  return cached;
}

/**
 * `grpc-status-details-bin` for an exactly-once ack failure: google.rpc.Status{code, message,
 * details: [Any(google.rpc.ErrorInfo{reason, domain, metadata: ackId → failure code})]}.
 * google-gax decodes it into `errorInfoMetadata`, which the client reads per ack id.
 */
export function ackFailureDetails(code: number, message: string, failures: ReadonlyMap<string, string>): Buffer {
  const info = protobuf.Writer.create();
  info.uint32((1 << 3) | 2).string("EXACTLY_ONCE_ACKID_FAILURE");
  info.uint32((2 << 3) | 2).string("pubsub.googleapis.com");
  for (const [ackId, failure] of failures) {
    const entry = protobuf.Writer.create();
    entry.uint32((1 << 3) | 2).string(ackId);
    entry.uint32((2 << 3) | 2).string(failure);
    info.uint32((3 << 3) | 2).bytes(entry.finish());
  }
  const any = protobuf.Writer.create();
  any.uint32((1 << 3) | 2).string("type.googleapis.com/google.rpc.ErrorInfo");
  any.uint32((2 << 3) | 2).bytes(info.finish());
  const status = protobuf.Writer.create();
  status.uint32((1 << 3) | 0).int32(code);
  status.uint32((2 << 3) | 2).string(message);
  status.uint32((3 << 3) | 2).bytes(any.finish());
  return Buffer.from(status.finish());
}
