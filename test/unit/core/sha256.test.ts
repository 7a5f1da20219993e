import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { sha256Hex } from "../../../src/core/sha256.js";
import { eventIdDigest } from "../../../src/cloudevents/id-digest.js";

test("sha256 - the one-shot digest is the hex SHA-256 of the UTF-8 text, as createHash gives it", () => {
  for (const s of ["", "urn:a\u00001", "é/日本語 😀", "x".repeat(5000)]) {
    assert.equal(sha256Hex(s), createHash("sha256").update(s, "utf8").digest("hex"), s.slice(0, 20));
  }
  // The known vector for "abc" (FIPS 180-2).
  assert.equal(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});

test("sha256 - an event's id digest joins source and id with U+0000, so the split is unambiguous", () => {
  const ev = (source: string, id: string) => ({ attributes: { specversion: "1.0", id, source, type: "t" } });
  assert.equal(eventIdDigest(ev("urn:a", "1")), createHash("sha256").update("urn:a\u00001").digest("hex"));
  assert.notEqual(eventIdDigest(ev("ab", "c")), eventIdDigest(ev("a", "bc")));
});
