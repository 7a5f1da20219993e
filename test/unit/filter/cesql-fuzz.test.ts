/**
 * Property tests for the CESQL engine: the compiler only ever returns or throws CesqlParseError (any input, bounded
 * length), and evaluation is total: it never throws, never reports an internal (`generic`) error and always yields
 * a CESQL value.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/event.js";
import { CESQL_ERROR_KINDS, CesqlParseError, compileCesql, type CompiledCesql } from "../../../src/filter/index.js";

const INT_MIN = -2147483648;
const INT_MAX = 2147483647;

/** Compiles; returns undefined on CesqlParseError and rethrows anything else (which fails the property). */
function tryCompile(source: string): CompiledCesql | undefined {
  try {
    return compileCesql(source);
  } catch (err) {
    if (!(err instanceof CesqlParseError)) throw err;
    assert.ok(Number.isInteger(err.position) && err.position >= 0 && err.position <= source.length, `position ${err.position}`);
    assert.equal(err.kind, "parse");
    return undefined;
  }
}

const TOKENS = [
  "(", ")", ",", "AND", "or", "Xor", "NOT", "LIKE", "not like", "IN", "EXISTS", "'a%'", '"b_"', "'\\%'", "''", "1", "0",
  "-", "+", "*", "/", "%", "=", "!=", "<>", "<", "<=", ">=", ">", "abc", "subject", "ABS", "CONCAT", "CONCAT_WS",
  "SUBSTRING", "true", "FALSE", "2147483648", "-2147483648", "'", '"', "\\", "_x", "x_1", "é", "😀", "\t", "\n",
];

test("cesql fuzz - compileCesql on arbitrary strings returns or throws CesqlParseError", () => {
  fc.assert(
    fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ maxLength: 200, unit: "binary" })), (s) => {
      tryCompile(s);
    }),
    { numRuns: 3000 },
  );
});

test("cesql fuzz - compileCesql on token soup returns or throws CesqlParseError", () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom(...TOKENS), { maxLength: 60 }),
      fc.constantFrom(" ", ""),
      (tokens, sep) => {
        tryCompile(tokens.join(sep).slice(0, 200));
      },
    ),
    { numRuns: 3000 },
  );
});

const ATTRIBUTE_NAMES = ["id", "source", "type", "subject", "time", "myint", "mybool", "myext", "missing"];

const attributeValue: fc.Arbitrary<AttributeValue> = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom("", "0", "-1", "10", "2147483648", "true", "FALSE", "a%b", "😀x", " 7 "),
  fc.integer({ min: INT_MIN, max: INT_MAX }),
  fc.constantFrom(0, -1, INT_MIN, INT_MAX),
  fc.boolean(),
);

const eventArb: fc.Arbitrary<CloudEvent> = fc
  .record({
    required: fc.record({ id: fc.string({ minLength: 1, maxLength: 8 }), type: fc.string({ minLength: 1, maxLength: 8 }) }),
    optional: fc.dictionary(fc.constantFrom("subject", "time", "myint", "mybool", "myext", "other1"), attributeValue, {
      maxKeys: 5,
    }),
  })
  .map(({ required, optional }) => ({
    attributes: { ...optional, specversion: "1.0", source: "https://example.com", ...required },
  }));

function quote(s: string): string {
  // Backslashes are doubled so a trailing one cannot escape the closing quote; quotes are doubled.
  return `'${s.replace(/\\/g, "\\\\").replace(/'/g, "''")}'`;
}

const atom: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...ATTRIBUTE_NAMES, "SUBJECT", "TRUE", "false", "0", "1", "-1", "2147483647", "-2147483648"),
  fc.integer({ min: INT_MIN, max: INT_MAX }).map(String),
  fc.string({ maxLength: 6 }).map(quote),
  fc.constantFrom("'true'", "'10'", "''", "'a%'"),
);

const pattern = fc.array(fc.constantFrom("a", "b", "%", "_", "\\%", "\\_", "1", "t", "😀"), { maxLength: 6 }).map((p) => quote(p.join("")));
const binop = fc.constantFrom("AND", "OR", "XOR", "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%");
const fnName = fc.constantFrom(
  "LENGTH", "CONCAT", "CONCAT_WS", "LOWER", "UPPER", "TRIM", "LEFT", "RIGHT", "SUBSTRING", "ABS", "INT", "BOOL",
  "STRING", "IS_INT", "IS_BOOL", "NOPE",
);

/** Syntactically valid expressions (binary operators are parenthesised, so mixed AND/OR never trips the parser). */
const expression = fc.letrec<{ e: string }>((tie) => ({
  e: fc.oneof(
    { maxDepth: 5, depthSize: "small" },
    atom,
    fc.tuple(tie("e"), binop, tie("e")).map(([a, op, b]) => `(${a} ${op} ${b})`),
    tie("e").map((a) => `NOT ${a}`),
    tie("e").map((a) => `-(${a})`),
    fc.tuple(tie("e"), fc.boolean(), pattern).map(([a, neg, p]) => `(${a}) ${neg ? "NOT " : ""}LIKE ${p}`),
    fc
      .tuple(tie("e"), fc.boolean(), fc.array(tie("e"), { minLength: 1, maxLength: 3 }))
      .map(([a, neg, set]) => `(${a}) ${neg ? "NOT " : ""}IN (${set.join(", ")})`),
    fc.constantFrom(...ATTRIBUTE_NAMES).map((n) => `EXISTS ${n}`),
    fc.tuple(fnName, fc.array(tie("e"), { maxLength: 3 })).map(([f, args]) => `${f}(${args.join(", ")})`),
  ),
})).e;

test("cesql fuzz - evaluate never throws and always returns a CESQL value", () => {
  fc.assert(
    fc.property(expression, fc.array(eventArb, { minLength: 1, maxLength: 3 }), (source, events) => {
      const compiled = compileCesql(source); // generated expressions are valid: must not throw at all
      for (const e of events) {
        const r = compiled.evaluate(e);
        const again = compiled.evaluate(e);
        assert.deepEqual(again, r, "evaluation is deterministic (no state leaks between calls)");
        const v = r.value;
        if (typeof v === "number") {
          assert.ok(Number.isInteger(v) && v >= INT_MIN && v <= INT_MAX, `int32 result, got ${v}`);
          assert.ok(!Object.is(v, -0), "no negative zero");
        } else {
          assert.ok(typeof v === "string" || typeof v === "boolean", `value type ${typeof v}`);
        }
        if (r.error !== undefined) {
          assert.ok(CESQL_ERROR_KINDS.includes(r.error.kind), r.error.kind);
          assert.notEqual(r.error.kind, "generic", `internal error: ${r.error.message} in ${source}`);
        }
        assert.equal(compiled.matches(e), r.value === true && r.error === undefined);
      }
    }),
    { numRuns: 2000 },
  );
});

test("cesql fuzz - evaluate on arbitrary compilable strings and odd events never throws", () => {
  const oddEvent: fc.Arbitrary<CloudEvent> = fc.oneof(
    eventArb,
    // Outside the event model (floats, huge numbers, prototype names): must still be total.
    fc
      .dictionary(fc.constantFrom("subject", "myint", "constructor", "tostring"), fc.oneof(fc.double(), fc.string(), fc.boolean()), {
        maxKeys: 4,
      })
      .map((a) => ({ attributes: { specversion: "1.0", id: "1", source: "s", type: "t", ...a } })),
  );
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...TOKENS, ...ATTRIBUTE_NAMES, "constructor"), { maxLength: 30 }), oddEvent, (tokens, e) => {
      const compiled = tryCompile(tokens.join(" "));
      if (compiled === undefined) return;
      const r = compiled.evaluate(e);
      assert.ok(["string", "number", "boolean"].includes(typeof r.value));
      assert.notEqual(r.error?.kind, "generic");
    }),
    { numRuns: 3000 },
  );
});
