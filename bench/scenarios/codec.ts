/**
 * Scenario 6: codec throughput, cebridge's functions against the `cloudevents` SDK, in a forked
 * process (`bench/workers/codec.ts`).
 */
import { startWorker } from "../lib/load.js";
import type { CodecCase, CodecTask } from "../workers/codec.js";
import type { Ctx } from "./common.js";

export async function scenario6(ctx: Ctx): Promise<void> {
  const task: CodecTask = { durationMs: ctx.quick ? 150 : 300, rounds: ctx.quick ? 3 : 5 };
  ctx.log("6: codec, cebridge vs cloudevents SDK");
  const w = startWorker<{ cases: CodecCase[] }>("workers/codec.js", task, { scope: ctx.scope, timeoutMs: ctx.scope.remaining() });
  const { cases } = await w.result;
  ctx.result.details["cases"] = cases;
  cases.forEach((c, i) => {
    const vsSdk = c.baseline === "sdk";
    ctx.result.rows.push({
      id: `6${"abcdefgh"[i]}`,
      scenario: `codec: ${c.name} (ops/s)`,
      rate: c.ours,
      baseline: c.sdk,
      ratio: c.ratio,
      target: vsSdk ? "≥ 10× SDK" : "info",
      ...(vsSdk ? { pass: c.ratio >= 10 } : {}),
      note: `${c.oursFn} vs ${c.sdkFn}${vsSdk ? "" : ", on the same event (the SDK has no Protobuf)"}`,
    });
  });
}
