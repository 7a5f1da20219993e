import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { escapeExtensionName, isValidAttributeName } from "../../../src/cloudevents/index.js";

/** The inverse of the escaping, written here only to prove that no two names collide. */
function unescape(escaped: string): string {
  let out = "";
  for (let i = 0; i < escaped.length; ) {
    if (escaped[i] !== "z") {
      out += escaped[i++];
      continue;
    }
    const width = escaped[i + 1] !== "z" ? 2 : escaped[i + 2] !== "z" ? 4 : 6;
    const start = i + (width === 2 ? 1 : width === 4 ? 2 : 3);
    out += String.fromCodePoint(Number.parseInt(escaped.slice(start, start + width), 16));
    i = start + width;
  }
  return out;
}

describe("extension names", () => {
  test("extension names - fixture table", () => {
    const table: [string, string][] = [
      ["X-Tenant", "natsxz2dtenant"],
      ["x_tenant", "natsxz5ftenant"],
      ["zone", "natsz7aone"],
      ["Größe", "natsgrzf6zdfe"],
      ["€", "natszz20ac"],
      ["😀", "natszzz01f600"],
    ];
    for (const [name, expected] of table) assert.equal(escapeExtensionName("nats", name), expected, name);
  });

  test("extension names - always a valid attribute name, and collision-free", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }), fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }), (a, b) => {
        const ea = escapeExtensionName("x", a);
        assert.ok(isValidAttributeName(ea), ea);
        assert.equal(unescape(ea.slice(1)), a.toLowerCase());
        if (a.toLowerCase() !== b.toLowerCase()) assert.notEqual(ea, escapeExtensionName("x", b));
      }),
      { numRuns: 2000 },
    );
  });
});
