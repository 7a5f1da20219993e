/**
 * NATS sink helpers: the header block length the max_payload check uses, against what nats.js writes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { headerBlockLength } from "../../../connectors/nats/outbound.js";

describe("nats outbound", () => {
  test("headerBlockLength is the length of nats.js's own header block, for every shape of headers", () => {
    const cases: [string, string][][] = [
      [],
      [["content-type", "application/cloudevents+json; charset=utf-8"]],
      [
        ["ce-id", "1"],
        ["ce-source", "urn:x"],
        ["ce-id", "repeated"],
      ],
      [["x-padded", "  spaced value \t"]],
      [["Nats-Msg-Id", "e-1"], ["traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"], ["ce-multi", "a,b"]],
    ];
    for (const entries of cases) {
      const h = natsHeaders();
      for (const [k, v] of entries) h.append(k, v);
      assert.equal(headerBlockLength(entries), entries.length === 0 ? 0 : h.toString().length, JSON.stringify(entries));
    }
  });
});
