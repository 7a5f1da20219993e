/**
 * Redrive's pure parts: the error extensions removed, the dead letter of a second failure keeping
 * both reasons, where a dead letter goes, and the progress display on a terminal and off it.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { checkConfigText } from "../../../src/config/load.js";
import { SinkError } from "../../../src/core/errors.js";
import { deadLetterEvent } from "../../../src/engine/dead-letter.js";
import { deadLetterInfo, redriveFailure, targetOf, withoutErrorExtensions } from "../../../src/redrive/dead-letters.js";
import { Progress, summary, zeroCounts } from "../../../src/redrive/progress.js";
import { memoryRegistry } from "../../support/memory-connectors.js";

const original: CloudEvent = { attributes: { specversion: "1.0", id: "e1", source: "/s", type: "t", cebridgevia: "up", cebridgehops: 1, tenant: "x" }, data: { kind: "json", value: { n: 1 } } };

const { config } = checkConfigText(
  `engine: { admin: { listen: off } }
sources: { a: { type: memory, queue: q } }
sinks: { s1: { type: memory, name: s1 }, s2: { type: memory, name: s2 }, dlq: { type: memory, name: dlq } }
routes: [ { name: r, from: a, to: [s1, s2], dead_letter: dlq } ]
`,
  "t.yaml",
  memoryRegistry(),
);

describe("redrive dead letters", () => {
  test("redrive dead letters - the event is restored exactly: error extensions gone, everything else kept", () => {
    const dl = deadLetterEvent(original, new SinkError("HTTP 400", false), { route: "r", sink: "s1", attempts: 1 });
    assert.equal(dl.attributes["cebridgeerror"], "CEB_SINK_PERMANENT");
    assert.deepEqual(withoutErrorExtensions(dl), original);
    assert.deepEqual(deadLetterInfo(dl), { error: "CEB_SINK_PERMANENT", reason: "HTTP 400", route: "r", sink: "s1", redrives: 0 });
  });

  test("redrive dead letters - a second failure keeps both reasons and counts the redrives", () => {
    const first = deadLetterEvent(original, new SinkError("HTTP 400: bad tenant", false), { route: "r", sink: "s1", attempts: 1 });
    const second = redriveFailure(first, new SinkError("HTTP 422: still bad", false), { route: "r", sink: "s1", attempts: 1 });
    const a = second.attributes;
    assert.equal(a["cebridgereason"], "HTTP 422: still bad");
    assert.equal(a["cebridgepreviousreason"], "HTTP 400: bad tenant");
    assert.equal(a["cebridgepreviouserror"], "CEB_SINK_PERMANENT");
    assert.equal(a["cebridgeredrives"], 1);
    assert.equal(a["cebridgesink"], "s1");
    const third = redriveFailure(second, new SinkError("HTTP 500", false), { route: "r", sink: "s1", attempts: 3 });
    assert.equal(third.attributes["cebridgepreviousreason"], "HTTP 422: still bad");
    assert.equal(third.attributes["cebridgeredrives"], 2);
    assert.deepEqual(withoutErrorExtensions(third), original);
  });

  test("redrive dead letters - targets: --to, else the named sink, else every sink of the route", () => {
    assert.ok(config);
    const named = deadLetterInfo(deadLetterEvent(original, new SinkError("x", false), { route: "r", sink: "s2", attempts: 1 }));
    const before = deadLetterInfo(deadLetterEvent(original, new SinkError("x", false), { route: "r", attempts: 1 }));
    assert.deepEqual(targetOf(named, config, undefined), { kind: "send", sinks: ["s2"], route: config.routes[0] });
    assert.deepEqual(targetOf(named, config, "s1"), { kind: "send", sinks: ["s1"], route: config.routes[0] });
    assert.deepEqual(targetOf(before, config, undefined), { kind: "send", sinks: ["s1", "s2"], route: config.routes[0] });
    const gone = deadLetterInfo(deadLetterEvent(original, new SinkError("x", false), { route: "old", attempts: 1 }));
    assert.match((targetOf(gone, config) as { reason: string }).reason, /its route "old" is not in the config; give --to SINK/);
    const noSink = deadLetterInfo(deadLetterEvent(original, new SinkError("x", false), { route: "r", sink: "gone", attempts: 1 }));
    assert.deepEqual(targetOf(noSink, config), { kind: "skip", reason: 'sink "gone" is not in the config; give --to SINK' });
  });

  test("redrive dead letters - progress: a bar redrawn in place on a terminal, plain lines elsewhere", () => {
    let now = 0;
    const out = (() => {
      const chunks: string[] = [];
      return { chunks, columns: 100, write: (s: string) => (chunks.push(s), true) } as unknown as NodeJS.WritableStream & { chunks: string[]; columns: number };
    })();
    const counts = zeroCounts();
    const tty = new Progress({ out, tty: true, total: 10, now: () => now }, counts);
    counts.delivered = 4;
    now = 1000;
    tty.update();
    tty.message("event e9 failed again");
    tty.finish();
    const text = out.chunks.join("");
    assert.match(text, /^\r\x1b\[2Kredrive \[#{16}-{24}\] 4\/10  40% 4\/s  ok 4  dead-lettered 0  left 0/);
    assert.match(text, /\r\x1b\[2Kevent e9 failed again\nredrive \[/);
    assert.ok(text.endsWith("\n"));

    const plainOut = { chunks: [] as string[], write(s: string) { this.chunks.push(s); return true; } };
    const c2 = zeroCounts();
    const plain = new Progress({ out: plainOut as unknown as NodeJS.WritableStream, tty: false, total: 3, now: () => now }, c2);
    c2.delivered = 1;
    now = 5000;
    plain.update();
    plain.update();
    c2.deadLettered = 1;
    now = 5100;
    plain.update();
    plain.finish();
    assert.deepEqual(plainOut.chunks, [
      "redrive: 1/3 processed (1 delivered, 0 dead-lettered again, 0 left, 0 skipped)\n",
      "redrive: 2/3 processed (1 delivered, 1 dead-lettered again, 0 left, 0 skipped)\n",
    ]);
    assert.doesNotMatch(plainOut.chunks.join(""), /\r|\x1b/);
    assert.equal(
      summary({ ...c2, read: 3, alreadyDone: 2 }, { dryRun: false, seconds: 1.25, interrupted: false, from: "dl.jsonl" }),
      "redrive done: 3 dead letter(s) read from dl.jsonl in 1.3 s\n        2  already handled by an earlier redrive (skipped)\n        1  delivered\n        1  failed again and were dead-lettered with the new reason",
    );
  });
});
