/**
 * Event Grid namespace wire ⇔ CloudEvents. PURE.
 *
 * Receiving: `@azure/eventgrid-namespaces` 1.0.0 maps only the core attributes of a received event
 * (extensions are lost) and hands binary data back as a base64 string (docs/clouds.md §0 #4), so the
 * source reads the response text itself: `{"value":[{"brokerProperties":{"lockToken","deliveryCount"},
 * "event":{…CloudEvents JSON…}}]}`. Each event is read with the JSON event format, so extensions,
 * their JSON types, `data_base64` bytes and `time` as written come through unchanged. An event that is
 * not a valid CloudEvent becomes a `dev.cebridge.invalid` event (raw JSON, lock-free metadata) for the
 * engine to dead-letter; its lock token is still returned so that it is settled.
 *
 * Sending: each event in the JSON event format, one batch as a JSON array
 * (`application/cloudevents-batch+json`), never through the client's model (which drops extensions
 * and adds a wrong `datacontenttype`).
 */
import { checkJsonDepth, eventFromJson, invalidEvent } from "../../src/cloudevents/index.js";
import { FormatError, asBridgeError } from "../../src/core/errors.js";
import type { Decoded } from "../../src/core/source.js";

export interface ReceivedDetail {
  readonly lockToken: string;
  /** 1 on the first delivery. */
  readonly deliveryCount: number | undefined;
  readonly decoded: Decoded;
}

export interface ReceiveDecodeOptions {
  readonly maxDepth: number;
  /** `source` of `dev.cebridge.invalid` events (the subscription's address). */
  readonly invalidSource: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The details of a receive response. Throws `FormatError` when the envelope itself is unreadable
 * (then no lock token can be settled: the events come back when their locks expire).
 */
export function decodeReceive(text: string, opts: ReceiveDecodeOptions): ReceivedDetail[] {
  // The envelope adds three levels above each event: {"value": [ {"event": … } ]}.
  checkJsonDepth(text, opts.maxDepth + 3);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new FormatError(`the receive response is not JSON: ${(err as Error).message}`);
  }
  return decodeReceiveDocument(doc, opts);
}

/**
 * As `decodeReceive`, for a response the client already parsed (`onResponse` hands out its
 * `parsedBody`); `text` is the response text, checked for nesting depth first.
 */
export function decodeReceiveParsed(doc: unknown, text: string, opts: ReceiveDecodeOptions): ReceivedDetail[] {
  checkJsonDepth(text, opts.maxDepth + 3);
  return decodeReceiveDocument(doc, opts);
}

function decodeReceiveDocument(doc: unknown, opts: ReceiveDecodeOptions): ReceivedDetail[] {
  const value = isObject(doc) ? doc["value"] : undefined;
  if (!Array.isArray(value)) throw new FormatError('the receive response has no "value" array');
  const out: ReceivedDetail[] = [];
  for (const item of value) {
    const props = isObject(item) ? item["brokerProperties"] : undefined;
    const lockToken = isObject(props) ? props["lockToken"] : undefined;
    if (typeof lockToken !== "string" || lockToken === "") throw new FormatError("a received event has no brokerProperties.lockToken");
    const dc = isObject(props) ? props["deliveryCount"] : undefined;
    const deliveryCount = typeof dc === "number" && Number.isInteger(dc) && dc > 0 ? dc : undefined;
    out.push({ lockToken, deliveryCount, decoded: decodeEvent((item as Record<string, unknown>)["event"], deliveryCount, opts) });
  }
  return out;
}

function decodeEvent(raw: unknown, deliveryCount: number | undefined, opts: ReceiveDecodeOptions): Decoded {
  try {
    return { event: eventFromJson(raw) };
  } catch (err) {
    const e = asBridgeError(err);
    const id = isObject(raw) && typeof raw["id"] === "string" && raw["id"] !== "" ? raw["id"] : undefined;
    return {
      event: invalidEvent({
        raw: Buffer.from(JSON.stringify(raw) ?? "null", "utf8"),
        source: opts.invalidSource,
        error: { code: e.code, message: e.message },
        metadata: deliveryCount !== undefined ? { deliveryCount: String(deliveryCount) } : {},
        ...(id !== undefined ? { id } : {}),
      }),
      invalid: e,
    };
  }
}

/** Joins event JSON texts into the batch body. */
export function batchBody(parts: readonly string[]): string {
  return `[${parts.join(",")}]`;
}
