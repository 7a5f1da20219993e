import { BridgeError } from "../core/errors.js";

/**
 * Config problems: each has a stable code, a dotted path and the file position it points at.
 * Printed one per line as `FILE:LINE:COL error CODE path: message` by `cebridge lint` and `run`.
 */

/** Every config issue code with its meaning. The README's "Config issue codes" table lists exactly these. */
export const CONFIG_ISSUE_CODES = {
  CFG_YAML: "the file is not valid YAML",
  CFG_FILE: "the config file (or a ${file:} secret) cannot be read",
  CFG_ENV: "an ${VAR} reference names an unset variable and has no default",
  CFG_UNKNOWN_KEY: "a key that this place does not accept (often a typo)",
  CFG_REQUIRED: "a required key is missing",
  CFG_TYPE: "a value has the wrong type",
  CFG_VALUE: "a value is out of range or not one of the allowed values",
  CFG_UNKNOWN_CONNECTOR: "a source or sink `type` that no connector provides",
  CFG_REF: "a route names a source or sink that is not defined, or uses one wrongly",
  CFG_FILTER: "a filter cannot be compiled (CESQL syntax error, empty dialect)",
  CFG_TEMPLATE: "a template or transform is malformed",
  CFG_CONNECTOR: "a connector's own cross-field rule failed",
  CFG_DELIVERY: "a delivery setting may lose or drop events (a warning) or contradicts another",
  CFG_BUFFER: "a route buffer cannot work as configured (two routes share a disk buffer directory)",
} as const;

export type ConfigIssueCode = keyof typeof CONFIG_ISSUE_CODES;

export interface ConfigIssue {
  readonly level: "error" | "warning";
  readonly code: ConfigIssueCode;
  /** Path of keys and indices from the document root, e.g. `["sources", "hooks", "max_body"]`. */
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly file: string;
  /** 1-based; 0 when the issue has no position (e.g. the file cannot be read). */
  readonly line: number;
  readonly col: number;
}

/** `routes[0].to[1]`-style rendering of a path. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out === "" ? p : `.${p}`;
  }
  return out === "" ? "(root)" : out;
}

export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.col} ${issue.level} ${issue.code} ${formatPath(issue.path)}: ${issue.message}`;
}

/** Thrown by `loadConfig` when any issue has level `error`. Carries every issue, warnings included. */
export class ConfigError extends BridgeError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    const errors = issues.filter((i) => i.level === "error");
    super("CEB_CONFIG", `config has ${errors.length} error(s):\n${errors.map(formatIssue).join("\n")}`, false);
    this.issues = issues;
  }
}
