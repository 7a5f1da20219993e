import { secretMatches } from "../../src/core/webhook-server.js";

/**
 * Whether the request carries the expected bearer token, in the `Authorization` header or, as the
 * webhook spec also allows, the `access_token` query parameter. Compared in constant time.
 */
export function bearerMatches(header: string | undefined, query: string | null, expected: string): boolean {
  const given = header?.startsWith("Bearer ") ? header.slice(7).trim() : (query ?? undefined);
  return secretMatches(given, expected);
}
