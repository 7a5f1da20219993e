/**
 * Replays the malformed-request corpus (test/fixtures/malformed/corpus.jsonl, made by generate.mjs in
 * that folder) against the built daemon over real HTTP, then checks that the daemon is still healthy,
 * still delivers a valid event, and that nothing malformed reached the sink or the dead-letter file.
 * Connection-level abuse (a client that vanishes mid-body, an oversized header section, garbage on the
 * wire) runs against the same daemon.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import { REPO_ROOT, startDaemon, type Daemon } from "../support/daemon.js";
import { freePort } from "../support/ports.js";
import { sleep, waitFor } from "../support/wait.js";

interface Entry {
  readonly name: string;
  readonly headers: Record<string, string | string[]>;
  readonly body?: string;
  readonly body_base64?: string;
  readonly pad_to?: number;
  readonly chunked?: boolean;
  readonly expect_status: number;
  readonly expect_error?: string;
  readonly expect_message: string;
}

interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

const CORPUS = join(REPO_ROOT, "test", "fixtures", "malformed", "corpus.jsonl");
const entries: Entry[] = readFileSync(CORPUS, "utf8")
  .split("\n")
  .filter((l) => l.trim() !== "")
  .map((l) => JSON.parse(l) as Entry);

function bodyOf(e: Entry): Buffer {
  if (e.body_base64 !== undefined) return Buffer.from(e.body_base64, "base64");
  const text = e.body ?? "";
  if (e.pad_to === undefined) return Buffer.from(text, "utf8");
  const without = Buffer.byteLength(text.replace("<PAD>", ""), "utf8");
  return Buffer.from(text.replace("<PAD>", "x".repeat(e.pad_to - without)), "utf8");
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/**
 * POSTs with node:http (repeated header lines for array values). Resolves with the first complete
 * response; a write error after the server answered (it may close a 413 connection early) is ignored.
 */
function send(port: number, headers: Record<string, string | string[]>, body: Buffer, chunked = false, path = "/"): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = request({ host: "127.0.0.1", port, method: "POST", path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        answered = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") });
      });
      res.on("error", (err) => {
        if (!answered) reject(err);
      });
    });
    req.on("error", (err) => {
      if (!answered) reject(err);
    });
    req.setTimeout(10_000, () => req.destroy(new Error("request timed out")));
    try {
      for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
    } catch (err) {
      req.destroy(); // frees the agent's socket slot
      reject(err);
      return;
    }
    if (chunked) {
      // No Content-Length: node uses chunked transfer coding.
      const half = body.length >> 1;
      req.write(body.subarray(0, half));
      req.end(body.subarray(half));
    } else {
      req.setHeader("content-length", String(body.length));
      req.end(body);
    }
  });
}

/** Sends `e` and returns what was wrong with the answer, or undefined when it matched. */
async function check(port: number, e: Entry): Promise<string | undefined> {
  let reply: Reply;
  try {
    reply = await send(port, e.headers, bodyOf(e), e.chunked === true);
  } catch (err) {
    // One retry: a keep-alive socket the server closed after a 413 can be reused by the agent just once.
    try {
      reply = await send(port, e.headers, bodyOf(e), e.chunked === true);
    } catch {
      return `request failed: ${(err as Error).message}`;
    }
  }
  const problems: string[] = [];
  if (reply.status !== e.expect_status) problems.push(`status ${reply.status}, expected ${e.expect_status}`);
  let parsed: { error?: unknown; message?: unknown } | undefined;
  try {
    parsed = JSON.parse(reply.text) as typeof parsed;
  } catch {
    problems.push(`body is not JSON: ${JSON.stringify(reply.text.slice(0, 200))}`);
  }
  if (parsed !== undefined) {
    if (!String(reply.headers["content-type"] ?? "").startsWith("application/json")) problems.push(`content-type ${reply.headers["content-type"]}`);
    if (typeof parsed.error !== "string" || !/^CEB_[A-Z_]+$/.test(parsed.error)) problems.push(`error ${JSON.stringify(parsed.error)}`);
    else if (e.expect_error !== undefined && parsed.error !== e.expect_error) problems.push(`error ${parsed.error}, expected ${e.expect_error}`);
    if (typeof parsed.message !== "string" || !new RegExp(e.expect_message).test(parsed.message)) {
      problems.push(`message ${JSON.stringify(parsed.message)} does not match /${e.expect_message}/`);
    }
  }
  return problems.length === 0 ? undefined : `${e.name}: ${problems.join("; ")}`;
}

/** Runs `fn` over `items`, `width` at a time, keeping results in order. */
async function pool<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

function lines(file: string): Record<string, unknown>[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Writes raw bytes on a fresh connection; resolves with whatever came back before the socket closed. */
function raw(port: number, bytes: string | Buffer, opts: { destroyAfterWrite?: boolean; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: "127.0.0.1", port });
    let got = "";
    sock.setEncoding("utf8");
    sock.on("data", (c: string) => (got += c));
    sock.on("error", (err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" || err.code === "EPIPE" ? resolve(got) : reject(err)));
    sock.on("close", () => resolve(got));
    sock.setTimeout(opts.timeoutMs ?? 5_000, () => sock.destroy());
    sock.once("connect", () => {
      sock.write(bytes, () => {
        if (opts.destroyAfterWrite) setTimeout(() => sock.destroy(), 50);
      });
    });
  });
}

const VALID_BINARY = (id: string) => ({
  "ce-specversion": "1.0",
  "ce-id": id,
  "ce-source": "https://example.com/fuzz",
  "ce-type": "com.example.fuzz",
  "ce-subject": "Euro%20%E2%82%AC",
  "content-type": "application/json",
});

describe("malformed corpus - replayed against the running daemon", () => {
  let daemon: Daemon;
  let http: number;
  let admin: number;
  let dir: string;
  let sinkFile: string;
  let deadFile: string;

  before(async () => {
    http = await freePort();
    admin = await freePort();
    dir = mkdtempSync(join(tmpdir(), "cebridge-fuzz-"));
    sinkFile = join(dir, "sink.jsonl");
    deadFile = join(dir, "dead.jsonl");
    daemon = startDaemon(
      `
engine: { admin: { listen: "127.0.0.1:${admin}" }, log: { level: error }, shutdown_timeout: 2s }
sources:
  in: { type: http, listen: "127.0.0.1:${http}", path: /, max_body: 64KiB }
sinks:
  out: { type: file, path: ${JSON.stringify(sinkFile)} }
  dlq: { type: file, path: ${JSON.stringify(deadFile)} }
routes:
  - { name: fuzz, from: in, to: [out], dead_letter: dlq, max_in_flight: 16 }
`,
      { dir },
    );
    await daemon.waitReady(`127.0.0.1:${admin}`);
  });

  after(async () => {
    agent.destroy();
    const code = await daemon.stop();
    assert.equal(code, 0, `daemon exit code ${code}; stderr:\n${daemon.stderr().slice(-2000)}`);
  });

  test("malformed corpus - has at least 200 entries with unique names", () => {
    assert.ok(entries.length >= 200, `only ${entries.length} entries`);
    assert.equal(new Set(entries.map((e) => e.name)).size, entries.length);
  });

  const categories = [...new Set(entries.map((e) => e.name.split(":")[0]!))];
  for (const category of categories) {
    const batch = entries.filter((e) => e.name.split(":")[0] === category);
    test(`malformed corpus - ${category} (${batch.length} requests) get their status and a CEB_ error body`, async () => {
      const problems = (await pool(batch, 4, (e) => check(http, e))).filter((p): p is string => p !== undefined);
      assert.deepEqual(problems, [], `${problems.length} of ${batch.length} entries answered wrongly:\n${problems.join("\n")}`);
    });
  }

  test("malformed corpus - a client that disconnects mid-body gets nothing offered and the daemon stays up", async () => {
    const headers = Object.entries(VALID_BINARY("abuse-half-binary"))
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    await raw(http, `POST / HTTP/1.1\r\nhost: x\r\n${headers}content-length: 1000\r\n\r\n{"half":"`, { destroyAfterWrite: true });
    const structured = JSON.stringify({ specversion: "1.0", id: "abuse-half-structured", source: "/x", type: "t", data: "y".repeat(400) });
    await raw(
      http,
      `POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/cloudevents+json\r\ncontent-length: ${structured.length + 100}\r\n\r\n${structured}`,
      { destroyAfterWrite: true },
    );
    // Chunked: first chunk sent, terminating chunk never comes.
    await raw(http, `POST / HTTP/1.1\r\nhost: x\r\n${headers.replace("abuse-half-binary", "abuse-half-chunked")}transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n`, {
      destroyAfterWrite: true,
    });
    await sleep(200);
    const health = await fetch(`http://127.0.0.1:${admin}/healthz`);
    assert.equal(health.status, 200);
    const ok = await send(http, VALID_BINARY("after-half-body"), Buffer.from('{"n":1}'));
    assert.equal(ok.status, 204, ok.text);
    await waitFor(() => lines(sinkFile).some((l) => l["id"] === "after-half-body"), 5_000, "valid event in the sink");
    const ids = lines(sinkFile).map((l) => String(l["id"]));
    assert.ok(!ids.some((id) => id.startsWith("abuse-half")), `a half-received request was offered: ${ids.join(", ")}`);
  });

  test("malformed corpus - an oversized header section gets 431 and the daemon stays up", async () => {
    const reply = await raw(http, `POST / HTTP/1.1\r\nhost: x\r\nx-big: ${"a".repeat(20_000)}\r\ncontent-length: 0\r\n\r\n`);
    assert.match(reply, /^HTTP\/1\.1 431 /);
    const many = Array.from({ length: 2000 }, (_, i) => `ce-x${i}: v\r\n`).join("");
    const reply2 = await raw(http, `POST / HTTP/1.1\r\nhost: x\r\n${many}content-length: 0\r\n\r\n`);
    assert.match(reply2, /^HTTP\/1\.1 431 /);
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
    const ok = await send(http, VALID_BINARY("after-431"), Buffer.from('{"n":2}'));
    assert.equal(ok.status, 204, ok.text);
  });

  test("malformed corpus - garbage on the wire gets a 400 from the HTTP parser and the daemon stays up", async () => {
    for (const junk of [
      "GARBAGE\r\n\r\n",
      "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: abc\r\n\r\n",
      "POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello",
      "POST / HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nhost: x\r\nce-id\r\n\r\n",
      "\x00\x01\x02\x03\r\n\r\n",
    ]) {
      const reply = await raw(http, junk);
      assert.match(reply, /^HTTP\/1\.1 400 /, JSON.stringify(junk));
    }
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
  });

  test("malformed corpus - afterwards the daemon is healthy, valid events still arrive, nothing malformed leaked", async () => {
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
    const binary = await send(http, VALID_BINARY("final-binary"), Buffer.from('{"ok":true}'));
    assert.equal(binary.status, 204, binary.text);
    const structured = await send(
      http,
      { "content-type": "application/cloudevents+json" },
      Buffer.from(JSON.stringify({ specversion: "1.0", id: "final-structured", source: "/x", type: "t", myint: 7, data: { a: [1] } })),
    );
    assert.equal(structured.status, 204, structured.text);
    const batch = await send(
      http,
      { "content-type": "application/cloudevents-batch+json" },
      Buffer.from(JSON.stringify([1, 2].map((i) => ({ specversion: "1.0", id: `final-batch-${i}`, source: "/x", type: "t" })))),
    );
    assert.equal(batch.status, 204, batch.text);
    const want = ["final-binary", "final-structured", "final-batch-1", "final-batch-2"];
    await waitFor(() => {
      const ids = new Set(lines(sinkFile).map((l) => l["id"]));
      return want.every((id) => ids.has(id));
    }, 5_000, "final events in the sink");

    const sink = lines(sinkFile);
    const leaked = sink.filter((l) => String(l["id"]).startsWith("bad-") || String(l["id"]).startsWith("abuse-"));
    assert.deepEqual(leaked, [], "malformed requests reached the sink");
    assert.deepEqual(
      sink.map((l) => l["id"]).sort(),
      ["after-431", "after-half-body", ...want].sort(),
      "the sink holds exactly the valid events",
    );
    const fin = sink.find((l) => l["id"] === "final-binary")!;
    assert.equal(fin["subject"], "Euro €");
    assert.deepEqual(lines(deadFile), [], "nothing was dead-lettered");
    assert.equal(daemon.proc.exitCode, null, "daemon still running");
    assert.doesNotMatch(daemon.stderr(), /CEB_INTERNAL|request handler failed/);
  });

  // After the final check: the 500 it provokes is logged as "request handler failed".
  test("malformed corpus - request targets that are not the configured path get 404, never a 500", async () => {
    // Sent with no CloudEvent at all: on the right endpoint that is a 415, anywhere else a 404.
    const problems: string[] = [];
    for (const target of ["//", "http://", "//evil/", "//x/y", "/other", "/%2F", "*"]) {
      const reply = await raw(http, `POST ${target} HTTP/1.1\r\nhost: x\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi`);
      const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(reply)?.[1]);
      const body = reply.slice(reply.indexOf("\r\n\r\n") + 4);
      if (status !== 404 || !body.includes('"error":"CEB_NOT_FOUND"')) problems.push(`POST ${target}: ${reply.split("\r\n")[0]} ${JSON.stringify(body.slice(0, 120))}`);
    }
    assert.deepEqual(problems, [], problems.join("\n"));
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
  });

  // Runs last: random requests may carry valid events, which then reach the sink.
  test("malformed corpus - random requests over HTTP get 204/400/413/415 with a CEB_ body, never a 5xx or a hang", async () => {
    const token = fc.stringMatching(/^[a-z0-9!#$&'*+.^_`|~-]{1,12}$/);
    const headerValue = fc.oneof(
      // What node's client can send: HTAB, SP, VCHAR and obs-text (no DEL).
      fc.string({ unit: fc.oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff })).map((u) => String.fromCharCode(u)), maxLength: 30 }),
      fc.constantFrom("1.0", "0.3", "/s", "t", "", "%C0%A0", "%E2%82%AC", "2024-01-01T00:00:00Z", "application/json", "text/plain", '"q"'),
    ).map((v) => v.trim());
    const name = fc.oneof(
      fc.constantFrom("ce-specversion", "ce-id", "ce-source", "ce-type", "ce-time", "ce-subject", "ce-dataschema", "content-type"),
      token.map((t) => "ce-" + t),
      token,
    );
    const contentType = fc.constantFrom(undefined, "application/cloudevents+json", "application/cloudevents-batch+json", "application/json", "text/plain", "application/cloudevents+avro");
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.json({ maxDepth: 4 }).map((j) => Buffer.from(j)),
      fc.constantFrom('{"specversion":"1.0","id":"r","source":"/s","type":"t"}', '[{"specversion":"1.0","id":"r","source":"/s","type":"t"}]', "", "[]").map((s) => Buffer.from(s)),
    );
    const path = fc.constantFrom("/", "/?x=1", "/?access_token=t", "/#f");
    const seed = Date.now() | 0;
    const requests = fc.sample(fc.record({ headers: fc.dictionary(name, headerValue, { maxKeys: 6 }), ct: contentType, body, path }), { numRuns: 300, seed });
    const problems: string[] = [];
    await pool(requests, 4, async (r) => {
      const headers: Record<string, string> = { ...r.headers };
      if (r.ct !== undefined) headers["content-type"] = r.ct;
      let reply: Reply;
      try {
        reply = await send(http, headers, r.body, false, r.path);
      } catch (err) {
        problems.push(`${JSON.stringify(headers)}: ${(err as Error).message}`);
        return;
      }
      if (![204, 400, 413, 415].includes(reply.status)) problems.push(`${JSON.stringify(headers)} ${JSON.stringify(r.body.toString("latin1").slice(0, 80))}: status ${reply.status} ${reply.text.slice(0, 120)}`);
      else if (reply.status !== 204 && !/^\{"error":"CEB_[A-Z_]+","message":/.test(reply.text)) problems.push(`${JSON.stringify(headers)}: body ${reply.text.slice(0, 120)}`);
    });
    assert.deepEqual(problems, [], `seed ${seed}:\n${problems.join("\n")}`);
    assert.equal((await fetch(`http://127.0.0.1:${admin}/healthz`)).status, 200);
    assert.equal(daemon.proc.exitCode, null);
  });
});
