#!/usr/bin/env node
// Part of `npm run build`, after tsc: writes the ajv standalone code of every built-in config schema
// (the top level and each connector's options) to dist/src/config/validators/<digest>.cjs, so that
// `cebridge run` and `lint` validate without loading ajv's compiler (see src/config/validators.ts,
// which falls back to compiling any schema whose file is missing).
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { Ajv } from "ajv";
import standalone from "ajv/dist/standalone/index.js";
import { builtinRegistry } from "../dist/connectors/index.js";
import { ConfigSchema } from "../dist/src/config/schema.js";
import { AJV_OPTIONS, validatorFileName } from "../dist/src/config/validators.js";

const outDir = new URL("../dist/src/config/validators/", import.meta.url);
const registry = builtinRegistry();
const schemas = new Set([
  ConfigSchema,
  ...registry.sourceTypes().map((t) => registry.source(t).schema),
  ...registry.sinkTypes().map((t) => registry.sink(t).schema),
]);

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
const written = new Set();
for (const schema of schemas) {
  const name = validatorFileName(schema);
  if (written.has(name)) continue;
  // One ajv per schema: standalone code of a shared instance would carry every schema compiled before.
  const ajv = new Ajv({ ...AJV_OPTIONS, code: { source: true } });
  writeFileSync(new URL(name, outDir), standalone.default(ajv, ajv.compile(schema)) + "\n");
  written.add(name);
}
process.stdout.write(`precompiled ${written.size} config validators\n`);
