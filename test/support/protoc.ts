/**
 * Independent Protobuf oracles for tests: Google's `protoc` (Debian `protobuf-compiler`, with the
 * well-known types from `libprotobuf-dev`) and `@bufbuild/protobuf` reading a descriptor set that
 * `protoc` built from the committed `cloudevents.proto`. Neither shares code with protobufjs, which
 * cebridge uses. A missing `protoc` fails the test with an install hint (DESIGN §9: never skip).
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { REPO_ROOT } from "./daemon.js";

const PROTO_DIR = join(REPO_ROOT, "src", "cloudevents");
const PROTO = join(PROTO_DIR, "cloudevents.proto");
const HINT = "install it with: apt-get install -y protobuf-compiler libprotobuf-dev";
const WKT_DIRS = ["/usr/include", "/usr/local/include"];

let protocPath: string | undefined;
let includeDir: string | undefined;

function protoc(): { bin: string; include: string } {
  if (protocPath === undefined) {
    for (const p of ["/usr/bin/protoc", "/usr/local/bin/protoc"]) if (existsSync(p)) protocPath = p;
    if (protocPath === undefined) throw new Error(`protoc not found; ${HINT}`);
  }
  if (includeDir === undefined) {
    includeDir = WKT_DIRS.find((d) => existsSync(join(d, "google", "protobuf", "timestamp.proto")));
    if (includeDir === undefined) throw new Error(`google/protobuf/timestamp.proto not found in ${WKT_DIRS.join(", ")}; ${HINT}`);
  }
  return { bin: protocPath, include: includeDir };
}

/** `protoc --decode=io.cloudevents.v1.<type>`: the text format of `bytes`. Throws on a parse error. */
export function protocDecode(type: "CloudEvent" | "CloudEventBatch", bytes: Uint8Array): string {
  const { bin, include } = protoc();
  return execFileSync(bin, [`--decode=io.cloudevents.v1.${type}`, "-I", PROTO_DIR, "-I", include, PROTO], { input: bytes, encoding: "utf8" });
}

/** `protoc --encode=io.cloudevents.v1.<type>`: the binary encoding of a text-format message. */
export function protocEncode(type: "CloudEvent" | "CloudEventBatch", text: string): Buffer {
  const { bin, include } = protoc();
  return execFileSync(bin, [`--encode=io.cloudevents.v1.${type}`, "-I", PROTO_DIR, "-I", include, PROTO], { input: text });
}

let registry: ReturnType<typeof createFileRegistry> | undefined;

function bufRegistry(): ReturnType<typeof createFileRegistry> {
  if (registry) return registry;
  const { bin, include } = protoc();
  const out = join(mkdtempSync(join(tmpdir(), "cebridge-proto-")), "cloudevents.desc");
  execFileSync(bin, [`--descriptor_set_out=${out}`, "--include_imports", "-I", PROTO_DIR, "-I", include, PROTO]);
  registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(out)));
  return registry;
}

/** A oneof as @bufbuild/protobuf reflects it. */
interface OneofValue {
  readonly case: string | undefined;
  readonly value?: unknown;
}

function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Buffer.from(v).toString("base64");
  if (typeof v === "bigint") return v.toString();
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    if ("case" in o && Object.keys(o).length <= 2) {
      const c = o as unknown as OneofValue;
      return c.case === undefined ? undefined : { [c.case]: plain(c.value) };
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) {
      if (k === "$typeName" || k === "$unknown") continue;
      const p = plain(x);
      if (p === undefined) continue;
      // A oneof (data, attr) is inlined as its set member, like the Protobuf JSON mapping does.
      if ((k === "data" || k === "attr") && typeof p === "object" && p !== null) Object.assign(out, p);
      else out[k] = p;
    }
    return out;
  }
  return v;
}

/**
 * Decodes `bytes` with @bufbuild/protobuf and returns the message as plain data in its field names
 * (`specVersion`, `textData`, `attributes.x.ceTimestamp.seconds` as a decimal string, bytes as
 * base64, a oneof as its set member, unset members left out).
 */
export function bufDecode(type: "CloudEvent" | "CloudEventBatch", bytes: Uint8Array): Record<string, unknown> {
  const reg = bufRegistry();
  const desc = reg.getMessage(`io.cloudevents.v1.${type}`);
  if (!desc) throw new Error(`io.cloudevents.v1.${type} is not in the descriptor set`);
  return plain(fromBinary(desc, bytes)) as Record<string, unknown>;
}
