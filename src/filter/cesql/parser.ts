/**
 * CESQL v1 parser: tokens → AST.
 *
 * Precedence (CESQL v1 §3.6, highest first), with the grammar rule each level maps to:
 *   1. atoms, `( … )`, function calls, `EXISTS id`          parsePrimary
 *   2. unary `NOT`, unary `-`                               parseUnary   (prefix; `NOT x LIKE 'a'` is `(NOT x) LIKE 'a'`)
 *   3. `[NOT] LIKE 'p'`, `[NOT] IN (…)`                     parsePostfix (bind tighter than every binary operator)
 *   4. `*` `/` `%`                                          parseBinary  (left to right)
 *   5. `+` `-`
 *   6. `=` `!=` `<>` `<` `<=` `>` `>=`
 *   7. `AND` `OR` `XOR` — one shared level
 *
 * Level 7 is ambiguous in the spec itself: the prose (§3.6) says equal precedence goes left to right, so
 * `a OR b AND c` is `(a OR b) AND c`, while `CESQLParser.g4` marks the rule right-associative, giving
 * `a OR (b AND c)` (which is also what SQL users expect). A filter that silently means something else than its
 * author thought is worse than a config error, so by default mixing different logic operators without
 * parentheses is a parse error; `allowMixedLogic: true` applies the prose (left to right). Chains of one
 * operator (`a AND b AND c`) are unaffected: every reading gives the same value and the same first error.
 */
import { type CesqlValue, INT_MAX } from "./casts.js";
import { CesqlParseError } from "./errors.js";
import { type Keyword, type Punct, type Token, describeToken, tokenize } from "./lexer.js";

/** Binary operators, as written (logic ones upper-cased). */
export type BinaryOperator =
  | "AND"
  | "OR"
  | "XOR"
  | "="
  | "!="
  | "<>"
  | "<"
  | "<="
  | ">"
  | ">="
  | "+"
  | "-"
  | "*"
  | "/"
  | "%";

/** AST node. `pos` is the 0-based offset of the token that names the operation (operator, name or literal). */
export type Expr =
  | { readonly kind: "literal"; readonly value: CesqlValue; readonly pos: number }
  /** Attribute access; `name` is lower-cased (the TCK's `EXISTS SOURCE` must find `source`). */
  | { readonly kind: "attribute"; readonly name: string; readonly pos: number }
  | { readonly kind: "not"; readonly operand: Expr; readonly pos: number }
  | { readonly kind: "negate"; readonly operand: Expr; readonly pos: number }
  | { readonly kind: "binary"; readonly op: BinaryOperator; readonly left: Expr; readonly right: Expr; readonly pos: number }
  /** `pattern` is the raw literal value; `\%` and `\_` are still escaped (see like.ts). */
  | { readonly kind: "like"; readonly operand: Expr; readonly pattern: string; readonly negated: boolean; readonly pos: number }
  | { readonly kind: "exists"; readonly name: string; readonly pos: number }
  | { readonly kind: "in"; readonly operand: Expr; readonly set: readonly Expr[]; readonly negated: boolean; readonly pos: number }
  /** Function call; `name` is upper-cased (function names are case-insensitive). */
  | { readonly kind: "call"; readonly name: string; readonly args: readonly Expr[]; readonly pos: number };

/** Parser options. */
export interface ParseOptions {
  /**
   * Accept `a OR b AND c` and read it left to right, as CESQL v1 §3.6 prose says. Default `false`: such an
   * expression is a parse error asking for parentheses (see the file comment).
   */
  readonly allowMixedLogic?: boolean;
}

/**
 * Deepest nesting accepted. Real filters nest a handful of levels; the cap keeps the recursive parser, the
 * compiler and the compiled closures far from the JS stack limit, so hostile input fails with a CesqlParseError
 * instead of a RangeError.
 */
export const MAX_DEPTH = 128;

const LOGIC: ReadonlySet<string> = new Set(["AND", "OR", "XOR"]);
const COMPARISON: ReadonlySet<string> = new Set(["=", "!=", "<>", "<", "<=", ">", ">="]);
const ADDITIVE: ReadonlySet<string> = new Set(["+", "-"]);
const MULTIPLICATIVE: ReadonlySet<string> = new Set(["*", "/", "%"]);

const IDENTIFIER = /^[A-Za-z0-9]+$/;
const FUNCTION_NAME = /^[A-Za-z][A-Za-z_]*$/;

/**
 * Parses a CESQL v1 expression.
 * @throws CesqlParseError with the offending offset.
 */
export function parse(source: string, options: ParseOptions = {}): Expr {
  const parser = new Parser(source, tokenize(source), options.allowMixedLogic === true);
  const expr = parser.parseExpression();
  parser.expectEnd();
  checkDepth(expr);
  return expr;
}

class Parser {
  private index = 0;
  private nesting = 0;

  constructor(
    private readonly source: string,
    private readonly tokens: Token[],
    private readonly allowMixedLogic: boolean,
  ) {}

  private peek(offset = 0): Token {
    // The token list always ends with `eof`; clamp so lookahead past it keeps returning `eof`.
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)] as Token;
  }

  private next(): Token {
    const t = this.peek();
    if (t.type !== "eof") this.index++;
    return t;
  }

  private isSymbol(t: Token, s: Punct): t is Token & { type: "symbol" } {
    return t.type === "symbol" && t.symbol === s;
  }

  private isKeyword(t: Token, k: Keyword): boolean {
    return t.type === "keyword" && t.keyword === k;
  }

  private unexpected(t: Token): CesqlParseError {
    return t.type === "eof"
      ? new CesqlParseError("unexpected end of expression", t.pos)
      : new CesqlParseError(`unexpected token ${describeToken(t, this.source)}`, t.pos);
  }

  private expectSymbol(s: Punct): Token {
    const t = this.next();
    if (!this.isSymbol(t, s)) {
      throw new CesqlParseError(`expected "${s}" but found ${describeToken(t, this.source)}`, t.pos);
    }
    return t;
  }

  private enter(pos: number): void {
    if (++this.nesting > MAX_DEPTH) throw new CesqlParseError(`expression nested deeper than ${MAX_DEPTH} levels`, pos);
  }

  private leave(): void {
    this.nesting--;
  }

  expectEnd(): void {
    const t = this.peek();
    if (t.type !== "eof") throw this.unexpected(t);
  }

  parseExpression(): Expr {
    return this.parseLogic();
  }

  private parseLogic(): Expr {
    let left = this.parseComparison();
    let first: string | undefined;
    for (;;) {
      const t = this.peek();
      if (t.type !== "keyword" || !LOGIC.has(t.keyword)) return left;
      if (first === undefined) first = t.keyword;
      else if (t.keyword !== first && !this.allowMixedLogic) {
        throw new CesqlParseError(
          `${first} and ${t.keyword} mixed without parentheses: CESQL v1 does not define which binds first, add parentheses`,
          t.pos,
        );
      }
      this.next();
      const right = this.parseComparison();
      left = { kind: "binary", op: t.keyword as BinaryOperator, left, right, pos: t.pos };
    }
  }

  private parseComparison(): Expr {
    return this.parseBinaryLevel(COMPARISON, () => this.parseAdditive());
  }

  private parseAdditive(): Expr {
    return this.parseBinaryLevel(ADDITIVE, () => this.parseMultiplicative());
  }

  private parseMultiplicative(): Expr {
    return this.parseBinaryLevel(MULTIPLICATIVE, () => this.parsePostfix());
  }

  /** One left-associative level of symbol operators. */
  private parseBinaryLevel(ops: ReadonlySet<string>, operand: () => Expr): Expr {
    let left = operand();
    for (;;) {
      const t = this.peek();
      if (t.type !== "symbol" || !ops.has(t.symbol)) return left;
      this.next();
      const right = operand();
      left = { kind: "binary", op: t.symbol as BinaryOperator, left, right, pos: t.pos };
    }
  }

  /** `x [NOT] LIKE 'p'` and `x [NOT] IN (…)`, applied left to right to a unary expression. */
  private parsePostfix(): Expr {
    let operand = this.parseUnary();
    for (;;) {
      let t = this.peek();
      let negated = false;
      if (this.isKeyword(t, "NOT")) {
        const after = this.peek(1);
        if (!this.isKeyword(after, "LIKE") && !this.isKeyword(after, "IN")) return operand; // caller reports it
        negated = true;
        this.next();
        t = after;
      }
      if (this.isKeyword(t, "LIKE")) {
        this.next();
        const p = this.next();
        if (p.type !== "string") {
          // CESQL v1 §3.4.3: the pattern MUST be a string literal, else a parse error (TCK `x LIKE 123`).
          throw new CesqlParseError(`LIKE needs a string literal pattern, found ${describeToken(p, this.source)}`, p.pos);
        }
        operand = { kind: "like", operand, pattern: p.value, negated, pos: t.pos };
      } else if (this.isKeyword(t, "IN")) {
        this.next();
        const set = this.parseList(false);
        operand = { kind: "in", operand, set, negated, pos: t.pos };
      } else {
        return operand;
      }
    }
  }

  private parseUnary(): Expr {
    const t = this.peek();
    if (this.isKeyword(t, "NOT")) {
      this.next();
      this.enter(t.pos);
      const operand = this.parseUnary();
      this.leave();
      return { kind: "not", operand, pos: t.pos };
    }
    if (this.isSymbol(t, "-") || this.isSymbol(t, "+")) {
      const after = this.peek(1);
      if (after.type === "int") {
        // A signed integer literal (spec EBNF `('+'|'-')? digit+`). Folding the sign here is what makes
        // `-2147483648` valid: its magnitude alone does not fit in an Integer.
        this.next();
        this.next();
        return { kind: "literal", value: this.integerValue(after, t.symbol === "-"), pos: t.pos };
      }
      if (t.symbol === "+") throw this.unexpected(t); // there is no unary plus operator
      this.next();
      this.enter(t.pos);
      const operand = this.parseUnary();
      this.leave();
      return { kind: "negate", operand, pos: t.pos };
    }
    return this.parsePrimary();
  }

  private parsePrimary(): Expr {
    const t = this.next();
    switch (t.type) {
      case "int":
        return { kind: "literal", value: this.integerValue(t, false), pos: t.pos };
      case "string":
        return { kind: "literal", value: t.value, pos: t.pos };
      case "keyword":
        if (t.keyword === "TRUE" || t.keyword === "FALSE") return { kind: "literal", value: t.keyword === "TRUE", pos: t.pos };
        if (t.keyword === "EXISTS") {
          const id = this.next();
          if (id.type !== "word" || !IDENTIFIER.test(id.text)) {
            throw new CesqlParseError(`EXISTS needs an attribute name, found ${describeToken(id, this.source)}`, id.pos);
          }
          return { kind: "exists", name: id.text.toLowerCase(), pos: t.pos };
        }
        throw this.unexpected(t);
      case "word":
        if (this.isSymbol(this.peek(), "(")) {
          if (!FUNCTION_NAME.test(t.text)) throw new CesqlParseError(`invalid function name "${t.text}"`, t.pos);
          const args = this.parseList(true);
          return { kind: "call", name: t.text.toUpperCase(), args, pos: t.pos };
        }
        if (!IDENTIFIER.test(t.text)) throw new CesqlParseError(`invalid attribute name "${t.text}"`, t.pos);
        return { kind: "attribute", name: t.text.toLowerCase(), pos: t.pos };
      case "symbol":
        if (t.symbol === "(") {
          this.enter(t.pos);
          const inner = this.parseExpression();
          this.leave();
          this.expectSymbol(")");
          return inner;
        }
        throw this.unexpected(t);
      case "eof":
        throw t.pos === 0 ? new CesqlParseError("empty expression", 0) : this.unexpected(t);
    }
  }

  /** `( e, … )`: a function argument list (may be empty) or an IN set (may not, CESQL v1 §3.4.5). */
  private parseList(allowEmpty: boolean): Expr[] {
    const open = this.expectSymbol("(");
    const items: Expr[] = [];
    if (this.isSymbol(this.peek(), ")")) {
      if (!allowEmpty) throw new CesqlParseError("IN needs at least one value", this.peek().pos);
      this.next();
      return items;
    }
    this.enter(open.pos);
    for (;;) {
      items.push(this.parseExpression());
      const t = this.next();
      if (this.isSymbol(t, ")")) break;
      if (!this.isSymbol(t, ",")) throw new CesqlParseError(`expected "," or ")" but found ${describeToken(t, this.source)}`, t.pos);
    }
    this.leave();
    return items;
  }

  /** Integer literal value; out-of-range literals are parse errors (CESQL v1 §2.2: MUST be valid int32). */
  private integerValue(t: Token & { type: "int" }, negative: boolean): number {
    const digits = t.digits.replace(/^0+(?=[0-9])/, "");
    const magnitude = digits.length > 10 ? Infinity : Number(digits);
    if (magnitude > INT_MAX + (negative ? 1 : 0)) {
      throw new CesqlParseError(`integer literal ${negative ? "-" : ""}${t.digits} is outside the 32-bit range`, t.pos);
    }
    return negative ? -magnitude + 0 : magnitude; // `+ 0` turns -0 into 0
  }
}

/** Children of a node, for walks that must not recurse. */
export function children(e: Expr): readonly Expr[] {
  switch (e.kind) {
    case "literal":
    case "attribute":
    case "exists":
      return [];
    case "not":
    case "negate":
    case "like":
      return [e.operand];
    case "binary":
      return [e.left, e.right];
    case "in":
      return [e.operand, ...e.set];
    case "call":
      return e.args;
  }
}

/**
 * Rejects trees deeper than MAX_DEPTH. Needed on top of the parser's nesting counter because long operator
 * chains (`a+a+a+…`) are parsed by a loop but still produce a deep, left-leaning tree. Iterative on purpose.
 */
function checkDepth(root: Expr): void {
  const stack: Array<[Expr, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [e, d] = stack.pop() as [Expr, number];
    if (d > MAX_DEPTH) throw new CesqlParseError(`expression nested deeper than ${MAX_DEPTH} levels`, e.pos);
    for (const c of children(e)) stack.push([c, d + 1]);
  }
}
