/**
 * A tiny OTLP/HTTP trace collector on a free loopback port: accepts `POST /v1/traces` as
 * `application/x-protobuf` (decoded with a minimal schema written from the OTLP trace proto's
 * field numbers) or `application/json`, and keeps every span it received, ids as lower-case hex.
 */
import { createServer, type Server } from "node:http";
import protobuf from "protobufjs";
import { waitFor } from "./wait.js";

/** One received span, flattened. */
export interface CollectedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** `""` for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  readonly kind: number;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
  /** `service.name` of the resource that sent it. */
  readonly service: string;
}

export interface OtlpCollector {
  /** `http://127.0.0.1:PORT`, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  readonly spans: CollectedSpan[];
  /** Content types of the requests received, in order. */
  readonly contentTypes: string[];
  /** Resolves once `predicate(spans)` holds, or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: readonly CollectedSpan[]) => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

const SCHEMA = `
syntax = "proto3";
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4;
  string name = 5; int32 kind = 6; repeated KeyValue attributes = 9; Status status = 15;
}
message Status { string message = 2; int32 code = 3; }
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue {
  oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; bytes bytes_value = 7; }
}
`;
const Request = protobuf.parse(SCHEMA, { keepCase: false }).root.lookupType("ExportTraceServiceRequest");

type Json = Record<string, unknown>;

function hex(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v.toLowerCase(); // OTLP/JSON writes ids as hex
  return Buffer.from(v as Uint8Array).toString("hex");
}

function anyValue(v: Json | undefined): string | number | boolean {
  if (!v) return "";
  for (const k of ["stringValue", "boolValue", "doubleValue"]) if (v[k] !== undefined) return v[k] as string | boolean | number;
  if (v["intValue"] !== undefined) return Number(v["intValue"]);
  return "";
}

function attributesOf(list: unknown): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of (list as Json[] | undefined) ?? []) out[kv["key"] as string] = anyValue(kv["value"] as Json | undefined);
  return out;
}

function flatten(req: Json): CollectedSpan[] {
  const out: CollectedSpan[] = [];
  for (const rs of (req["resourceSpans"] as Json[] | undefined) ?? []) {
    const service = String(attributesOf((rs["resource"] as Json | undefined)?.["attributes"])["service.name"] ?? "");
    for (const ss of (rs["scopeSpans"] as Json[] | undefined) ?? []) {
      for (const s of (ss["spans"] as Json[] | undefined) ?? []) {
        const status = s["status"] as Json | undefined;
        out.push({
          traceId: hex(s["traceId"]),
          spanId: hex(s["spanId"]),
          parentSpanId: hex(s["parentSpanId"]),
          name: String(s["name"] ?? ""),
          kind: Number(s["kind"] ?? 0),
          attributes: attributesOf(s["attributes"]),
          statusCode: Number(status?.["code"] ?? 0),
          service,
        });
      }
    }
  }
  return out;
}

export async function startOtlpCollector(): Promise<OtlpCollector> {
  const spans: CollectedSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const ct = String(req.headers["content-type"] ?? "");
      contentTypes.push(ct);
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      try {
        const decoded = ct.startsWith("application/json")
          ? (JSON.parse(body.toString("utf8")) as Json)
          : (Request.toObject(Request.decode(body), { longs: Number, bytes: Array, defaults: false }) as Json);
        spans.push(...flatten(decoded));
      } catch (err) {
        res.writeHead(400, { "content-type": "text/plain" }).end(String(err));
        return;
      }
      // An empty ExportTraceServiceResponse in either encoding means "all accepted".
      if (ct.startsWith("application/json")) res.writeHead(200, { "content-type": "application/json" }).end("{}");
      else res.writeHead(200, { "content-type": "application/x-protobuf" }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const port = (server.address() as { port: number }).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    contentTypes,
    waitFor: (predicate, timeoutMs = 15_000) =>
      waitFor(() => predicate(spans), timeoutMs, () => `spans at the collector: ${spans.map((s) => s.name).join(", ") || "none"}`),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
