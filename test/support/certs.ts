/**
 * Throwaway TLS material for tests, made with `/usr/bin/openssl` in a new temp directory:
 *
 * - `ca`: a CA (`ca.pem`, `ca.key`) that signs the server and client certificates below;
 * - `server`: a server certificate for 127.0.0.1 / localhost (SAN IP:127.0.0.1, DNS:localhost);
 * - `client`: a client certificate (extendedKeyUsage clientAuth) signed by the same CA;
 * - `rogueCa` + `rogueClient`: a second, unrelated CA and a client certificate it signed (a
 *   certificate that a server trusting only `ca` must refuse);
 * - `selfSigned`: a self-signed server certificate for 127.0.0.1 / localhost, signed by no CA.
 *
 * EC P-256 keys keep generation fast (~50 ms for everything). The certificates are valid for 2 days.
 * The directory and files are world-readable on purpose: mosquitto started as root drops to the
 * `mosquitto` user before it reads its TLS files. Nothing here is ever used outside loopback tests.
 */
import { execFileSync } from "node:child_process";
import { accessSync, chmodSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const OPENSSL = "/usr/bin/openssl";

export interface CertPair {
  /** PEM certificate file. */
  readonly cert: string;
  /** PEM private key file (unencrypted). */
  readonly key: string;
}

export interface TestCerts {
  readonly dir: string;
  /** The CA that signed `server` and `client`. */
  readonly ca: CertPair;
  readonly server: CertPair;
  readonly client: CertPair;
  /** A CA nobody trusts, and a client certificate it signed. */
  readonly rogueCa: CertPair;
  readonly rogueClient: CertPair;
  /** A self-signed server certificate (SAN IP:127.0.0.1, DNS:localhost), not signed by `ca`. */
  readonly selfSigned: CertPair;
  /** Reads a file as text (handy to assert that a private key never shows up in a log). */
  text(path: string): string;
  /** Removes the directory. Idempotent. */
  cleanup(): void;
}

function requireOpenssl(): void {
  try {
    accessSync(OPENSSL, constants.X_OK);
  } catch {
    throw new Error(`${OPENSSL} not found or not executable: the TLS tests make their certificates with it; install it with: apt-get install -y openssl`);
  }
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync(OPENSSL, args, { cwd, stdio: ["ignore", "pipe", "pipe"], timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString("utf8").trim() || e.message}`);
  }
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

function makeCa(dir: string, name: string, cn: string): CertPair {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      "[req]",
      "distinguished_name = dn",
      "[dn]",
      "[v3_ca]",
      "basicConstraints = critical, CA:true",
      "keyUsage = critical, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
      "",
    ].join("\n"),
  );
  openssl(["req", "-x509", ...EC, "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${cn}`, "-config", ext, "-extensions", "v3_ca"], dir);
  return { cert, key };
}

function makeLeaf(dir: string, name: string, cn: string, ca: CertPair, extensions: string[]): CertPair {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, [...extensions, ""].join("\n"));
  openssl(["req", "-new", ...EC, "-keyout", key, "-out", csr, "-subj", `/CN=${cn}`], dir);
  openssl(
    ["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial", "-out", cert, "-days", "2", "-sha256", "-extfile", ext],
    dir,
  );
  return { cert, key };
}

const SERVER_EXT = [
  "basicConstraints = CA:false",
  "keyUsage = critical, digitalSignature, keyEncipherment",
  "extendedKeyUsage = serverAuth",
  "subjectAltName = IP:127.0.0.1, DNS:localhost",
];
const CLIENT_EXT = ["basicConstraints = CA:false", "keyUsage = critical, digitalSignature, keyEncipherment", "extendedKeyUsage = clientAuth"];

function makeSelfSigned(dir: string): CertPair {
  const cert = join(dir, "self-signed.pem");
  const key = join(dir, "self-signed.key");
  const ext = join(dir, "self-signed.ext");
  writeFileSync(ext, ["[req]", "distinguished_name = dn", "[dn]", "[v3_self]", ...SERVER_EXT, ""].join("\n"));
  openssl(["req", "-x509", ...EC, "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost", "-config", ext, "-extensions", "v3_self"], dir);
  return { cert, key };
}

/** Creates the CA, server, client, rogue and self-signed certificates in a new temp directory. */
export function makeTestCerts(): TestCerts {
  requireOpenssl();
  const dir = mkdtempSync(join(tmpdir(), "cebridge-certs-"));
  try {
    const ca = makeCa(dir, "ca", "cebridge test CA");
    const server = makeLeaf(dir, "server", "localhost", ca, SERVER_EXT);
    const client = makeLeaf(dir, "client", "cebridge-test-client", ca, CLIENT_EXT);
    const rogueCa = makeCa(dir, "rogue-ca", "cebridge rogue CA");
    const rogueClient = makeLeaf(dir, "rogue-client", "cebridge-rogue-client", rogueCa, CLIENT_EXT);
    const selfSigned = makeSelfSigned(dir);
    chmodSync(dir, 0o755);
    for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o644);
    return {
      dir,
      ca,
      server,
      client,
      rogueCa,
      rogueClient,
      selfSigned,
      text: (p) => readFileSync(p, "utf8"),
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}
