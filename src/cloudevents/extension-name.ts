/**
 * Native metadata names (HTTP or NATS headers, MQTT user properties, SQS message attributes, Pub/Sub
 * attributes) → CloudEvents extension names, which may only hold `[a-z0-9]`.
 *
 * The escaping is collision-free, so two different native names never land on one extension:
 * lower-cased; letters a–y and digits kept; any other code point written as `z` + 2 hex digits
 * (below U+0100), `zz` + 4 (below U+10000) or `zzz` + 6 (above). Hex digits are never `z`, so a
 * reader can always tell the three forms apart. `z` itself is escaped (`z7a`) for the same reason.
 * Every source uses this one function, so the same name maps the same way whatever carried it.
 */
export function escapeExtensionName(prefix: string, name: string): string {
  let out = prefix;
  for (const ch of name.toLowerCase()) {
    const c = ch.codePointAt(0)!;
    if ((c >= 0x61 && c <= 0x79) || (c >= 0x30 && c <= 0x39)) out += ch;
    else if (c < 0x100) out += "z" + hex(c, 2);
    else if (c < 0x10000) out += "zz" + hex(c, 4);
    else out += "zzz" + hex(c, 6);
  }
  return out;
}

function hex(c: number, width: number): string {
  return c.toString(16).padStart(width, "0");
}
