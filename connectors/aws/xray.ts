/**
 * W3C `traceparent` ⇔ AWS X-Ray trace header (`Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>`).
 * PURE. The two carry the same 128-bit trace id and 64-bit parent id; X-Ray writes the first 32 bits
 * of the trace id (its epoch-seconds part) separately. Used for EventBridge `TraceHeader` and SQS
 * `AWSTraceHeader` on the way out, and for a plain SQS message's `AWSTraceHeader` on the way in.
 */

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The X-Ray header for a `traceparent` value, or undefined when it is not a valid version-00 one. */
export function xrayFromTraceparent(traceparent: unknown): string | undefined {
  if (typeof traceparent !== "string") return undefined;
  const m = TRACEPARENT.exec(traceparent.trim());
  if (!m || m[1] === "ff") return undefined;
  const [, , trace, parent, flags] = m as unknown as [string, string, string, string, string];
  if (/^0+$/.test(trace) || /^0+$/.test(parent)) return undefined;
  const sampled = (parseInt(flags, 16) & 1) === 1 ? 1 : 0;
  return `Root=1-${trace.slice(0, 8)}-${trace.slice(8)};Parent=${parent};Sampled=${sampled}`;
}

/** The `traceparent` for an X-Ray header, or undefined when it lacks a root or a parent. */
export function traceparentFromXray(header: unknown): string | undefined {
  if (typeof header !== "string") return undefined;
  const fields = new Map<string, string>();
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
  }
  const root = /^1-([0-9a-f]{8})-([0-9a-f]{24})$/.exec(fields.get("root") ?? "");
  const parent = fields.get("parent") ?? "";
  if (!root || !/^[0-9a-f]{16}$/.test(parent)) return undefined;
  return `00-${root[1]}${root[2]}-${parent}-${fields.get("sampled") === "1" ? "01" : "00"}`;
}
