/**
 * The command line as a user runs it: exit codes, lint output, schema, and no secret in any output.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { REPO_ROOT, spawnDaemon, startDaemon, writeConfig } from "../support/daemon.js";
import { freePort } from "../support/ports.js";

async function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  const d = spawnDaemon(args, "", env);
  const code = await d.exited;
  return { code, out: d.stdout.join("\n"), err: d.stderr() };
}

describe("cli", () => {
  test("cli - --version prints the package version, --help the usage", async () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string };
    const v = await run(["--version"]);
    assert.equal(v.code, 0);
    assert.equal(v.out.trim(), pkg.version);
    const h = await run(["--help"]);
    assert.equal(h.code, 0);
    assert.match(h.out, /cebridge run +\[-c FILE\]/);
  });

  test("cli - usage errors exit 2 with a hint", async () => {
    for (const args of [[], ["frobnicate"], ["run", "--nope"], ["lint"]]) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
      assert.match(r.err, /^cebridge: .+\nRun "cebridge --help" for usage\.\n$/);
    }
  });

  test("cli - lint prints every problem as FILE:LINE:COL and exits 1; a good file exits 0", async () => {
    const file = writeConfig("sources: { in: { type: http, listen: nope } }\nsinks: {}\nroutes: [ { name: r, from: in, to: [x] } ]\n");
    const r = await run(["lint", "-c", file]);
    assert.equal(r.code, 1);
    const lines = r.err.trim().split("\n");
    assert.deepEqual(
      lines.filter((l) => l.includes(" error ")).map((l) => l.replace(file, "F")),
      [
        "F:1:38 error CFG_VALUE sources.in.listen: must be host:port to listen on",
        'F:3:37 error CFG_REF routes[0].to[0]: no sink named "x" (none are defined)',
      ],
    );
    const ok = await run(["lint", "-c", join(REPO_ROOT, "config", "default.yaml")]);
    assert.equal(ok.code, 0, ok.err);
    const missing = await run(["lint", "-c", "/nonexistent/cebridge.yaml"]);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /^\/nonexistent\/cebridge\.yaml:0:0 error CFG_FILE \(root\): cannot read config file \(ENOENT\)/);
  });

  test("cli - run with an invalid config exits 1 before starting anything", async () => {
    const d = startDaemon("sources: {}\nsinks: {}\nroutes: []\n");
    assert.equal(await d.exited, 1);
    assert.match(d.stderr(), /error CFG_VALUE routes: must NOT have fewer than 1 items/);
  });

  test("cli - run exits 1 when a port is taken, naming the address", async () => {
    const admin = await freePort();
    const d = startDaemon(`
engine: { admin: { listen: "127.0.0.1:${admin}" } }
sources: { a: { type: http, listen: "127.0.0.1:${admin}" } }
sinks: { out: { type: stdout } }
routes: [ { name: r, from: a, to: [out] } ]
`);
    assert.equal(await d.exited, 1);
    assert.match(d.stderr(), /cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE/);
  });

  test("cli - schema prints the committed JSON Schema", async () => {
    const r = await run(["schema"]);
    assert.equal(r.code, 0);
    assert.deepEqual(JSON.parse(r.out), JSON.parse(readFileSync(join(REPO_ROOT, "config", "cebridge.schema.json"), "utf8")));
  });

  test("cli - a bearer secret never shows in logs, lint output or /status", async () => {
    const [http, admin] = [await freePort(), await freePort()];
    const d = startDaemon(
      `
engine: { admin: { listen: "127.0.0.1:${admin}" }, log: { level: debug } }
sources: { in: { type: http, listen: "127.0.0.1:${http}", auth: { bearer: "\${TOKEN}" } } }
sinks: { out: { type: http, url: "http://127.0.0.1:9/", auth: { bearer: "\${TOKEN}" }, headers: { x-api-key: "\${TOKEN}" } } }
routes: [ { name: r, from: in, to: [out], retry: { max_elapsed: 10ms } } ]
`,
      { env: { TOKEN: "sup3r-s3cret-t0ken" } },
    );
    await d.waitReady(`127.0.0.1:${admin}`);
    const denied = await fetch(`http://127.0.0.1:${http}/`, { method: "POST", headers: { "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t" } });
    assert.equal(denied.status, 401);
    const allowed = await fetch(`http://127.0.0.1:${http}/`, {
      method: "POST",
      headers: { authorization: "Bearer sup3r-s3cret-t0ken", "ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t" },
    });
    const body = await allowed.text();
    assert.equal(allowed.status, 503, body);
    const status = await (await fetch(`http://127.0.0.1:${admin}/status`)).text();
    await d.stop();
    for (const text of [d.stderr(), status, body]) assert.ok(!text.includes("sup3r-s3cret-t0ken"));
  });
});
