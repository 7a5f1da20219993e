import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { Static } from "@sinclair/typebox";
import type { CloudEvent } from "../../src/cloudevents/event.js";
import { serializeStructured } from "../../src/cloudevents/json-format.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import { ConnectError, SinkError } from "../../src/core/errors.js";
import { LineBatcher } from "../../src/core/line-batcher.js";
import type { Sink } from "../../src/core/sink.js";
import type { fileSchema } from "./definition.js";

/** A write resolves once its line is appended (and synced, with `fsync: true`). */
export function createFileSink(cfg: Static<typeof fileSchema>, ctx: ConnectorContext): Sink {
  let handle: FileHandle | undefined;
  const batcher = new LineBatcher(async (text) => {
    if (!handle) throw new SinkError(`file ${cfg.path} is not open`, true);
    try {
      await handle.appendFile(text, "utf8");
      if (cfg.fsync) await handle.sync();
    } catch (err) {
      // Disk full or an I/O error can clear up; the route retries and finally releases the message.
      throw new SinkError(`cannot append to ${cfg.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, true, { cause: err });
    }
  });
  return {
    guarantee: "confirmed",
    async open() {
      try {
        await mkdir(dirname(cfg.path), { recursive: true });
        handle = await open(cfg.path, "a", 0o640);
      } catch (err) {
        throw new ConnectError(`cannot open ${cfg.path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
      }
      ctx.setUp(true);
    },
    write(event: CloudEvent) {
      return batcher.write(serializeStructured(event) + "\n");
    },
    async close() {
      await batcher.idle();
      await handle?.close();
      handle = undefined;
      ctx.setUp(false);
    },
  };
}
