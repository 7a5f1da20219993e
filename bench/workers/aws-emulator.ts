/**
 * The AWS emulator (test/emulators/aws) in its own process for the AWS scenarios, so that its work
 * (HTTP, SigV4 checks, queue bookkeeping) never shares an event loop with the daemon, the load
 * generator or a baseline.
 *
 * Forked with `{ port, keyId, secret, queues, buses }`; answers `ready` with its URL, and each later
 * `{ type: "stats" }` with an `EmulatorStats` message; runs until SIGTERM.
 */
import { startAwsEmulator } from "../../test/emulators/aws/index.js";
import type { WorkerMessage } from "../lib/protocol.js";

export interface AwsEmulatorTask {
  port: number;
  keyId: string;
  secret: string;
  /** Queue name → attributes. */
  queues: Record<string, Record<string, string>>;
  buses: string[];
}

/** Counts since the previous `stats` request (PutEvents) or since start (requests per operation). */
export interface EmulatorStats {
  putEventsCalls: number;
  putEventsEntries: number;
  requests: Record<string, number>;
}

async function main(task: AwsEmulatorTask): Promise<void> {
  const aws = await startAwsEmulator({ port: task.port, credentials: { [task.keyId]: task.secret } });
  for (const [name, attrs] of Object.entries(task.queues)) aws.sqs.createQueue(name, attrs);
  for (const b of task.buses) aws.events.buses.add(b);
  process.send?.({ type: "ready", info: { url: aws.url, pid: process.pid } } satisfies WorkerMessage);
  // Later messages ask for counts: how the connectors batched their calls.
  process.on("message", (m: { type?: string }) => {
    if (m?.type !== "stats") return;
    const calls = aws.events.putEventsCalls;
    const stats: EmulatorStats = {
      putEventsCalls: calls.length,
      putEventsEntries: calls.reduce((n, c) => n + c.length, 0),
      requests: Object.fromEntries(aws.calls),
    };
    // Drop what is recorded so far: a long run must not keep every event.
    calls.length = 0;
    aws.events.accepted.length = 0;
    process.send?.({ type: "stats", stats });
  });
  process.once("SIGTERM", () => void aws.close().then(() => process.exit(0)));
}

process.once("message", (task: AwsEmulatorTask) => {
  main(task).catch((err: unknown) => {
    process.send?.({ type: "error", message: err instanceof Error ? err.message : String(err) } satisfies WorkerMessage);
    process.exit(1);
  });
});
