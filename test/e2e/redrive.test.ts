/**
 * `cebridge redrive` end to end, as an operator runs it against a daemon that keeps running:
 * dead letters written by the daemon go back through their route to the sink they name, with the
 * error extensions removed and the route's transform applied; those refused again land back in the
 * dead-letter file with both reasons; a second run sends nothing twice (the journal); the progress
 * bar shows under a pseudo-terminal (util-linux `script`), plain lines elsewhere; Ctrl-C stops
 * cleanly and says how far it got; and a dead-letter stream (a JetStream source) redrives the same way.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { toJsonObject } from "../../src/cloudevents/json-format.js";
import { SinkError } from "../../src/core/errors.js";
import { deadLetterEvent } from "../../src/engine/dead-letter.js";
import { startNats } from "../support/brokers.js";
import { createStream, natsClient, readJsonl, Tally, waitConsumerDrained } from "../support/counting.js";
import { MAIN, spawnDaemon, startDaemon, writeConfig } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Request {
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** An HTTP receiver that keeps every request and answers `status(id)`. */
async function recorder(status: (id: string) => number, delayMs = 0): Promise<{ url: string; got: Request[]; tally: Tally; setStatus(f: (id: string) => number): void; close(): Promise<void> }> {
  let answer = status;
  const got: Request[] = [];
  const tally = new Tally();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      if (delayMs) await sleep(delayMs);
      const id = String(req.headers["ce-id"]);
      const code = answer(id);
      if (code < 300) {
        got.push({ headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
        tally.add(id);
      }
      res.writeHead(code, { "content-type": "text/plain" }).end(code >= 400 ? `tenant ${id} refused (${code})` : "");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}/in`,
    got,
    tally,
    setStatus: (f) => (answer = f),
    close: () => new Promise((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

async function post(port: number, id: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/`, {
    method: "POST",
    headers: { "ce-specversion": "1.0", "ce-id": id, "ce-source": "/orders", "ce-type": "order.created", "ce-tenant": "acme", "content-type": "application/json" },
    body: JSON.stringify({ id }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function redrive(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const d = spawnDaemon(["redrive", ...args]);
  const code = await d.exited;
  return { code, out: d.stdout.join("\n"), err: d.stderr() };
}

/** Runs the CLI under a pseudo-terminal (util-linux `script`) and returns everything it printed. */
function underPty(args: string[]): Promise<{ code: number | null; text: string }> {
  const cmd = [process.execPath, MAIN, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
  return new Promise((resolve) => {
    const child = spawn("script", ["-q", "-e", "-c", cmd, "/dev/null"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, COLUMNS: "120", LINES: "40" } });
    let text = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => (text += c));
    child.stderr.setEncoding("utf8").on("data", (c: string) => (text += c));
    child.once("exit", (code) => resolve({ code, text }));
  });
}

const ERROR_EXTENSIONS = ["cebridgeerror", "cebridgereason", "cebridgeroute", "cebridgesink", "cebridgeattempts", "cebridgepreviousreason", "cebridgepreviouserror", "cebridgeredrives"];

describe("redrive", { timeout: 150_000 }, () => {
  test("redrive - dead letters go back through their route to the sink they name; refused again, they return with both reasons; a second run sends nothing twice", async () => {
    const rx = await recorder((id) => (id.startsWith("bad-") ? 400 : 200));
    cleanups.push(() => rx.close());
    const dir = mkdtempSync(join(tmpdir(), "cebridge-redrive-"));
    const dl = join(dir, "dead.jsonl");
    const port = await freePort();
    const admin = `127.0.0.1:${await freePort()}`;
    const yaml = `
engine: { instance_id: rd, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  out: { type: http, url: "${rx.url}" }
  dlq: { type: file, path: "${dl}" }
routes:
  - { name: orders, from: in, to: [out], dead_letter: dlq, transform: { set: { subject: "tenant-{tenant}" } }, retry: { initial: 10ms, max: 50ms, max_elapsed: 1s } }
`;
    const daemon = startDaemon(yaml, { dir });
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin);
    const bad = Array.from({ length: 30 }, (_, i) => `bad-${i}`);
    for (const id of [...bad, "good-0", "good-1"]) assert.equal(await post(port, id), 204);
    const first = readJsonl(dl);
    assert.equal(first.length, 30);
    assert.equal(first[0]!["cebridgeerror"], "CEB_SINK_PERMANENT");
    assert.equal(first[0]!["cebridgesink"], "out");

    // The receiver is fixed for all but five, which it now refuses for another reason.
    const stillBad = new Set(bad.slice(0, 5));
    rx.setStatus((id) => (stillBad.has(id) ? 422 : 200));
    const tty = await underPty(["redrive", "--from", dl, "-c", daemon.configFile]);
    assert.equal(tty.code, 3, tty.text);
    assert.match(tty.text, /\r\x1b\[2Kredrive \[#+-*\] \d+\/30 +\d+%/, "a bar redrawn in place");
    assert.match(tty.text, /redrive \[#{20,}\] 30\/30 100%/, "the bar reaches the end");
    assert.match(tty.text, /redrive done: 30 dead letter\(s\) read from .*dead\.jsonl/);
    assert.match(tty.text, /^ +25 +delivered\r?$/m);
    assert.match(tty.text, /^ +5 +failed again and were dead-lettered with the new reason\r?$/m);
    assert.match(tty.text, /dead\.jsonl:1: event bad-0 failed again and was dead-lettered to "dlq": sink "out": CEB_SINK_PERMANENT 127\.0\.0\.1:\d+ answered 422: tenant bad-0 refused/);

    // Delivered exactly as the route would have sent them: error extensions gone, transform and loop markers applied.
    assert.equal(rx.tally.distinct, 2 + 25);
    const redriven = rx.got.find((r) => r.headers["ce-id"] === "bad-7")!;
    assert.equal(redriven.headers["ce-subject"], "tenant-acme");
    assert.equal(redriven.headers["ce-tenant"], "acme");
    assert.equal(redriven.headers["ce-cebridgevia"], "rd");
    assert.equal(redriven.headers["ce-cebridgehops"], "1");
    for (const name of ERROR_EXTENSIONS) assert.equal(redriven.headers[`ce-${name}`], undefined, name);
    assert.deepEqual(JSON.parse(redriven.body), { id: "bad-7" });

    // The five refused again are back in the dead-letter file with both reasons.
    const lines = readJsonl(dl);
    assert.equal(lines.length, 35);
    const again = lines.slice(30);
    assert.deepEqual(again.map((l) => l["id"]).sort(), [...stillBad].sort());
    for (const l of again) {
      assert.match(String(l["cebridgereason"]), /answered 422: tenant bad-\d refused \(422\)/);
      assert.match(String(l["cebridgepreviousreason"]), /answered 400: tenant bad-\d refused \(400\)/);
      assert.equal(l["cebridgepreviouserror"], "CEB_SINK_PERMANENT");
      assert.equal(l["cebridgeredrives"], 1);
      assert.equal(l["cebridgesink"], "out");
      assert.equal(l["subject"], undefined, "a dead letter holds the event as the route received it");
    }
    assert.equal(readFileSync(`${dl}.redrive`, "utf8").trim().split("\n").length, 30);

    // A dry run with a filter shows the five and sends nothing.
    const dry = await redrive(["--from", dl, "-c", daemon.configFile, "--dry-run", "--filter", "cebridgeredrives = 1 AND cebridgeerror = 'CEB_SINK_PERMANENT'"]);
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /^ +5 +would be sent$/m);
    assert.equal((dry.err.match(/would send event bad-\d to out \(route "orders"\)/g) ?? []).length, 5);
    assert.doesNotMatch(dry.err, /\r|\x1b/, "no bar when stderr is not a terminal");
    assert.equal(rx.tally.distinct, 27);

    // Fixed for good: the second run sends only the five, once.
    rx.setStatus(() => 200);
    const second = await redrive(["--from", dl, "-c", daemon.configFile]);
    assert.equal(second.code, 0, second.err + second.out);
    assert.match(second.out, /^ +30 +already handled by an earlier redrive \(skipped\)$/m);
    assert.match(second.out, /^ +5 +delivered$/m);
    assert.match(second.out, /every dead letter in .*dead\.jsonl is handled/);
    assert.match(second.err, /^redrive: 5\/5 processed \(5 delivered, 0 dead-lettered again, 0 left, 0 skipped\)$/m);
    const third = await redrive(["--from", dl, "-c", daemon.configFile]);
    assert.equal(third.code, 0);
    assert.match(third.out, /^ +35 +already handled/m);
    // Every event reached the receiver exactly once.
    assert.equal(rx.tally.distinct, 32);
    assert.equal(rx.tally.duplicates, 0);
    assert.deepEqual(rx.tally.missing([...bad, "good-0", "good-1"]), []);
    assert.equal(await daemon.stop(), 0);
  });

  test("redrive - Ctrl-C stops cleanly, says how far it got, and the next run finishes without duplicates", async () => {
    const rx = await recorder(() => 200, 100);
    cleanups.push(() => rx.close());
    const dir = mkdtempSync(join(tmpdir(), "cebridge-redrive-int-"));
    const dl = join(dir, "dead.jsonl");
    const N = 120;
    for (let i = 0; i < N; i++) {
      const ev = deadLetterEvent({ attributes: { specversion: "1.0", id: `int-${i}`, source: "/s", type: "t" } }, new SinkError("HTTP 503", true), { route: "r", sink: "out", attempts: 3 });
      appendFileSync(dl, JSON.stringify(toJsonObject(ev)) + "\n");
    }
    const cfg = writeConfig(
      `
engine: { instance_id: ri, admin: { listen: off }, log: { level: error } }
sources: { in: { type: http, listen: "127.0.0.1:1" } }
sinks: { out: { type: http, url: "${rx.url}" }, dlq: { type: file, path: "${dl}" } }
routes: [ { name: r, from: in, to: [out], dead_letter: dlq } ]
`,
      dir,
    );
    const d = spawnDaemon(["redrive", "--from", dl, "-c", cfg, "--parallel", "4"]);
    await waitFor(() => rx.tally.distinct >= 8, 20_000, "some delivered");
    d.proc.kill("SIGINT");
    assert.equal(await d.exited, 130, d.stderr());
    const out = d.stdout.join("\n");
    assert.match(out, /^redrive interrupted: \d+ dead letter\(s\) read/m);
    const m = /stopped after (\d+) of 120; (\d+) not sent yet — run the same command again to continue/.exec(out);
    assert.ok(m, out);
    assert.ok(Number(m[1]) < N && Number(m[1]) + Number(m[2]) === N, out);
    assert.match(d.stderr(), /stopping: no new dead letters; waiting for those in flight/);
    const sentBefore = rx.tally.distinct;
    assert.equal(Number(m[1]), sentBefore, "what it says it processed is what arrived");

    const rest = await redrive(["--from", dl, "-c", cfg, "--parallel", "16"]);
    assert.equal(rest.code, 0, rest.err);
    assert.match(rest.out, new RegExp(`^ +${sentBefore} +already handled`, "m"));
    assert.equal(rx.tally.distinct, N);
    assert.equal(rx.tally.duplicates, 0);
  });

  test("redrive - from a dead-letter stream (a JetStream source in the config) to the sink each dead letter names", async () => {
    const nats = await startNats();
    cleanups.push(() => nats.close());
    const nc = await natsClient(nats.url);
    cleanups.push(() => nc.close());
    await createStream(nc, "DLQ", ["dlq.>"]);
    const rx = await recorder((id) => (id.startsWith("s-") ? 400 : 200));
    cleanups.push(() => rx.close());
    const port = await freePort();
    const admin = `127.0.0.1:${await freePort()}`;
    const dir = mkdtempSync(join(tmpdir(), "cebridge-redrive-js-"));
    const yaml = `
engine: { instance_id: rj, admin: { listen: "${admin}" }, shutdown_timeout: 5s, log: { level: error } }
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
  dead: { type: nats_jetstream, servers: ["${nats.url}"], stream: DLQ, consumer: redrive, create: true }
sinks:
  out: { type: http, url: "${rx.url}" }
  dlq: { type: nats_jetstream, servers: ["${nats.url}"], subject: "dlq.{type}", mode: structured }
routes:
  - { name: orders, from: in, to: [out], dead_letter: dlq }
`;
    const daemon = startDaemon(yaml, { dir });
    cleanups.push(() => daemon.stop("SIGKILL"));
    await daemon.waitReady(admin);
    const sent = Array.from({ length: 20 }, (_, i) => `s-${i}`);
    for (const id of sent) assert.equal(await post(port, id), 204);

    rx.setStatus(() => 200);
    const r = await redrive(["--from", "dead", "-c", daemon.configFile, "--idle", "1s"]);
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /redrive done: 20 dead letter\(s\) read from dead/);
    assert.match(r.out, /^ +20 +delivered$/m);
    assert.deepEqual(rx.tally.missing(sent), []);
    assert.equal(rx.tally.duplicates, 0);
    const one = rx.got.find((g) => g.headers["ce-id"] === "s-3")!;
    for (const name of ERROR_EXTENSIONS) assert.equal(one.headers[`ce-${name}`], undefined, name);
    await waitConsumerDrained(nc, "DLQ", "redrive", 10_000);
    assert.equal(await daemon.stop(), 0);
  });
});

