/**
 * deploy/: every Kubernetes manifest validated against the Kubernetes API schemas without a cluster,
 * twice: by the JSON-schema validators `kubernetes-models` generates from the Kubernetes OpenAPI
 * spec (types, required fields, enums), and by type-checking each document against the same
 * package's TypeScript interfaces, which catches the misspelt or misplaced keys the API server would
 * refuse (the OpenAPI schemas allow unknown properties). Then the parts that must agree with each
 * other and with cebridge: the embedded config passes `cebridge lint` with the Secret's keys as its
 * `${file:}` secrets and the container's env as its environment; probes, the metrics annotation
 * and the admin port agree; terminationGracePeriodSeconds covers shutdown_timeout; non-root and a
 * read-only root filesystem; the scaled Deployment's consumer groups and its PodDisruptionBudget.
 * The compose file and its bridge config are checked too.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import ts from "typescript";
import { parse, parseAllDocuments } from "yaml";
import { builtinRegistry } from "../../../connectors/index.js";
import { parseDuration } from "../../../src/config/units.js";
import { MAIN, REPO_ROOT } from "../../support/daemon.js";

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const MANIFESTS = ["deploy/sidecar.yaml", "deploy/scaled.yaml"];
const registry = builtinRegistry();
const tmp = mkdtempSync(join(tmpdir(), "cebridge-deploy-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

function load(rel: string): Doc[] {
  const docs = parseAllDocuments(readFileSync(join(REPO_ROOT, rel), "utf8"));
  for (const d of docs) assert.deepEqual(d.errors, [], `${rel}: YAML errors`);
  return docs.map((d) => d.toJS() as Doc);
}

/** `kubernetes-models` module of an apiVersion: `v1` → `kubernetes-models/v1`, `apps/v1` → `kubernetes-models/apps/v1`. */
function modelModule(apiVersion: string): string {
  return `kubernetes-models/${apiVersion}`;
}

describe("deploy - Kubernetes manifests against the Kubernetes schemas", () => {
  for (const rel of MANIFESTS) {
    test(`deploy - ${rel}: every document passes the Kubernetes JSON schema of its kind`, async () => {
      for (const doc of load(rel)) {
        const mod = (await import(modelModule(doc["apiVersion"]))) as Record<string, new (d: Doc) => { validate(): void }>;
        const Model = mod[doc["kind"]];
        assert.ok(Model, `${rel}: no schema for ${doc["apiVersion"]} ${doc["kind"]}`);
        assert.doesNotThrow(() => new Model(doc).validate(), `${rel}: ${doc["kind"]} ${doc["metadata"]?.["name"]}`);
      }
    });
  }

  test("deploy - the schema check fails for a manifest that breaks it (a string where an integer goes)", async () => {
    const [bad] = load("deploy/scaled.yaml").filter((d) => d["kind"] === "Deployment");
    bad!["spec"]["replicas"] = "three";
    const { Deployment } = (await import("kubernetes-models/apps/v1")) as unknown as Record<string, new (d: Doc) => { validate(): void }>;
    assert.throws(() => new Deployment!(bad!).validate(), /replicas must be integer/);
  });

  test("deploy - no unknown or misplaced keys (type-checked against the Kubernetes API types)", () => {
    const sources = MANIFESTS.flatMap((rel) => load(rel).map((doc, i) => ({ rel, i, doc })));
    const misspelt = load("deploy/sidecar.yaml").find((d) => d["kind"] === "Deployment")!;
    misspelt["spec"]["template"]["spec"]["terminationGracePeriodSecond"] = 30; // the control case
    const check = [...sources, { rel: "control", i: 0, doc: misspelt }];
    const file = join(REPO_ROOT, "deploy", "__manifests_typecheck__.ts");
    const text = check
      .map(({ doc }, n) => `import type { I${doc["kind"]} as T${n} } from "${modelModule(doc["apiVersion"])}";\nexport const d${n}: T${n} = ${JSON.stringify(doc)};`)
      .join("\n");
    const options: ts.CompilerOptions = { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, skipLibCheck: true, types: [] };
    const host = ts.createCompilerHost(options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest));
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => name === file || fileExists(name);
    const program = ts.createProgram([file], options, host);
    const problems = ts.getPreEmitDiagnostics(program).map((d) => {
      const line = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : -1;
      const entry = check[Math.floor(line / 2)];
      return `${entry ? `${entry.rel} #${entry.i} ${entry.doc["kind"]}` : "?"}: ${ts.flattenDiagnosticMessageText(d.messageText, " ")}`;
    });
    const control = problems.filter((p) => p.startsWith("control"));
    assert.equal(control.length, 1, problems.join("\n"));
    assert.match(control[0]!, /terminationGracePeriodSecond/);
    assert.deepEqual(problems.filter((p) => !p.startsWith("control")), []);
  });
});

// ---------------------------------------------------------------------------------------------------
// What the manifests and cebridge must agree on
// ---------------------------------------------------------------------------------------------------

interface Workload {
  readonly rel: string;
  readonly deployment: Doc;
  readonly pod: Doc;
  readonly container: Doc;
  readonly configYaml: string;
  readonly config: Doc;
  readonly secret: Doc;
}

function workload(rel: string): Workload {
  const docs = load(rel);
  const deployment = docs.find((d) => d["kind"] === "Deployment")!;
  const pod = deployment["spec"]["template"];
  const container = (pod["spec"]["containers"] as Doc[]).find((c) => c["name"] === "cebridge")!;
  const env = new Map((container["env"] as Doc[]).map((e) => [e["name"], e["value"]]));
  const configPath = env.get("CEBRIDGE_CONFIG") as string;
  const mount = (container["volumeMounts"] as Doc[]).find((m) => configPath.startsWith(`${m["mountPath"]}/`))!;
  assert.ok(mount, `${rel}: CEBRIDGE_CONFIG ${configPath} is on no volume mount`);
  const volume = (pod["spec"]["volumes"] as Doc[]).find((v) => v["name"] === mount["name"])!;
  const configMap = docs.find((d) => d["kind"] === "ConfigMap" && d["metadata"]["name"] === volume["configMap"]?.["name"])!;
  assert.ok(configMap, `${rel}: the config volume is not the ConfigMap in this file`);
  const configYaml = configMap["data"][configPath.slice(mount["mountPath"].length + 1)] as string;
  assert.ok(configYaml, `${rel}: the ConfigMap has no key for ${configPath}`);
  const secretVolume = (pod["spec"]["volumes"] as Doc[]).find((v) => v["secret"])!;
  const secret = docs.find((d) => d["kind"] === "Secret" && d["metadata"]["name"] === secretVolume["secret"]["secretName"])!;
  return { rel, deployment, pod, container, configYaml, config: parse(configYaml) as Doc, secret };
}

/** Runs `cebridge lint` on `yaml` with its `${file:}` secrets served from the Secret, and `env`. */
function lint(w: Workload): { status: number | null; output: string } {
  const mounts = new Map((w.container["volumeMounts"] as Doc[]).map((m) => [m["name"], m["mountPath"] as string]));
  const secretVolume = (w.pod["spec"]["volumes"] as Doc[]).find((v) => v["secret"])!;
  const secretDir = mounts.get(secretVolume["name"])!;
  const text = w.configYaml.replace(/\$\{file:([^}]*)\}/g, (_m, path: string) => {
    assert.ok(path.startsWith(`${secretDir}/`), `${w.rel}: \${file:${path}} is outside the Secret's mount ${secretDir}`);
    const key = path.slice(secretDir.length + 1);
    const value = w.secret["stringData"]?.[key];
    assert.equal(typeof value, "string", `${w.rel}: the Secret has no key "${key}" for \${file:${path}}`);
    const file = join(tmp, `${w.secret["metadata"]["name"]}-${key}`);
    writeFileSync(file, `${value}\n`);
    return `\${file:${file}}`;
  });
  const configFile = join(tmp, w.rel.replace(/\W/g, "_") + ".yaml");
  writeFileSync(configFile, text);
  // The container's environment only (plus what node needs), as in the pod.
  const env: NodeJS.ProcessEnv = { PATH: process.env["PATH"] };
  for (const e of w.container["env"] as Doc[]) if (typeof e["value"] === "string") env[e["name"]] = e["value"];
  const r = spawnSync(process.execPath, [MAIN, "lint", "-c", configFile], { env, encoding: "utf8" });
  return { status: r.status, output: (r.stdout + r.stderr).replaceAll(configFile, w.rel) };
}

describe("deploy - manifests agree with cebridge", () => {
  for (const rel of MANIFESTS) {
    test(`deploy - ${rel}: the embedded config passes cebridge lint`, () => {
      const w = workload(rel);
      for (const c of Object.values({ ...w.config["sources"], ...w.config["sinks"] } as Record<string, Doc>)) {
        assert.ok(registry.source(c["type"]) ?? registry.sink(c["type"]), `${rel}: connector type ${c["type"]} is not registered`);
      }
      const { status, output } = lint(w);
      assert.equal(status, 0, output);
      assert.doesNotMatch(output, / warning /, output);
    });

    test(`deploy - ${rel}: probes, metrics annotation, admin port and shutdown agree with the config`, () => {
      const w = workload(rel);
      const admin = String(w.config["engine"]["admin"]["listen"]);
      assert.match(admin, /^0\.0\.0\.0:\d+$/, "the kubelet probes the pod IP");
      const port = Number(admin.split(":")[1]);
      const ports = new Map((w.container["ports"] as Doc[]).map((p) => [p["name"], p["containerPort"]]));
      assert.equal(ports.get("admin"), port);
      const annotations = w.pod["metadata"]["annotations"];
      assert.equal(annotations["prometheus.io/scrape"], "true");
      assert.equal(Number(annotations["prometheus.io/port"]), port);
      assert.equal(annotations["prometheus.io/path"], "/metrics");
      assert.equal(w.container["livenessProbe"]["httpGet"]["path"], "/healthz");
      assert.equal(w.container["readinessProbe"]["httpGet"]["path"], "/readyz");
      for (const p of ["livenessProbe", "readinessProbe", "startupProbe"]) assert.equal(w.container[p]["httpGet"]["port"], "admin", p);
      // SIGTERM drains for shutdown_timeout, then settles and closes: the pod must not be killed before.
      const shutdownMs = parseDuration(String(w.config["engine"]["shutdown_timeout"]))!;
      const grace = w.pod["spec"]["terminationGracePeriodSeconds"] as number;
      assert.ok(grace * 1000 >= shutdownMs + 5000, `terminationGracePeriodSeconds ${grace} leaves no room after shutdown_timeout ${shutdownMs} ms`);
      assert.ok(grace * 1000 <= shutdownMs + 30_000, `terminationGracePeriodSeconds ${grace} is far above shutdown_timeout ${shutdownMs} ms: keep them in step`);
    });

    test(`deploy - ${rel}: non-root, read-only root filesystem, requests and a memory limit`, () => {
      const w = workload(rel);
      const podSc = w.pod["spec"]["securityContext"] ?? {};
      const sc = w.container["securityContext"];
      assert.equal(podSc["runAsNonRoot"], true);
      assert.equal(sc["runAsUser"] ?? podSc["runAsUser"], 65532, "the image's user");
      assert.equal(sc["readOnlyRootFilesystem"], true);
      assert.equal(sc["allowPrivilegeEscalation"], false);
      assert.deepEqual(sc["capabilities"]["drop"], ["ALL"]);
      assert.equal(podSc["fsGroup"], 65532, "the Secret's files are readable by the bridge");
      const { requests, limits } = w.container["resources"];
      assert.ok(requests["cpu"] && requests["memory"] && limits["memory"], JSON.stringify(w.container["resources"]));
      // Every path the config writes (file sinks) is on a volume, since the root filesystem is read-only.
      const mounts = (w.container["volumeMounts"] as Doc[]).map((m) => m["mountPath"] as string);
      for (const sink of Object.values(w.config["sinks"] as Record<string, Doc>)) {
        if (sink["type"] !== "file") continue;
        assert.ok(mounts.some((m) => String(sink["path"]).startsWith(`${m}/`)), `${sink["path"]} is on no volume`);
      }
    });
  }

  test("deploy - deploy/scaled.yaml: replicas share a JetStream durable, an MQTT shared subscription and a Pub/Sub subscription; the PDB keeps a quorum", () => {
    const w = workload("deploy/scaled.yaml");
    const sources = Object.values(w.config["sources"] as Record<string, Doc>);
    assert.ok(sources.some((s) => s["type"] === "nats_jetstream" && s["consumer"] && s["create"] === false), "a bound JetStream durable");
    assert.ok(sources.some((s) => s["type"] === "mqtt" && String(s["topic"]).startsWith("$share/")), "an MQTT shared subscription");
    assert.ok(sources.some((s) => s["type"] === "gcp_pubsub" && s["subscription"]), "a Pub/Sub subscription");
    assert.equal(w.config["engine"]["instance_id"], undefined, "instance_id must default to the pod name, unique per replica");
    const replicas = w.deployment["spec"]["replicas"] as number;
    assert.ok(replicas >= 2);
    const pdb = load("deploy/scaled.yaml").find((d) => d["kind"] === "PodDisruptionBudget")!;
    const labels = w.pod["metadata"]["labels"];
    for (const [k, v] of Object.entries(pdb["spec"]["selector"]["matchLabels"] as Record<string, string>)) assert.equal(labels[k], v, `PDB selector ${k}`);
    assert.ok(pdb["spec"]["minAvailable"] >= 1 && pdb["spec"]["minAvailable"] < replicas, "a drain can still evict one replica at a time");
  });
});

describe("deploy - compose file for local brokers", () => {
  test("deploy - compose.yaml starts NATS with JetStream and Mosquitto on loopback, and its bridge config lints", () => {
    const compose = parse(readFileSync(join(REPO_ROOT, "deploy", "compose.yaml"), "utf8")) as Doc;
    const { nats, mosquitto, cebridge } = compose["services"];
    assert.match(nats["image"], /^nats:2\.\d+/);
    assert.ok((nats["command"] as string[]).includes("-js"), "JetStream on");
    assert.match(mosquitto["image"], /^eclipse-mosquitto:2/);
    for (const svc of [nats, mosquitto, cebridge]) for (const p of svc["ports"] as string[]) assert.match(p, /^127\.0\.0\.1:/, "published on loopback only");
    assert.ok((nats["ports"] as string[]).includes("127.0.0.1:4222:4222") && (mosquitto["ports"] as string[]).includes("127.0.0.1:1883:1883"), "the examples' default addresses");
    for (const svc of [mosquitto, cebridge]) {
      for (const v of svc["volumes"] as string[]) {
        const host = v.split(":")[0]!;
        assert.ok(existsSync(join(REPO_ROOT, "deploy", host)), `${host} exists`);
      }
    }
    assert.equal(cebridge["read_only"], true);
    assert.equal(cebridge["user"], "65532:65532");
    const conf = readFileSync(join(REPO_ROOT, "deploy", "local", "mosquitto.conf"), "utf8");
    assert.match(conf, /^listener 1883 0\.0\.0\.0$/m);
    const r = spawnSync(process.execPath, [MAIN, "lint", "-c", join(REPO_ROOT, "deploy", "local", "cebridge.yaml")], { encoding: "utf8", env: { PATH: process.env["PATH"] } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(dirname(cebridge["environment"]["CEBRIDGE_CONFIG"]), "/etc/cebridge/local");
  });
});
