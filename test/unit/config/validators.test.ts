import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { Ajv } from "ajv";
import { builtinRegistry } from "../../../connectors/index.js";
import { ConfigSchema } from "../../../src/config/schema.js";
import { AJV_OPTIONS, validatorFileName, validatorFor } from "../../../src/config/validators.js";

const registry = builtinRegistry();
const builtIn: [string, object][] = [
  ["config", ConfigSchema],
  ...registry.sourceTypes().map((t): [string, object] => [`source ${t}`, registry.source(t)!.schema]),
  ...registry.sinkTypes().map((t): [string, object] => [`sink ${t}`, registry.sink(t)!.schema]),
];

/**
 * What a validator leaves behind: its verdict, its errors and the value with defaults filled in.
 * As JSON: a precompiled validator's errors point at JSON copies of the schema, without TypeBox's
 * symbol keys, which the error translation never reads.
 */
function outcome(validate: (v: unknown) => boolean, errorsOf: () => unknown, value: unknown) {
  const copy = structuredClone(value);
  const ok = validate(copy);
  return JSON.parse(JSON.stringify({ ok, errors: errorsOf(), value: copy })) as unknown;
}

describe("config validators", () => {
  test("config validators - the build precompiled one for every built-in schema", () => {
    for (const [name, schema] of builtIn) {
      assert.ok(existsSync(new URL(`../../../src/config/validators/${validatorFileName(schema)}`, import.meta.url)), `${name}: run npm run build`);
    }
  });

  test("config validators - a precompiled validator answers as ajv's compiler does: verdict, errors, defaults", () => {
    const values: unknown[] = [
      {},
      { sources: {}, sinks: {}, routes: [] },
      { engine: { admin: { listen: 5 }, log: { level: "loud" } }, sources: { "bad id": {} }, sinks: [], routes: [{ from: 1, to: "x", buffer: { type: "disk" } }], extra: true },
      { sources: { a: { type: "http" } }, sinks: { b: { type: "stdout" } }, routes: [{ name: "r", from: "a", to: ["b"], max_in_flight: "many", retry: { initial: "5 parsecs" } }] },
    ];
    const connectorValues: unknown[] = [{}, { servers: 5, subject: "", mode: "neither", unknown_key: 1 }, { url: "http://x", listen: "127.0.0.1:1", path: "/" }];
    for (const [name, schema] of builtIn) {
      const fresh = new Ajv(AJV_OPTIONS).compile(schema);
      const pre = validatorFor(schema);
      for (const v of name === "config" ? values : connectorValues) {
        assert.deepEqual(
          outcome(pre, () => pre.errors, v),
          outcome(fresh, () => fresh.errors, v),
          `${name}: ${JSON.stringify(v)}`,
        );
      }
    }
  });

  test("config validators - a schema without a precompiled file is compiled on first use, then cached", () => {
    const schema = { type: "object", properties: { n: { type: "integer", default: 3 } }, additionalProperties: false };
    const validate = validatorFor(schema);
    assert.equal(validatorFor(schema), validate);
    const value: Record<string, unknown> = {};
    assert.equal(validate(value), true);
    assert.deepEqual(value, { n: 3 });
    assert.equal(validate({ m: 1 }), false);
    assert.equal(validate.errors?.[0]?.keyword, "additionalProperties");
  });
});
