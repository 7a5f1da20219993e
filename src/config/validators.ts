/**
 * Compiled JSON Schema validators, one per schema object. Compiling with ajv costs about a quarter of
 * a second at start-up (ajv's own modules, then code generation for the top-level schema and each
 * connector a config uses), so the build writes each built-in schema's validator ahead of time
 * (ajv standalone code, `scripts/precompile-validators.mjs`) into `validators/`, named by a digest of
 * the schema and the ajv options. A schema without a matching file (a build that skipped the step, a
 * schema changed since) is compiled here instead: the same validator, only slower to get.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import type { ErrorObject } from "ajv";

/** A compiled validator, as ajv returns it: fills in defaults, leaves its errors on `errors`. */
export interface SchemaValidator {
  (value: unknown): boolean;
  errors?: ErrorObject[] | null;
}

/** The options every validator is compiled with; part of the digest, so changing them invalidates the files. */
export const AJV_OPTIONS = { allErrors: true, useDefaults: true, strict: false, verbose: true } as const;

const require = createRequire(import.meta.url);
const dir = new URL("./validators/", import.meta.url);
const cache = new WeakMap<object, SchemaValidator>();
let ajv: { compile(schema: object): SchemaValidator } | undefined;

/** The file name of `schema`'s precompiled validator: a digest of the options and the schema's JSON. */
export function validatorFileName(schema: object): string {
  const digest = createHash("sha256").update(JSON.stringify(AJV_OPTIONS)).update(JSON.stringify(schema)).digest("hex");
  return `${digest.slice(0, 32)}.cjs`;
}

/** The validator for `schema`, from its precompiled file when there is one, else compiled now; cached. */
export function validatorFor(schema: object): SchemaValidator {
  let validate = cache.get(schema);
  if (validate) return validate;
  const file = fileURLToPath(new URL(validatorFileName(schema), dir));
  if (existsSync(file)) {
    validate = require(file) as SchemaValidator;
  } else {
    // Loaded only when needed: ajv's compiler is most of what validation costs at start-up.
    if (!ajv) {
      const { Ajv } = require("ajv") as typeof import("ajv");
      ajv = new Ajv(AJV_OPTIONS);
    }
    validate = ajv.compile(schema);
  }
  cache.set(schema, validate);
  return validate;
}
