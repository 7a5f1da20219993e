/**
 * The TypeBox `Type` builders cebridge's schemas use, written out here. `@sinclair/typebox`'s entry
 * point loads about 200 modules, 60–130 ms of every start-up, to build a few hundred plain objects;
 * these builders make the same objects (the same keys in the same order, TypeBox's Kind, Optional and
 * Hint symbols) and carry TypeBox's own signatures, so `Static<>` still infers the config types and
 * TypeBox stays a type-only import. test/unit/core/type.test.ts compares every builder with TypeBox's.
 * A builder TypeBox has and this file lacks is a compile error at its first use: add it here.
 */
import type * as TypeBox from "@sinclair/typebox";

const Kind = Symbol.for("TypeBox.Kind");
const OptionalKind = Symbol.for("TypeBox.Optional");
const Hint = Symbol.for("TypeBox.Hint");
/** TypeBox's key pattern for `Type.Record(Type.String(), …)`. */
const PatternStringExact = "^(.*)$";

type Schema = Record<string | symbol, unknown>;
type Builders = Pick<
  typeof TypeBox.Type,
  "Array" | "Boolean" | "Integer" | "Literal" | "Object" | "Optional" | "Record" | "Recursive" | "String" | "Union" | "Unsafe"
>;

// TypeBox's CreateType in its default instance mode: options first, the type's own keys over them.
function create(schema: Schema, options?: object): Schema {
  return options !== undefined ? { ...options, ...schema } : schema;
}

// TypeBox's Clone: plain objects and arrays deeply, symbol keys included.
function clone(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(clone);
  if (value === null || typeof value !== "object") return value;
  const out: Schema = {};
  for (const key of Object.getOwnPropertyNames(value)) out[key] = clone((value as Schema)[key]);
  for (const key of Object.getOwnPropertySymbols(value)) out[key] = clone((value as Schema)[key]);
  return out;
}

let recursiveOrdinal = 0;

const builders = {
  String: (options?: object) => create({ [Kind]: "String", type: "string" }, options),
  Integer: (options?: object) => create({ [Kind]: "Integer", type: "integer" }, options),
  Boolean: (options?: object) => create({ [Kind]: "Boolean", type: "boolean" }, options),
  Literal: (value: string | number | boolean, options?: object) => create({ [Kind]: "Literal", const: value, type: typeof value }, options),
  Array: (items: Schema, options?: object) => create({ [Kind]: "Array", type: "array", items }, options),
  Optional(schema: Schema, enable?: boolean): Schema {
    if (enable === false) {
      const { [OptionalKind]: _dropped, ...rest } = schema;
      return rest;
    }
    return { ...schema, [OptionalKind]: "Optional" };
  },
  Object(properties: Record<string, Schema>, options?: object): Schema {
    const required = Object.keys(properties).filter((k) => properties[k]![OptionalKind] !== "Optional");
    const schema = required.length > 0 ? { [Kind]: "Object", type: "object", required, properties } : { [Kind]: "Object", type: "object", properties };
    return create(schema, options);
  },
  Union(types: Schema[], options?: object): Schema {
    if (types.length === 0) return create({ [Kind]: "Never", not: {} }, options);
    if (types.length === 1) return create(types[0]!, options);
    return create({ [Kind]: "Union", anyOf: types }, options);
  },
  Record(key: Schema, type: Schema, options: object = {}): Schema {
    if (key[Kind] !== "String") throw new TypeError("cebridge's Type.Record takes string keys only (see src/core/type.ts)");
    const pattern = typeof key["pattern"] === "string" ? key["pattern"] : PatternStringExact;
    return create({ [Kind]: "Record", type: "object", patternProperties: { [pattern]: type } }, options);
  },
  Unsafe: (options: Schema = {}) => create({ [Kind]: options[Kind] ?? "Unsafe" }, options),
  Recursive(callback: (self: Schema) => Schema, options: { $id?: string } = {}): Schema {
    if (options.$id === undefined) options.$id = `T${recursiveOrdinal++}`;
    const self = clone(callback({ [Kind]: "This", $ref: options.$id })) as Schema;
    self["$id"] = options.$id;
    return create({ [Hint]: "Recursive", ...self }, options);
  },
};

/** Drop-in for TypeBox's `Type`, limited to the builders above. */
export const Type: Builders = builders as unknown as Builders;
