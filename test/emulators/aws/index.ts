/**
 * A loopback AWS emulator for tests and benchmarks: one `node:http` (or `node:https`) server that the
 * real SDK clients talk to through their `endpoint` option (docs/clouds.md §1.4, §5.1).
 *
 * - Routing: `X-Amz-Target: AWSEvents.<Op>` → EventBridge (AWS JSON 1.1), `AmazonSQS.<Op>` → SQS
 *   (AWS JSON 1.0, query-compatible errors), a form body with `Action=` → STS (query protocol, XML).
 * - Every request's SigV4 signature is verified against the keys it knows (`credentials`, plus the
 *   temporary keys AssumeRole hands out), for the service the target names.
 * - Faults (`faults`): throttling, 5xx, dropped connections and delays per operation, and per-entry
 *   failures inside successful batch calls.
 * - `stop()` / `start()` take the server down (dropping every connection) and bring it back on the
 *   same port with every queue, message and rule kept, to test clients across an outage.
 *
 *   const aws = await startAwsEmulator();
 *   const q = aws.sqs.createQueue("orders");          // q.url, q.arn
 *   new SQSClient({ endpoint: aws.url, region: aws.region, credentials: aws.credentials });
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { randomUUID } from "node:crypto";
import { EventBridgeService } from "./eventbridge.js";
import { Faults } from "./faults.js";
import { isProblem, verifySigV4, type KnownKey } from "./sigv4.js";
import { SqsService } from "./sqs.js";
import { StsService, stsErrorXml } from "./sts.js";
import { AwsError } from "./wire.js";

export { Faults } from "./faults.js";
export type { EntryFault, FaultRule } from "./faults.js";
export type { Envelope } from "./eventbridge.js";
export { entrySize } from "./eventbridge.js";

export interface AwsEmulatorOptions {
  /** Port to listen on (default: a free one). `start()` after `stop()` reuses it. */
  readonly port?: number;
  readonly region?: string;
  readonly accountId?: string;
  /** Access key id → secret access key that the emulator accepts. Default `{ test: "test" }`. */
  readonly credentials?: Readonly<Record<string, string>>;
  /** Check SigV4 signatures (default true). */
  readonly verifySignatures?: boolean;
  /** Serve HTTPS with this certificate and key (PEM text). */
  readonly tls?: { readonly cert: string | Buffer; readonly key: string | Buffer };
  /** PutEvents limit on the sum of entry sizes (default 256 KiB). */
  readonly maxEntryBytes?: number;
  /** Default `MaximumMessageSize` of new queues (default 256 KiB). */
  readonly maxMessageBytes?: number;
  /** Role ARNs AssumeRole grants; default any. */
  readonly roles?: readonly string[];
}

export interface AwsEmulator {
  /** `http://127.0.0.1:<port>` (or https). */
  readonly url: string;
  readonly port: number;
  readonly region: string;
  readonly accountId: string;
  /** The first configured key, ready for an SDK client's `credentials`. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly sqs: SqsService;
  readonly events: EventBridgeService;
  readonly sts: StsService;
  readonly faults: Faults;
  /** Requests answered, per `<service>.<Op>` (faults and refusals included). */
  readonly calls: Map<string, number>;
  /** Requests refused for their signature, with AWS's reason. */
  readonly signatureFailures: string[];
  /** Requests with a valid signature, per access key id that signed them. */
  readonly callers: Map<string, number>;
  /** Takes the server down, dropping every open connection; state is kept. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

const MAX_REQUEST_BYTES = 4 * 1024 * 1024;

type Service = "events" | "sqs" | "sts";

export async function startAwsEmulator(opts: AwsEmulatorOptions = {}): Promise<AwsEmulator> {
  const region = opts.region ?? "us-east-1";
  const accountId = opts.accountId ?? "000000000000";
  const keys = new Map<string, KnownKey>(Object.entries(opts.credentials ?? { test: "test" }).map(([id, secret]) => [id, { secretAccessKey: secret }]));
  const [firstId, firstKey] = [...keys.entries()][0]!;
  const verify = opts.verifySignatures ?? true;
  const faults = new Faults();
  const scheme = opts.tls ? "https" : "http";
  let port = opts.port ?? 0;
  const baseUrl = () => `${scheme}://127.0.0.1:${port}`;
  const sqs = new SqsService({ region, accountId, baseUrl, maxMessageBytes: opts.maxMessageBytes ?? 262_144, faults });
  const events = new EventBridgeService({ region, accountId, maxEntryBytes: opts.maxEntryBytes ?? 262_144, sqs, faults });
  const sts = new StsService(accountId, (id, key) => keys.set(id, key), opts.roles ? new Set(opts.roles) : undefined);
  const calls = new Map<string, number>();
  const signatureFailures: string[] = [];
  const callers = new Map<string, number>();

  const handler = (req: IncomingMessage, res: ServerResponse) => void serve(req, res);
  let server: Server | undefined;
  const sockets = new Set<Socket>();

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const gone = new AbortController();
    // Only a client that left before the answer aborts (a long poll then ends without taking anything).
    res.once("close", () => {
      if (!res.writableFinished) gone.abort();
    });
    let body: Buffer;
    try {
      body = await readBody(req);
    } catch {
      res.writeHead(413).end();
      return;
    }
    const target = header(req, "x-amz-target");
    let service: Service;
    let op: string;
    let form: URLSearchParams | undefined;
    if (target?.startsWith("AWSEvents.")) [service, op] = ["events", target.slice(10)];
    else if (target?.startsWith("AmazonSQS.")) [service, op] = ["sqs", target.slice(10)];
    else {
      form = new URLSearchParams(body.toString("utf8"));
      [service, op] = ["sts", form.get("Action") ?? ""];
    }
    const name = `${service}.${op}`;
    calls.set(name, (calls.get(name) ?? 0) + 1);
    let callerKeyId = firstId;
    try {
      if (verify) {
        const caller = await verifySigV4({ method: req.method ?? "POST", url: req.url ?? "/", headers: req.headers, body }, (id) => keys.get(id));
        if (isProblem(caller)) {
          signatureFailures.push(`${name}: ${caller.code}`);
          throw new AwsError(403, caller.code, caller.message);
        }
        if (caller.service !== service) throw new AwsError(403, "InvalidSignatureException", `Credential should be scoped to correct service: '${service}'.`);
        callerKeyId = caller.accessKeyId;
        callers.set(callerKeyId, (callers.get(callerKeyId) ?? 0) + 1);
      }
      const fault = faults.take(op);
      if (fault?.kind === "drop") {
        req.socket.destroy();
        return;
      }
      if (fault?.kind === "delay") await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
      if (fault?.kind === "throttle") throw throttling(service);
      if (fault?.kind === "server-error") throw new AwsError(fault.status ?? 500, service === "sqs" ? "InternalError" : "InternalException", "We encountered an internal error. Please try again.");
      if (service === "sts") return reply(res, 200, "text/xml", sts.handle(op, form!, callerKeyId));
      let json: Record<string, unknown>;
      try {
        json = body.length === 0 ? {} : (JSON.parse(body.toString("utf8")) as Record<string, unknown>);
      } catch {
        throw new AwsError(400, "SerializationException", "Request body is not valid JSON");
      }
      const out = service === "sqs" ? await sqs.handle(op, json, gone.signal) : await events.handle(op, json);
      if (gone.signal.aborted) return;
      reply(res, 200, service === "sqs" ? "application/x-amz-json-1.0" : "application/x-amz-json-1.1", JSON.stringify(out));
    } catch (err) {
      if (res.destroyed) return;
      const e = err instanceof AwsError ? err : new AwsError(500, "InternalFailure", (err as Error).message);
      if (service === "sts") return reply(res, e.status, "text/xml", stsErrorXml(e));
      const headers: Record<string, string> = {};
      if (service === "sqs") headers["x-amzn-query-error"] = `${e.queryCode ?? e.code};${e.senderFault ? "Sender" : "Receiver"}`;
      const type = service === "sqs" ? `com.amazonaws.sqs#${e.code}` : e.code;
      reply(res, e.status, service === "sqs" ? "application/x-amz-json-1.0" : "application/x-amz-json-1.1", JSON.stringify({ __type: type, message: e.message }), headers);
    }
  }

  async function start(): Promise<void> {
    if (server) return;
    const s = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
    s.keepAliveTimeout = 65_000;
    s.on("connection", (sock: Socket) => {
      sockets.add(sock);
      sock.once("close", () => sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.listen(port, "127.0.0.1", () => {
        s.off("error", reject);
        resolve();
      });
    });
    const addr = s.address();
    if (typeof addr === "object" && addr) port = addr.port;
    server = s;
  }

  async function stop(): Promise<void> {
    const s = server;
    if (!s) return;
    server = undefined;
    const closed = new Promise<void>((r) => s.close(() => r()));
    for (const sock of sockets) sock.destroy();
    sockets.clear();
    await closed;
  }

  await start();
  return {
    get url() {
      return baseUrl();
    },
    get port() {
      return port;
    },
    region,
    accountId,
    credentials: { accessKeyId: firstId, secretAccessKey: firstKey.secretAccessKey },
    sqs,
    events,
    sts,
    faults,
    calls,
    signatureFailures,
    callers,
    stop,
    start,
    close: stop,
  };
}

function throttling(service: Service): AwsError {
  if (service === "sqs") return new AwsError(400, "RequestThrottled", "Request is throttled.", "RequestThrottled");
  if (service === "sts") return new AwsError(400, "Throttling", "Rate exceeded");
  return new AwsError(400, "ThrottlingException", "Rate exceeded");
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    req.on("data", (c: Buffer) => {
      n += c.length;
      if (n > MAX_REQUEST_BYTES) {
        reject(new Error("too large"));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

function reply(res: ServerResponse, status: number, contentType: string, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": contentType, "x-amzn-requestid": randomUUID(), "content-length": Buffer.byteLength(body), ...headers });
  res.end(body);
}
