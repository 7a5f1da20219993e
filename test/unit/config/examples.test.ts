/**
 * Keeps the shipped configs and the connector READMEs honest:
 * - every file in `config/examples/` (and `config/default.yaml`) loads with no error and exactly the
 *   warnings listed here, its `${VAR}`s resolved from their defaults and its `${file:}` secrets read
 *   from temporary files;
 * - the options tables of `connectors/<x>/README.md` name exactly the keys of the connector schemas,
 *   with the schema's defaults, and mark exactly the secret keys.
 *
 * README convention: options tables live under a `### Common options` heading (keys shared by every
 * component the README documents) or a ``### `<type>` <source|sink> options`` heading; their rows read
 * ``| `key` | default | meaning |`` with nested keys dotted (`tls.ca`). The default cell is the
 * schema default in backticks, or text in parentheses when the schema has none (`(required...)` exactly
 * when the key is required). A secret's meaning contains `**secret**`.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { builtinRegistry } from "../../../connectors/index.js";
import { formatIssue } from "../../../src/config/issues.js";
import { checkConfigFile } from "../../../src/config/load.js";

const ROOT = process.env["CEBRIDGE_ROOT"] ?? resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");
const registry = builtinRegistry();

// ---------------------------------------------------------------------------------------------------
// Example configs
// ---------------------------------------------------------------------------------------------------

interface Expectation {
  /** Every warning the file is meant to produce, as `CODE dotted.path`, in file order. */
  readonly warnings: readonly string[];
  /** The `${file:...}` paths the file reads, in file order. */
  readonly secrets: readonly string[];
}

const EXPECTED: Readonly<Record<string, Expectation>> = {
  // The embedded default prints events and has nowhere to dead-letter them.
  "config/default.yaml": { warnings: ["CFG_DELIVERY routes.0"], secrets: [] },
  "config/examples/http-to-jetstream.yaml": { warnings: [], secrets: ["/run/secrets/webhook-token"] },
  // Core NATS cannot confirm a publish: the route warns that its sink is best-effort.
  "config/examples/mqtt-to-nats.yaml": { warnings: ["CFG_DELIVERY routes.0.to.0"], secrets: ["/run/secrets/mqtt-password"] },
  "config/examples/jetstream-to-http.yaml": { warnings: [], secrets: ["/run/secrets/partner-token"] },
  "config/examples/two-way-nats-mqtt.yaml": { warnings: [], secrets: [] },
  "config/examples/fan-out-with-filters.yaml": { warnings: [], secrets: [] },
  "config/examples/scale-out-jetstream.yaml": { warnings: [], secrets: ["/run/secrets/target-nats-token"] },
  "config/examples/pubsub-jetstream.yaml": { warnings: [], secrets: [] },
  // QoS 0 and HTTP inputs, each with a disk buffer: nothing to warn about.
  "config/examples/site-uplink-disk-buffer.yaml": { warnings: [], secrets: [] },
  "config/examples/azure-eventgrid.yaml": { warnings: [], secrets: ["/run/secrets/grid-webhook", "/run/secrets/grid-topic-key"] },
  "config/examples/eventbridge-bridge.yaml": { warnings: [], secrets: ["/run/secrets/aws-secret"] },
};

const SECRET_VALUE = "example-secret";
const FILE_REF = /\$\{file:([^}]*)\}/g;

const tmp = mkdtempSync(join(tmpdir(), "cebridge-examples-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

/**
 * The file to check: the original, or, when it reads `${file:}` secrets, a copy in `tmp` whose
 * references point at temporary secret files (same lines and columns up to the reference).
 */
function withSecrets(rel: string): { path: string; secrets: string[] } {
  const original = join(ROOT, rel);
  const text = readFileSync(original, "utf8");
  const secrets = [...text.matchAll(FILE_REF)].map((m) => m[1]!);
  if (secrets.length === 0) return { path: original, secrets };
  const copy = text.replace(FILE_REF, (_m, p: string) => {
    const file = join(tmp, p.replace(/[^A-Za-z0-9._-]/g, "_"));
    writeFileSync(file, `${SECRET_VALUE}\n`); // secret files end with a newline, which is not part of the secret
    return `\${file:${file}}`;
  });
  const path = join(tmp, rel.replace(/\//g, "_"));
  writeFileSync(path, copy);
  return { path, secrets };
}

describe("examples - config files", () => {
  test("examples - every file in config/examples has its expectations listed here", () => {
    const onDisk = readdirSync(join(ROOT, "config", "examples"))
      .filter((f) => f.endsWith(".yaml") || f.endsWith(".yml"))
      .map((f) => `config/examples/${f}`)
      .sort();
    const listed = Object.keys(EXPECTED)
      .filter((f) => f.startsWith("config/examples/"))
      .sort();
    assert.deepEqual(onDisk, listed);
  });

  for (const [rel, want] of Object.entries(EXPECTED)) {
    test(`examples - ${rel} loads with no error and only its intended warnings`, () => {
      const { path, secrets } = withSecrets(rel);
      assert.deepEqual(secrets, want.secrets, "the ${file:} secrets the file reads");
      // An empty environment: every ${VAR} must have a default.
      const result = checkConfigFile(path, registry, {});
      const errors = result.issues.filter((i) => i.level === "error").map(formatIssue);
      assert.deepEqual(errors, []);
      assert.ok(result.config, "a config is returned");
      const warnings = result.issues.filter((i) => i.level === "warning").map((i) => `${i.code} ${i.path.join(".")}`);
      assert.deepEqual(warnings, want.warnings, result.issues.map(formatIssue).join("\n"));
    });
  }

  test("examples - ${VAR:-default} takes the environment's value when it is set", () => {
    const { path } = withSecrets("config/examples/http-to-jetstream.yaml");
    const env = { HTTP_LISTEN: "127.0.0.1:9999", NATS_URL: "nats://nats.internal:4222", DEAD_LETTER_FILE: "/tmp/dl.jsonl" };
    const { config, issues } = checkConfigFile(path, registry, env);
    assert.ok(config, issues.map(formatIssue).join("\n"));
    assert.equal(config.sources["webhook"]!.options["listen"], "127.0.0.1:9999");
    assert.deepEqual(config.sinks["bus"]!.options["servers"], ["nats://nats.internal:4222"]);
    assert.equal(config.sinks["dead-letters"]!.options["path"], "/tmp/dl.jsonl");
    assert.deepEqual(config.sources["webhook"]!.options["auth"], { bearer: SECRET_VALUE });
  });
});

// ---------------------------------------------------------------------------------------------------
// Connector READMEs against the schemas
// ---------------------------------------------------------------------------------------------------

type Kind = "source" | "sink";

const DOCS: readonly { readonly readme: string; readonly components: readonly (readonly [type: string, kind: Kind])[] }[] = [
  {
    readme: "connectors/nats/README.md",
    components: [
      ["nats", "source"],
      ["nats", "sink"],
      ["nats_jetstream", "source"],
      ["nats_jetstream", "sink"],
    ],
  },
  { readme: "connectors/mqtt/README.md", components: [["mqtt", "source"], ["mqtt", "sink"]] },
  { readme: "connectors/http/README.md", components: [["http", "source"], ["http", "sink"]] },
  { readme: "connectors/gcp-pubsub/README.md", components: [["gcp_pubsub", "source"], ["gcp_pubsub", "sink"]] },
  {
    readme: "connectors/azure-eventgrid/README.md",
    components: [
      ["azure_eventgrid", "source"],
      ["azure_eventgrid", "sink"],
      ["azure_eventgrid_namespace", "source"],
      ["azure_eventgrid_namespace", "sink"],
    ],
  },
  {
    readme: "connectors/aws/README.md",
    components: [
      ["aws_eventbridge", "source"],
      ["aws_eventbridge", "sink"],
      ["aws_sqs", "source"],
      ["aws_sqs", "sink"],
    ],
  },
  { readme: "connectors/amqp/README.md", components: [["amqp", "source"], ["amqp", "sink"]] },
];

interface Row {
  readonly key: string;
  readonly def: string;
  readonly meaning: string;
  readonly line: number;
}

interface OptionTables {
  readonly common: Row[];
  /** By `"<type> <kind>"`. */
  readonly specific: Map<string, Row[]>;
}

const COMMON_HEADING = /^Common options$/;
const SPECIFIC_HEADING = /^`([a-z0-9_]+)` (source|sink) options$/;

/** Splits a table row on pipes that are not escaped (`\|` may appear inside a cell). */
function cells(line: string): string[] {
  const inner = line.trim().replace(/^\|/, "").replace(/\|$/, "");
  return inner.split(/(?<!\\)\|/).map((c) => c.trim());
}

function parseOptionTables(markdown: string, file: string): OptionTables {
  const common: Row[] = [];
  const specific = new Map<string, Row[]>();
  let current: Row[] | undefined;
  markdown.split("\n").forEach((line, i) => {
    const heading = /^#{1,6}\s+(.*?)\s*$/.exec(line);
    if (heading) {
      const text = heading[1]!;
      const m = SPECIFIC_HEADING.exec(text);
      if (COMMON_HEADING.test(text)) current = common;
      else if (m) {
        const id = `${m[1]} ${m[2]}`;
        assert.ok(!specific.has(id), `${file}:${i + 1}: a second options table for ${id}`);
        current = [];
        specific.set(id, current);
      } else current = undefined;
      return;
    }
    if (!current || !line.startsWith("|")) return;
    const c = cells(line);
    const key = /^`([^`]+)`$/.exec(c[0] ?? "");
    if (!key) return; // header and separator rows
    assert.equal(c.length, 3, `${file}:${i + 1}: an options row has three cells: key | default | meaning`);
    assert.ok(!current.some((r) => r.key === key[1]), `${file}:${i + 1}: \`${key[1]}\` is listed twice in one table`);
    current.push({ key: key[1]!, def: c[1]!, meaning: c[2]!, line: i + 1 });
  });
  return { common, specific };
}

interface Leaf {
  readonly key: string;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly required: boolean;
}

/** The schema's option keys, nested objects flattened to dotted keys (records and unions stay whole). */
function leaves(schema: Readonly<Record<string, unknown>>, prefix = ""): Leaf[] {
  const props = (schema["properties"] ?? {}) as Record<string, Record<string, unknown>>;
  const required = new Set((schema["required"] ?? []) as string[]);
  const out: Leaf[] = [];
  for (const [name, sub] of Object.entries(props)) {
    const key = prefix + name;
    if (sub["type"] === "object" && sub["properties"] !== undefined) out.push(...leaves(sub, `${key}.`));
    else out.push({ key, schema: sub, required: required.has(name) });
  }
  return out;
}

function shown(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

function schemaOf(type: string, kind: Kind): Readonly<Record<string, unknown>> {
  const def = kind === "source" ? registry.source(type) : registry.sink(type);
  assert.ok(def, `no ${kind} connector of type ${type}`);
  return def.schema as unknown as Record<string, unknown>;
}

describe("connector docs - options tables match the schemas", () => {
  for (const { readme, components } of DOCS) {
    const tables = () => parseOptionTables(readFileSync(join(ROOT, readme), "utf8"), readme);

    test(`connector docs - ${readme} has one options table per component and no other`, () => {
      const { specific } = tables();
      assert.deepEqual([...specific.keys()].sort(), components.map(([t, k]) => `${t} ${k}`).sort());
    });

    for (const [type, kind] of components) {
      test(`connector docs - ${readme} lists exactly the ${type} ${kind} schema keys`, () => {
        const { common, specific } = tables();
        const own = specific.get(`${type} ${kind}`) ?? [];
        const overlap = own.filter((r) => common.some((c) => c.key === r.key)).map((r) => r.key);
        assert.deepEqual(overlap, [], "a key is in the common table and in the component's table");
        const documented = [...common, ...own].map((r) => r.key).sort();
        const keys = leaves(schemaOf(type, kind)).map((l) => l.key).sort();
        assert.deepEqual(documented, keys);
      });

      test(`connector docs - ${readme} gives the ${type} ${kind} defaults, required keys and secrets of the schema`, () => {
        const { common, specific } = tables();
        const rows = new Map([...common, ...(specific.get(`${type} ${kind}`) ?? [])].map((r) => [r.key, r]));
        for (const leaf of leaves(schemaOf(type, kind))) {
          const row = rows.get(leaf.key);
          if (!row) continue; // reported by the key test
          const at = `${readme}:${row.line} ${type} ${kind} \`${leaf.key}\``;
          const def = leaf.schema["default"];
          if (def !== undefined) {
            assert.equal(row.def, `\`${shown(def)}\``, `${at}: the default cell must be the schema default`);
          } else {
            assert.ok(row.def.startsWith("("), `${at}: no schema default, so the cell explains in parentheses (got ${row.def})`);
            assert.equal(row.def.startsWith("(required"), leaf.required, `${at}: "(required...)" exactly when the schema requires the key`);
          }
          assert.equal(row.meaning.includes("**secret**"), leaf.schema["writeOnly"] === true, `${at}: **secret** exactly on writeOnly keys`);
        }
      });
    }
  }
});
