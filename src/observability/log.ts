/**
 * JSON logs on stderr (so the stdout sink's output stays clean), with secrets redacted.
 */
import { pino } from "pino";
import type { Logger } from "../core/logger.js";

/** Keys whose values never reach a log line, wherever they appear in a logged object. */
export const SECRET_KEYS = [
  "password",
  "token",
  "bearer",
  "secret",
  "key",
  "nkey",
  "creds",
  "authorization",
  "sas_token",
  "secret_access_key",
  "session_token",
  "credentials",
];

/** Level setters of the loggers made here: pino children copy the level when made, so a change must reach each. */
const levelSetters = new WeakMap<object, (level: string) => void>();

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);
  const children = new Set<WeakRef<pino.Logger>>();
  const root = pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths, censor: "[redacted]" },
      // Inherited by every descendant, so each one is known to `setLogLevel`.
      onChild: (child) => void children.add(new WeakRef(child)),
    },
    pino.destination({ dest: destination === process.stderr ? 2 : 1, sync: true }),
  );
  levelSetters.set(root, (next) => {
    root.level = next;
    for (const ref of children) {
      const child = ref.deref();
      if (child) child.level = next;
      else children.delete(ref);
    }
  });
  return root as unknown as Logger;
}

/** Changes the level of a logger made by `createLogger` and of every child it has (hot reload). */
export function setLogLevel(log: Logger, level: string): void {
  levelSetters.get(log)?.(level);
}
