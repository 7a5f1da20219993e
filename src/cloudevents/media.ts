/**
 * Media-type helpers shared by the formats and bindings.
 *
 * These are classification helpers, not validators (see `validate.ts` for RFC 2046 syntax). They are
 * deliberately forgiving about whitespace and case because they run on content types received from
 * the wire, and they never allocate more than one lower-cased essence string per call.
 */

/**
 * What structured-mode and batch-mode senders write. The charset is lower case: the official
 * JavaScript SDK (`cloudevents` 10) compares the content type verbatim and refuses `charset=UTF-8`.
 */
export const STRUCTURED_JSON_CONTENT_TYPE = "application/cloudevents+json; charset=utf-8";
export const BATCH_JSON_CONTENT_TYPE = "application/cloudevents-batch+json; charset=utf-8";

/**
 * `fn` with its last answer kept: a stream of events almost always repeats one content type, and
 * these helpers ran several times per event (1.5 % of the daemon's CPU in bench row 1). Strings are
 * immutable, so an equal string always has the same answer.
 */
function lastAnswer<T>(fn: (ct: string | undefined) => T): (ct: string | undefined) => T {
  let lastCt: string | undefined;
  let last: T = fn(undefined);
  return (ct) => {
    if (ct !== lastCt) {
      last = fn(ct);
      lastCt = ct;
    }
    return last;
  };
}

const STRUCTURED_PREFIX = "application/cloudevents";
const BATCH_PREFIX = "application/cloudevents-batch";

/**
 * The media type's essence: `type/subtype`, lower-cased, without parameters or surrounding
 * whitespace. Returns `undefined` for an absent or blank content type.
 */
export function mediaEssence(ct: string | undefined): string | undefined {
  if (ct === undefined) return undefined;
  const semi = ct.indexOf(";");
  const essence = (semi < 0 ? ct : ct.slice(0, semi)).trim().toLowerCase();
  return essence === "" ? undefined : essence;
}

/** The subtype part of an essence (`vnd.foo+json` of `application/vnd.foo+json`), or `""`. */
function subtypeOf(essence: string): string {
  const slash = essence.indexOf("/");
  return slash < 0 ? "" : essence.slice(slash + 1);
}

/**
 * True when the content type declares JSON per the JSON format: subtype `json` or suffix `+json`
 * after removing parameters (`application/json`, `text/json`, `application/cloudevents+json`).
 * An absent content type returns `false`: whether absence means JSON depends on the caller (the JSON
 * format implies `application/json`; binary mode does not), so callers test `undefined` themselves.
 */
export const isJsonMediaType: (ct: string | undefined) => boolean = lastAnswer((ct) => {
  const essence = mediaEssence(ct);
  if (essence === undefined) return false;
  const sub = subtypeOf(essence);
  return sub === "json" || sub.endsWith("+json");
});

/**
 * True when the content type describes text: `text/*`, any type with a `charset` parameter,
 * `application/xml` or a `+xml` suffix. Absent → `false`. Says nothing about the charset itself
 * (see `charsetOf`).
 */
export function isTextMediaType(ct: string | undefined): boolean {
  const essence = mediaEssence(ct);
  if (essence === undefined) return false;
  if (essence.startsWith("text/") || essence === "application/xml" || essence.endsWith("+xml")) return true;
  return charsetOf(ct) !== undefined;
}

/** Case-insensitive prefix test without lower-casing the whole (possibly long) header value. */
function startsWithCi(value: string, prefix: string): boolean {
  let start = 0;
  // Leading whitespace is tolerated: some proxies keep the space after the header colon.
  while (start < value.length && (value.charCodeAt(start) === 0x20 || value.charCodeAt(start) === 0x09)) start++;
  if (value.length - start < prefix.length) return false;
  return value.slice(start, start + prefix.length).toLowerCase() === prefix;
}

/**
 * True for a structured-mode content type: it starts with `application/cloudevents`
 * (case-insensitive), but is not the batch type. Binding code tests `isBatchMediaType` first or
 * uses this one, which already excludes batch.
 */
export const isStructuredMediaType: (ct: string | undefined) => boolean = lastAnswer((ct) => {
  if (ct === undefined || !startsWithCi(ct, STRUCTURED_PREFIX)) return false;
  return !startsWithCi(ct, BATCH_PREFIX);
});

/** True for a batch-mode content type: it starts with `application/cloudevents-batch` (case-insensitive). */
export const isBatchMediaType: (ct: string | undefined) => boolean = lastAnswer((ct) => ct !== undefined && startsWithCi(ct, BATCH_PREFIX));

/**
 * The `charset` parameter's value, lower-cased and unquoted (`utf-8` for
 * `text/plain; CharSet="UTF-8"`), or `undefined` when there is none.
 */
export function charsetOf(ct: string | undefined): string | undefined {
  if (ct === undefined) return undefined;
  let semi = ct.indexOf(";");
  while (semi >= 0) {
    // A quoted parameter value may itself contain `;`, so find the next separator outside quotes.
    const eq = ct.indexOf("=", semi + 1);
    if (eq < 0) return undefined;
    const name = ct.slice(semi + 1, eq).trim().toLowerCase();
    let i = eq + 1;
    while (i < ct.length && (ct.charCodeAt(i) === 0x20 || ct.charCodeAt(i) === 0x09)) i++;
    let value: string;
    let next: number;
    if (ct.charCodeAt(i) === 0x22) {
      let j = i + 1;
      let out = "";
      while (j < ct.length && ct.charCodeAt(j) !== 0x22) {
        if (ct.charCodeAt(j) === 0x5c && j + 1 < ct.length) j++;
        out += ct[j];
        j++;
      }
      value = out;
      next = ct.indexOf(";", j);
    } else {
      next = ct.indexOf(";", i);
      value = (next < 0 ? ct.slice(i) : ct.slice(i, next)).trim();
    }
    if (name === "charset") return value === "" ? undefined : value.toLowerCase();
    semi = next;
  }
  return undefined;
}

/** The event formats cebridge reads and writes in structured and batch mode. */
export type EventFormat = "json" | "protobuf";

/**
 * The event format a structured or batch content type names: suffix `+json`, or none at all
 * (`application/cloudevents`, which older senders use for JSON), → `json`; `+protobuf` →
 * `protobuf`; any other suffix (`+avro`, `+xml`) → `undefined`. Case-insensitive, parameters ignored.
 * Call it only on a type for which `isStructuredMediaType` or `isBatchMediaType` is true.
 */
export const eventFormatOf: (ct: string | undefined) => EventFormat | undefined = lastAnswer((ct) => {
  const essence = mediaEssence(ct);
  if (essence === undefined) return undefined;
  const rest = essence.slice(essence.startsWith(BATCH_PREFIX) ? BATCH_PREFIX.length : STRUCTURED_PREFIX.length);
  if (rest === "+json" || rest === "") return "json";
  if (rest === "+protobuf") return "protobuf";
  return undefined;
});
