/**
 * The route `buffer`: its schema, its defaults, and how a route's buffer is decided.
 *
 * The schema is a union discriminated by `type`. The validator does not fill defaults inside a
 * union, so `resolveBuffer` applies them (the schema carries them too, for the JSON Schema and the
 * README). A route fed by a source that cannot pause gets a memory buffer when it names none.
 */
import type { Static } from "@sinclair/typebox";
import { Type } from "../core/type.js";
import { Duration, Size } from "../core/schema-types.js";

const WhenFull = (fallback: "drop_newest" | "block") =>
  Type.Union([Type.Literal("drop_newest"), Type.Literal("block")], {
    default: fallback,
    description: "a full buffer refuses the newest event (drop_newest) or holds the source back where it can wait (block)",
  });

export const MemoryBufferSchema = Type.Object(
  {
    type: Type.Literal("memory"),
    max_bytes: Type.Optional(Size({ default: "64MiB", description: "events held, in bytes (attributes and data)" })),
    when_full: Type.Optional(WhenFull("drop_newest")),
  },
  { additionalProperties: false, description: "{ type: memory, max_bytes, when_full }" },
);

export const DiskBufferSchema = Type.Object(
  {
    type: Type.Literal("disk"),
    path: Type.String({ minLength: 1, description: "directory of this route's segment files (one route per directory)" }),
    max_bytes: Type.Optional(Size({ default: "1GiB", description: "disk space of the segment files, in bytes" })),
    fsync: Type.Optional(
      Type.Union([Type.Literal("always"), Type.Literal("interval")], {
        default: "always",
        description: "acknowledge the source after fsync (always) or after the write, syncing every fsync_interval (interval)",
      }),
    ),
    fsync_interval: Type.Optional(Duration({ default: "1s", description: "how often `fsync: interval` syncs" })),
    when_full: Type.Optional(WhenFull("block")),
  },
  { additionalProperties: false, description: "{ type: disk, path, max_bytes, fsync, fsync_interval, when_full }" },
);

export const BufferSchema = Type.Union([MemoryBufferSchema, DiskBufferSchema], {
  description: "holds events between the source and the route's window (default for sources that cannot pause: memory)",
});

export type BufferConfig = Static<typeof BufferSchema>;

export interface MemoryBufferSettings {
  readonly type: "memory";
  readonly maxBytes: number;
  readonly whenFull: "drop_newest" | "block";
}

export interface DiskBufferSettings {
  readonly type: "disk";
  readonly path: string;
  readonly maxBytes: number;
  readonly fsync: "always" | "interval";
  readonly fsyncIntervalMs: number;
  readonly whenFull: "drop_newest" | "block";
}

export type BufferSettings = MemoryBufferSettings | DiskBufferSettings;

export const DEFAULT_MEMORY_BUFFER_BYTES = 64 * 1024 * 1024;
export const DEFAULT_DISK_BUFFER_BYTES = 1024 * 1024 * 1024;

/**
 * The buffer a route runs with: the configured one with its defaults, a default memory buffer when
 * the source cannot pause and none is configured, or none (a pausable source waits for the window).
 * `cfg` has been validated and its sizes and durations converted to numbers.
 */
export function resolveBuffer(cfg: BufferConfig | undefined, sourcePausable: boolean): BufferSettings | undefined {
  if (cfg === undefined) {
    return sourcePausable ? undefined : { type: "memory", maxBytes: DEFAULT_MEMORY_BUFFER_BYTES, whenFull: "drop_newest" };
  }
  if (cfg.type === "memory") {
    return { type: "memory", maxBytes: num(cfg.max_bytes, DEFAULT_MEMORY_BUFFER_BYTES), whenFull: cfg.when_full ?? "drop_newest" };
  }
  return {
    type: "disk",
    path: cfg.path,
    maxBytes: num(cfg.max_bytes, DEFAULT_DISK_BUFFER_BYTES),
    fsync: cfg.fsync ?? "always",
    fsyncIntervalMs: num(cfg.fsync_interval, 1000),
    whenFull: cfg.when_full ?? "block",
  };
}

/** A size or duration the validator left unset (no defaults inside a union) falls back here. */
function num(v: number | undefined, fallback: number): number {
  return typeof v === "number" ? v : fallback;
}
