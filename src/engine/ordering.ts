/**
 * Per-key ordering on the `partitionkey` extension: events with the same key are delivered one after
 * the other in the order the source offered them; different keys (and events without a key) proceed
 * in parallel. When an event of a key is released for redelivery, the events queued behind it are
 * released too, without being written, so no later event of that key overtakes it.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import { BridgeError } from "../core/errors.js";
import type { Outcome } from "../core/outcome.js";

interface KeyState {
  tail: Promise<void>;
  queued: number;
  held: boolean;
}

export class KeyedSequencer {
  private readonly keys = new Map<string, KeyState>();

  /** Keys with events queued or running (for tests and /status). */
  get activeKeys(): number {
    return this.keys.size;
  }

  run(event: CloudEvent, deliver: () => Promise<Outcome>): Promise<Outcome> {
    const key = event.attributes["partitionkey"];
    if (key === undefined || key === "") return deliver();
    const k = String(key);
    let state = this.keys.get(k);
    if (!state) {
      state = { tail: Promise.resolve(), queued: 0, held: false };
      this.keys.set(k, state);
    }
    const s = state;
    s.queued++;
    const result = s.tail.then(async (): Promise<Outcome> => {
      if (s.held) {
        return { status: "errored", error: new BridgeError("CEB_RETRIES_EXHAUSTED", `an earlier event with partitionkey "${k}" awaits redelivery`, true), release: "retries_spent" };
      }
      const outcome = await deliver();
      if (outcome.status === "errored") s.held = true;
      return outcome;
    });
    s.tail = result.then(() => {
      if (--s.queued === 0) this.keys.delete(k);
    });
    return result;
  }
}
