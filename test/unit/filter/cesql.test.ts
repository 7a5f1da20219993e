/**
 * CESQL engine behaviour beyond the TCK: precedence, limits, overflow, LIKE and string edge cases, fail-fast
 * details, compile-time diagnostics. Each block names the spec section (CESQL v1) it pins down.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/event.js";
import { type CesqlResult, type CompileOptions, CesqlParseError, MAX_DEPTH, compileCesql } from "../../../src/filter/index.js";

function event(extra: Record<string, AttributeValue> = {}): CloudEvent {
  return { attributes: { specversion: "1.0", id: "i1", source: "src", type: "com.example.t", ...extra } };
}
const ev = event({ subject: "sub", myint: 10, mybool: true, myfloat: 1.5, mystr: "10" });

function run(expression: string, e: CloudEvent = ev, options?: CompileOptions): { value: unknown; error?: string } {
  const r: CesqlResult = compileCesql(expression, options).evaluate(e);
  return r.error === undefined ? { value: r.value } : { value: r.value, error: r.error.kind };
}

function parseError(expression: string, options?: CompileOptions): CesqlParseError {
  try {
    compileCesql(expression, options);
  } catch (err) {
    assert.ok(err instanceof CesqlParseError, String(err));
    return err;
  }
  assert.fail(`expected a parse error for ${expression}`);
}

describe("cesql - precedence (§3.6)", () => {
  test("multiplicative over additive over comparison", () => {
    assert.deepEqual(run("4 * 2 + 4 / 2 = 10"), { value: true });
    assert.deepEqual(run("- 2 * 3"), { value: -6 });
    assert.deepEqual(run("10 - 2 - 3"), { value: 5 }); // left to right
    assert.deepEqual(run("4 -1"), { value: 3 }); // the ANTLR lexer would glue "-1"; we do not
  });

  test("unary NOT binds tighter than comparisons and LIKE, as the spec orders them", () => {
    assert.deepEqual(run("NOT TRUE = FALSE"), { value: true }); // (NOT TRUE) = FALSE
    assert.deepEqual(run("NOT FALSE LIKE 'tr%'"), { value: true }); // (NOT FALSE) LIKE 'tr%'
    assert.deepEqual(run("subject NOT LIKE 'x%'"), { value: true });
  });

  test("LIKE and IN bind tighter than binary operators", () => {
    assert.deepEqual(run("1 + 2 LIKE '2'"), { value: 2 }); // 1 + (2 LIKE '2') = 1 + TRUE
    assert.deepEqual(run("1 + 2 IN (2)"), { value: 2 });
  });

  test("comparisons chain left to right", () => {
    assert.deepEqual(run("1 = 1 = TRUE"), { value: true });
    assert.deepEqual(run("2 = 2 = 2"), { value: false }); // (TRUE) = 2 → 1 = 2
  });

  test("mixing AND/OR/XOR without parentheses is rejected by default", () => {
    const err = parseError("TRUE OR TRUE AND FALSE");
    assert.equal(err.position, 13);
    assert.match(err.message, /OR and AND mixed without parentheses.* at 13$/);
    assert.deepEqual(run("TRUE OR (TRUE AND FALSE)"), { value: true });
    assert.deepEqual(run("(TRUE OR TRUE) AND FALSE"), { value: false });
    assert.deepEqual(run("TRUE AND TRUE AND FALSE"), { value: false });
    assert.deepEqual(run("TRUE XOR TRUE XOR TRUE"), { value: true });
  });

  test("allowMixedLogic reads them left to right, as §3.6 prose says", () => {
    assert.deepEqual(run("TRUE OR TRUE AND FALSE", ev, { allowMixedLogic: true }), { value: false });
    assert.deepEqual(run("FALSE AND TRUE OR TRUE", ev, { allowMixedLogic: true }), { value: true });
  });
});

describe("cesql - syntax", () => {
  test("parse errors name the offending token and its position", () => {
    const e = parseError("type = 'a' AND AND");
    assert.equal(e.message, 'unexpected token "AND" at 15');
    assert.equal(e.position, 15);
    assert.equal(parseError("ABC(").message, "unexpected end of expression at 4");
    assert.equal(parseError("").message, "empty expression at 0");
    assert.equal(parseError("   ").position, 3);
    assert.equal(parseError("a # b").position, 2);
    assert.equal(parseError("(a").message, 'expected ")" but found end of expression at 2');
    assert.equal(parseError("x IN ()").position, 6);
    assert.equal(parseError("EXISTS 1").position, 7);
    assert.equal(parseError("my_ext = 1").position, 0);
    assert.equal(parseError("F2(1)").position, 0);
    assert.equal(parseError("+ x").position, 0);
    assert.equal(parseError("x LIKE subject").position, 7);
  });

  test("integer literals must be 32-bit (§2.2)", () => {
    assert.deepEqual(run("2147483647"), { value: 2147483647 });
    assert.deepEqual(run("-2147483648"), { value: -2147483648 });
    assert.deepEqual(run("+5"), { value: 5 });
    assert.deepEqual(run("007"), { value: 7 });
    assert.deepEqual(run("-0"), { value: 0 });
    assert.equal(parseError("2147483648").position, 0);
    assert.equal(parseError("-2147483649").position, 1);
    assert.equal(parseError("99999999999999999999999").position, 0);
  });

  test("string literals: delimiter escapes, doubled delimiters, other backslashes kept", () => {
    assert.deepEqual(run("'it\\'s'"), { value: "it's" });
    assert.deepEqual(run("'it''s'"), { value: "it's" });
    assert.deepEqual(run('"say \\"hi\\""'), { value: 'say "hi"' });
    assert.deepEqual(run("'a\\\"b'"), { value: 'a\\"b' });
    assert.deepEqual(run("'a\\\\b'"), { value: "a\\\\b" });
    assert.equal(parseError("'abc\\'").position, 0);
  });

  test("keywords, function names and identifiers are case-insensitive; identifiers are looked up lower-case", () => {
    assert.deepEqual(run("SUBJECT = 'sub' and exists MyInt"), { value: true });
    assert.deepEqual(run("concat_ws('-', 'a', 'b')"), { value: "a-b" });
    assert.deepEqual(run("123abc"), { value: false, error: "missingAttribute" }); // a valid (digit-first) attribute name
  });

  test(`nesting deeper than ${MAX_DEPTH} is a parse error, not a stack overflow`, () => {
    assert.deepEqual(run(`${"(".repeat(100)}1${")".repeat(100)}`), { value: 1 });
    assert.ok(parseError(`${"(".repeat(5000)}1${")".repeat(5000)}`).position > 0);
    assert.ok(parseError(`${"NOT ".repeat(5000)}TRUE`).position > 0);
    assert.ok(parseError(`${"-".repeat(5000)}1`).position > 0);
    assert.deepEqual(run(Array(100).fill("1").join(" + ")), { value: 100 });
    assert.ok(parseError(Array(5000).fill("1").join(" + ")).position > 0);
    assert.ok(parseError(`${"ABS(".repeat(5000)}1${")".repeat(5000)}`).position > 0);
  });
});

describe("cesql - arithmetic (§3.4.2)", () => {
  test("truncated division and remainder with the dividend's sign", () => {
    assert.deepEqual(run("-7 / 2"), { value: -3 });
    assert.deepEqual(run("7 / -2"), { value: -3 });
    assert.deepEqual(run("-7 % 2"), { value: -1 });
    assert.deepEqual(run("7 % -2"), { value: 1 });
  });

  test("never yields negative zero", () => {
    for (const e of ["0 * -1", "-1 / 2", "-4 % 2", "-0", "-(0)", "0 - 0"]) {
      const r = compileCesql(e).evaluate(ev);
      assert.ok(Object.is(r.value, 0), `${e} gave ${String(r.value)}`);
    }
  });

  test("32-bit overflow is a MathError with a clamped value (consistent with ABS)", () => {
    assert.deepEqual(run("2147483647 + 1"), { value: 2147483647, error: "math" });
    assert.deepEqual(run("-2147483648 - 1"), { value: -2147483648, error: "math" });
    assert.deepEqual(run("65536 * 65536"), { value: 2147483647, error: "math" });
    assert.deepEqual(run("-2147483648 / -1"), { value: 2147483647, error: "math" });
    assert.deepEqual(run("--2147483648"), { value: 2147483647, error: "math" });
    assert.deepEqual(run("-2147483648 % -1"), { value: 0 });
    assert.deepEqual(run("(2147483647 + 1) = 0"), { value: false, error: "math" }); // enclosing operator: zero value
  });

  test("attributes keep their event types; non-int32 numbers are exposed as strings", () => {
    assert.deepEqual(run("myint * 2"), { value: 20 });
    assert.deepEqual(run("mystr * 2"), { value: 20 });
    assert.deepEqual(run("mybool AND TRUE"), { value: true });
    assert.deepEqual(run("myfloat"), { value: "1.5" });
    assert.deepEqual(run("myfloat + 1"), { value: 0, error: "cast" });
  });
});

describe("cesql - fail-fast error model (§3.3, §4.1)", () => {
  test("the first error wins and enclosing operators return their zero value", () => {
    assert.deepEqual(run("missing + (1 / 0)"), { value: 0, error: "missingAttribute" });
    assert.deepEqual(run("LEFT('abc', -1)"), { value: "abc", error: "functionEvaluation" });
    assert.deepEqual(run("LEFT('abc', -1) = 'abc'"), { value: false, error: "functionEvaluation" });
    assert.deepEqual(run("LENGTH(SUBSTRING('abc', 9))"), { value: 0, error: "functionEvaluation" });
    assert.deepEqual(run("CONCAT(ABS(-2147483648))"), { value: "", error: "math" });
  });

  test("operands are evaluated before they are cast", () => {
    assert.deepEqual(run("'a' + 1 / 0"), { value: 0, error: "math" });
    assert.deepEqual(run("'a' + 1"), { value: 0, error: "cast" });
    assert.deepEqual(run("'yes' AND FALSE"), { value: false, error: "cast" });
  });

  test("AND/OR short-circuit hides errors on the right; XOR does not", () => {
    assert.deepEqual(run("FALSE AND missing"), { value: false });
    assert.deepEqual(run("TRUE OR missing"), { value: true });
    assert.deepEqual(run("TRUE XOR missing"), { value: false, error: "missingAttribute" });
  });

  test("errors carry the position of the sub-expression that raised them", () => {
    const at = (e: string) => compileCesql(e).evaluate(ev).error?.position;
    assert.equal(at("missing = 1"), 0);
    assert.equal(at("1 + 1 / 0"), 6);
    assert.equal(at("TRUE AND LEFT('a', -1) = 'a'"), 9);
  });

  test("unknown functions compile with a diagnostic and fail at evaluation without evaluating arguments", () => {
    const c = compileCesql("TRUE OR NOPE(missing)");
    assert.equal(c.diagnostics.length, 1);
    assert.equal(c.diagnostics[0]?.position, 8);
    assert.deepEqual(c.evaluate(ev), { value: true });
    assert.deepEqual(run("NOPE(1 / 0)"), { value: false, error: "missingFunction" });
    assert.deepEqual(run("ABS(1, 2)"), { value: false, error: "missingFunction" });
    assert.deepEqual(compileCesql("ABS(1)").diagnostics, []);
  });
});

describe("cesql - LIKE (§3.4.3)", () => {
  // Backslashes pass through string literals untouched (only the delimiter is escaped), so no escaping here.
  const lit = (s: string) => `'${s.replace(/'/g, "''")}'`;
  const like = (value: string, pattern: string) => run(`${lit(value)} LIKE ${lit(pattern)}`).value;

  test("wildcards, escapes and literal backslashes", () => {
    assert.equal(like("", "%"), true);
    assert.equal(like("", "_"), false);
    assert.equal(like("abc", "%%"), true);
    assert.equal(like("100%", "100\\%"), true);
    assert.equal(like("1000", "100\\%"), false);
    assert.equal(like("a_b", "a\\_b"), true);
    assert.equal(like("axb", "a\\_b"), false);
    assert.equal(like("a\\b", "a\\b"), true);
    assert.equal(like("a.b.c", "a%b%c"), true);
    assert.equal(like("abcab", "%ab"), true);
    assert.equal(like("ab", "a%b%"), true);
    assert.equal(like("aXbYc", "a_b_c"), true);
    assert.equal(like("aXbYcZ", "%b_c%"), true);
    assert.equal(like("abab", "%ba%"), true);
    assert.equal(like("abab", "a%a%b"), true);
    assert.equal(like("abab", "a%a%a"), false);
  });

  test("_ is one code point", () => {
    assert.equal(like("😀", "_"), true);
    assert.equal(like("a😀b", "a_b"), true);
    assert.equal(like("a😀b", "a__b"), false);
    assert.equal(like("😀😀", "%_😀"), true);
  });

  test("pathological patterns stay fast (no regex backtracking)", () => {
    const value = "a".repeat(20000);
    const start = process.hrtime.bigint();
    assert.deepEqual(run("myext LIKE '%a%a%a%a%a%a%a%b'", event({ myext: value })), { value: false });
    assert.deepEqual(run("myext LIKE '%a_a_a_a%b'", event({ myext: value })), { value: false });
    assert.ok(process.hrtime.bigint() - start < 2_000_000_000n);
  });
});

describe("cesql - IN (§3.4.5)", () => {
  test("elements are cast to the left type and scanned left to right", () => {
    assert.deepEqual(run("myint IN ('10', 'x')"), { value: true });
    assert.deepEqual(run("myint IN ('x', '10')"), { value: false, error: "cast" });
    assert.deepEqual(run("myint NOT IN (1, 2)"), { value: true });
    assert.deepEqual(run("subject IN (id, type, 'sub')"), { value: true });
    assert.deepEqual(run("2 IN (1 + 1)"), { value: true });
    assert.deepEqual(run("subject IN (missing, 'sub')"), { value: false, error: "missingAttribute" });
    assert.deepEqual(run("subject IN ('sub', missing)"), { value: true });
  });
});

describe("cesql - functions (§3.5)", () => {
  test("code-point semantics", () => {
    assert.deepEqual(run("LENGTH('😀')"), { value: 1 });
    assert.deepEqual(run("LEFT('😀ab', 1)"), { value: "😀" });
    assert.deepEqual(run("RIGHT('ab😀', 1)"), { value: "😀" });
    assert.deepEqual(run("SUBSTRING('a😀b', 2, 1)"), { value: "😀" });
    assert.deepEqual(run("SUBSTRING('a😀b', -1)"), { value: "b" });
  });

  test("SUBSTRING bounds", () => {
    assert.deepEqual(run("SUBSTRING('abc', 3)"), { value: "c" });
    assert.deepEqual(run("SUBSTRING('abc', -3)"), { value: "abc" });
    assert.deepEqual(run("SUBSTRING('abc', 2, 100)"), { value: "bc" });
    assert.deepEqual(run("SUBSTRING('abc', 1, 0)"), { value: "" });
    assert.deepEqual(run("SUBSTRING('abc', 1, -1)"), { value: "", error: "functionEvaluation" });
    assert.deepEqual(run("SUBSTRING('', 0)"), { value: "" });
  });

  test("TRIM removes Unicode White_Space only", () => {
    assert.deepEqual(run("TRIM('\u00a0\u2003 x\u0085\t')"), { value: "x" });
    assert.deepEqual(run("LENGTH(TRIM('\ufeffx'))"), { value: 2 }); // U+FEFF is not white space
  });

  test("arguments are cast to parameter types", () => {
    assert.deepEqual(run("LEFT(12345, '2')"), { value: "12" });
    assert.deepEqual(run("LEFT('abc', 'x')"), { value: "", error: "cast" });
    assert.deepEqual(run("CONCAT(1, TRUE, 'x')"), { value: "1truex" });
    assert.deepEqual(run("UPPER(mybool)"), { value: "TRUE" });
  });

  test("IS_INT / IS_BOOL (draft functions kept as extensions)", () => {
    assert.deepEqual(run("IS_INT('42') AND IS_INT(7) AND NOT IS_INT('4.2')"), { value: true });
    assert.deepEqual(run("IS_BOOL('TRUE') AND IS_BOOL(0) AND NOT IS_BOOL('yes')"), { value: true });
  });
});

describe("cesql - compiled expression API", () => {
  test("resultType", () => {
    assert.equal(compileCesql("a = 1").resultType, "Boolean");
    assert.equal(compileCesql("1 + a").resultType, "Integer");
    assert.equal(compileCesql("CONCAT(a)").resultType, "String");
    assert.equal(compileCesql("a").resultType, "Any");
  });

  test("EXISTS: required attributes always exist; prototype names never do", () => {
    assert.deepEqual(run("EXISTS id AND EXISTS specversion", { attributes: {} }), { value: true });
    assert.deepEqual(run("EXISTS constructor"), { value: false });
    assert.deepEqual(run("constructor"), { value: false, error: "missingAttribute" });
    assert.deepEqual(run("EXISTS constructor AND constructor = 'x'", event({ constructor: "x" })), { value: true });
  });

  test("matches(): Boolean TRUE only, errors reported", () => {
    const seen: string[] = [];
    const c = compileCesql("myext = 'x'");
    assert.equal(c.matches(event({ myext: "x" }), (e) => seen.push(e.kind)), true);
    assert.equal(c.matches(event(), (e) => seen.push(e.kind)), false);
    assert.deepEqual(seen, ["missingAttribute"]);
    assert.equal(compileCesql("subject").matches(ev), false);
    assert.equal(compileCesql("mybool").matches(ev), true);
  });

  test("one compiled expression evaluates many events without leaking state", () => {
    const c = compileCesql("myext = 'x'");
    assert.deepEqual(c.evaluate(event()), { value: false, error: c.evaluate(event()).error });
    assert.deepEqual(c.evaluate(event({ myext: "x" })), { value: true });
  });
});
