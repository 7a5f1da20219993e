/**
 * NATS subject rules (pure; no SDK). Used by the definition's `lint` and by the sinks.
 */

/**
 * Sanitizes one substituted template value for a NATS subject. The value keeps its `.` (so
 * `ce.{type}` with `com.example.order` is `ce.com.example.order`, one token per segment); `*`, `>`
 * and whitespace become `_`, and an empty token (empty value, leading/trailing/double dot) becomes `_`.
 */
export function sanitizeNats(value: string): string {
  const replaced = value.replace(/[*>\s]/gu, "_");
  return replaced
    .split(".")
    .map((t) => (t === "" ? "_" : t))
    .join(".");
}

/**
 * Checks the literal parts of a publish subject template. Returns a problem description, or
 * `undefined` when the template can produce valid subjects.
 */
export function checkNatsPublishTemplate(template: string): string | undefined {
  const literal = template.replace(/\{[a-z0-9]+(?::-[^}]*)?\}/g, "x");
  if (/[*>]/.test(literal)) return "a publish subject cannot contain the wildcards * or >";
  if (/\s/.test(literal)) return "a subject cannot contain whitespace";
  if (literal.split(".").some((t) => t === "")) return "a subject cannot have empty tokens (leading, trailing or double dots)";
  return undefined;
}
