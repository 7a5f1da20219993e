import { test } from "node:test";
import assert from "node:assert/strict";
import {
  charsetOf,
  isBatchMediaType,
  isJsonMediaType,
  isStructuredMediaType,
  isTextMediaType,
  mediaEssence,
} from "../../../src/cloudevents/media.js";

test("media - essence is lower-cased type/subtype without parameters", () => {
  assert.equal(mediaEssence(" Application/JSON ; charset=UTF-8"), "application/json");
  assert.equal(mediaEssence(undefined), undefined);
  assert.equal(mediaEssence("  "), undefined);
});

test("media - JSON types are */json and */*+json after stripping parameters", () => {
  for (const ct of ["application/json", "text/json", "application/cloudevents+json", "application/vnd.foo+json; charset=utf-8", "APPLICATION/JSON"]) {
    assert.equal(isJsonMediaType(ct), true, ct);
  }
  for (const ct of ["application/json-seq", "text/plain", "application/jsonx", undefined, ""]) {
    assert.equal(isJsonMediaType(ct), false, String(ct));
  }
});

test("media - text types are text/*, XML, or any type with a charset", () => {
  for (const ct of ["text/plain", "TEXT/CSV", "application/xml", "application/atom+xml", "application/octet-stream; charset=utf-8"]) {
    assert.equal(isTextMediaType(ct), true, ct);
  }
  for (const ct of ["application/octet-stream", "image/png", "application/json", undefined]) {
    assert.equal(isTextMediaType(ct), false, String(ct));
  }
});

test("media - structured and batch detection is case-insensitive and batch is not structured", () => {
  assert.equal(isStructuredMediaType("application/cloudevents+json; charset=UTF-8"), true);
  assert.equal(isStructuredMediaType("Application/CloudEvents+JSON"), true);
  assert.equal(isStructuredMediaType("application/cloudevents-batch+json"), false);
  assert.equal(isStructuredMediaType("application/json"), false);
  assert.equal(isStructuredMediaType(undefined), false);
  assert.equal(isBatchMediaType("APPLICATION/CLOUDEVENTS-BATCH+json"), true);
  assert.equal(isBatchMediaType("application/cloudevents+json"), false);
  assert.equal(isBatchMediaType(undefined), false);
});

test("media - charset is found, unquoted and lower-cased", () => {
  assert.equal(charsetOf("text/plain; CharSet=UTF-8"), "utf-8");
  assert.equal(charsetOf('text/plain; foo="a;b"; charset="ISO-8859-1"'), "iso-8859-1");
  assert.equal(charsetOf("text/plain"), undefined);
  assert.equal(charsetOf(undefined), undefined);
});
