/**
 * Compiles a CESQL AST into a tree of closures, once, so that evaluating an event is a few direct calls with no
 * AST walk, no `switch` on node kinds and no allocation (errors for missing attributes, division by zero and
 * unknown functions are preallocated per node; function argument arrays are preallocated per call site).
 *
 * Evaluation semantics (CESQL v1 §3, docs/cloudevents.md §8.4–8.7):
 * - Fail-fast (§4.1; the TCK expects it): the first error is recorded in the context; every enclosing operator
 *   then stops and returns the zero value of its own return type. The operator that raised the error returns
 *   the value the spec prescribes for it (ABS(-2147483648) ⇒ 2147483647, LEFT('abc', -2) ⇒ 'abc'), which is what
 *   the caller sees when that operator is the whole expression.
 * - Operands are evaluated left to right, then cast (§3.7), so in `'a' + 1/0` the MathError wins.
 * - AND/OR short-circuit (§3.4.2); IN stops at the first equal element.
 * - Attribute values keep their event type: Integer attributes are Integers, Boolean ones Booleans, every other
 *   attribute (URI, Timestamp, Binary…) is its canonical String (§3.2).
 *
 * The closures share one mutable context per compiled expression: evaluation is synchronous and never calls out
 * to user code, so two evaluations cannot interleave.
 */
import type { Attributes } from "../../cloudevents/event.js";
import { attributeReader } from "../attribute.js";
import {
  type CesqlType,
  type CesqlValue,
  type StaticType,
  INT_MAX,
  INT_MIN,
  castTo,
  castToBoolean,
  castToInteger,
  castToString,
  showValue,
  typeOf,
  zeroValue,
} from "./casts.js";
import { type CesqlEvalError, type ErrorSink, evalError } from "./errors.js";
import { type ParamType, describeArities, resolveFunction } from "./functions.js";
import { compileLike } from "./like.js";
import type { BinaryOperator, Expr } from "./parser.js";

/** Per-evaluation state: the event's attributes and the first error. */
export interface EvalContext extends ErrorSink {
  attrs: Attributes;
}

/** A compiled (sub-)expression. */
export type Evaluator = (c: EvalContext) => CesqlValue;

/** Something the compiler noticed that is legal CESQL but certainly a mistake (e.g. an unknown function). */
export interface CesqlDiagnostic {
  /** Machine-readable kind: today only calls that can never be dispatched. */
  readonly kind: "missingFunction";
  readonly message: string;
  /** 0-based offset in the expression. */
  readonly position: number;
}

/** Result of compiling a node: its evaluator and its static type. */
export interface CompiledNode {
  readonly fn: Evaluator;
  readonly type: StaticType;
}

/** The attributes the spec guarantees on every (valid) event: `EXISTS` on them is constant true (§3.4.4). */
const ALWAYS_PRESENT: ReadonlySet<string> = new Set(["specversion", "id", "source", "type"]);

function castError(v: CesqlValue, to: CesqlType, pos: number): CesqlEvalError {
  return evalError("cast", `cannot cast ${showValue(v)} to ${to}`, pos);
}

/** Operand → Integer, recording a CastError on failure (then returns 0; the caller checks `c.err`). */
function toInt(v: CesqlValue, c: EvalContext, pos: number): number {
  if (typeof v === "number") return v;
  const n = castToInteger(v);
  if (n !== undefined) return n;
  c.err ??= castError(v, "Integer", pos);
  return 0;
}

/** Operand → Boolean, recording a CastError on failure (then returns false). */
function toBool(v: CesqlValue, c: EvalContext, pos: number): boolean {
  if (typeof v === "boolean") return v;
  const b = castToBoolean(v);
  if (b !== undefined) return b;
  c.err ??= castError(v, "Boolean", pos);
  return false;
}

/** Integer result of + - * / %: out of the 32-bit range is a MathError, value clamped (as ABS does, §3.5.2). */
function checked(r: number, c: EvalContext, pos: number, op: string): number {
  if (r >= INT_MIN && r <= INT_MAX) return r;
  c.err ??= evalError("math", `integer overflow in "${op}"`, pos);
  return r > 0 ? INT_MAX : INT_MIN;
}

/** Compiles `e`; pushes compile-time diagnostics (unknown functions) to `diagnostics`. */
export function compileNode(e: Expr, diagnostics: CesqlDiagnostic[]): CompiledNode {
  switch (e.kind) {
    case "literal": {
      const v = e.value;
      return { fn: () => v, type: typeOf(v) };
    }
    case "attribute":
      return { fn: compileAttribute(e.name, e.pos), type: "Any" };
    case "exists": {
      if (ALWAYS_PRESENT.has(e.name)) return { fn: () => true, type: "Boolean" };
      const read = attributeReader(e.name);
      return { fn: (c) => read(c.attrs) != null, type: "Boolean" };
    }
    case "not":
      return { fn: compileNot(compileNode(e.operand, diagnostics).fn, e.pos), type: "Boolean" };
    case "negate":
      return { fn: compileNegate(compileNode(e.operand, diagnostics).fn, e.pos), type: "Integer" };
    case "binary":
      return compileBinary(e.op, compileNode(e.left, diagnostics), compileNode(e.right, diagnostics), e.pos);
    case "like":
      return { fn: compileLikeNode(compileNode(e.operand, diagnostics).fn, e.pattern, e.negated), type: "Boolean" };
    case "in":
      return {
        fn: compileIn(compileNode(e.operand, diagnostics).fn, e.set, e.negated, e.pos, diagnostics),
        type: "Boolean",
      };
    case "call":
      return compileCall(e.name, e.args, e.pos, diagnostics);
  }
}

function compileAttribute(name: string, pos: number): Evaluator {
  const missing = evalError("missingAttribute", `missing attribute "${name}"`, pos);
  const read = attributeReader(name);
  return (c) => {
    const v = read(c.attrs);
    if (typeof v === "string" || typeof v === "boolean") return v;
    if (typeof v === "number") {
      // The event model keeps Integers as numbers; anything that is not an int32 is not a CESQL Integer, so it
      // is exposed by its canonical string instead of breaking integer arithmetic.
      return (v | 0) === v ? v : String(v);
    }
    if (v == null) {
      c.err ??= missing;
      return false; // zero value of an unknowable type: Boolean (§3.2)
    }
    return String(v);
  };
}

function compileNot(operand: Evaluator, pos: number): Evaluator {
  return (c) => {
    const v = operand(c);
    if (c.err !== undefined) return false;
    const b = typeof v === "boolean" ? v : toBool(v, c, pos);
    return c.err !== undefined ? false : !b;
  };
}

function compileNegate(operand: Evaluator, pos: number): Evaluator {
  return (c) => {
    const v = operand(c);
    if (c.err !== undefined) return 0;
    const n = typeof v === "number" ? v : toInt(v, c, pos);
    if (c.err !== undefined) return 0;
    // `0 - n` rather than `-n`: never produces -0. -(-2147483648) does not fit: MathError, clamped like ABS.
    return n === INT_MIN ? checked(2147483648, c, pos, "-") : 0 - n;
  };
}

function compileBinary(op: BinaryOperator, left: CompiledNode, right: CompiledNode, pos: number): CompiledNode {
  const l = left.fn;
  const r = right.fn;
  switch (op) {
    case "AND":
      return {
        fn: (c) => {
          const a = l(c);
          if (c.err !== undefined) return false;
          const x = typeof a === "boolean" ? a : toBool(a, c, pos);
          if (c.err !== undefined || !x) return false; // short-circuit (§3.4.2)
          const b = r(c);
          if (c.err !== undefined) return false;
          const y = typeof b === "boolean" ? b : toBool(b, c, pos);
          return c.err !== undefined ? false : y;
        },
        type: "Boolean",
      };
    case "OR":
      return {
        fn: (c) => {
          const a = l(c);
          if (c.err !== undefined) return false;
          const x = typeof a === "boolean" ? a : toBool(a, c, pos);
          if (c.err !== undefined) return false;
          if (x) return true; // short-circuit (§3.4.2)
          const b = r(c);
          if (c.err !== undefined) return false;
          const y = typeof b === "boolean" ? b : toBool(b, c, pos);
          return c.err !== undefined ? false : y;
        },
        type: "Boolean",
      };
    case "XOR":
      return {
        fn: (c) => {
          const a = l(c);
          if (c.err !== undefined) return false;
          const b = r(c);
          if (c.err !== undefined) return false;
          const x = typeof a === "boolean" ? a : toBool(a, c, pos);
          if (c.err !== undefined) return false;
          const y = typeof b === "boolean" ? b : toBool(b, c, pos);
          return c.err !== undefined ? false : x !== y;
        },
        type: "Boolean",
      };
    case "=":
    case "!=":
    case "<>":
      return { fn: compileEquality(l, r, op !== "=", pos), type: "Boolean" };
    case "<":
    case "<=":
    case ">":
    case ">=":
      return { fn: compileOrdering(l, r, op, pos), type: "Boolean" };
    case "+":
    case "-":
    case "*":
    case "/":
    case "%":
      return { fn: compileArithmetic(l, r, op, pos), type: "Integer" };
  }
}

/**
 * `=`, `!=`, `<>`: overloaded for every type, so the right operand's type picks the overload and the left operand
 * is cast to it (§3.7 rule 2): `'TRUE' = true` is true, `true = 'TRUE'` is false.
 */
function compileEquality(l: Evaluator, r: Evaluator, negated: boolean, pos: number): Evaluator {
  return (c) => {
    const a = l(c);
    if (c.err !== undefined) return false;
    const b = r(c);
    if (c.err !== undefined) return false;
    if (typeof a === typeof b) return (a === b) !== negated;
    const x = castTo(typeOf(b), a);
    if (x === undefined) {
      c.err ??= castError(a, typeOf(b), pos);
      return false;
    }
    return (x === b) !== negated;
  };
}

/** `<`, `<=`, `>`, `>=`: Integer only (§3.4.2), so both operands are cast to Integer (`'5' < '10'` is true). */
function compileOrdering(l: Evaluator, r: Evaluator, op: "<" | "<=" | ">" | ">=", pos: number): Evaluator {
  const cmp =
    op === "<"
      ? (x: number, y: number) => x < y
      : op === "<="
        ? (x: number, y: number) => x <= y
        : op === ">"
          ? (x: number, y: number) => x > y
          : (x: number, y: number) => x >= y;
  return (c) => {
    const a = l(c);
    if (c.err !== undefined) return false;
    const b = r(c);
    if (c.err !== undefined) return false;
    const x = typeof a === "number" ? a : toInt(a, c, pos);
    if (c.err !== undefined) return false;
    const y = typeof b === "number" ? b : toInt(b, c, pos);
    return c.err !== undefined ? false : cmp(x, y);
  };
}

/** `+ - * / %` on 32-bit Integers. `/` truncates toward zero, `%` takes the dividend's sign, `/0` and `%0` ⇒ 0 + MathError. */
function compileArithmetic(l: Evaluator, r: Evaluator, op: "+" | "-" | "*" | "/" | "%", pos: number): Evaluator {
  const divByZero = evalError("math", `division by zero in "${op}"`, pos);
  const compute: (x: number, y: number, c: EvalContext) => number =
    op === "+"
      ? (x, y, c) => checked(x + y, c, pos, op)
      : op === "-"
        ? (x, y, c) => checked(x - y, c, pos, op)
        : op === "*"
          ? (x, y, c) => checked(x * y, c, pos, op) + 0 // `+ 0`: -0 (e.g. -1 * 0) becomes 0
          : op === "/"
            ? (x, y, c) => {
                if (y === 0) {
                  c.err ??= divByZero;
                  return 0;
                }
                return checked(Math.trunc(x / y), c, pos, op) + 0;
              }
            : (x, y, c) => {
                if (y === 0) {
                  c.err ??= divByZero;
                  return 0;
                }
                return (x % y) + 0;
              };
  return (c) => {
    const a = l(c);
    if (c.err !== undefined) return 0;
    const b = r(c);
    if (c.err !== undefined) return 0;
    const x = typeof a === "number" ? a : toInt(a, c, pos);
    if (c.err !== undefined) return 0;
    const y = typeof b === "number" ? b : toInt(b, c, pos);
    if (c.err !== undefined) return 0;
    return compute(x, y, c);
  };
}

/** `x [NOT] LIKE 'p'`: the left operand is cast to String (§3.4.3), the pattern compiled once. */
function compileLikeNode(operand: Evaluator, pattern: string, negated: boolean): Evaluator {
  const match = compileLike(pattern);
  return (c) => {
    const v = operand(c);
    if (c.err !== undefined) return false;
    return match(typeof v === "string" ? v : castToString(v)) !== negated;
  };
}

/**
 * `x [NOT] IN (…)`: `=` semantics with each element cast to the left operand's type (§3.4.5), scanned left to
 * right and stopping at the first equal element. Sets made only of literals are pre-cast at compile time for each
 * possible left type; when every element casts cleanly the lookup is a `Set.has`.
 */
function compileIn(operand: Evaluator, set: readonly Expr[], negated: boolean, pos: number, diagnostics: CesqlDiagnostic[]): Evaluator {
  if (set.every((e) => e.kind === "literal")) {
    const literals = set.map((e) => (e as Expr & { kind: "literal" }).value);
    const lookup = (type: CesqlType): ((v: CesqlValue) => boolean | string) => {
      const cast = literals.map((v) => castTo(type, v));
      const failed = cast.findIndex((v) => v === undefined);
      if (failed < 0) {
        const values = new Set(cast as CesqlValue[]);
        return (v) => values.has(v);
      }
      // Some element does not cast: keep the spec's order (a match before it wins, else a CastError).
      // Only String → Integer/Boolean casts fail, so `bad` is a string and cannot be confused with `false`.
      const ok = cast.slice(0, failed);
      const bad = literals[failed] as string;
      return (v) => (ok.includes(v) ? true : bad);
    };
    const byType = { Boolean: lookup("Boolean"), Integer: lookup("Integer"), String: lookup("String") };
    return (c) => {
      const v = operand(c);
      if (c.err !== undefined) return false;
      const t = typeOf(v);
      const found = byType[t](v);
      if (found === true) return !negated;
      if (found === false) return negated;
      c.err ??= castError(found, t, pos);
      return false;
    };
  }
  const elements = set.map((e) => compileNode(e, diagnostics).fn);
  return (c) => {
    const v = operand(c);
    if (c.err !== undefined) return false;
    const t = typeof v;
    for (let i = 0; i < elements.length; i++) {
      const w = (elements[i] as Evaluator)(c);
      if (c.err !== undefined) return false;
      let x: CesqlValue | undefined = w;
      if (typeof w !== t) {
        x = castTo(typeOf(v), w);
        if (x === undefined) {
          c.err ??= castError(w, typeOf(v), pos);
          return false;
        }
      }
      if (x === v) return !negated;
    }
    return negated;
  };
}

/**
 * Function call. Arguments are evaluated left to right, then cast to the parameter types (§3.7 rule 3), then the
 * implementation runs. A call no overload accepts evaluates to `false` + MissingFunctionError (§3.5) without
 * evaluating its arguments; it is also reported as a compile-time diagnostic.
 */
function compileCall(name: string, argExprs: readonly Expr[], pos: number, diagnostics: CesqlDiagnostic[]): CompiledNode {
  const f = resolveFunction(name, argExprs.length);
  if (f === undefined) {
    const arities = describeArities(name);
    const message =
      arities === undefined
        ? `unknown function ${name}`
        : `function ${name} takes ${arities} argument(s), not ${argExprs.length}`;
    diagnostics.push({ kind: "missingFunction", message, position: pos });
    const err = evalError("missingFunction", message, pos);
    return {
      fn: (c) => {
        c.err ??= err;
        return false;
      },
      type: "Boolean",
    };
  }
  const n = argExprs.length;
  const args = argExprs.map((a) => compileNode(a, diagnostics).fn);
  const params: ParamType[] = argExprs.map((_, i) => f.params[i] ?? f.variadic ?? "Any");
  const argPos = argExprs.map((a) => a.pos);
  const values: CesqlValue[] = new Array<CesqlValue>(n).fill(false); // reused: see the file comment
  const zero = zeroValue(f.returns);
  const impl = f.impl;
  return {
    fn: (c) => {
      for (let i = 0; i < n; i++) {
        const v = (args[i] as Evaluator)(c);
        if (c.err !== undefined) return zero;
        values[i] = v;
      }
      for (let i = 0; i < n; i++) {
        const t = params[i] as ParamType;
        const v = values[i] as CesqlValue;
        if (t === "Any" || typeOf(v) === t) continue;
        const x = castTo(t, v);
        if (x === undefined) {
          c.err ??= castError(v, t, argPos[i] as number);
          return zero;
        }
        values[i] = x;
      }
      return impl(c, pos, values);
    },
    type: f.returns,
  };
}
