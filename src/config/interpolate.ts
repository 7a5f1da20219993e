/**
 * `${VAR}`, `${VAR:-default}` and `${file:/path}` in YAML string values, resolved on the parsed
 * document so that positions stay true. `$${` writes a literal `${`.
 * A scalar that is exactly one placeholder (unquoted) is re-read as a YAML scalar, so
 * `max_in_flight: ${WINDOW}` yields a number.
 */
import { readFileSync } from "node:fs";
import { isPair, isScalar, isSeq, parse as parseYaml, visit, type Document, type Scalar } from "yaml";

const PLACEHOLDER = /\$\$\{|\$\{([^}]*)\}/g;

export interface InterpolationProblem {
  readonly node: Scalar;
  /** Keys and indices from the root to the scalar. */
  readonly path: (string | number)[];
  readonly code: "CFG_ENV" | "CFG_FILE";
  readonly message: string;
}

/** Resolves every placeholder in place and returns the problems found (each tied to its scalar). */
export function interpolate(doc: Document, env: NodeJS.ProcessEnv): InterpolationProblem[] {
  const problems: InterpolationProblem[] = [];
  visit(doc, {
    Scalar(key, node, ancestry) {
      if (key === "key" || typeof node.value !== "string" || !node.value.includes("${")) return;
      const text = node.value;
      const whole = /^\$\{[^}]*\}$/.test(text) && node.type === "PLAIN";
      const replaced = text.replace(PLACEHOLDER, (match, body: string | undefined) => {
        if (body === undefined) return "${";
        return resolve(body, env, (code, message) => problems.push({ node, path: keyPath([...ancestry, node]), code, message }));
      });
      node.value = whole ? retype(replaced) : replaced;
    },
  });
  return problems;
}

/** Turns visit()'s node ancestry into the key path used everywhere else. */
function keyPath(ancestry: readonly unknown[]): (string | number)[] {
  const path: (string | number)[] = [];
  for (let i = 0; i < ancestry.length; i++) {
    const node = ancestry[i];
    if (isPair(node)) path.push(isScalar(node.key) ? String(node.key.value) : String(node.key));
    else if (isSeq(node)) path.push(node.items.indexOf(ancestry[i + 1] as never));
  }
  return path;
}

function resolve(body: string, env: NodeJS.ProcessEnv, fail: (code: "CFG_ENV" | "CFG_FILE", m: string) => void): string {
  if (body.startsWith("file:")) {
    const path = body.slice(5);
    try {
      // Secret files conventionally end with a newline that is not part of the secret.
      return readFileSync(path, "utf8").replace(/\r?\n$/, "");
    } catch (err) {
      fail("CFG_FILE", `cannot read \${file:${path}}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
      return "";
    }
  }
  const sep = body.indexOf(":-");
  const name = sep >= 0 ? body.slice(0, sep) : body;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    fail("CFG_ENV", `"\${${body}}" is not a valid reference: use \${NAME}, \${NAME:-default} or \${file:/path}`);
    return "";
  }
  const value = env[name];
  if (value !== undefined && value !== "") return value;
  if (sep >= 0) return body.slice(sep + 2);
  fail("CFG_ENV", `environment variable ${name} is not set and has no default (write \${${name}:-default})`);
  return "";
}

function retype(value: string): unknown {
  try {
    const v: unknown = parseYaml(value, { schema: "core" });
    return typeof v === "number" || typeof v === "boolean" ? v : value;
  } catch {
    return value;
  }
}
