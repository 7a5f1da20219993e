/**
 * Schema building blocks shared by every connector definition and the top-level config.
 *
 * Durations and sizes are written as strings in YAML (`100ms`, `30s`, `256KiB`) or as plain integers
 * (milliseconds, bytes). The config loader converts them to numbers after validation, so their static
 * type is `number`. `writeOnly: true` marks a secret: it is redacted in logs, `/status` and `lint`.
 */
import type { TUnsafe, SchemaOptions } from "@sinclair/typebox";
import { Type } from "./type.js";

export const DURATION_PATTERN = "^\\s*(\\d+(\\.\\d+)?)\\s*(ms|s|m|h)\\s*$";
export const SIZE_PATTERN = "^\\s*(\\d+)\\s*(B|KiB|MiB|GiB|KB|MB|GB)?\\s*$";

/** A duration: `"250ms"`, `"30s"`, `"5m"`, `"1h"` or an integer number of milliseconds. Static type: ms. */
export function Duration(options: SchemaOptions & { default?: string }): TUnsafe<number> {
  return Type.Unsafe<number>({
    ...options,
    anyOf: [
      { type: "string", pattern: DURATION_PATTERN },
      { type: "integer", minimum: 0 },
    ],
    "x-cebridge-unit": "duration",
  });
}

/** A size: `"1MiB"`, `"64KiB"`, `"512B"` or an integer number of bytes. Static type: bytes. */
export function Size(options: SchemaOptions & { default?: string | number }): TUnsafe<number> {
  return Type.Unsafe<number>({
    ...options,
    anyOf: [
      { type: "string", pattern: SIZE_PATTERN },
      { type: "integer", minimum: 0 },
    ],
    "x-cebridge-unit": "size",
  });
}

/** A secret string: never logged, echoed or shown on `/status`. Use `${file:/path}` or `${ENV}` in YAML. */
export function Secret(options: SchemaOptions = {}) {
  return Type.String({ minLength: 1, ...options, writeOnly: true });
}

/** `host:port` to listen on. */
export function ListenAddress(options: SchemaOptions = {}) {
  return Type.String({ pattern: "^(\\[[0-9a-fA-F:.]+\\]|[^:\\s]+):\\d{1,5}$", ...options });
}

/** TLS options every network connector accepts. Paths to PEM files. */
export const TlsOptions = Type.Object(
  {
    ca: Type.Optional(Type.String({ description: "PEM file with the CA certificates to trust" })),
    cert: Type.Optional(Type.String({ description: "PEM file with this side's certificate (mutual TLS)" })),
    key: Type.Optional(Type.String({ description: "PEM file with this side's private key (mutual TLS)", writeOnly: true })),
    insecure_skip_verify: Type.Optional(
      Type.Boolean({ default: false, description: "Accept any server certificate. For tests only." }),
    ),
  },
  { additionalProperties: false, description: "TLS settings (enables TLS when present)" },
);

/** Retry budget for transient sink failures. */
export const RetryOptions = Type.Object(
  {
    initial: Duration({ default: "100ms", description: "first backoff delay" }),
    max: Duration({ default: "30s", description: "largest backoff delay" }),
    max_elapsed: Duration({
      default: "5m",
      description: "after this long the source message is released for redelivery",
    }),
  },
  { additionalProperties: false },
);

/** `format` of the sinks with a structured (or batch) mode: the event format written there. */
export const EventFormatOption = Type.Union([Type.Literal("json"), Type.Literal("protobuf")], {
  default: "json",
  description:
    "event format in structured (and batch) mode: json (application/cloudevents+json) or protobuf (application/cloudevents+protobuf, the specification's cloudevents.proto)",
});

/**
 * The lint rule every sink with `format` shares: `protobuf` needs a mode that writes a whole event
 * (binary mode carries attributes in the protocol's own metadata, so `format` has no effect there).
 */
export function lintFormat(
  cfg: { readonly mode?: string | undefined; readonly format?: string | undefined },
  defaultMode: string,
): { level: "error"; path: string[]; message: string }[] {
  const mode = cfg.mode ?? defaultMode;
  if (cfg.format === "protobuf" && mode === "binary") {
    return [{ level: "error", path: ["format"], message: "format applies to structured (and batch) mode only; set mode: structured" }];
  }
  return [];
}
