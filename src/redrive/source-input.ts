/**
 * Redrive from a source defined in the config (a JetStream stream, an MQTT topic, ... that a
 * route's dead-letter sink publishes to). The source runs with its usual settlement: a message is
 * acknowledged once each of its dead letters was delivered or dead-lettered again, and released
 * (redelivered later) when any was left, not matching `--filter`, skipped or unreadable, so nothing
 * is lost and the broker is the record of what remains.
 *
 * A source has no end, so the run ends once no new dead letter arrived for `idleMs` and nothing is
 * in flight. A dead letter seen once already in this run (same source, id and sink: a message
 * released above, or the new dead letter of a failed redrive when the dead-letter sink feeds this
 * same source) is released again untouched and does not count as activity: it waits for the next run.
 */
import type { CloudEvent } from "../cloudevents/event.js";
import type { ConnectorContext } from "../core/connector.js";
import { BridgeError } from "../core/errors.js";
import type { Outcome } from "../core/outcome.js";
import type { Inbox, Received, Reservation, Source } from "../core/source.js";
import { Window } from "../engine/window.js";
import type { Session } from "./session.js";

export async function redriveSource(sourceId: string, idleMs: number, session: Session): Promise<void> {
  const { config, registry, log, counts, progress, parallel } = session.opts;
  const comp = config.sources[sourceId]!;
  const window = new Window(parallel);
  const seen = new Set<string>();
  let inFlight = 0;
  let lastFresh = Date.now();
  let accepting = true;

  const handle = async (msg: Received, n: number): Promise<void> => {
    inFlight += n;
    let outcome: Outcome = { status: "delivered" };
    const leave = (why: string) => {
      if (outcome.status === "delivered") {
        outcome = { status: "errored", error: new BridgeError("CEB_SHUTTING_DOWN", why, true), release: session.stopping ? "shutdown" : "retries_spent" };
      }
    };
    try {
      if (msg.invalid) {
        counts.read += n;
        counts.unreadable += n;
        progress.message(`source "${sourceId}": a message that is not a CloudEvent (${msg.invalid.message}); released`);
        leave("unreadable");
        return;
      }
      const results = await Promise.all(
        msg.events.map(async (dl: CloudEvent) => {
          const key = `${String(dl.attributes["source"])}\u0000${String(dl.attributes["id"])}\u0000${String(dl.attributes["cebridgesink"] ?? "")}`;
          if (seen.has(key)) return false;
          seen.add(key);
          lastFresh = Date.now();
          counts.read++;
          const v = await session.process(dl, `source "${sourceId}"`);
          return v.handled;
        }),
      );
      if (results.some((handled) => !handled)) leave("left for a later redrive");
    } catch (err) {
      log.error({ err }, "redrive: unexpected error");
      leave("internal error");
    } finally {
      window.release(n);
      inFlight -= n;
      try {
        msg.settle(outcome);
      } catch (err) {
        log.warn({ err }, "source settle threw");
      }
    }
  };

  const admit = (msg: Received): void => void handle(msg, msg.events.length);
  const inbox: Inbox = {
    capacity: parallel,
    get free() {
      return window.free;
    },
    get accepting() {
      return accepting && !session.stopping;
    },
    offer(msg) {
      if (!inbox.accepting || !window.tryAcquire(msg.events.length)) return false;
      admit(msg);
      return true;
    },
    async reserve(min, max, signal) {
      const granted = await window.reserve(min, max, signal);
      let held = granted;
      const r: Reservation = {
        get slots() {
          return held;
        },
        offer(msg) {
          const n = msg.events.length;
          if (n > held) throw new RangeError(`a message of ${n} events does not fit a reservation of ${held} slots`);
          if (!inbox.accepting) return false;
          held -= n;
          window.useHeld(n);
          admit(msg);
          return true;
        },
        release() {
          if (held === 0) return;
          window.unhold(held);
          held = 0;
        },
      };
      return r;
    },
  };

  const ctx: ConnectorContext = {
    id: sourceId,
    instanceId: config.engine.instance_id,
    log: log.child({ component: `source:${sourceId}` }),
    setUp() {},
    countDropped() {},
  };
  const source: Source = (await registry.source(comp.type)!.load())(comp.options as never, ctx);
  const stopped = new Promise<void>((resolve) => session.stop.signal.addEventListener("abort", () => resolve(), { once: true }));
  try {
    await Promise.race([source.start(inbox), stopped]);
    lastFresh = Date.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        progress.update();
        if (session.stopping || (inFlight === 0 && Date.now() - lastFresh >= idleMs)) {
          clearInterval(timer);
          resolve();
        }
      }, 100);
    });
  } finally {
    accepting = false;
    await source.stop().catch(() => undefined);
    while (inFlight > 0) await new Promise((r) => setTimeout(r, 20));
    const deadline = AbortSignal.timeout(config.engine.shutdown_timeout);
    await source.close(deadline).catch((err) => log.warn({ err }, "source close failed"));
  }
}
