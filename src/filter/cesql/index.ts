/**
 * CloudEvents SQL (CESQL) v1: compile an expression once, evaluate it per event.
 *
 * ```ts
 * const expr = compileCesql("type LIKE 'com.example.%' AND EXISTS subject"); // throws CesqlParseError
 * const { value, error } = expr.evaluate(event);                             // never throws
 * ```
 *
 * Conformance: passes the CESQL v1 TCK (test/unit/filter/cesql-tck.test.ts), with one documented departure:
 * `NOT 10` follows the v1 casting table (Integer → Boolean is legal) rather than the pre-v1 TCK vector.
 */
import type { Attributes, CloudEvent } from "../../cloudevents/event.js";
import type { CesqlValue, StaticType } from "./casts.js";
import { type CesqlEvalError, evalError } from "./errors.js";
import { type CesqlDiagnostic, type EvalContext, type Evaluator, compileNode } from "./evaluate.js";
import { type Expr, type ParseOptions, parse } from "./parser.js";

export type { CesqlValue, CesqlType, StaticType } from "./casts.js";
export { CESQL_ERROR_KINDS, CesqlParseError, type CesqlErrorKind, type CesqlEvalError } from "./errors.js";
export type { CesqlDiagnostic } from "./evaluate.js";
export { BUILTIN_FUNCTIONS } from "./functions.js";
export { MAX_DEPTH, parse, type BinaryOperator, type Expr, type ParseOptions } from "./parser.js";

/** Outcome of one evaluation: always a value; `error` is the first error (fail-fast), absent when none. */
export interface CesqlResult {
  readonly value: CesqlValue;
  readonly error?: CesqlEvalError;
}

/** Options of {@link compileCesql}. */
export type CompileOptions = ParseOptions;

/** A parsed and compiled expression. Immutable; safe to share between routes. */
export interface CompiledCesql {
  /** The source text. */
  readonly expression: string;
  /** The parsed tree (for tooling; evaluation does not use it). */
  readonly ast: Expr;
  /** Static result type; `Any` when the whole expression is a bare attribute. */
  readonly resultType: StaticType;
  /** Legal-but-wrong things found at compile time (e.g. calls to unknown functions). Empty for sane expressions. */
  readonly diagnostics: readonly CesqlDiagnostic[];
  /** Evaluates against one event. Never throws; an internal failure comes back as a `generic` error. */
  evaluate(event: CloudEvent): CesqlResult;
  /**
   * Filter semantics (Subscriptions API `sql` dialect, CESQL v1 §1.2): true only for a Boolean `true` with no
   * error. The error, if any, goes to `onError`. Allocates nothing on the way.
   */
  matches(event: CloudEvent, onError?: (err: CesqlEvalError) => void): boolean;
}

const NO_ATTRIBUTES: Attributes = Object.freeze({});

class Compiled implements CompiledCesql {
  /** Shared by every evaluation of this expression: evaluation is synchronous and never re-enters. */
  private readonly ctx: EvalContext = { attrs: NO_ATTRIBUTES, err: undefined };

  constructor(
    readonly expression: string,
    readonly ast: Expr,
    readonly resultType: StaticType,
    readonly diagnostics: readonly CesqlDiagnostic[],
    private readonly fn: Evaluator,
  ) {}

  /** Runs the closures; returns the value and leaves the first error in `ctx.err`. */
  private run(event: CloudEvent): CesqlValue {
    const c = this.ctx;
    c.attrs = event?.attributes ?? NO_ATTRIBUTES;
    c.err = undefined;
    try {
      return this.fn(c);
    } catch (e) {
      // Should not happen (every operator is total); if it does, stay total rather than crash the route.
      c.err = evalError("generic", `internal error: ${e instanceof Error ? e.message : String(e)}`, 0);
      return false;
    } finally {
      c.attrs = NO_ATTRIBUTES; // do not keep the last event alive
    }
  }

  evaluate(event: CloudEvent): CesqlResult {
    const value = this.run(event);
    const error = this.ctx.err;
    this.ctx.err = undefined;
    return error === undefined ? { value } : { value, error };
  }

  matches(event: CloudEvent, onError?: (err: CesqlEvalError) => void): boolean {
    const value = this.run(event);
    const error = this.ctx.err;
    if (error !== undefined) {
      this.ctx.err = undefined;
      onError?.(error);
      return false;
    }
    return value === true;
  }
}

/**
 * Parses and compiles a CESQL v1 expression.
 * @throws CesqlParseError (with `position`, 0-based) when the expression is not valid CESQL.
 */
export function compileCesql(expression: string, options: CompileOptions = {}): CompiledCesql {
  const ast = parse(expression, options);
  const diagnostics: CesqlDiagnostic[] = [];
  const { fn, type } = compileNode(ast, diagnostics);
  return new Compiled(expression, ast, type, Object.freeze(diagnostics), fn);
}
