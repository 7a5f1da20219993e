/**
 * One socket write per turn for what mqtt.js writes, instead of one chunk per field.
 *
 * mqtt-packet writes a packet field by field (each user property is five chunks: id, two lengths,
 * two strings) between `cork()` and an `uncork()` on the next tick, so one PUBLISH in binary mode is
 * dozens of buffered writes and a `writev` of as many chunks. While corked, Node also counts every
 * chunk against the high-water mark, so a busy turn makes `write` return false and mqtt.js waits for
 * `drain` once per publish. Measured on bench row 2 (NATS → MQTT 5 binary), `writev` and its
 * bookkeeping were a fifth of the daemon's CPU.
 *
 * `coalesceWrites` takes over `cork`, `uncork`, `write` (and `end`, which flushes) of one socket: while corked, chunks are
 * collected, and the last `uncork` writes them as one buffer. `write` then reports the socket's own
 * state (`writableNeedDrain`), so a `drain` that mqtt.js waits for is one the socket will emit.
 */
import type { Duplex } from "node:stream";

const COALESCED = Symbol("cebridge.coalesced");

type WriteCallback = (err?: Error | null) => void;

/** Makes the writes between `cork()` and the matching `uncork()` on `stream` one write. Idempotent. */
export function coalesceWrites(stream: Duplex): void {
  const s = stream as Duplex & { [COALESCED]?: true };
  if (s[COALESCED]) return;
  s[COALESCED] = true;
  const write = stream.write.bind(stream) as (chunk: Buffer, cb?: WriteCallback) => boolean;
  const uncork = stream.uncork.bind(stream);
  let depth = 0;
  let parts: Buffer[] = [];
  let size = 0;
  let callbacks: WriteCallback[] | undefined;

  const flush = (): void => {
    if (parts.length === 0) return;
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts, size);
    const cbs = callbacks;
    parts = [];
    size = 0;
    callbacks = undefined;
    write(buf, cbs ? (err) => cbs.forEach((cb) => cb(err)) : undefined);
  };

  stream.cork = () => {
    depth++;
  };
  stream.uncork = () => {
    // A cork from before the takeover (mqtt.js may have begun a packet) is the socket's own.
    if (depth === 0) return uncork();
    if (--depth === 0) flush();
  };
  const end = stream.end.bind(stream) as (...args: unknown[]) => Duplex;
  stream.end = ((...args: unknown[]) => {
    depth = 0;
    flush();
    return end(...args);
  }) as Duplex["end"];
  stream.write = ((chunk: unknown, encOrCb?: unknown, maybeCb?: unknown): boolean => {
    const cb = (typeof encOrCb === "function" ? encOrCb : maybeCb) as WriteCallback | undefined;
    const enc = typeof encOrCb === "string" ? (encOrCb as BufferEncoding) : "utf8";
    const buf = typeof chunk === "string" ? Buffer.from(chunk, enc) : Buffer.isBuffer(chunk) ? chunk : Buffer.from((chunk as Uint8Array).buffer, (chunk as Uint8Array).byteOffset, (chunk as Uint8Array).byteLength);
    if (depth === 0 || stream.destroyed) return write(buf, cb);
    parts.push(buf);
    size += buf.length;
    if (cb) (callbacks ??= []).push(cb);
    return !stream.writableNeedDrain;
  }) as Duplex["write"];
}
