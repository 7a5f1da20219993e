/**
 * Removes secrets from free text before it is kept for `/status` (recent errors, a connector's last
 * error). Two nets: the exact values of every secret field in the config (fields whose schema says
 * `writeOnly`, found by `config/secrets.ts`), and the shapes secrets take in messages written by
 * libraries that never saw our schema — credentials in a URL, an Authorization header value, a
 * `token=` / `password=` style parameter.
 */

const PATTERNS: readonly [RegExp, string][] = [
  // scheme://user:password@host → scheme://[redacted]@host (also a lone user name)
  [/\b([a-z][a-z0-9+.-]*:\/\/)[^\s/@:]*(?::[^\s/@]*)?@/gi, "$1[redacted]@"],
  // Authorization: Bearer xyz / Basic xyz
  [/\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+/gi, "$1 [redacted]"],
  // password=..., token: ..., access_token=..., sig=... (query strings, key=value logs, SAS tokens)
  [/\b(password|passwd|pwd|token|access_token|secret|sig|signature|api[_-]?key|sas[_-]?token|nkey|session_token|secret_access_key)("?\s*[=:]\s*)("?)[^\s&"',;]+/gi, "$1$2$3[redacted]"],
];

/** Values shorter than this are not matched literally (they would match innocent text). */
const MIN_SECRET_LENGTH = 4;

export class Redactor {
  private secrets: readonly string[] = [];

  constructor(secrets: Iterable<string> = []) {
    this.setSecrets(secrets);
  }

  /** Replaces the literal values to hide (after a reload, the new config's secrets). */
  setSecrets(secrets: Iterable<string>): void {
    // Longest first, so a secret that contains another is replaced whole.
    this.secrets = [...new Set([...secrets].filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  }

  redact(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join("[redacted]");
    for (const [re, by] of PATTERNS) out = out.replace(re, by);
    return out;
  }
}
