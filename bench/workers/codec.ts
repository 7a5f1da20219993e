/**
 * Codec micro-benchmark, in its own process: cebridge's CloudEvents functions against the official
 * `cloudevents` SDK on the same 1 KiB-data event, HTTP binary and structured mode, ops/s; and the
 * Protobuf format (protobufjs, reflected from the spec's schema) beside cebridge's own JSON codec on
 * that event (the SDK has no Protobuf).
 *
 * Each case runs `rounds` timed rounds of `durationMs` after a warm-up; the median round counts.
 */
import { HTTP, CloudEvent as SdkEvent } from "cloudevents";
import {
  binaryBody,
  decodeCeHeaders,
  decodeProtobuf,
  encodeProtobuf,
  encodeCeHeaders,
  eventFromBinary,
  parseStructured,
  serializeStructured,
  type CloudEvent,
} from "../../src/cloudevents/index.js";
import { decodeRequest } from "../../connectors/http/decode.js";
import { DATA_BUF, DATA_JSON, EVENT_SOURCE, EVENT_TIME, EVENT_TYPE, STRUCTURED_CT, structuredJson } from "../lib/events.js";
import { median } from "../lib/stats.js";
import type { WorkerMessage } from "../lib/protocol.js";

export interface CodecTask {
  durationMs: number;
  rounds: number;
}

export interface CodecCase {
  name: string;
  ours: number;
  sdk: number;
  ratio: number;
  oursFn: string;
  sdkFn: string;
  /** What `sdk` measured: the cloudevents SDK, or cebridge's own JSON codec (for the Protobuf cases). */
  baseline: "sdk" | "json";
}

let sink = 0; // keeps results alive so the work is not optimized away

/** ops/s of `fn` over one timed stretch of `durationMs`. */
function measure(fn: () => unknown, durationMs: number): number {
  let n = 0;
  const t0 = performance.now();
  const end = t0 + durationMs;
  let t = t0;
  while (t < end) {
    for (let i = 0; i < 100; i++) sink ^= fn() ? 1 : 0;
    n += 100;
    t = performance.now();
  }
  return (n / (t - t0)) * 1000;
}

function warm(fn: () => unknown, ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) for (let i = 0; i < 100; i++) sink ^= fn() ? 1 : 0;
}

function run(task: CodecTask): CodecCase[] {
  const id = "codec-1";
  const ts = "123.456";
  const ceEntries: [string, string][] = [
    ["ce-specversion", "1.0"],
    ["ce-id", id],
    ["ce-source", EVENT_SOURCE],
    ["ce-type", EVENT_TYPE],
    ["ce-time", EVENT_TIME],
    ["ce-benchts", ts],
  ];
  // What node gives a server for that request (the usual extra headers included).
  const plainHeaders: Record<string, string> = {
    host: "127.0.0.1:8080",
    connection: "keep-alive",
    "content-type": "application/json",
    "content-length": String(DATA_BUF.length),
    ...Object.fromEntries(ceEntries),
  };
  const distinct: Record<string, string[]> = Object.fromEntries(Object.entries(plainHeaders).map(([k, v]) => [k, [v]]));
  const structText = structuredJson("codec", 1, 123.456);
  const structBuf = Buffer.from(structText, "utf8");
  const structHeaders = { host: "127.0.0.1:8080", connection: "keep-alive", "content-type": STRUCTURED_CT, "content-length": String(structBuf.length) };
  const structDistinct: Record<string, string[]> = Object.fromEntries(Object.entries(structHeaders).map(([k, v]) => [k, [v]]));
  const dataText = DATA_JSON;

  // The event to serialize: the same content in both libraries (JSON data as a value).
  const ours: CloudEvent = parseStructured(structBuf);
  const sdkEvent = new SdkEvent({
    specversion: "1.0",
    id,
    source: EVENT_SOURCE,
    type: EVENT_TYPE,
    time: EVENT_TIME,
    datacontenttype: "application/json",
    benchts: ts,
    data: JSON.parse(dataText) as unknown,
  });

  const opts = { maxDepth: 64 };
  const pbBytes = encodeProtobuf(ours);
  const cases: { name: string; oursFn: string; sdkFn: string; ours: () => unknown; sdk: () => unknown; baseline?: "json" }[] = [
    {
      name: "parse binary",
      oursFn: "decodeCeHeaders+eventFromBinary",
      sdkFn: "HTTP.toEvent",
      ours: () => eventFromBinary(decodeCeHeaders(ceEntries, "ce-"), DATA_BUF, "application/json"),
      sdk: () => HTTP.toEvent({ headers: plainHeaders, body: dataText }),
    },
    {
      name: "parse structured",
      oursFn: "parseStructured",
      sdkFn: "HTTP.toEvent",
      ours: () => parseStructured(structBuf, opts),
      sdk: () => HTTP.toEvent({ headers: structHeaders, body: structText }),
    },
    {
      name: "decodeRequest binary",
      oursFn: "decodeRequest",
      sdkFn: "HTTP.toEvent",
      ours: () => decodeRequest(distinct, DATA_BUF, opts),
      sdk: () => HTTP.toEvent({ headers: plainHeaders, body: dataText }),
    },
    {
      name: "decodeRequest structured",
      oursFn: "decodeRequest",
      sdkFn: "HTTP.toEvent",
      ours: () => decodeRequest(structDistinct, structBuf, opts),
      sdk: () => HTTP.toEvent({ headers: structHeaders, body: structText }),
    },
    {
      name: "serialize binary",
      oursFn: "encodeCeHeaders+binaryBody",
      sdkFn: "HTTP.binary",
      ours: () => {
        const h = encodeCeHeaders(ours, { prefix: "ce-", includeDatacontenttype: false });
        const b = binaryBody(ours);
        return h.length + (b.body?.byteLength ?? 0);
      },
      sdk: () => HTTP.binary(sdkEvent),
    },
    {
      name: "serialize structured",
      oursFn: "serializeStructured",
      sdkFn: "HTTP.structured",
      ours: () => serializeStructured(ours),
      sdk: () => HTTP.structured(sdkEvent),
    },
    {
      name: "protobuf encode vs JSON",
      oursFn: "encodeProtobuf",
      sdkFn: "serializeStructured (cebridge JSON)",
      ours: () => encodeProtobuf(ours),
      sdk: () => serializeStructured(ours),
      baseline: "json",
    },
    {
      name: "protobuf decode vs JSON",
      oursFn: "decodeProtobuf",
      sdkFn: "parseStructured (cebridge JSON)",
      ours: () => decodeProtobuf(pbBytes),
      sdk: () => parseStructured(structBuf, opts),
      baseline: "json",
    },
  ];

  // Sanity: both sides decode the same event.
  const a = eventFromBinary(decodeCeHeaders(ceEntries, "ce-"), DATA_BUF, "application/json");
  const b = HTTP.toEvent({ headers: plainHeaders, body: dataText }) as SdkEvent;
  if (a.attributes["id"] !== b.id || a.attributes["benchts"] !== b["benchts"]) throw new Error("codec fixtures disagree");

  // Warm both sides up, then alternate ours/SDK in every round: a burst of other load hits both.
  for (const c of cases) {
    warm(c.ours, 200);
    warm(c.sdk, 200);
  }
  const oursRates = cases.map(() => [] as number[]);
  const sdkRates = cases.map(() => [] as number[]);
  for (let r = 0; r < task.rounds; r++) {
    cases.forEach((c, i) => {
      oursRates[i]!.push(measure(c.ours, task.durationMs));
      sdkRates[i]!.push(measure(c.sdk, task.durationMs));
    });
  }
  return cases.map((c, i) => {
    const o = median(oursRates[i]!);
    const s = median(sdkRates[i]!);
    return { name: c.name, ours: o, sdk: s, ratio: o / s, oursFn: c.oursFn, sdkFn: c.sdkFn, baseline: c.baseline ?? "sdk" };
  });
}

process.once("message", (task: CodecTask) => {
  let msg: WorkerMessage;
  try {
    msg = { type: "result", result: { cases: run(task), sink } };
  } catch (err) {
    msg = { type: "error", message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  process.send?.(msg, () => {
    process.disconnect?.();
  });
});
