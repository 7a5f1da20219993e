/**
 * Fault matrix: a subscription's disk queue across SIGKILL. A webhook subscriber answers 503 while
 * events flow, so they pile up in its disk queue (the route is confirmed once each is on disk); the
 * daemon is SIGKILLed; the subscriber recovers; the restarted daemon brings the subscription back
 * from the state file, asks the handshake again and delivers every queued event. Counted: sent,
 * delivered, duplicates (at most one window: deliveries cut off by the kill), lost (must be 0).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { CloudEvent } from "../../src/cloudevents/index.js";
import { report } from "../support/counting.js";
import { startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { ApiClient, postEvents, WebhookReceiver } from "../support/subscribers.js";
import { waitFor } from "../support/wait.js";

const TOKEN = "faults-subs";
const N = 300;
const WINDOW = 4;

describe("faults - subscriptions", { timeout: 180_000 }, () => {
  let dir: string;
  let daemon: Daemon;
  const hook = new WebhookReceiver();
  let ports: { admin: number; source: number; api: number };

  const yaml = () => `
engine:
  admin: { listen: "127.0.0.1:${ports.admin}" }
  shutdown_timeout: 2s
  log: { level: warn }
sources:
  in: { type: http, listen: "127.0.0.1:${ports.source}", path: /e }
sinks:
  out: { type: file, path: ${dir}/out.jsonl }
  dlq: { type: file, path: ${dir}/dlq.jsonl }
routes:
  - { name: r, from: in, to: [out], dead_letter: dlq }
subscriptions:
  listen: "127.0.0.1:${ports.api}"
  auth: { bearer: "${TOKEN}" }
  state_dir: ${dir}/state
  streams:
    orders:
      route: r
      allowed_sinks: ["${hook.url}/"]
      max_in_flight: ${WINDOW}
      queue: { type: disk, max_bytes: 16MiB, fsync: always }
      retry: { initial: 200ms, max: 1s, max_elapsed: 10m }
      dead_letter: dlq
`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "cebridge-subs-faults-"));
    await hook.start();
    ports = { admin: await freePort(), source: await freePort(), api: await freePort() };
  });

  after(async () => {
    await daemon?.stop("SIGKILL");
    await hook.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("disk queue: events queued for a failing subscriber across a SIGKILL are delivered after the restart", async (t) => {
    daemon = startDaemon(yaml(), { dir });
    await daemon.waitReady(`127.0.0.1:${ports.admin}`, 30_000);
    const api = new ApiClient(`http://127.0.0.1:${ports.api}`, TOKEN);
    const { id } = await api.create("orders", { protocol: "HTTP", sink: `${hook.url}/in` });
    hook.postStatus = 503;
    const events: CloudEvent[] = Array.from({ length: N }, (_, i) => ({
      attributes: { specversion: "1.0", id: `disk-${i}`, source: "urn:faults", type: "com.example.fault" },
      data: { kind: "bytes", bytes: Buffer.from(`payload ${i}`) },
    }));
    // Each 204 means the event was on disk in the subscription's queue (fsync: always).
    const statuses = await Promise.all([0, 1, 2, 3].map((k) => postEvents(`http://127.0.0.1:${ports.source}/e`, events.filter((_, i) => i % 4 === k))));
    assert.ok(statuses.flat().every((s) => s === 204));
    const status = async (): Promise<any> => (await fetch(`http://127.0.0.1:${ports.admin}/status`)).json();
    const sub = async () => (await status()).subscriptions.find((s: { id: string }) => s.id === id);
    let last: any;
    await waitFor(async () => {
      last = await sub();
      return last.queued + last.in_flight >= N;
    }, 20_000, () => JSON.stringify(last));
    const atKill = await sub();
    assert.equal(atKill.counters.delivered, 0);
    await daemon.stop("SIGKILL");

    hook.postStatus = 204;
    hook.events.length = 0;
    const handshakesBefore = hook.handshakes.length;
    daemon = startDaemon(yaml(), { dir });
    await daemon.waitReady(`127.0.0.1:${ports.admin}`, 30_000);
    await waitFor(() => new Set(hook.events.map((e) => e.attributes["id"])).size >= N, 60_000, () => `${hook.events.length}/${N} delivered after the restart\n${daemon.stderr()}`);
    assert.equal(hook.handshakes.length, handshakesBefore + 1, "asked for consent again before delivering");
    const seen = new Map<string, number>();
    for (const e of hook.events) seen.set(String(e.attributes["id"]), (seen.get(String(e.attributes["id"])) ?? 0) + 1);
    const lost = events.filter((e) => !seen.has(String(e.attributes["id"]))).length;
    const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
    const byId = new Map(hook.events.map((e) => [String(e.attributes["id"]), e]));
    for (const e of events) assert.equal(Buffer.from((byId.get(String(e.attributes["id"]))!.data as { bytes: Uint8Array }).bytes).toString(), Buffer.from((e.data as { bytes: Uint8Array }).bytes).toString());
    report(t, {
      scenario: "subscription disk queue across SIGKILL: HTTP → stream → webhook answering 503, then 204",
      sent: N,
      delivered: seen.size,
      duplicates,
      deadLettered: 0,
      lost,
      note: `${atKill.queued} queued and ${atKill.in_flight} in flight at the kill; redelivered after the restart`,
    });
    assert.equal(lost, 0);
    assert.ok(duplicates <= WINDOW, `${duplicates} duplicates`);
    await waitFor(async () => (await sub()).queued === 0, 10_000, "queue empty");
  });
});
