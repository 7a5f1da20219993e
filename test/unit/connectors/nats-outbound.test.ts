/**
 * NATS sink helpers: the header block cebridge encodes itself, against what nats.js writes.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { headers as natsHeaders } from "@nats-io/nats-core";
import { SinkError } from "../../../src/core/errors.js";
import { asMsgHdrs, encodeHeaderBlock } from "../../../connectors/nats/header-block.js";

describe("nats outbound", () => {
  test("encodeHeaderBlock writes nats.js's own header block byte for byte, for every shape of headers", () => {
    const cases: [string, string][][] = [
      [],
      [["content-type", "application/cloudevents+json; charset=utf-8"]],
      [
        ["ce-id", "1"],
        ["ce-source", "urn:x"],
        ["ce-id", "repeated"], // grouped with the first ce-id, as nats.js does
      ],
      [["x-padded", "  spaced value \t"]],
      [["Nats-Msg-Id", "e-1"], ["traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"], ["ce-multi", "a,b"]],
      [["ce-text", "é 日本"], ["Content-Type", "text/plain; charset=utf-8"], ["content-type", "x/y"]],
    ];
    for (const entries of cases) {
      const h = natsHeaders();
      for (const [k, v] of entries) h.append(k, v);
      const want = entries.length === 0 ? new Uint8Array(0) : (h as unknown as { encode(): Uint8Array }).encode();
      assert.deepEqual(Buffer.from(encodeHeaderBlock(entries)), Buffer.from(want), JSON.stringify(entries));
      assert.deepEqual(Buffer.from((asMsgHdrs(encodeHeaderBlock(entries)) as unknown as { encode(): Uint8Array }).encode()), Buffer.from(want));
    }
  });

  test("encodeHeaderBlock refuses what nats.js refuses, as a permanent SinkError naming the header", () => {
    for (const [entries, re] of [
      [[["bad name", "v"]], /header "bad name": " " is not a valid character/],
      [[["a:b", "v"]], /header "a:b": ":" is not a valid character/],
      [[["ce-x", "line\r\nbreak"]], /header "ce-x": a value cannot contain CR or LF/],
    ] as [[string, string][], RegExp][]) {
      assert.throws(() => natsHeaders().append(entries[0]![0], entries[0]![1]));
      assert.throws(() => encodeHeaderBlock(entries), (e: unknown) => e instanceof SinkError && !e.retryable && e.code === "CEB_SINK_PERMANENT" && re.test(e.message));
    }
  });
});
