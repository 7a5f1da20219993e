/**
 * Interop over real HTTP with the official JavaScript SDK (`cloudevents` 10) on the other end:
 * what the `http` sink writes in every mode the SDK must read with the same attributes, extensions
 * and data, and what the SDK's emitter sends the `http` source must accept, exactly. The known SDK
 * behaviours (DESIGN §9) are compared around: it cuts `time` to milliseconds, invents `time` when
 * absent, does not percent-encode headers (so the SDK → us direction uses Latin-1-safe values).
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import { CloudEvent as SdkEvent, emitterFor, httpTransport, HTTP, Mode } from "cloudevents";
import { httpSink, httpSource } from "../../connectors/http/definition.js";
import { percentDecode, type AttributeValue, type CloudEvent } from "../../src/cloudevents/index.js";
import type { Source } from "../../src/core/source.js";
import { loadSink, loadSource } from "../support/component.js";
import { testContext } from "../support/context.js";
import { FakeInbox } from "../support/fake-inbox.js";
import { freePort } from "../support/ports.js";
import { waitFor } from "../support/wait.js";

const BASE = { specversion: "1.0", source: "https://example.com/interop", type: "com.example.interop" };

/** Events covering every data kind, extensions of each type and non-ASCII values. */
function ours(tag: string): CloudEvent[] {
  return [
    { attributes: { ...BASE, id: `${tag}-json`, subject: "Euro € 😀", count: 42, flag: true, dataschema: "https://x/s", time: "2024-02-29T10:11:12.123Z", datacontenttype: "application/json" }, data: { kind: "json", value: { a: [1, "b"], n: null } } },
    { attributes: { ...BASE, id: `${tag}-text`, datacontenttype: "text/plain", note: "100% sure" }, data: { kind: "text", text: "hello, world" } },
    { attributes: { ...BASE, id: `${tag}-bytes`, datacontenttype: "application/octet-stream" }, data: { kind: "bytes", bytes: new Uint8Array([0, 1, 127, 128, 255]) } },
    { attributes: { ...BASE, id: `${tag}-none` } },
  ];
}

interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
}

/** A receiver that hands each request to the SDK exactly as it arrived. */
async function sdkReceiver(): Promise<{ url: string; got: Received[]; close(): Promise<void> }> {
  const got: Received[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      got.push({ headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/in`,
    got,
    close: () => new Promise((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

/** The SDK's reading of one request: one event, or several for a batch. */
function sdkRead(r: Received): SdkEvent<unknown>[] {
  // The SDK parses a string body as JSON or text by its content type, and keeps a Buffer as bytes.
  const textual = /json|^text\//.test(String(r.headers["content-type"]));
  const out = HTTP.toEvent({ headers: r.headers as Record<string, string>, body: textual ? r.body.toString("utf8") : r.body }) as SdkEvent<unknown> | SdkEvent<unknown>[];
  return Array.isArray(out) ? out : [out];
}

/** Our event's attributes as the SDK holds them; `stringly` for binary mode, where headers carry no types. */
function assertSameEvent(sdk: SdkEvent<unknown>, ev: CloudEvent, stringly: boolean): void {
  const expected: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ev.attributes as Record<string, AttributeValue>)) {
    expected[k] = k === "time" ? new Date(String(v)).toISOString() : stringly ? String(v) : v;
  }
  const actual: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(sdk)) {
    if (k === "data" || k === "data_base64" || v === undefined) continue;
    // The SDK does not percent-decode header values (DESIGN §9): compare decoded values.
    actual[k] = k === "time" ? new Date(String(v)).toISOString() : stringly ? percentDecode(String(v)) : v;
  }
  if (ev.attributes["time"] === undefined) delete actual["time"]; // invented by the SDK
  // The loop markers our sink adds are not part of the source event.
  delete actual["cebridgevia"];
  delete actual["cebridgehops"];
  if (stringly && ev.attributes["datacontenttype"] === undefined) delete actual["datacontenttype"];
  assert.deepEqual(actual, expected, String(ev.attributes["id"]));
  const d = ev.data;
  if (d?.kind === "json") assert.deepEqual(sdk.data, d.value);
  if (d?.kind === "text") assert.equal(sdk.data, d.text);
  if (d?.kind === "bytes") {
    const bytes = sdk.data_base64 !== undefined ? Buffer.from(sdk.data_base64, "base64") : Buffer.from(sdk.data as Uint8Array);
    assert.deepEqual([...bytes], [...d.bytes]);
  }
  // Binary mode cannot tell no data from empty data: an empty body is read as empty bytes.
  if (d === undefined) assert.ok(sdk.data === undefined || (sdk.data instanceof Uint8Array && sdk.data.length === 0), "no data");
}

describe("http interop with the official SDK", () => {
  for (const mode of ["binary", "structured", "batch"] as const) {
    test(`http sink - the SDK reads every ${mode}-mode request with attributes, extensions and data exact`, async () => {
      const rx = await sdkReceiver();
      const sink = await loadSink(httpSink, { url: rx.url, mode, batch: { max_events: 10, linger: "20ms" } }, testContext());
      try {
        await sink.open();
        const evs = ours(mode);
        await Promise.all(evs.map((e) => sink.write(e, AbortSignal.timeout(10_000))));
        const read = rx.got.flatMap(sdkRead);
        if (mode === "batch") assert.equal(rx.got.length, 1, "one batch request");
        if (mode !== "binary") {
          for (const r of rx.got) assert.match(String(r.headers["content-type"]), /^application\/cloudevents(-batch)?\+json; charset=utf-8$/);
        }
        assert.equal(read.length, evs.length);
        for (const ev of evs) {
          const sdk = read.find((s) => s.id === ev.attributes["id"]);
          assert.ok(sdk, `the SDK read ${String(ev.attributes["id"])}`);
          assertSameEvent(sdk, ev, mode === "binary");
        }
      } finally {
        await sink.close();
        await rx.close();
      }
    });
  }

  describe("SDK emitter → http source", () => {
    let port: number;
    let src: Source;
    const inbox = new FakeInbox();
    before(async () => {
      port = await freePort();
      src = await loadSource(httpSource, { listen: `127.0.0.1:${port}`, path: "/events" }, testContext());
      await src.start(inbox);
    });
    after(async () => {
      await src.close();
    });

    const sdkEvents = (tag: string): SdkEvent<unknown>[] => [
      new SdkEvent({ ...BASE, id: `${tag}-1`, subject: "café", ext1: "Latin-1 ÿ", time: "2021-01-01T00:00:00.000Z", data: { a: 1 } }),
      new SdkEvent({ ...BASE, id: `${tag}-2`, datacontenttype: "text/plain", data: "plain text", count: 5 }),
      new SdkEvent({ ...BASE, id: `${tag}-3`, datacontenttype: "application/octet-stream", data: Buffer.from([9, 8, 255]) }),
    ];

    for (const mode of [Mode.BINARY, Mode.STRUCTURED]) {
      test(`http source - accepts what the SDK emitter sends in ${mode} mode, exactly`, async () => {
        const emit = emitterFor(httpTransport(`http://127.0.0.1:${port}/events`), { mode });
        const evs = sdkEvents(mode);
        for (const e of evs) await emit(e);
        await waitFor(() => evs.every((e) => inbox.offers.some((o) => o.events[0]!.attributes["id"] === e.id)));
        for (const sdk of evs) {
          const ev = inbox.offers.find((o) => o.events[0]!.attributes["id"] === sdk.id)!.events[0]!;
          const expected: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(sdk)) {
            if (k === "data" || k === "data_base64" || v === undefined) continue;
            expected[k] = mode === Mode.BINARY ? String(v) : v;
          }
          if (mode === Mode.BINARY && sdk.datacontenttype === undefined) {
            // The SDK sends a Content-Type of its own choosing when the event has none.
            assert.match(String(ev.attributes["datacontenttype"]), /^application\/json/);
            expected["datacontenttype"] = ev.attributes["datacontenttype"];
          }
          assert.deepEqual(ev.attributes, expected, sdk.id);
          const d = ev.data;
          const bytes = d?.kind === "bytes" ? Buffer.from(d.bytes) : d?.kind === "text" ? Buffer.from(d.text) : d?.kind === "json" ? Buffer.from(JSON.stringify(d.value)) : undefined;
          if (sdk.data instanceof Uint8Array) assert.deepEqual([...bytes!], [...sdk.data]);
          else if (typeof sdk.data === "string") assert.equal(bytes!.toString(), sdk.data);
          else assert.deepEqual(JSON.parse(bytes!.toString()), sdk.data);
        }
      });
    }
  });
});
