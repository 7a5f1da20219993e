/**
 * SigV4 verification for the AWS emulator (docs/clouds.md §1.5).
 *
 * The request is rebuilt from the headers the client says it signed and signed again with
 * `@smithy/signature-v4` under the secret we know for its access key; the two signatures must match.
 * This is the same signer the SDK uses, so the check proves the client signed exactly what went over
 * the wire (method, path, query, signed headers and body hash) with the key it was given.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import { SignatureV4 } from "@smithy/signature-v4";

/** A node:crypto shim with the `Checksum` shape SignatureV4 expects (an HMAC when given a secret). */
type Data = string | ArrayBuffer | ArrayBufferView;

function bytes(d: Data): string | Uint8Array {
  if (typeof d === "string") return d;
  if (d instanceof ArrayBuffer) return new Uint8Array(d);
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

class Sha256 {
  private readonly h;
  constructor(secret?: Data) {
    this.h = secret === undefined ? createHash("sha256") : createHmac("sha256", bytes(secret));
  }
  update(data: Data): void {
    this.h.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {
    throw new Error("not supported");
  }
}

/** What a valid signature tells about the caller. */
export interface Caller {
  readonly accessKeyId: string;
  readonly region: string;
  readonly service: string;
  readonly sessionToken: string | undefined;
}

/** A key the emulator accepts. `sessionToken` is required on every request when set (STS keys). */
export interface KnownKey {
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** Epoch ms after which the key is refused (temporary credentials). */
  readonly expiresAt?: number;
}

/** Why a request was refused, in AWS's words. */
export interface SignatureProblem {
  readonly code: "IncompleteSignature" | "InvalidSignatureException" | "UnrecognizedClientException" | "ExpiredTokenException";
  readonly message: string;
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request,\s*SignedHeaders=([^,]+),\s*Signature=([0-9a-f]{64})$/;
const MAX_SKEW_MS = 15 * 60_000;

function parseAmzDate(v: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(v);
  if (!m) return undefined;
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

export interface SignedRequest {
  readonly method: string;
  /** Path and query as received (`/` for every JSON and query protocol call). */
  readonly url: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: Buffer;
}

/** Verifies the request's SigV4 signature; returns the caller or the reason to refuse it. */
export async function verifySigV4(
  req: SignedRequest,
  lookup: (accessKeyId: string) => KnownKey | undefined,
  now = Date.now(),
): Promise<Caller | SignatureProblem> {
  const header = (name: string): string | undefined => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(",") : v;
  };
  const auth = header("authorization");
  if (!auth) return { code: "IncompleteSignature", message: "Request is missing Authentication Token" };
  const m = AUTH.exec(auth);
  if (!m) return { code: "IncompleteSignature", message: "Authorization header is not a valid AWS4-HMAC-SHA256 signature" };
  const [, accessKeyId, , region, service, signedList, signature] = m as unknown as [string, string, string, string, string, string, string];
  const amzDate = header("x-amz-date");
  const signingDate = amzDate ? parseAmzDate(amzDate) : undefined;
  if (!signingDate) return { code: "IncompleteSignature", message: "X-Amz-Date is missing or malformed" };
  if (Math.abs(now - signingDate.getTime()) > MAX_SKEW_MS) {
    return { code: "InvalidSignatureException", message: "Signature expired: the request time is too far from the server time" };
  }
  const key = lookup(accessKeyId);
  if (!key) return { code: "UnrecognizedClientException", message: "The security token included in the request is invalid." };
  if (key.expiresAt !== undefined && now > key.expiresAt) {
    return { code: "ExpiredTokenException", message: "The security token included in the request is expired" };
  }
  const token = header("x-amz-security-token");
  if (key.sessionToken !== undefined && token !== key.sessionToken) {
    return { code: "UnrecognizedClientException", message: "The security token included in the request is invalid." };
  }

  const signed = signedList.split(";");
  if (!signed.includes("host") || !signed.includes("x-amz-date")) {
    return { code: "IncompleteSignature", message: "SignedHeaders must include host and x-amz-date" };
  }
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = header(name);
    if (v === undefined) return { code: "IncompleteSignature", message: `signed header ${name} is missing from the request` };
    headers[name] = v;
  }
  const qIndex = req.url.indexOf("?");
  const path = qIndex < 0 ? req.url : req.url.slice(0, qIndex);
  const query: Record<string, string | string[]> = {};
  if (qIndex >= 0) {
    for (const [k, v] of new URLSearchParams(req.url.slice(qIndex + 1))) {
      const prev = query[k];
      query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
    }
  }
  const [hostname, port] = (headers["host"] ?? "").split(":");
  const signer = new SignatureV4({
    credentials: { accessKeyId, secretAccessKey: key.secretAccessKey, ...(token !== undefined ? { sessionToken: token } : {}) },
    region,
    service,
    sha256: Sha256,
    // The SDK escapes the path once more except for S3; our paths are always "/".
    uriEscapePath: true,
  });
  const resigned = await signer.sign(
    {
      method: req.method,
      protocol: "http:",
      hostname: hostname ?? "",
      ...(port ? { port: Number(port) } : {}),
      path,
      query,
      headers,
      body: req.body,
    },
    { signingDate, signingRegion: region, signingService: service },
  );
  const got = /Signature=([0-9a-f]{64})/.exec(String(resigned.headers["authorization"] ?? ""))?.[1];
  if (!got || !timingSafeEqual(Buffer.from(got), Buffer.from(signature))) {
    return {
      code: "InvalidSignatureException",
      message: "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
    };
  }
  return { accessKeyId, region, service, sessionToken: token };
}

export function isProblem(v: Caller | SignatureProblem): v is SignatureProblem {
  return "code" in v;
}
