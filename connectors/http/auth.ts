/** The HTTP source's bearer check lives in the kit (`src/core/bearer.ts`): the subscriptions API uses it too. */
export { bearerMatches } from "../../src/core/bearer.js";
