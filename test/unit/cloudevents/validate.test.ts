import { test } from "node:test";
import assert from "node:assert/strict";
import { EventValidationError } from "../../../src/core/errors.js";
import type { AttributeValue, CloudEvent } from "../../../src/cloudevents/event.js";
import {
  checkAttribute,
  isBase64,
  isRfc3339,
  isValidAttributeName,
  validateEvent,
} from "../../../src/cloudevents/validate.js";

const BASE = { specversion: "1.0", id: "1", source: "https://example.com/x", type: "com.example.t" };

function ev(extra: Record<string, unknown>): CloudEvent {
  return { attributes: { ...BASE, ...extra } as Record<string, AttributeValue> };
}

function rejects(extra: Record<string, unknown>, attribute: string, fragment?: string): void {
  assert.throws(
    () => validateEvent(ev(extra)),
    (e: unknown) =>
      e instanceof EventValidationError &&
      e.attribute === attribute &&
      e.message.startsWith(`attribute "${attribute}"`) &&
      (fragment === undefined || e.message.includes(fragment)),
    JSON.stringify(extra),
  );
}

function accepts(extra: Record<string, unknown>): void {
  const e = ev(extra);
  assert.equal(validateEvent(e), e, JSON.stringify(extra));
}

test("validate - a minimal event is returned as the same object", () => {
  accepts({});
});

test("validate - attribute names are [a-z0-9]+ and not data", () => {
  for (const n of ["abc", "a1", "1a", "x".repeat(40)]) assert.equal(isValidAttributeName(n), true, n);
  for (const n of ["", "Abc", "a-b", "a_b", "é", "data", " a"]) assert.equal(isValidAttributeName(n), false, n);
  accepts({ myext1: "x" });
  assert.throws(() => validateEvent(ev({ "My-Ext": "x" })), (e: unknown) => e instanceof EventValidationError && e.attribute === "My-Ext");
  assert.throws(() => validateEvent(ev({ data: "x" })), /reserved/);
});

test("validate - required attributes must be present", () => {
  for (const name of ["specversion", "id", "source", "type"]) {
    const attributes: Record<string, AttributeValue> = { ...BASE };
    delete attributes[name];
    assert.throws(() => validateEvent({ attributes }), (e: unknown) => e instanceof EventValidationError && e.attribute === name && /missing/.test(e.message));
  }
});

test("validate - specversion must be 1.0", () => {
  rejects({ specversion: "0.3" }, "specversion", 'must be "1.0"');
  rejects({ specversion: "" }, "specversion");
});

test("validate - id and type must be non-empty strings", () => {
  rejects({ id: "" }, "id", "non-empty");
  rejects({ type: "" }, "type", "non-empty");
  rejects({ id: 5 }, "id", "must be a string");
  accepts({ id: "x y z", type: "t" });
});

test("validate - source is a non-empty URI-reference", () => {
  for (const s of ["https://github.com/cloudevents", "mailto:cncf@lists.cncf.io", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66",
    "/cloudevents/spec/pull/123", "1-555-123-4567", "cloudevents/spec/pull/123", "//pubsub.googleapis.com/projects/p/topics/t",
    "nats://h:4222/a.b", "http://[::1]:8080/x?q=1#f", "a%20b"]) accepts({ source: s });
  rejects({ source: "" }, "source", "non-empty");
  rejects({ source: "a b" }, "source", "URI-reference");
  rejects({ source: "a:b c" }, "source", "URI-reference");
  rejects({ source: "%zz" }, "source");
  rejects({ source: "1a:b" }, "source"); // a colon in the first segment needs a valid scheme
  rejects({ source: true }, "source", "must be a string");
});

test("validate - dataschema is a non-empty absolute URI", () => {
  accepts({ dataschema: "https://example.com/schema.json" });
  accepts({ dataschema: "urn:example:schema" });
  rejects({ dataschema: "/relative/schema" }, "dataschema", "absolute URI");
  rejects({ dataschema: "" }, "dataschema", "non-empty");
});

test("validate - subject is non-empty when present", () => {
  accepts({ subject: "blob.jpg" });
  rejects({ subject: "" }, "subject", "non-empty");
});

test("validate - time is RFC 3339 with a real calendar date", () => {
  for (const t of ["2018-04-05T17:31:00Z", "2018-04-05t17:31:00z", "2018-04-05T17:31:00.123456789+05:30", "2020-02-29T00:00:00Z",
    "2000-02-29T00:00:00-00:00", "2016-12-31T23:59:60Z", "2020-12-31T23:59:59+23:59", "0000-01-01T00:00:00Z"]) {
    assert.equal(isRfc3339(t), true, t);
  }
  for (const t of ["2020-13-01T00:00:00Z", "2020-00-10T00:00:00Z", "2021-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2020-04-31T00:00:00Z",
    "2020-01-32T00:00:00Z", "2020-01-01T24:00:00Z", "2020-01-01T00:60:00Z", "2020-01-01T00:00:61Z", "2020-01-01T00:00:00",
    "2020-01-01 00:00:00Z", "2020-01-01T00:00:00.Z", "2020-01-01T00:00:00+0100", "2020-01-01T00:00:00+24:00", "2020-01-01",
    "2020-01-01T00:00:00Z ", "20-01-01T00:00:00Z"]) {
    assert.equal(isRfc3339(t), false, t);
  }
  accepts({ time: "2020-02-29T12:00:00Z" });
  assert.throws(() => validateEvent(ev({ time: "2020-13-01" })), {
    message: 'attribute "time": must be an RFC 3339 timestamp, got "2020-13-01"',
  });
});

test("validate - datacontenttype follows RFC 2046 syntax", () => {
  for (const ct of ["application/json", "text/plain; charset=utf-8", 'text/plain;charset="utf-8"', "application/vnd.a+json", "multipart/form-data; boundary=x"]) {
    accepts({ datacontenttype: ct });
  }
  rejects({ datacontenttype: "json" }, "datacontenttype", "RFC 2046");
  rejects({ datacontenttype: "" }, "datacontenttype");
  rejects({ datacontenttype: "text/plain; charset" }, "datacontenttype");
  rejects({ datacontenttype: "text /plain" }, "datacontenttype");
});

test("validate - Integer extensions must be whole numbers within int32", () => {
  accepts({ count: 2147483647 });
  accepts({ count: -2147483648 });
  accepts({ count: 0 });
  rejects({ count: 2147483648 }, "count", "Integer");
  rejects({ count: -2147483649 }, "count", "Integer");
  rejects({ count: 1.5 }, "count", "Integer");
  rejects({ count: Number.NaN }, "count", "Integer");
  rejects({ count: Number.POSITIVE_INFINITY }, "count", "Integer");
});

test("validate - Boolean extensions are allowed, but core attributes must be strings", () => {
  accepts({ flag: true, other: false });
  rejects({ subject: true }, "subject", "must be a string");
  rejects({ time: 1 }, "time", "must be a string");
  rejects({ obj: { a: 1 } }, "obj", "string, boolean or integer");
});

test("validate - String rejects C0 and C1 controls", () => {
  accepts({ ext: "tab-free ~ \u00a0 text" });
  for (const [s, cp] of [["a\u0000", "U+0000"], ["a\nb", "U+000A"], ["\u001f", "U+001F"], ["\u007f", "U+007F"], ["x\u0085", "U+0085"], ["\u009f", "U+009F"]]) {
    rejects({ ext: s }, "ext", `control character ${cp}`);
  }
  rejects({ id: "a\tb" }, "id", "control character");
});

test("validate - String rejects noncharacters in the BMP and every plane", () => {
  accepts({ ext: "\ufdcf\ufdf0\ufffd" });
  accepts({ ext: "😀 \u{1fffd}" });
  for (const [s, cp] of [["\ufdd0", "U+FDD0"], ["\ufdef", "U+FDEF"], ["\ufffe", "U+FFFE"], ["\uffff", "U+FFFF"],
    ["\u{1fffe}", "U+1FFFE"], ["\u{2ffff}", "U+2FFFF"], ["\u{10ffff}", "U+10FFFF"]]) {
    rejects({ ext: s }, "ext", `noncharacter ${cp}`);
  }
});

test("validate - String rejects unpaired surrogates", () => {
  accepts({ ext: "\ud83d\ude00" });
  rejects({ ext: "a\ud83d" }, "ext", "unpaired surrogate U+D83D");
  rejects({ ext: "\ud83dx" }, "ext", "unpaired surrogate");
  rejects({ ext: "\ude00" }, "ext", "unpaired surrogate U+DE00");
});

test("validate - checkAttribute returns the message instead of throwing", () => {
  assert.equal(checkAttribute("subject", "x"), undefined);
  assert.equal(checkAttribute("count", 3), undefined);
  assert.match(checkAttribute("subject", "") ?? "", /^attribute "subject": must be a non-empty string/);
  assert.match(checkAttribute("BAD", "x") ?? "", /lower-case/);
});

test("validate - base64 is the RFC 4648 standard alphabet", () => {
  for (const s of ["", "Zm9v", "Zm9vYg==", "Zm9vYg", "Zm9vYmE=", "Zm9vYmE", "+/+/"]) assert.equal(isBase64(s), true, s);
  for (const s of ["Z", "Zm9vY", "Zm9v YmE=", "Zm9v\n", "Zm9vYg=", "-_-_", "Zm9v=Zm9v", "Zg==="]) assert.equal(isBase64(s), false, s);
});
