/**
 * CESQL error model (CESQL v1 §3.3, docs/cloudevents.md §8.7).
 *
 * Two shapes, on purpose:
 * - {@link CesqlParseError} is a real `Error` subclass: it is thrown once, at config load, and must carry a
 *   stack and a position the config loader can turn into `file:line:col`.
 * - {@link CesqlEvalError} is a plain frozen value: evaluation runs per event on the hot path and a filter
 *   such as `myext = 'x'` raises a MissingAttributeError on every event that lacks `myext`. Building an
 *   `Error` (stack capture) per event would cost microseconds; most eval errors are preallocated per AST
 *   node at compile time instead.
 */

/** The error kinds of CESQL v1 §3.3, spelled as in the TCK (`error:` field of the YAML suites). */
export type CesqlErrorKind =
  | "parse"
  | "math"
  | "cast"
  | "missingAttribute"
  | "missingFunction"
  | "functionEvaluation"
  | "generic";

/** Every kind, in spec order; handy for metrics labels and exhaustive tests. */
export const CESQL_ERROR_KINDS: readonly CesqlErrorKind[] = [
  "parse",
  "math",
  "cast",
  "missingAttribute",
  "missingFunction",
  "functionEvaluation",
  "generic",
];

/** An error raised while evaluating a compiled expression against one event. Never thrown. */
export interface CesqlEvalError {
  /** Which CESQL error type this is (never `"parse"`: parse errors happen at compile time). */
  readonly kind: Exclude<CesqlErrorKind, "parse">;
  /** Human-readable reason, e.g. `missing attribute "myext"`. */
  readonly message: string;
  /** 0-based char offset, in the expression, of the sub-expression that raised the error. */
  readonly position: number;
}

/** Builds a frozen eval error. Frozen because preallocated errors are shared between evaluations. */
export function evalError(kind: CesqlEvalError["kind"], message: string, position: number): CesqlEvalError {
  return Object.freeze({ kind, message, position });
}

/**
 * The expression could not be parsed (CESQL ParseError). Thrown by `compileCesql`; the config loader maps it to
 * a config error pointing at `position` inside the expression string.
 */
export class CesqlParseError extends Error {
  /** Always `"parse"`, so callers can treat parse and eval errors uniformly by kind. */
  readonly kind = "parse" as const;
  /** 0-based char (UTF-16 code unit) offset in the expression where the problem was found. */
  readonly position: number;
  constructor(message: string, position: number) {
    // The position is part of the message so that a bare `err.message` in a log is already actionable.
    super(`${message} at ${position}`);
    this.name = "CesqlParseError";
    this.position = position;
  }
}

/**
 * Where evaluation records the first error. Fail-fast (CESQL v1 §4.1, and what the TCK expects): once `err` is set
 * every enclosing operator stops and returns the zero value of its own return type.
 */
export interface ErrorSink {
  err: CesqlEvalError | undefined;
}
