import type { Static } from "@sinclair/typebox";
import { toJsonObject } from "../../src/cloudevents/json-format.js";
import type { CloudEvent } from "../../src/cloudevents/event.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { SinkError } from "../../src/core/errors.js";
import { LineBatcher } from "../../src/core/line-batcher.js";
import type { Sink } from "../../src/core/sink.js";
import type { stdoutSchema } from "./definition.js";

/** Resolves a write once its line was handed to the OS. */
export function createStdoutSink(cfg: Static<typeof stdoutSchema>, ctx: ConnectorContext): Sink {
  const out = process.stdout;
  const batcher = new LineBatcher(
    (text) =>
      new Promise((resolve, reject) => {
        out.write(text, (err) => (err ? reject(new SinkError(`stdout: ${err.message}`, true, { cause: err })) : resolve()));
      }),
  );
  const indent = cfg.format === "pretty" ? 2 : undefined;
  return {
    guarantee: "confirmed",
    async open() {
      ctx.setUp(true);
    },
    write(event: CloudEvent) {
      return batcher.write(JSON.stringify(toJsonObject(event), null, indent) + "\n");
    },
    async close() {
      await batcher.idle();
      ctx.setUp(false);
    },
  };
}
