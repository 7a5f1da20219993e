/**
 * Subscriptions API filter dialects: matching semantics, error reporting, compile-error locations and the JSON Schema.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/event.js";
import { BridgeError } from "../../../src/core/errors.js";
import {
  type CesqlEvalError,
  FilterCompileError,
  type FilterSpec,
  FilterSpecSchema,
  compileFilter,
} from "../../../src/filter/index.js";

function event(extra: Record<string, AttributeValue> = {}): CloudEvent {
  return {
    attributes: {
      specversion: "1.0",
      id: "e-1",
      source: "https://example.com/orders",
      type: "com.example.order.created",
      ...extra,
    },
  };
}

const ev = event({ subject: "orders/42.json", myint: 10, mybool: true, region: "eu-west-1" });

function matches(spec: FilterSpec, e: CloudEvent = ev): boolean {
  return compileFilter(spec)(e);
}

/** Compiles and returns the thrown FilterCompileError (fails if nothing or something else is thrown). */
function compileError(spec: unknown): FilterCompileError {
  try {
    compileFilter(spec as FilterSpec);
  } catch (err) {
    assert.ok(err instanceof FilterCompileError, `expected FilterCompileError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected ${JSON.stringify(spec)} to be rejected`);
}

describe("filter dialects - exact/prefix/suffix", () => {
  test("exact matches and mismatches, case-sensitively", () => {
    assert.equal(matches({ exact: { type: "com.example.order.created" } }), true);
    assert.equal(matches({ exact: { type: "com.example.order" } }), false);
    assert.equal(matches({ exact: { type: "COM.EXAMPLE.ORDER.CREATED" } }), false);
  });

  test("prefix matches and mismatches", () => {
    assert.equal(matches({ prefix: { type: "com.example." } }), true);
    assert.equal(matches({ prefix: { type: "com.other." } }), false);
    assert.equal(matches({ prefix: { type: "Com.example." } }), false);
  });

  test("suffix matches and mismatches", () => {
    assert.equal(matches({ suffix: { subject: ".json" } }), true);
    assert.equal(matches({ suffix: { subject: ".xml" } }), false);
    assert.equal(matches({ suffix: { subject: ".JSON" } }), false);
  });

  test("every listed attribute must match", () => {
    assert.equal(matches({ exact: { type: "com.example.order.created", region: "eu-west-1" } }), true);
    assert.equal(matches({ exact: { type: "com.example.order.created", region: "us-east-1" } }), false);
    assert.equal(matches({ prefix: { type: "com.example.", source: "https://" } }), true);
    assert.equal(matches({ prefix: { type: "com.example.", source: "http://" } }), false);
  });

  test("a missing attribute never matches", () => {
    assert.equal(matches({ exact: { myext: "x" } }), false);
    assert.equal(matches({ prefix: { myext: "x" } }), false);
    assert.equal(matches({ suffix: { myext: "x" } }), false);
    assert.equal(matches({ not: { exact: { myext: "x" } } }), true);
    // Names that exist on Object.prototype are still missing attributes.
    assert.equal(matches({ prefix: { constructor: "function" } }), false);
    assert.equal(matches({ exact: { constructor: "x" } }, event({ constructor: "x" })), true);
  });

  test("non-string attributes are compared on their canonical string form", () => {
    assert.equal(matches({ exact: { myint: "10" } }), true);
    assert.equal(matches({ exact: { myint: "010" } }), false);
    assert.equal(matches({ prefix: { myint: "1" } }), true);
    assert.equal(matches({ exact: { mybool: "true" } }), true);
    assert.equal(matches({ exact: { mybool: "TRUE" } }), false);
    assert.equal(matches({ suffix: { mybool: "ue" } }), true);
    assert.equal(matches({ exact: { negative: "-5" } }, event({ negative: -5 })), true);
  });
});

describe("filter dialects - all/any/not", () => {
  const yes: FilterSpec = { exact: { region: "eu-west-1" } };
  const no: FilterSpec = { exact: { region: "us-east-1" } };

  test("all", () => {
    assert.equal(matches({ all: [yes] }), true);
    assert.equal(matches({ all: [yes, yes, yes] }), true);
    assert.equal(matches({ all: [yes, no] }), false);
    assert.equal(matches({ all: [no] }), false);
  });

  test("any", () => {
    assert.equal(matches({ any: [no, yes] }), true);
    assert.equal(matches({ any: [yes] }), true);
    assert.equal(matches({ any: [no, no] }), false);
    assert.equal(matches({ any: [no] }), false);
  });

  test("not", () => {
    assert.equal(matches({ not: yes }), false);
    assert.equal(matches({ not: no }), true);
    assert.equal(matches({ not: { not: yes } }), true);
  });

  test("nesting", () => {
    const spec: FilterSpec = {
      all: [
        { prefix: { type: "com.example." } },
        { any: [{ suffix: { subject: ".xml" } }, { sql: "myint > 5" }] },
        { not: { exact: { region: "us-east-1" } } },
      ],
    };
    assert.equal(matches(spec), true);
    assert.equal(matches(spec, event({ subject: "a.json", myint: 1, region: "eu-west-1" })), false);
    assert.equal(matches(spec, event({ subject: "a.xml", myint: 1, region: "eu-west-1" })), true);
    assert.equal(matches(spec, event({ subject: "a.xml", myint: 1, region: "us-east-1" })), false);
  });
});

describe("filter dialects - sql", () => {
  test("true only when the result is Boolean TRUE", () => {
    assert.equal(matches({ sql: "type LIKE 'com.example.%' AND EXISTS subject" }), true);
    assert.equal(matches({ sql: "type LIKE 'com.other.%'" }), false);
    assert.equal(matches({ sql: "myint = 10 AND mybool" }), true);
    // A bare String attribute is a legal expression but not a Boolean: no match, and no error to report.
    const errors: CesqlEvalError[] = [];
    assert.equal(compileFilter({ sql: "region" }, (e) => errors.push(e))(ev), false);
    assert.deepEqual(errors, []);
  });

  test("an evaluation error makes the filter false and is reported", () => {
    const errors: CesqlEvalError[] = [];
    const f = compileFilter({ sql: "myext = 'x'" }, (e) => errors.push(e));
    assert.equal(f(ev), false);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]?.kind, "missingAttribute");
    assert.equal(errors[0]?.position, 0);

    const g = compileFilter({ all: [{ exact: { region: "eu-west-1" } }, { sql: "region + 1 = 2" }] }, (e) => errors.push(e));
    assert.equal(g(ev), false);
    assert.equal(errors[1]?.kind, "cast");

    const h = compileFilter({ sql: "myint / 0 = 0" }, (e) => errors.push(e));
    assert.equal(h(ev), false);
    assert.equal(errors[2]?.kind, "math");

    // Without a callback errors are just non-matches.
    assert.equal(compileFilter({ sql: "myext = 'x'" })(ev), false);
  });

  test("not over a failing sql filter is true (it negates the nested result)", () => {
    const errors: CesqlEvalError[] = [];
    assert.equal(compileFilter({ not: { sql: "myext = 'x'" } }, (e) => errors.push(e))(ev), true);
    assert.equal(errors.length, 1);
  });
});

describe("filter dialects - cesql (alias of sql)", () => {
  test("matches exactly like sql, nested too", () => {
    for (const expr of ["type LIKE 'com.example.%' AND EXISTS subject", "type LIKE 'com.other.%'", "myint = 10 AND mybool"]) {
      assert.equal(matches({ cesql: expr }), matches({ sql: expr }), expr);
    }
    assert.equal(matches({ all: [{ cesql: "myint = 10" }, { not: { cesql: "mybool = false" } }] }), true);
  });

  test("errors name the cesql key and the position inside the expression", () => {
    const err = compileError({ all: [{ exact: { type: "x" } }, { cesql: "type = 'a' AND AND" }] });
    assert.deepEqual(err.path, ["all", 1, "cesql"]);
    assert.equal(err.position, 15);
    assert.match(compileError({ cesql: "" }).message, /"cesql" needs a non-empty CESQL expression/);
  });
});

describe("filter dialects - compile errors", () => {
  test("are FilterCompileErrors with code CEB_CONFIG", () => {
    const err = compileError({ sql: "a AND" });
    assert.ok(err instanceof BridgeError);
    assert.equal(err.code, "CEB_CONFIG");
    assert.equal(err.retryable, false);
  });

  test("sql parse errors carry the path and the position inside the expression", () => {
    const a = compileError({ all: [{ exact: { type: "x" } }, { sql: "type = 'a' AND AND" }] });
    assert.deepEqual(a.path, ["all", 1, "sql"]);
    assert.equal(a.position, 15);
    assert.match(a.message, /unexpected token "AND" at 15/);

    const b = compileError({ any: [{ not: { sql: "x LIKE 123" } }] });
    assert.deepEqual(b.path, ["any", 0, "not", "sql"]);
    assert.equal(b.position, 7);

    const c = compileError({ sql: "subject = 'unterminated" });
    assert.deepEqual(c.path, ["sql"]);
    assert.equal(c.position, 10);

    const d = compileError({ sql: "a OR b AND c" });
    assert.equal(d.position, 7);
  });

  test("sql expressions that can never pass are rejected", () => {
    const unknown = compileError({ all: [{ sql: "type = 'a' AND NOPE(type)" }] });
    assert.deepEqual(unknown.path, ["all", 0, "sql"]);
    assert.equal(unknown.position, 15);
    assert.match(unknown.message, /unknown function NOPE/);

    const arity = compileError({ sql: "LEFT(type) = 'a'" });
    assert.equal(arity.position, 0);
    assert.match(arity.message, /LEFT takes 2/);

    const notBoolean = compileError({ sql: "1 + 1" });
    assert.deepEqual(notBoolean.path, ["sql"]);
    assert.match(notBoolean.message, /must produce a Boolean/);

    assert.deepEqual(compileError({ sql: "" }).path, ["sql"]);
    assert.deepEqual(compileError({ sql: 42 }).path, ["sql"]);
  });

  test("malformed specs point at the offending part", () => {
    assert.deepEqual(compileError({}).path, []);
    assert.deepEqual(compileError(null).path, []);
    assert.deepEqual(compileError({ exact: { type: "a" }, prefix: { type: "b" } }).path, []);
    assert.deepEqual(compileError({ regex: { type: "a" } }).path, ["regex"]);
    assert.deepEqual(compileError({ exact: {} }).path, ["exact"]);
    assert.deepEqual(compileError({ exact: ["type"] }).path, ["exact"]);
    assert.deepEqual(compileError({ prefix: { Type: "a" } }).path, ["prefix", "Type"]);
    assert.deepEqual(compileError({ suffix: { type: "" } }).path, ["suffix", "type"]);
    assert.deepEqual(compileError({ exact: { myint: 10 } }).path, ["exact", "myint"]);
    assert.deepEqual(compileError({ all: [] }).path, ["all"]);
    assert.deepEqual(compileError({ any: {} }).path, ["any"]);
    assert.deepEqual(compileError({ all: [{ exact: { type: "a" } }, { any: [{ not: {} }] }] }).path, ["all", 1, "any", 0, "not"]);
    assert.equal(compileError({ exact: {} }).position, undefined);
  });

  test("cyclic specs (YAML aliases) are rejected, not a stack overflow", () => {
    const cyclic: { not?: unknown } = {};
    cyclic.not = cyclic;
    assert.match(compileError(cyclic).message, /nested deeper/);
  });
});

describe("filter dialects - JSON Schema", () => {
  const validate = new Ajv({ allErrors: true, strict: false }).compile(FilterSpecSchema);

  test("accepts every dialect, nested", () => {
    const ok: unknown[] = [
      { exact: { type: "a", myext1: "b" } },
      { prefix: { source: "https://" } },
      { suffix: { subject: ".json" } },
      { all: [{ exact: { type: "a" } }] },
      { any: [{ not: { sql: "EXISTS subject" } }, { all: [{ suffix: { subject: "x" } }] }] },
      { sql: "type = 'a'" },
    ];
    for (const s of ok) assert.equal(validate(s), true, JSON.stringify(s));
  });

  test("rejects what compileFilter rejects structurally", () => {
    const bad: unknown[] = [
      {},
      { exact: {} },
      { exact: { Type: "a" } },
      { exact: { "my-ext": "a" } },
      { exact: { type: "" } },
      { exact: { type: 1 } },
      { all: [] },
      { any: [{}] },
      { not: [] },
      { sql: "" },
      { exact: { type: "a" }, sql: "true" },
      { regex: "a" },
    ];
    for (const s of bad) assert.equal(validate(s), false, JSON.stringify(s));
  });
});
