/**
 * Hosts the Event Grid emulator (test/emulators/eventgrid/) in its own process for scenario 11, so its
 * CPU is neither the orchestrator's nor the daemon's. Commands arrive over IPC with an `id`; each is
 * answered `{ id, ok, value | error }`:
 *
 * - `push`: a CloudEvents topic with a push subscription to `url` (OPTIONS handshake), then `count`
 *   bench events (`<tag>-<seq>`) published; answers once Event Grid confirmed every delivery;
 * - `preload`: a namespace topic + subscription loaded with `count` bench events;
 * - `drained`: waits until a namespace subscription has nothing outstanding.
 */
import { startEventGridEmulator, type EventGridEmulator } from "../../test/emulators/eventgrid/index.js";
import { structuredJson } from "../lib/events.js";

export const BENCH_KEY = Buffer.from("cebridge-bench-eventgrid-key").toString("base64");

type Command =
  | { id: number; cmd: "push"; tag: string; count: number; url: string; batch: number; concurrency: number }
  | { id: number; cmd: "preload"; topic: string; subscription: string; tag: string; count: number }
  | { id: number; cmd: "drained"; topic: string; subscription: string; timeoutMs: number };

function events(tag: string, count: number): Record<string, unknown>[] {
  const ts = performance.now();
  return Array.from({ length: count }, (_, i) => JSON.parse(structuredJson(tag, i, ts)) as Record<string, unknown>);
}

async function handle(emu: EventGridEmulator, c: Command): Promise<unknown> {
  switch (c.cmd) {
    case "push": {
      const topic = emu.topic(`push-${c.tag}`, { schema: "cloudevents", keys: [BENCH_KEY] });
      const sub = await topic.subscribe({ url: c.url, deliverySchema: "cloudevents", maxEventsPerBatch: c.batch, concurrency: c.concurrency });
      const started = performance.now();
      topic.accept(events(c.tag, c.count));
      while (sub.delivered.length < c.count && performance.now() - started < 120_000) await new Promise((r) => setTimeout(r, 20));
      const failed = sub.attempts.filter((a) => a.status !== 204 && a.status !== 200).length;
      sub.close();
      return { delivered: sub.delivered.length, failedAttempts: failed, ms: performance.now() - started };
    }
    case "preload": {
      const t = emu.namespaceTopic(c.topic);
      t.subscription(c.subscription, { lockDurationMs: 60_000 });
      const list = events(c.tag, c.count);
      for (let i = 0; i < list.length; i += 100) t.publish(list.slice(i, i + 100));
      return { published: c.count };
    }
    case "drained": {
      const s = emu.namespaceTopics.get(c.topic)?.subscriptions.get(c.subscription);
      const started = performance.now();
      while (s && s.outstanding > 0 && performance.now() - started < c.timeoutMs) await new Promise((r) => setTimeout(r, 20));
      return { outstanding: s?.outstanding ?? -1, acknowledged: s?.acknowledged.length ?? 0 };
    }
  }
}

async function main(): Promise<void> {
  const emu = await startEventGridEmulator();
  emu.namespaceAuth({ keys: [BENCH_KEY] });
  process.on("message", (c: Command) => {
    handle(emu, c).then(
      (value) => process.send?.({ id: c.id, ok: true, value }),
      (err: unknown) => process.send?.({ id: c.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  process.send?.({ id: 0, ok: true, value: { url: emu.url } });
  process.once("SIGTERM", () => void emu.close().then(() => process.exit(0)));
}

main().catch((err: unknown) => {
  process.send?.({ id: 0, ok: false, error: err instanceof Error ? err.message : String(err) });
  process.exit(1);
});
