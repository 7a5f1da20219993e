/**
 * Keeps the documentation true: the README's code tables list exactly the codes in the source, with
 * the same meanings, and the committed JSON Schema is what `cebridge schema` prints.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { builtinRegistry } from "../../../connectors/index.js";
import { CONFIG_ISSUE_CODES } from "../../../src/config/issues.js";
import { buildJsonSchema } from "../../../src/config/json-schema.js";
import { ERROR_CODES } from "../../../src/core/errors.js";
import { REPO_ROOT } from "../../support/daemon.js";

function table(readme: string, heading: string): Record<string, string> {
  const start = readme.indexOf(`## ${heading}\n`);
  assert.ok(start >= 0, `README has a "## ${heading}" section`);
  const end = readme.indexOf("\n## ", start + 1);
  const section = readme.slice(start, end < 0 ? undefined : end);
  const rows: Record<string, string> = {};
  for (const m of section.matchAll(/^\| `([A-Z_]+)` \| (.+) \|$/gm)) rows[m[1]!] = m[2]!;
  return rows;
}

const readme = readFileSync(join(REPO_ROOT, "README.md"), "utf8");

test("catalog - README error code table matches src/core/errors.ts", () => {
  assert.deepEqual(table(readme, "Error codes"), { ...ERROR_CODES });
});

test("catalog - README config issue table matches src/config/issues.ts", () => {
  assert.deepEqual(table(readme, "Config issue codes"), { ...CONFIG_ISSUE_CODES });
});

test("catalog - config/cebridge.schema.json is up to date (npm run schema)", () => {
  const committed = JSON.parse(readFileSync(join(REPO_ROOT, "config", "cebridge.schema.json"), "utf8"));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(buildJsonSchema(builtinRegistry()))));
});
