/**
 * A logger that also keeps every warning and error in the status board's ring of recent errors
 * (redacted there), so the status page shows what the logs say without a log pipeline. Debug and
 * info calls go straight through: nothing is added on the hot path.
 */
import type { Logger } from "../core/logger.js";
import type { StatusBoard } from "./status.js";

/** `where` names the component or route: `source:<id>`, `sink:<id>`, `route:<name>`, `engine`. */
export function recordingLogger(log: Logger, where: string, board: StatusBoard): Logger {
  const record = (level: "warn" | "error", obj: object, msg: string | undefined) => {
    try {
      board.recordError({ level, where, ...describe(obj, msg) });
    } catch {
      // Keeping a copy for /status must never break the caller.
    }
  };
  return {
    debug: (obj, msg) => log.debug(obj, msg),
    info: (obj, msg) => log.info(obj, msg),
    warn(obj, msg) {
      record("warn", obj, msg);
      log.warn(obj, msg);
    },
    error(obj, msg) {
      record("error", obj, msg);
      log.error(obj, msg);
    },
    child: (bindings) => recordingLogger(log.child(bindings), where, board),
  };
}

/** The message of a log call: its text, plus the reason or error it carries. */
function describe(obj: object, msg: string | undefined): { message: string; code?: string; event?: string; sink?: string } {
  const o = obj as Record<string, unknown>;
  const err = o["err"] instanceof Error ? o["err"] : undefined;
  const errCode = (err as { code?: unknown } | undefined)?.code;
  const code = typeof o["code"] === "string" ? o["code"] : typeof errCode === "string" ? errCode : undefined;
  const detail = [o["reason"], o["deadLetterError"], err?.message, o["err"], o["error"]].find(
    (d): d is string => typeof d === "string" && d !== "",
  );
  const sink = typeof o["sink"] === "string" ? o["sink"] : undefined;
  const message = `${msg ?? "problem"}${sink !== undefined ? ` (sink ${sink})` : ""}${detail ? `: ${detail}` : ""}`;
  const event = typeof o["id"] === "string" ? o["id"] : undefined;
  return { message, ...(code !== undefined ? { code } : {}), ...(event !== undefined ? { event } : {}), ...(sink !== undefined ? { sink } : {}) };
}
