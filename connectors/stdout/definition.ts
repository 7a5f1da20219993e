import { Type } from "../../src/core/type.js";
import { defineSink } from "../../src/core/connector.js";

export const stdoutSchema = Type.Object(
  {
    format: Type.Union([Type.Literal("json"), Type.Literal("pretty")], {
      default: "json",
      description: "`json`: one structured CloudEvent per line; `pretty`: indented, for people",
    }),
  },
  { additionalProperties: false },
);

/** Writes each event to standard output in the JSON format. Also usable as a dead-letter sink. */
export const stdoutSink = defineSink({
  kind: "sink",
  type: "stdout",
  summary: "Writes each event to standard output as one JSON-format CloudEvent per line",
  stability: "stable",
  schema: stdoutSchema,
  guarantee: () => "confirmed",
  load: async () => (await import("./sink.js")).createStdoutSink,
});
