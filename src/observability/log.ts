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

export function createLogger(level: string, destination: NodeJS.WritableStream = process.stderr): Logger {
  const paths = SECRET_KEYS.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths, censor: "[redacted]" },
    },
    pino.destination({ dest: destination === process.stderr ? 2 : 1, sync: true }),
  ) as unknown as Logger;
}
