import { timingSafeEqual } from "node:crypto";

/**
 * Whether the request carries the expected bearer token, in the `Authorization` header or, as the
 * webhook spec also allows, the `access_token` query parameter (pass `null` to refuse the query
 * form). Compared in constant time: the time taken says nothing about how much of the token matched.
 */
export function bearerMatches(header: string | undefined, query: string | null, expected: string): boolean {
  const given = header?.startsWith("Bearer ") ? header.slice(7).trim() : (query ?? undefined);
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
