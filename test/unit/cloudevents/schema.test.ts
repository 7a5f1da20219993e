/**
 * Second opinion on the JSON format: every `toJsonObject` output must satisfy the official CloudEvents
 * JSON Schema (draft-07) shipped in the shared vectors folder. Formats are checked with independent,
 * platform-based checkers (WHATWG URL, Date.parse), not with our own validators.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import type { CloudEvent } from "../../../src/cloudevents/event.js";
import { makeEvent } from "../../../src/cloudevents/event.js";
import { invalidEvent } from "../../../src/cloudevents/invalid.js";
import { eventFromBinary } from "../../../src/cloudevents/binary.js";
import { toJsonObject } from "../../../src/cloudevents/json-format.js";

// dist/test/unit/cloudevents/x.test.js → four levels up is the repo root.
const root = process.env["CEBRIDGE_ROOT"] ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../../..");
const shared = process.env["CEBRIDGE_SHARED"] ?? path.resolve(root, "../shared");
const schema = JSON.parse(readFileSync(path.join(shared, "vectors/formats/cloudevents.json"), "utf8")) as object;

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat("uri", (s: string) => {
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
});
ajv.addFormat("uri-reference", (s: string) => {
  try {
    new URL(s, "http://base.invalid/");
    return !/\s/.test(s);
  } catch {
    return false;
  }
});
ajv.addFormat("date-time", (s: string) => /^\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)$/.test(s) && !Number.isNaN(Date.parse(s)));
const validate = ajv.compile(schema);

const BASE = { specversion: "1.0", id: "A234-1234-1234", source: "https://github.com/cloudevents", type: "com.example.t" };

const events: CloudEvent[] = [
  makeEvent(BASE),
  makeEvent({ ...BASE, source: "/sensors/tn-1234567/alerts", subject: "x.jpg", time: "2018-04-05T17:31:00Z", dataschema: "https://x/s", ext: 5, flag: true }, { kind: "json", value: { a: 1 } }),
  makeEvent({ ...BASE, source: "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", datacontenttype: "text/xml" }, { kind: "text", text: '<much wow="xml"/>' }),
  makeEvent({ ...BASE, source: "1-555-123-4567", datacontenttype: "image/png" }, { kind: "bytes", bytes: new Uint8Array([137, 80, 78, 71]) }),
  makeEvent(BASE, { kind: "json", value: null }),
  eventFromBinary({ ...BASE }, new Uint8Array(Buffer.from('{"x":[1,2]}')), "application/json"),
  eventFromBinary({ ...BASE }, new Uint8Array([0xff, 0]), undefined),
  invalidEvent({ raw: new Uint8Array([1]), source: "mqtt://localhost:1883", error: { code: "CEB_FORMAT", message: "bad" } }),
];

test("schema - toJsonObject output satisfies the CloudEvents JSON Schema", () => {
  for (const ev of events) {
    const obj = toJsonObject(ev);
    assert.equal(validate(obj), true, `${JSON.stringify(obj)}: ${ajv.errorsText(validate.errors)}`);
  }
});

test("schema - the schema oracle does reject a broken member object", () => {
  assert.equal(validate({ ...BASE, id: "" }), false);
  assert.equal(validate({ ...BASE, dataschema: "relative/x" }), false);
  assert.equal(validate({ ...BASE, time: "yesterday" }), false);
});
