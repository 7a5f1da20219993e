/**
 * Fuzz tests for the config loader: whatever the text, `checkConfigText` never throws; it returns
 * issues, each with a code from CONFIG_ISSUE_CODES, a message and a 1-based position.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import fc from "fast-check";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { builtinRegistry } from "../../connectors/index.js";
import { CONFIG_ISSUE_CODES, type ConfigIssue } from "../../src/config/issues.js";
import { checkConfigText, type LoadResult } from "../../src/config/load.js";
import { CesqlParseError, compileCesql } from "../../src/filter/index.js";
import { REPO_ROOT } from "../support/daemon.js";
import { anyString } from "./arbitraries.js";

const registry = builtinRegistry();
const ENV = { TOKEN: "t", PORT: "8080" };

const DEFAULT_YAML = readFileSync(join(REPO_ROOT, "config", "default.yaml"), "utf8");

const RICH_YAML = `# yaml-language-server: $schema=../config/cebridge.schema.json
engine:
  instance_id: bridge-1
  admin: { listen: "127.0.0.1:8081" }
  shutdown_timeout: 30s
  log: { level: info, format: json }
sources:
  hooks:
    type: http
    listen: "0.0.0.0:\${PORT}"
    path: /events
    max_body: 64KiB
    max_depth: 32
    auth: { bearer: "\${TOKEN:-secret}" }
    allowed_origins: ["*", "example.com"]
    retry_after: 2s
  plainhooks: { type: http, listen: "127.0.0.1:8090", plain: { type: com.example.plain, source: /plain, id_header: x-id } }
sinks:
  partner: { type: http, url: "https://partner.example.com/events", mode: structured, timeout: 5s, headers: { X-Api-Key: "k" } }
  batcher: { type: http, url: "http://127.0.0.1:9/x", mode: batch, batch: { max_events: 10, max_bytes: 1MiB, linger: 5ms } }
  out: { type: stdout, format: pretty }
  dlq: { type: file, path: /tmp/cebridge-fuzz-dead-letter.jsonl, fsync: true }
routes:
  - name: hooks-to-partner
    from: hooks
    to: [partner, out]
    filter:
      all:
        - { prefix: { type: "com.example." } }
        - { not: { exact: { subject: "test" } } }
        - any: [ { suffix: { source: "/x" } }, { sql: "EXISTS myext AND myext LIKE 'a%'" } ]
    transform: { rename: { old: new }, set: { source: "https://bridge.example.com/{source}" }, remove: [internal] }
    max_in_flight: 256
    retry: { initial: 100ms, max: 30s, max_elapsed: 5m }
    timeout: 30s
    dead_letter: dlq
    max_deliveries: 5
    max_hops: 4
  - name: plain
    from: plainhooks
    to: [batcher]
    dead_letter: dlq
    loop_prevention: false
`;

/** Checks the loader's contract on one text; any exception fails the property with the text shown. */
function checkContract(text: string): LoadResult {
  let result: LoadResult;
  try {
    result = checkConfigText(text, "fuzz.yaml", registry, ENV);
  } catch (err) {
    assert.fail(`checkConfigText threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}\n--- input ---\n${text.slice(0, 2000)}`);
  }
  assert.ok(Array.isArray(result.issues));
  for (const issue of result.issues) checkIssue(issue, text);
  const errors = result.issues.filter((i) => i.level === "error");
  if (result.config !== undefined) assert.equal(errors.length, 0, "a config came back together with errors");
  else assert.ok(errors.length > 0, "no config and no error");
  return result;
}

function checkIssue(issue: ConfigIssue, text: string): void {
  const shown = JSON.stringify(issue);
  assert.ok(Object.hasOwn(CONFIG_ISSUE_CODES, issue.code), `unknown code in ${shown}`);
  assert.ok(issue.level === "error" || issue.level === "warning", shown);
  assert.equal(typeof issue.message, "string", shown);
  assert.ok(issue.message.trim().length > 0, `empty message in ${shown}`);
  assert.equal(issue.file, "fuzz.yaml");
  assert.ok(Array.isArray(issue.path), shown);
  if (issue.code === "CFG_FILE") return;
  assert.ok(Number.isInteger(issue.line) && issue.line >= 1, `line in ${shown}`);
  assert.ok(Number.isInteger(issue.col) && issue.col >= 1, `col in ${shown}`);
  // The position lies inside the text (one past the end of the last line at most).
  const lines = text.split(/\r\n|\r|\n/);
  assert.ok(issue.line <= Math.max(1, lines.length), `line ${issue.line} past the ${lines.length} lines in ${shown}`);
}

test("fuzz - config fixtures load cleanly", () => {
  for (const [name, text] of [["default.yaml", DEFAULT_YAML], ["rich", RICH_YAML]] as const) {
    const r = checkContract(text);
    assert.deepEqual(r.issues.filter((i) => i.level === "error"), [], name);
    assert.ok(r.config, name);
  }
});

test("fuzz - config checkConfigText on arbitrary text never throws", () => {
  fc.assert(
    fc.property(fc.oneof(anyString(200), fc.string({ unit: fc.constantFrom("a", ":", " ", "\n", "-", "{", "}", "[", "]", ",", "'", '"', "#", "&", "*", "!", "|", ">", "?", "$", "%", "@", "\t", "1"), maxLength: 120 })), (text) => {
      checkContract(text);
    }),
    { numRuns: 1500 },
  );
});

const TOKENS = [
  ":", ": ", "- ", "&a ", "*a", "{", "}", "[", "]", "'", '"', "# c", "${X}", "${X:-1}", "${file:/nonexistent/cebridge-fuzz}", "${", "$${",
  "${1BAD}", "!!binary ", "!!str ", "!!int ", "!foo ", "<<: *a", "? ", "|", ">", "\t", "---", "...", "%YAML 1.2", "~", "null", "0x1F", "1e9",
  "-1", "9999999999999999999999", "1MiB", "5m", "0ms", ".nan", ".inf", "\u0000", "\ufeff", "é", "@", "`", "true", "''", "\r", "\\", "  ",
  "type: nats", "type: nope", "sql: \"(\"", "filter: {}", "to: []", "from: nowhere", "dead_letter: out",
];

/** Line-level edits of a YAML text. */
function mutateYaml(base: string): fc.Arbitrary<string> {
  const edit = fc.tuple(fc.constantFrom("delete", "dup", "swap", "indent", "dedent", "insert", "value", "token", "truncate"), fc.nat(), fc.nat(), fc.constantFrom(...TOKENS), fc.oneof(fc.constantFrom(...TOKENS), fc.string({ maxLength: 8 })));
  return fc.array(edit, { minLength: 1, maxLength: 4 }).map((edits) => {
    let lines = base.split("\n");
    for (const [op, a, b, token, value] of edits) {
      const n = lines.length;
      const i = a % Math.max(1, n);
      const line = lines[i] ?? "";
      switch (op) {
        case "delete":
          lines.splice(i, 1);
          break;
        case "dup":
          lines.splice(i, 0, line);
          break;
        case "swap": {
          const j = b % Math.max(1, n);
          [lines[i], lines[j]] = [lines[j] ?? "", line];
          break;
        }
        case "indent":
          lines[i] = " ".repeat(1 + (b % 3)) + line;
          break;
        case "dedent":
          lines[i] = line.replace(/^ {1,2}/, "");
          break;
        case "insert":
          lines.splice(i, 0, " ".repeat(b % 6) + token + value);
          break;
        case "value": {
          const colon = line.indexOf(": ");
          lines[i] = colon < 0 ? line + value : line.slice(0, colon + 2) + value;
          break;
        }
        case "token": {
          const at = b % (line.length + 1);
          lines[i] = line.slice(0, at) + token + line.slice(at);
          break;
        }
        case "truncate": {
          const text = lines.join("\n");
          lines = text.slice(0, (a * 7 + b) % (text.length + 1)).split("\n");
          break;
        }
      }
    }
    return lines.join("\n");
  });
}

test("fuzz - config line-level mutations of default.yaml never throw", () => {
  fc.assert(fc.property(mutateYaml(DEFAULT_YAML), (text) => void checkContract(text)), { numRuns: 300 });
});

test("fuzz - config line-level mutations of a rich config never throw", () => {
  fc.assert(fc.property(mutateYaml(RICH_YAML), (text) => void checkContract(text)), { numRuns: 200 });
});

/** Every path (keys and indices) inside a plain JSON-like value. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...prefix, i])));
  else if (v !== null && typeof v === "object") for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...prefix, k]));
  return out;
}

const replacement: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom("", "0", "-1", "1.5", "64KiB", "1TiB", "10x", "30s", "-5s", "1e999", "http", "nope", "${X}", "${TOKEN}", "127.0.0.1:0", "[::1]:80", "host:99999", "*", "/", "EXISTS", "a LIKE", "(", "{source", "{missing}", "{a:-b}"),
  fc.constantFrom(0, -1, 2 ** 31, 1e21, 0.5, true, false, null, [], {}, [null], { type: "http" }, { sql: "(" }, { not: {} }, { all: [] }),
);

/** Structural edits: parse, change or delete the value at a random path (or rename a key), re-serialize. */
function mutateStructure(base: string): fc.Arbitrary<string> {
  const doc = parseYaml(base) as unknown;
  const all = paths(doc).filter((p) => p.length > 0);
  return fc
    .array(fc.tuple(fc.constantFrom(...all), fc.constantFrom("set", "delete", "rename"), replacement, fc.constantFrom("typo", "Type", "", "to", "from", "sql", "0")), { minLength: 1, maxLength: 3 })
    .map((edits) => {
      const copy = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
      for (const [path, op, value, newKey] of edits) {
        let parent: unknown = copy;
        for (const seg of path.slice(0, -1)) parent = parent !== null && typeof parent === "object" ? (parent as Record<string | number, unknown>)[seg] : undefined;
        if (parent === null || typeof parent !== "object") continue;
        const last = path[path.length - 1]!;
        const p = parent as Record<string | number, unknown>;
        if (op === "set") p[last] = value;
        else if (op === "delete") {
          if (Array.isArray(p)) p.splice(last as number, 1);
          else delete p[last];
        } else if (!Array.isArray(p) && last in p) {
          p[newKey] = p[last];
          if (newKey !== last) delete p[last];
        }
      }
      return stringifyYaml(copy);
    });
}

test("fuzz - config structural mutations (retyped, removed, renamed keys) never throw", () => {
  fc.assert(
    fc.property(fc.oneof(mutateStructure(RICH_YAML), mutateStructure(DEFAULT_YAML)), (text) => {
      checkContract(text);
    }),
    { numRuns: 300 },
  );
});

test("fuzz - config alias-heavy documents never throw", () => {
  // Anchors and aliases put in random places of a valid config, including cycles and fan-out.
  const names = fc.constantFrom("a", "b");
  const ops = fc.array(fc.tuple(fc.nat(), fc.constantFrom("anchor", "alias"), names), { minLength: 1, maxLength: 4 });
  fc.assert(
    fc.property(ops, (edits) => {
      const lines = RICH_YAML.split("\n");
      for (const [at, op, name] of edits) {
        const i = at % lines.length;
        const line = lines[i]!;
        const colon = line.indexOf(": ");
        if (colon < 0) continue;
        lines[i] = op === "anchor" ? line.slice(0, colon + 2) + `&${name} ` + line.slice(colon + 2) : line.slice(0, colon + 2) + `*${name}`;
      }
      checkContract(lines.join("\n"));
    }),
    { numRuns: 200 },
  );
});

// --- Regressions found by the fuzzer (see the report); both must return issues, not throw. ----------

test("fuzz - config an alias bomb (billion laughs) is reported as an issue, not thrown", () => {
  const bomb = [
    "a: &a [x, x, x, x, x, x, x, x, x, x]",
    "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
    "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
    "sources: { in: { type: http } }",
    "sinks: { out: { type: stdout } }",
    "routes: [ { name: r, from: in, to: [out] } ]",
    "",
  ].join("\n");
  const r = checkContract(bomb);
  assert.equal(r.config, undefined);
});

test("fuzz - config a filter that aliases itself is reported as an issue, not thrown", () => {
  const cyclic = [
    "sources: { in: { type: http } }",
    "sinks: { out: { type: stdout } }",
    "routes:",
    "  - name: r",
    "    from: in",
    "    to: [out]",
    "    filter: &f { not: *f }",
    "",
  ].join("\n");
  const r = checkContract(cyclic);
  assert.equal(r.config, undefined);
});

test("fuzz - config an alias without an anchor is reported as an issue, not thrown", () => {
  for (const text of ["*a\n", "sources: *a\nsinks: {}\nroutes: []\n", "routes: [ *r ]\n"]) {
    const r = checkContract(text);
    assert.equal(r.config, undefined, text);
  }
});

test("fuzz - config sources or sinks given as a scalar are reported as issues, not thrown", () => {
  for (const [sources, sinks] of [['""', "{ out: { type: stdout } }"], ["5", "{ out: { type: stdout } }"], ["{ in: { type: http } }", "abc"], ["{ in: { type: http } }", "true"]]) {
    const text = `sources: ${sources}\nsinks: ${sinks}\nroutes: [ { name: r, from: in, to: [out] } ]\n`;
    const r = checkContract(text);
    assert.ok(r.issues.some((i) => i.code === "CFG_TYPE"), text);
  }
});

test("fuzz - config a null source or sink that a route names is reported as an issue, not thrown", () => {
  for (const [sources, sinks] of [["{ in: ~ }", "{ out: { type: stdout } }"], ["{ in: { type: http } }", "{ out: null }"], ["{ in: }", "{ out: { type: stdout } }"]]) {
    const text = `sources: ${sources}\nsinks: ${sinks}\nroutes: [ { name: r, from: in, to: [out] } ]\n`;
    const r = checkContract(text);
    assert.equal(r.config, undefined, text);
  }
});

test("fuzz - config routes naming Object.prototype members get CFG_REF, not a config", () => {
  const base = (route: string) => `sources: { in: { type: http } }\nsinks: { out: { type: stdout } }\nroutes: [ { name: r, ${route} } ]\n`;
  for (const route of ["from: constructor, to: [out]", "from: in, to: [out, toString]", "from: in, to: [__proto__]", "from: in, to: [out], dead_letter: valueOf", "from: hasOwnProperty, to: [out]"]) {
    const r = checkContract(base(route));
    assert.ok(
      r.issues.some((i) => i.code === "CFG_REF" && i.level === "error"),
      `${route}: expected a CFG_REF error, got ${JSON.stringify(r.issues.map((i) => `${i.level} ${i.code} ${i.message}`))}`,
    );
    assert.equal(r.config, undefined, route);
  }
});

/** Index in a quoted YAML scalar (opening quote included) of the `decoded`-th character of its value. */
function rawIndex(quoted: string, decoded: number): number {
  const single = quoted[0] === "'";
  let i = 1;
  for (let n = 0; n < decoded; n++) {
    if (single) i += quoted.startsWith("''", i) ? 2 : 1;
    else i += quoted[i] === "\\" ? 2 : 1;
  }
  return i;
}

test("fuzz - config the column of a CESQL error accounts for escapes in the YAML scalar", () => {
  // Each expression fails at its end; written as a quoted YAML scalar it contains escapes ('' or \").
  for (const expr of ["'x''y' = (", '"a\\"b" = (', "'\t' = ("]) {
    let pos = -1;
    try {
      compileCesql(expr);
    } catch (err) {
      pos = (err as CesqlParseError).position;
    }
    for (const yamlValue of [`'${expr.replace(/'/g, "''")}'`, JSON.stringify(expr)]) {
      assert.equal(parseYaml(yamlValue), expr);
      const text = `sources: { in: { type: http } }\nsinks: { out: { type: stdout } }\nroutes:\n  - name: r\n    from: in\n    to: [out]\n    filter: { sql: ${yamlValue} }\n`;
      const issue = checkContract(text).issues.find((i) => i.code === "CFG_FILTER");
      assert.ok(issue, yamlValue);
      const line = text.split("\n")[issue.line - 1]!;
      const expected = line.indexOf("sql: ") + 5 + rawIndex(yamlValue, pos) + 1;
      assert.equal(issue.col, expected, `${yamlValue}: CESQL failed at offset ${pos}, expected column ${expected}, got ${issue.col}`);
    }
  }
});
