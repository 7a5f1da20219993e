/**
 * Runs the CloudEvents SQL v1 TCK (`<shared>/vectors/cesql-tck/*.yaml`, 18 suites, 275 cases) against compileCesql.
 * Every case is its own test named `cesql tck - <suite file> - <case name>`.
 *
 * Loading notes (see `<shared>/vectors/README.md` and docs/cloudevents.md §8.8):
 * - YAML is read with the `core` schema, so unquoted timestamps stay strings and `result: FALSE` is a boolean.
 * - Under that schema a plain `expression: TRUE`, `expression: 0` or `expression: -10` would resolve to a boolean
 *   or a number. The expression under test is the text as written, so `expression` (and `name`, where
 *   `name: TRUE` and `name: true` would otherwise collide) is taken from the scalar's source string.
 * - `event` is a complete event; `eventOverrides` only some attributes, merged over a minimal valid event;
 *   neither means any valid event.
 * - A parse error (thrown CesqlParseError) is reported as value `false` + error `parse`, which is what the TCK
 *   lists for `x LIKE 123`; `ABC(` lists no result, so only the error kind is checked there.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { type Scalar, type YAMLMap, isMap, isScalar, isSeq, parseDocument } from "yaml";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/event.js";
import { type CesqlValue, CesqlParseError, compileCesql } from "../../../src/filter/index.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = process.env.CEBRIDGE_ROOT ?? path.resolve(here, "../../../..");
const shared = process.env.CEBRIDGE_SHARED ?? path.resolve(repoRoot, "../shared");
const tckDir = path.join(shared, "vectors", "cesql-tck");

interface TckCase {
  suite: string;
  name: string;
  expression: string;
  result?: CesqlValue;
  error?: string;
  event: CloudEvent;
}

/**
 * Cases where the TCK vector contradicts the CESQL v1 text. We follow the spec and assert our behaviour instead.
 *
 * not_operator - "Invalid int cast": the TCK expects `NOT 10` ⇒ `true` + `cast`. That is pre-v1 behaviour, when
 * Integer → Boolean was not a legal cast. CESQL v1 §3.7 (cast table) says Integer → Boolean MUST be supported
 * ("false if the integer is 0, true otherwise") and §3.7 rule 1.1 casts the operand of the unary, unambiguous `NOT`
 * to its parameter type, so `NOT 10` is `NOT TRUE` ⇒ `false`, no error. The same TCK agrees elsewhere: `BOOL(1)`,
 * `BOOL(100)`, `BOOL(-50)` ⇒ true with no error (casting_functions.yaml). Also, even a CastError would yield
 * `false` under fail-fast (§4.1), never `true`.
 */
const SPEC_OVERRIDES: Record<string, { result: CesqlValue; error?: string; why: string }> = {
  "not_operator - Invalid int cast": {
    result: false,
    why: "CESQL v1 §3.7: Integer → Boolean is a required cast (10 ⇒ true), so NOT 10 ⇒ false without error",
  },
};

const BASE_ATTRIBUTES: Record<string, AttributeValue> = {
  specversion: "1.0",
  id: "tck-id",
  source: "https://tck.example/source",
  type: "io.cloudevents.tck",
};

function toAttributes(obj: unknown): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  if (typeof obj !== "object" || obj === null) return out;
  for (const [k, v] of Object.entries(obj)) {
    if (k === "data" || k === "data_base64") continue; // CESQL never looks at data
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = v;
    else throw new Error(`unsupported attribute value for ${k}: ${JSON.stringify(v)}`);
  }
  return out;
}

/** The text of a scalar as written (see the file comment), or its string value. */
function sourceText(map: YAMLMap, key: string): string | undefined {
  const node = map.get(key, true) as Scalar | undefined;
  if (!isScalar(node)) return undefined;
  return typeof node.source === "string" ? node.source : String(node.value);
}

function loadSuites(): TckCase[] {
  const files = readdirSync(tckDir)
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  const cases: TckCase[] = [];
  for (const file of files) {
    const suite = file.replace(/\.yaml$/, "");
    const doc = parseDocument(readFileSync(path.join(tckDir, file), "utf8"), { schema: "core" });
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]?.message}`);
    const tests = doc.get("tests", true);
    if (!isSeq(tests)) throw new Error(`${file}: no tests list`);
    for (const item of tests.items) {
      if (!isMap(item)) throw new Error(`${file}: a test is not a map`);
      const plain = item.toJS(doc) as Record<string, unknown>;
      const name = sourceText(item, "name");
      const expression = sourceText(item, "expression");
      if (name === undefined || expression === undefined) throw new Error(`${file}: test without name or expression`);
      const attributes =
        plain.event !== undefined ? toAttributes(plain.event) : { ...BASE_ATTRIBUTES, ...toAttributes(plain.eventOverrides) };
      const c: TckCase = { suite, name, expression, event: { attributes } };
      if (plain.result !== undefined) c.result = plain.result as CesqlValue;
      if (plain.error !== undefined) c.error = String(plain.error);
      cases.push(c);
    }
  }
  return cases;
}

function run(expression: string, event: CloudEvent): { value: CesqlValue; error?: string } {
  try {
    const r = compileCesql(expression).evaluate(event);
    return r.error === undefined ? { value: r.value } : { value: r.value, error: r.error.kind };
  } catch (err) {
    if (err instanceof CesqlParseError) return { value: false, error: "parse" };
    throw err;
  }
}

let cases: TckCase[] = [];
let loadError: unknown;
try {
  cases = loadSuites();
} catch (err) {
  loadError = err;
}

// A missing or unreadable TCK must fail the run, not silently skip it.
test("cesql tck - suites load (18 suites, 275 cases)", () => {
  if (loadError !== undefined) {
    throw new Error(`cannot load the CESQL TCK from ${tckDir} (set CEBRIDGE_SHARED?)`, { cause: loadError });
  }
  assert.equal(new Set(cases.map((c) => c.suite)).size, 18);
  assert.equal(cases.length, 275);
});

for (const c of cases) {
  const id = `${c.suite} - ${c.name}`;
  test(`cesql tck - ${id}`, () => {
    const override = SPEC_OVERRIDES[id];
    const expected = override === undefined ? { result: c.result, error: c.error } : { result: override.result, error: override.error };
    const actual = run(c.expression, c.event);
    const where = `${c.expression}${override === undefined ? "" : ` (spec override: ${override.why})`}`;
    if (expected.result !== undefined) assert.deepEqual(actual.value, expected.result, `value of ${where}`);
    assert.equal(actual.error, expected.error, `error kind of ${where}`);
  });
}

test("cesql tck - every spec override names an existing case", () => {
  const ids = new Set(cases.map((c) => `${c.suite} - ${c.name}`));
  for (const id of Object.keys(SPEC_OVERRIDES)) assert.ok(ids.has(id), id);
});
