import { test } from "node:test";
import assert from "node:assert/strict";
import { FormatError } from "../../../src/core/errors.js";
import { percentDecode, percentEncode } from "../../../src/cloudevents/percent.js";

test("percent - encodes the spec example code point-wise with upper-case hex", () => {
  assert.equal(percentEncode("Euro € 😀"), "Euro%20%E2%82%AC%20%F0%9F%98%80");
  assert.equal(percentDecode("Euro%20%E2%82%AC%20%F0%9F%98%80"), "Euro € 😀");
});

test("percent - encodes exactly space, quote, percent and non-printable-ASCII", () => {
  assert.equal(percentEncode('100% "quoted"'), "100%25%20%22quoted%22");
  assert.equal(percentEncode("a\tb\u007f\u0080"), "a%09b%7F%C2%80");
  assert.equal(percentEncode("é"), "%C3%A9");
});

test("percent - leaves readable values unchanged (same string)", () => {
  const s = "https://x/y?a=b&c=d#frag:@!$'()*+,;=~";
  assert.equal(percentEncode(s), s);
  assert.equal(percentDecode(s), s);
});

test("percent - round-trips awkward strings", () => {
  for (const s of ["%", '"', "100%", "%25", "a\"b\\c", "😀😀", "\u00a0", "ce-%zz", ""]) {
    assert.equal(percentDecode(percentEncode(s)), s, JSON.stringify(s));
  }
});

test("percent - decoding is tolerant: a % without two hex digits stays raw", () => {
  assert.equal(percentDecode("100%"), "100%");
  assert.equal(percentDecode("100%Z1"), "100%Z1");
  assert.equal(percentDecode("%4"), "%4");
  assert.equal(percentDecode("a%%41"), "a%A");
});

test("percent - decoding accepts lower-case hex and unnecessary escapes", () => {
  assert.equal(percentDecode("%e2%82%ac"), "€");
  assert.equal(percentDecode("%41%42c"), "ABc");
});

test("percent - decoding undoes a quoted-string before one round of percent-decoding", () => {
  assert.equal(percentDecode('"a b"'), "a b");
  assert.equal(percentDecode('"a\\"b\\\\c"'), 'a"b\\c');
  assert.equal(percentDecode('"%2541"'), "%41"); // exactly one round
  assert.equal(percentDecode('"unterminated'), '"unterminated');
});

test("percent - escapes that decode to invalid UTF-8 are refused, naming the value", () => {
  for (const bad of ["%C0%A0", "x%E2", "%FF", "%ED%A0%80"]) {
    assert.throws(() => percentDecode(bad), (e: unknown) => e instanceof FormatError && e.message.includes(JSON.stringify(bad)), bad);
  }
});

test("percent - a BOM escape is kept, not silently dropped", () => {
  assert.equal(percentDecode("%EF%BB%BFx"), "\ufeffx");
});
