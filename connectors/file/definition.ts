import { Type } from "../../src/core/type.js";
import { defineSink } from "../../src/core/connector.js";

export const fileSchema = Type.Object(
  {
    path: Type.String({ minLength: 1, description: "file to append JSON Lines to (created if missing)" }),
    fsync: Type.Boolean({ default: false, description: "fsync after each batch before confirming (survives power loss)" }),
  },
  { additionalProperties: false },
);

/** Appends each event to a JSON Lines file. The usual dead-letter sink. */
export const fileSink = defineSink({
  kind: "sink",
  type: "file",
  summary: "Appends each event as one JSON-format CloudEvent per line (JSON Lines)",
  stability: "stable",
  schema: fileSchema,
  guarantee: () => "confirmed",
  load: async () => (await import("./sink.js")).createFileSink,
});
