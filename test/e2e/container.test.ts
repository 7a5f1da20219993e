/**
 * The Dockerfile's runtime stage, reproduced without a Docker engine: its steps are read from the
 * Dockerfile and replayed in a clean directory (npm ci --omit=dev from the lockfile, the built dist/
 * without tests, the config baked the way the build stage bakes it), then the daemon is started from
 * the result the way the image starts it: node as PID 1 of its own PID namespace, as user 65532, in
 * an isolated network namespace (so the baked config's fixed ports 8080/8081 cannot collide), with
 * nothing under the image's directories writable by it. /readyz must answer 200, an event posted to
 * the baked HTTP → stdout route must come out, and SIGTERM must end it cleanly with exit code 0.
 * The sizes of the layers the Dockerfile adds are printed as test diagnostics.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { chmodSync, chownSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, test } from "node:test";
import { REPO_ROOT } from "../support/daemon.js";
import { waitFor } from "../support/wait.js";

const NONROOT = 65532;
const dockerfile = readFileSync(join(REPO_ROOT, "Dockerfile"), "utf8");
/** Instructions with their continuation lines joined, comments dropped. */
const instructions = dockerfile
  .replace(/\\\n/g, " ")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l !== "" && !l.startsWith("#"));
const stages: string[][] = [];
for (const line of instructions) {
  if (line.startsWith("FROM ")) stages.push([]);
  stages.at(-1)?.push(line);
}
const runtime = stages.at(-1)!;
const build = stages.find((s) => / AS build$/.test(s[0]!))!;
const deps = stages.find((s) => / AS deps$/.test(s[0]!))!;

const root = mkdtempSync(join(tmpdir(), "cebridge-image-"));
// Like an image's directories: owned by root, readable (not writable) by the user that runs it.
chmodSync(root, 0o755);
after(() => rmSync(root, { recursive: true, force: true }));

function du(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  let total = 0;
  for (const name of readdirSync(path)) total += du(join(path, name));
  return total;
}

function listing(dir: string, out = new Map<string, number>()): Map<string, number> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = statSync(p);
    out.set(relative(root, p), st.mtimeMs);
    if (st.isDirectory()) listing(p, out);
  }
  return out;
}

test("container - the runtime stage is distroless Node 24, non-root, node as the entrypoint", () => {
  const arg = (name: string) => new RegExp(`^ARG ${name}=(\\S+)`, "m").exec(dockerfile)?.[1];
  assert.equal(runtime[0], "FROM ${RUNTIME_IMAGE}");
  assert.match(arg("RUNTIME_IMAGE") ?? "", /^gcr\.io\/distroless\/nodejs24-debian12:nonroot$/);
  assert.match(arg("BUILD_IMAGE") ?? "", /^node:24-/, "built with the same Node major as it runs");
  assert.ok(runtime.includes(`USER ${NONROOT}:${NONROOT}`), runtime.join("\n"));
  assert.ok(runtime.includes('ENTRYPOINT ["/nodejs/bin/node", "/app/dist/src/main.js"]'));
  assert.ok(runtime.includes('CMD ["run"]'));
  assert.ok(!runtime.some((l) => l.startsWith("RUN ")), "a distroless stage has no shell to RUN anything");
  assert.ok(deps.some((l) => l.startsWith("RUN npm ci --omit=dev")), "production dependencies only, from the lockfile");
});

test("container - the runtime stage's steps in a clean directory start a daemon that is ready and stops cleanly on SIGTERM", async (t) => {
  // ---- COPY --from=deps /app/node_modules ./node_modules   (RUN npm ci --omit=dev ...)
  const app = join(root, "app");
  mkdirSync(app, { recursive: true });
  for (const f of ["package.json", "package-lock.json"]) cpSync(join(REPO_ROOT, f), join(app, f));
  // The deps stage's RUN line as it is (npm ci, then the prune), from the npm cache where it can.
  const depsRun = deps.find((l) => l.startsWith("RUN npm ci"))!.slice(4);
  execFileSync("sh", ["-c", depsRun], { cwd: app, stdio: ["ignore", "ignore", "pipe"], timeout: 300_000, env: { ...process.env, npm_config_prefer_offline: "true" } });
  rmSync(join(app, "package-lock.json"));

  // ---- COPY --from=build /src/dist ./dist   (everything tsc built, minus what the build stage removes)
  const removed = new Set(["test", "bench", ".tsbuildinfo"]);
  assert.match(build.find((l) => l.includes("npx tsc"))!, /rm -rf dist\/\.tsbuildinfo/);
  cpSync(join(REPO_ROOT, "dist"), join(app, "dist"), {
    recursive: true,
    // Only test/ and bench/ are excluded here because the build stage never copies their sources.
    filter: (src) => !removed.has(relative(join(REPO_ROOT, "dist"), src).split("/")[0]!),
  });
  // ---- COPY package.json ./ and COPY config ./config
  cpSync(join(REPO_ROOT, "package.json"), join(app, "package.json"));
  cpSync(join(REPO_ROOT, "config"), join(app, "config"), { recursive: true });

  // ---- COPY --from=build /out/etc/cebridge /etc/cebridge   (the sed of the build stage, replayed)
  const bake = build.find((l) => l.includes("config/default.yaml > /out/etc/cebridge/cebridge.yaml"))!;
  let baked = readFileSync(join(REPO_ROOT, "config", "default.yaml"), "utf8");
  const seds = [...bake.matchAll(/-e 's\/([^/]*)\/([^/]*)\/'/g)];
  assert.equal(seds.length, 2, bake);
  for (const [, from, to] of seds) {
    assert.ok(baked.includes(from!), `config/default.yaml still has ${from}`);
    baked = baked.replaceAll(from!, to!);
  }
  const etc = join(root, "etc", "cebridge");
  mkdirSync(etc, { recursive: true });
  writeFileSync(join(etc, "cebridge.yaml"), baked);
  // ---- COPY --chown=65532:65532 /out/var/lib/cebridge /var/lib/cebridge
  const varLib = join(root, "var", "lib", "cebridge");
  mkdirSync(varLib, { recursive: true });
  chownSync(varLib, NONROOT, NONROOT);

  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
  const sizes = { node_modules: du(join(app, "node_modules")), dist: du(join(app, "dist")), config: du(join(app, "config")) + du(etc), "package.json": du(join(app, "package.json")) };
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  t.diagnostic(`layers the Dockerfile adds to the runtime image: ${Object.entries(sizes).map(([k, v]) => `${k} ${mb(v)}`).join(", ")}; total ${mb(total)} (${total} bytes)`);

  // ---- ENTRYPOINT as user 65532, node as PID 1, in a network of its own.
  const before = listing(root);
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", NODE_ENV: "production", CEBRIDGE_CONFIG: join(etc, "cebridge.yaml") };
  const inner = `ip link set lo up && exec setpriv --reuid=${NONROOT} --regid=${NONROOT} --clear-groups "$@"`;
  const proc = spawn("unshare", ["--net", "--pid", "--fork", "--mount-proc", "sh", "-c", inner, "sh", process.execPath, join(app, "dist", "src", "main.js"), "run"], {
    env,
    cwd: app,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  proc.stdout.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  proc.stderr.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  try {
    // The daemon's PID outside the namespace: the child unshare forked (after sh exec'd into it).
    let pid = 0;
    await waitFor(() => {
      try {
        const children = readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, "utf8").trim();
        pid = Number(children.split(" ")[0]);
        // Until sh and then setpriv have exec'd into node, argv[0] is theirs.
        return pid > 0 && readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] === process.execPath;
      } catch {
        return false;
      }
    }, 10_000, () => `daemon process: ${stderr}`);
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    assert.match(status, new RegExp(`^Uid:\\s+${NONROOT}\\s+${NONROOT}\\s+${NONROOT}\\s+${NONROOT}$`, "m"));
    assert.match(status, /^NSpid:\s+\d+\s+1$/m, "node is PID 1 of its namespace");

    // Probes and a request, from inside the daemon's network namespace.
    const probe = (script: string) => {
      if (proc.exitCode !== null) throw new Error(`the daemon exited with ${proc.exitCode}: ${stderr}`);
      return execFileSync("nsenter", ["-t", String(pid), "-n", process.execPath, "--input-type=module", "-e", script], { encoding: "utf8", timeout: 10_000 }).trim();
    };
    await waitFor(() => probe("const r = await fetch('http://127.0.0.1:8081/readyz').catch(() => undefined); console.log(r?.status ?? 0)") === "200", 20_000, () => `readyz: ${stderr}`);
    const posted = probe(
      "const r = await fetch('http://127.0.0.1:8080/', { method: 'POST', headers: { 'ce-specversion': '1.0', 'ce-id': 'img-1', 'ce-source': '/image', 'ce-type': 'image.check', 'content-type': 'application/json' }, body: '{\"ok\":true}' }); console.log(r.status)",
    );
    assert.equal(posted, "204");
    await waitFor(() => stdout.includes('"id":"img-1"'), 5_000, () => `stdout: ${stdout}`);
    const line = JSON.parse(stdout.split("\n").find((l) => l.includes('"id":"img-1"'))!) as Record<string, unknown>;
    assert.deepEqual(line["data"], { ok: true });

    process.kill(pid, "SIGTERM");
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /"msg":"cebridge stopped"/);
  } finally {
    if (proc.exitCode === null) proc.kill("SIGKILL");
  }
  // Every connector's implementation (and so its SDK) and the tracing SDK load from the pruned tree.
  const loadAll = [
    "const { builtinRegistry } = await import('./dist/connectors/index.js');",
    "const r = builtinRegistry(); let n = 0;",
    "for (const t of r.sourceTypes()) { await r.source(t).load(); n++; }",
    "for (const t of r.sinkTypes()) { await r.sink(t).load(); n++; }",
    "for (const m of ['@opentelemetry/sdk-trace-node', '@opentelemetry/resources', '@opentelemetry/exporter-trace-otlp-proto', '@opentelemetry/exporter-trace-otlp-http']) { await import(m); n++; }",
    "console.log(n);",
  ].join(" ");
  const loaded = execFileSync(process.execPath, ["--input-type=module", "-e", loadAll], { cwd: app, uid: NONROOT, gid: NONROOT, encoding: "utf8", env }).trim();
  assert.ok(Number(loaded) >= 12, loaded);

  // Nothing was written under the image's directories: a read-only root filesystem is enough.
  const changed = [...listing(root)].filter(([p, m]) => before.get(p) !== m).map(([p]) => p);
  assert.deepEqual(changed, []);
});
