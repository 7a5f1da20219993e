import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Type as TypeBox } from "@sinclair/typebox";
import { Type } from "../../../src/core/type.js";

/** The same objects, symbol keys included, and the same key order (what JSON output and digests see). */
function same(ours: unknown, theirs: unknown): void {
  assert.deepEqual(ours, theirs);
  assert.equal(JSON.stringify(ours), JSON.stringify(theirs));
}

describe("type builders", () => {
  test("type builders - scalars, literals and arrays match TypeBox, with and without options", () => {
    same(Type.String(), TypeBox.String());
    same(Type.String({ minLength: 1, pattern: "^a$", description: "d", default: "x" }), TypeBox.String({ minLength: 1, pattern: "^a$", description: "d", default: "x" }));
    same(Type.Integer({ minimum: 0 }), TypeBox.Integer({ minimum: 0 }));
    same(Type.Boolean({ default: false }), TypeBox.Boolean({ default: false }));
    same(Type.Literal("binary"), TypeBox.Literal("binary"));
    same(Type.Literal(3, { description: "n" }), TypeBox.Literal(3, { description: "n" }));
    same(Type.Array(Type.String(), { minItems: 1 }), TypeBox.Array(TypeBox.String(), { minItems: 1 }));
  });

  test("type builders - objects: required from non-optional keys, options first", () => {
    const ours = Type.Object({ a: Type.String(), b: Type.Optional(Type.Integer()) }, { additionalProperties: false, default: {} });
    const theirs = TypeBox.Object({ a: TypeBox.String(), b: TypeBox.Optional(TypeBox.Integer()) }, { additionalProperties: false, default: {} });
    same(ours, theirs);
    same(Type.Object({ b: Type.Optional(Type.String()) }), TypeBox.Object({ b: TypeBox.Optional(TypeBox.String()) }));
    same(Type.Optional(Type.String(), false), TypeBox.Optional(TypeBox.String(), false));
  });

  test("type builders - unions of none, one and many", () => {
    same(Type.Union([]), TypeBox.Union([]));
    same(Type.Union([Type.Literal("a")], { description: "one" }), TypeBox.Union([TypeBox.Literal("a")], { description: "one" }));
    same(Type.Union([Type.Literal("a"), Type.Integer()], { default: "a" }), TypeBox.Union([TypeBox.Literal("a"), TypeBox.Integer()], { default: "a" }));
  });

  test("type builders - records with string keys, with and without a pattern; other keys refused", () => {
    same(Type.Record(Type.String(), Type.String()), TypeBox.Record(TypeBox.String(), TypeBox.String()));
    same(
      Type.Record(Type.String({ pattern: "^[a-z]+$" }), Type.Integer(), { additionalProperties: false, minProperties: 1 }),
      TypeBox.Record(TypeBox.String({ pattern: "^[a-z]+$" }), TypeBox.Integer(), { additionalProperties: false, minProperties: 1 }),
    );
    assert.throws(() => Type.Record(Type.Integer() as never, Type.String()), TypeError);
  });

  test("type builders - unsafe and recursive schemas", () => {
    same(Type.Unsafe<number>({ anyOf: [{ type: "integer" }], "x-unit": "size" }), TypeBox.Unsafe<number>({ anyOf: [{ type: "integer" }], "x-unit": "size" }));
    const body = (self: unknown, T: typeof TypeBox) =>
      T.Union([T.Object({ not: self as never }, { additionalProperties: false }), T.Object({ all: T.Array(self as never, { minItems: 1 }) })], { description: "f" });
    same(
      Type.Recursive((self) => body(self, Type as never), { $id: "F", title: "Filter" }),
      TypeBox.Recursive((self) => body(self, TypeBox), { $id: "F", title: "Filter" }),
    );
  });
});
