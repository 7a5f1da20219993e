import { test } from "node:test";
import assert from "node:assert/strict";
import { EventValidationError, FormatError } from "../../../src/core/errors.js";
import { decodeCeHeaders, encodeCeHeaders } from "../../../src/cloudevents/headers.js";
import { makeEvent } from "../../../src/cloudevents/event.js";

const ev = makeEvent({
  specversion: "1.0",
  id: "A 1",
  source: "https://x/y",
  type: "t",
  datacontenttype: "text/plain; charset=utf-8",
  count: 42,
  flag: true,
  note: "Euro € 😀",
});

test("headers - encode uses lower-case prefixed names, canonical strings, percent-encoded values", () => {
  assert.deepEqual(encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: false }), [
    ["ce-specversion", "1.0"],
    ["ce-id", "A%201"],
    ["ce-source", "https://x/y"],
    ["ce-type", "t"],
    ["ce-count", "42"],
    ["ce-flag", "true"],
    ["ce-note", "Euro%20%E2%82%AC%20%F0%9F%98%80"],
  ]);
});

test("headers - encode includes datacontenttype only when asked", () => {
  const h = encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: true });
  assert.deepEqual(h.find(([n]) => n === "ce-datacontenttype"), ["ce-datacontenttype", "text/plain;%20charset=utf-8"]);
});

test("headers - decode round-trips encode; extensions stay strings", () => {
  const decoded = decodeCeHeaders(encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: true }), "ce-");
  assert.deepEqual(decoded, {
    specversion: "1.0", id: "A 1", source: "https://x/y", type: "t",
    datacontenttype: "text/plain; charset=utf-8", count: "42", flag: "true", note: "Euro € 😀",
  });
});

test("headers - decode matches the prefix case-insensitively and ignores other headers", () => {
  const decoded = decodeCeHeaders([["CE-ID", "1"], ["Ce-SpecVersion", "1.0"], ["content-type", "x/y"], ["cex", "1"], ["x-ce-a", "b"]], "ce-");
  assert.deepEqual(decoded, { id: "1", specversion: "1.0" });
});

test("headers - decode is tolerant of raw % and quoted-strings", () => {
  assert.deepEqual(decodeCeHeaders([["ce-rate", "100%"], ["ce-q", '"a b"']], "ce-"), { rate: "100%", q: "a b" });
});

test("headers - decode accepts names like constructor as attributes", () => {
  assert.deepEqual(decodeCeHeaders([["ce-constructor", "x"], ["ce-tostring", "y"]], "ce-"), { constructor: "x", tostring: "y" });
});

test("headers - decode rejects a header whose rest is not an attribute name, naming the header", () => {
  assert.throws(() => decodeCeHeaders([["ce-my-ext", "1"]], "ce-"), (e: unknown) => e instanceof EventValidationError && e.message.includes('"ce-my-ext"'));
  assert.throws(() => decodeCeHeaders([["ce-", "1"]], "ce-"), EventValidationError);
});

test("headers - decode rejects a duplicated attribute", () => {
  assert.throws(() => decodeCeHeaders([["ce-id", "1"], ["CE-Id", "2"]], "ce-"), (e: unknown) => e instanceof EventValidationError && /more than once/.test(e.message));
});

test("headers - decode rejects escapes that are invalid UTF-8, naming the header", () => {
  assert.throws(() => decodeCeHeaders([["ce-id", "%C0%A0"]], "ce-"), (e: unknown) => e instanceof FormatError && e.message.startsWith('header "ce-id"'));
});

test("headers - percent: false sends and reads values as they are (Pub/Sub attributes)", () => {
  const h = encodeCeHeaders(ev, { prefix: "ce-", includeDatacontenttype: true, percent: false });
  assert.deepEqual(h.find(([n]) => n === "ce-note"), ["ce-note", "Euro € 😀"]);
  assert.deepEqual(h.find(([n]) => n === "ce-id"), ["ce-id", "A 1"]);
  assert.deepEqual(decodeCeHeaders([["ce-id", "100%41"], ["ce-q", '"a b"'], ["ce-note", "Euro € 😀"]], "ce-", { percent: false }), {
    id: "100%41",
    q: '"a b"',
    note: "Euro € 😀",
  });
});
