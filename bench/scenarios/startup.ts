/**
 * Scenario 8: time from the daemon's process start to `/readyz` 200, HTTP → NATS config, median of 5.
 */
import { spawn } from "node:child_process";
import { startNats } from "../../test/support/brokers.js";
import { freePort } from "../../test/support/ports.js";
import { MAIN, startDaemon } from "../lib/daemon.js";
import { median } from "../lib/stats.js";
import { engineSection, own, type Ctx } from "./common.js";

export async function scenario8(ctx: Ctx): Promise<void> {
  const nats = own(ctx, await startNats({ jetstream: false }));
  const times: number[] = [];
  ctx.log("8: start-up to /readyz, 5 runs");
  for (let i = 0; i < 5; i++) {
    const engine = await engineSection();
    const port = await freePort();
    const yaml = `${engine.yaml}
sources:
  in: { type: http, listen: "127.0.0.1:${port}", path: / }
sinks:
  out: { type: nats, servers: ["${nats.url}"], subject: "start.out" }
routes:
  - { name: http-to-nats, from: in, to: [out] }
`;
    const d = startDaemon(yaml, { scope: ctx.scope });
    try {
      times.push(await d.waitReady(engine.admin, 10_000, 2));
    } finally {
      await d.stop();
    }
  }
  const m = median(times);
  ctx.result.details["readyMs"] = times;
  // Context: Node's own bootstrap, and loading cebridge's module graph (`--version` imports everything).
  const bootstrap: number[] = [];
  const versionRuns: number[] = [];
  for (let i = 0; i < 5; i++) {
    bootstrap.push(await timeProcess(["-e", "0"]));
    versionRuns.push(await timeProcess([MAIN, "--version"]));
  }
  ctx.result.details["nodeBootstrapMs"] = bootstrap;
  ctx.result.details["versionCommandMs"] = versionRuns;
  ctx.result.rows.push({
    id: "8",
    scenario: "start-up to /readyz (HTTP → NATS)",
    p50: m,
    ratioText: `${m.toFixed(0)} ms`,
    target: "≤ 300ms",
    pass: m <= 300,
    note: `runs ${times.map((t) => t.toFixed(0)).join(", ")} ms; \`node -e 0\` ${median(bootstrap).toFixed(0)} ms, \`main.js --version\` ${median(versionRuns).toFixed(0)} ms`,
  });
}

/** Wall time of `node <args>` from spawn to exit, in ms. */
function timeProcess(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, args, { stdio: "ignore" });
    p.once("error", reject);
    p.once("exit", () => resolve(performance.now() - t0));
  });
}
