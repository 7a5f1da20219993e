/**
 * Fuzz tests for the filter layer (complementing test/unit/filter/cesql-fuzz.test.ts): CESQL on raw code
 * units and extreme nesting, Subscriptions API filter specs of any shape, and evaluation on events that
 * came out of the real parsers.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { parseStructured, type CloudEvent } from "../../src/cloudevents/index.js";
import { CESQL_ERROR_KINDS, CesqlParseError, compileCesql, compileFilter, FilterCompileError, type CompiledCesql, type FilterSpec } from "../../src/filter/index.js";
import { anyString, codeUnitString, mutatedEventObject, validEvent } from "./arbitraries.js";

/** Compiles; undefined for a CesqlParseError with a sane position; anything else fails the property. */
function tryCompile(source: string): CompiledCesql | undefined {
  const t0 = performance.now();
  try {
    return compileCesql(source);
  } catch (err) {
    if (!(err instanceof CesqlParseError)) {
      assert.fail(`compileCesql threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message} for ${JSON.stringify(source.slice(0, 300))}`);
    }
    assert.ok(Number.isInteger(err.position) && err.position >= 0 && err.position <= source.length, `position ${err.position} outside 0..${source.length}`);
    assert.equal(err.kind, "parse");
    assert.ok(err.message.length > 0);
    return undefined;
  } finally {
    const took = performance.now() - t0;
    // A hang guard (exponential backtracking would take minutes), not a speed assertion.
    assert.ok(took < 5_000, `compile took ${took.toFixed(0)} ms for ${JSON.stringify(source.slice(0, 100))}…`);
  }
}

/** Evaluation contract: never throws, a CESQL value, no internal error, `matches` agrees. */
function checkEvaluation(c: CompiledCesql, ev: CloudEvent): void {
  const r = c.evaluate(ev);
  assert.ok(["string", "number", "boolean"].includes(typeof r.value), `value ${String(r.value)}`);
  if (typeof r.value === "number") assert.ok(Number.isInteger(r.value) && r.value >= -2147483648 && r.value <= 2147483647, `int32 ${r.value}`);
  if (r.error !== undefined) {
    assert.ok(CESQL_ERROR_KINDS.includes(r.error.kind));
    assert.notEqual(r.error.kind, "generic", `internal error ${r.error.message} in ${c.expression}`);
  }
  assert.equal(c.matches(ev), r.value === true && r.error === undefined);
}

const TOKENS = [
  "(", ")", ",", " ", "AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "=", "!=", "<>", "<", "<=", ">", ">=", "+", "-", "*", "/", "%",
  "'", '"', "''", "\\", "'a'", '"b"', "'%'", "'_'", "1", "0", "-2147483648", "2147483648", "99999999999999999999", "TRUE", "false",
  "id", "source", "type", "subject", "myext", "constructor", "__proto__", "toString", "ABS", "LENGTH", "CONCAT", "CONCAT_WS", "SUBSTRING",
  "LOWER", "UPPER", "TRIM", "LEFT", "RIGHT", "INT", "BOOL", "STRING", "IS_INT", "IS_BOOL", "NOPE", "\u0000", "\ud800", "é", "😀", "\t", "\n",
];

test("fuzz - cesql compileCesql on arbitrary code units returns or throws CesqlParseError with a position inside the text", () => {
  fc.assert(
    fc.property(fc.oneof(codeUnitString(120), anyString(120), fc.array(fc.constantFrom(...TOKENS), { maxLength: 50 }).map((t) => t.join(""))), (s) => {
      tryCompile(s);
    }),
    { numRuns: 5000 },
  );
});

test("fuzz - cesql extreme nesting and long chains throw CesqlParseError, never overflow the stack", () => {
  const shapes: [string, (n: number) => string][] = [
    ["parens", (n) => "(".repeat(n) + "1" + ")".repeat(n)],
    ["unclosed parens", (n) => "(".repeat(n)],
    ["NOT chain", (n) => "NOT ".repeat(n) + "TRUE"],
    ["unary minus", (n) => "-".repeat(n) + "1"],
    ["minus with spaces", (n) => "- ".repeat(n) + "1"],
    ["function calls", (n) => "ABS(".repeat(n) + "1" + ")".repeat(n)],
    ["IN lists", (n) => "1 IN (".repeat(n) + "1" + ")".repeat(n)],
    ["left-assoc sum", (n) => Array(n).fill("1").join(" + ")],
    ["AND chain", (n) => Array(n).fill("TRUE").join(" AND ")],
    ["comparison chain", (n) => Array(n).fill("1").join(" = ")],
    ["LIKE chain", (n) => "'a'" + " LIKE 'a'".repeat(n)],
  ];
  fc.assert(
    fc.property(fc.constantFrom(...shapes), fc.oneof(fc.integer({ min: 1, max: 4_000 }), fc.constantFrom(127, 128, 129, 20_000)), ([, make], n) => {
      tryCompile(make(n));
    }),
    { numRuns: 300 },
  );
});

/** Any JSON-ish value, plus spec-shaped objects with garbage leaves. */
const filterSpec: fc.Arbitrary<unknown> = fc.letrec<{ spec: unknown }>((tie) => ({
  spec: fc.oneof(
    { maxDepth: 5, depthSize: "small" },
    fc.jsonValue({ maxDepth: 2 }),
    fc.record({ exact: fc.oneof(fc.dictionary(fc.oneof(fc.constantFrom("type", "id", "Bad", "", "my-ext", "constructor", "__proto__"), fc.string({ maxLength: 5 })), fc.oneof(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 1 }))), fc.jsonValue({ maxDepth: 1 })) }),
    fc.record({ prefix: fc.dictionary(fc.stringMatching(/^[a-z0-9]{1,6}$/), fc.string({ maxLength: 5 })) }),
    fc.record({ suffix: fc.oneof(fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 })), fc.constant(null)) }),
    fc.record({ sql: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom("EXISTS id", "type LIKE 'a%'", "1", "'x'", "NOPE(1)", "myext = 1", ""), fc.jsonValue({ maxDepth: 1 })) }),
    fc.record({ all: fc.oneof(fc.array(tie("spec"), { maxLength: 3 }), tie("spec")) }),
    fc.record({ any: fc.oneof(fc.array(tie("spec"), { maxLength: 3 }), tie("spec")) }),
    fc.record({ not: tie("spec") }),
    fc.tuple(tie("spec"), tie("spec")).map(([a, b]) => ({ ...(a as object), ...(b as object) })),
  ),
})).spec;

const oddEvents: fc.Arbitrary<CloudEvent> = fc.oneof(
  validEvent,
  fc.dictionary(fc.constantFrom("subject", "myext", "constructor", "tostring", "time", "id"), fc.oneof(fc.double(), fc.string({ maxLength: 5 }), fc.boolean(), fc.integer()), { maxKeys: 4 }).map((a) => ({
    attributes: { specversion: "1.0", id: "1", source: "/s", type: "t", ...a },
  })),
);

test("fuzz - cesql compileFilter on arbitrary specs returns a predicate or throws FilterCompileError pointing into the spec", () => {
  fc.assert(
    fc.property(filterSpec, fc.array(oddEvents, { minLength: 1, maxLength: 3 }), (spec, events) => {
      let predicate: ((e: CloudEvent) => boolean) | undefined;
      const errors: unknown[] = [];
      try {
        predicate = compileFilter(spec as FilterSpec, (e) => errors.push(e));
      } catch (err) {
        if (!(err instanceof FilterCompileError)) {
          assert.fail(`compileFilter threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message} for ${JSON.stringify(spec)}`);
        }
        assert.equal(err.code, "CEB_CONFIG");
        assert.ok(err.message.length > 0);
        // The path names existing places in the spec, except possibly its last segment (a dialect key).
        let node: unknown = spec;
        for (const seg of err.path.slice(0, -1)) {
          assert.ok(node !== null && typeof node === "object" && Object.hasOwn(node, seg), `path ${JSON.stringify(err.path)} leaves ${JSON.stringify(spec)}`);
          node = (node as Record<string | number, unknown>)[seg];
        }
        if (err.position !== undefined) assert.ok(Number.isInteger(err.position) && err.position >= 0);
        return;
      }
      for (const e of events) assert.equal(typeof predicate(e), "boolean");
      for (const e of errors) assert.notEqual((e as { kind: string }).kind, "generic");
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - cesql compiled expressions never throw on events produced by the parsers", () => {
  // Events exactly as the JSON parser hands them to routes (including mutated-but-valid ones).
  const parsed: fc.Arbitrary<CloudEvent> = fc.oneof(
    validEvent,
    mutatedEventObject.map((o) => {
      try {
        return parseStructured(JSON.stringify(o));
      } catch {
        return { attributes: { specversion: "1.0", id: "x", source: "/s", type: "t" } };
      }
    }),
  );
  const expr = fc.array(fc.constantFrom(...TOKENS.filter((t) => t !== "\u0000" && t !== "\ud800")), { minLength: 1, maxLength: 12 }).map((t) => t.join(" "));
  fc.assert(
    fc.property(expr, fc.array(parsed, { minLength: 1, maxLength: 3 }), (source, events) => {
      const c = tryCompile(source);
      if (c === undefined) return;
      for (const e of events) checkEvaluation(c, e);
    }),
    { numRuns: 3000 },
  );
});

test("fuzz - cesql evaluation of every valid expression shape is total on events with extensions of every type", () => {
  const attribute = fc.constantFrom("id", "source", "type", "subject", "time", "dataschema", "datacontenttype", "constructor", "myext", "n", "b");
  const atom = fc.oneof(attribute, fc.integer({ min: -2147483648, max: 2147483647 }).map(String), fc.constantFrom("TRUE", "FALSE", "''", "'1'", "'true'", "'%'", "'é'"));
  const exprArb = fc.letrec<{ e: string }>((tie) => ({
    e: fc.oneof(
      { maxDepth: 4, depthSize: "small" },
      atom,
      fc.tuple(tie("e"), fc.constantFrom("AND", "OR", "XOR", "=", "!=", "<", ">=", "+", "-", "*", "/", "%"), tie("e")).map(([a, op, b]) => `(${a} ${op} ${b})`),
      tie("e").map((a) => `NOT (${a})`),
      fc.tuple(fc.constantFrom("LENGTH", "LOWER", "UPPER", "TRIM", "ABS", "INT", "BOOL", "STRING", "IS_INT", "IS_BOOL"), tie("e")).map(([f, a]) => `${f}(${a})`),
      fc.tuple(fc.constantFrom("LEFT", "RIGHT", "SUBSTRING", "CONCAT"), tie("e"), tie("e")).map(([f, a, b]) => `${f}(${a}, ${b})`),
      fc.tuple(tie("e"), fc.array(tie("e"), { minLength: 1, maxLength: 3 })).map(([a, s]) => `(${a}) IN (${s.join(", ")})`),
      fc.tuple(tie("e"), fc.constantFrom("'%'", "'a%'", "'_'", "'\\%'", "''")).map(([a, p]) => `(${a}) LIKE ${p}`),
      attribute.map((a) => `EXISTS ${a}`),
    ),
  })).e;
  const events = validEvent.map((ev) => ({ attributes: { ...ev.attributes, n: -2147483648, b: true } }));
  fc.assert(
    fc.property(exprArb, events, (source, ev) => {
      const c = compileCesql(source);
      checkEvaluation(c, ev);
    }),
    { numRuns: 2000 },
  );
});
