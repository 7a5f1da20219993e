/** A sink for buffer tests: writes wait behind a gate the test opens, and can be told to fail. */
import { SinkError } from "../../../src/core/errors.js";
import type { Sink } from "../../../src/core/sink.js";

export interface GatedSink extends Sink {
  /** Ids in the order `write` was called (redeliveries included). */
  readonly calls: string[];
  /** Ids in the order their write succeeded. */
  readonly done: string[];
  /** Writes in progress right now, and the most at once. */
  active: number;
  maxActive: number;
  /** Lets every waiting and future write proceed. */
  letThrough(): void;
  /** Makes writes wait again. */
  holdBack(): void;
  /** While set, a write of an id for which it returns true fails (transient unless it says "permanent"). */
  fail: ((id: string, attempt: number) => false | "transient" | "permanent") | undefined;
  readonly attempts: Map<string, number>;
}

export function gatedSink(): GatedSink {
  let gate: Promise<void> | undefined;
  let release: (() => void) | undefined;
  const shut = () => {
    if (gate) return;
    gate = new Promise((resolve) => (release = resolve));
  };
  shut();
  const sink: GatedSink = {
    guarantee: "confirmed",
    calls: [],
    done: [],
    active: 0,
    maxActive: 0,
    fail: undefined,
    attempts: new Map(),
    letThrough() {
      const r = release;
      gate = undefined;
      release = undefined;
      r?.();
    },
    holdBack: shut,
    async open() {},
    async close() {},
    async write(event, signal) {
      const id = String(event.attributes["id"]);
      sink.calls.push(id);
      const n = (sink.attempts.get(id) ?? 0) + 1;
      sink.attempts.set(id, n);
      sink.active++;
      sink.maxActive = Math.max(sink.maxActive, sink.active);
      try {
        while (gate) {
          // A write honours its abort signal, as real sinks do (the route aborts at the shutdown deadline).
          await new Promise<void>((resolve, reject) => {
            if (signal.aborted) return reject(signal.reason as Error);
            signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
            void gate!.then(resolve);
          });
        }
        const f = sink.fail?.(id, n);
        if (f) throw new SinkError(`scripted ${f} failure`, f === "transient");
        sink.done.push(id);
      } finally {
        sink.active--;
      }
    },
  };
  return sink;
}
