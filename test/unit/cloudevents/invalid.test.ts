import { test } from "node:test";
import assert from "node:assert/strict";
import { EventValidationError } from "../../../src/core/errors.js";
import { invalidEvent } from "../../../src/cloudevents/invalid.js";
import { parseStructured, serializeStructured } from "../../../src/cloudevents/json-format.js";
import { withoutText } from "../../support/events.js";

test("invalid - wraps the raw message, metadata and error as a valid JSON event", () => {
  const ev = invalidEvent({
    raw: new Uint8Array([0x7b, 0xff]),
    source: "nats://localhost:4222/orders",
    error: { code: "CEB_FORMAT", message: "malformed JSON" },
    metadata: { subject: "orders" },
    id: "orders-42",
  });
  assert.deepEqual(ev.attributes, {
    specversion: "1.0", id: "orders-42", source: "nats://localhost:4222/orders", type: "dev.cebridge.invalid", datacontenttype: "application/json",
  });
  assert.deepEqual(ev.data, { kind: "json", value: { raw_base64: "e/8=", metadata: { subject: "orders" }, error: { code: "CEB_FORMAT", message: "malformed JSON" } } });
  assert.deepEqual(withoutText(parseStructured(serializeStructured(ev))), ev);
});

test("invalid - generates a UUID id and empty metadata when absent", () => {
  const ev = invalidEvent({ raw: new Uint8Array(0), source: "/s", error: { code: "CEB_EVENT_INVALID", message: "x" } });
  assert.match(String(ev.attributes["id"]), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.deepEqual(ev.data?.kind === "json" && (ev.data.value as { metadata: unknown }).metadata, {});
});

test("invalid - an unusable source is refused", () => {
  assert.throws(() => invalidEvent({ raw: new Uint8Array(0), source: "not a uri", error: { code: "X", message: "y" } }), EventValidationError);
});
