/**
 * JetStream publishes pipelined on one connection, without nats.js `js.publish`.
 *
 * `js.publish` is a `nc.request` per event: a `RequestOne` with its own timer, a promise chain in
 * the JetStream client, and on every successful request an upstream `RequestOne.cancel()` that builds
 * `new RequestError("cancelled")` with its stack trace (nats-core 3.4.0, whatever `noAsyncTraces`
 * says): 6–12 % of the daemon's CPU in the JetStream bench rows (BENCHMARKS.md). Here each publish
 * is a core publish whose reply subject is a token under one wildcard inbox of our own; PubAcks are
 * matched by token and deadlines are checked by one sweep timer.
 *
 * Publishes are handed to the connection once per event-loop turn (`setImmediate`), not at once:
 * nats.js writes to the socket from a microtask after the first publish, so publishes made from
 * separate I/O callbacks — one per HTTP request, with many connections — each cost a socket write
 * (20 % of the daemon's CPU in bench row 4, measured with --cpu-prof). Held to the end of the poll
 * phase, the publishes of every callback of that turn leave in one write.
 */
import { JetStreamApiError } from "@nats-io/jetstream";
import { createInbox, errors as natsErrors, type MsgHdrs, type Msg, type NatsConnection, type Subscription } from "@nats-io/nats-core";
import { AbortWatch } from "../../src/core/abort-watch.js";

/** The JetStream client's own default request timeout. */
export const PUBLISH_TIMEOUT_MS = 5_000;

interface Pending {
  readonly subject: string;
  readonly payload: Uint8Array;
  readonly headers: MsgHdrs;
  readonly signal: AbortSignal | undefined;
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
  readonly onAbortError: ((s: AbortSignal) => unknown) | undefined;
  /** The reply token it was sent with. */
  token: string;
  /** `performance.now()` when it was handed to the connection. */
  sentAt: number;
  /** Resolved or rejected already (an abort or a close while it waited for its turn). */
  done: boolean;
}

/**
 * Contract: `publish` resolves once the stream stored the message (or recognised it as a duplicate
 * of `Nats-Msg-Id`), and rejects with
 * - `JetStreamApiError` when the stream answered with an error (status and code as the server sent them),
 * - `errors.NoRespondersError` when no stream captures the subject,
 * - `errors.TimeoutError` when no answer came within `timeoutMs`,
 * - the signal's reason (via `onAbort`) when `signal` aborts first,
 * - `errors.ClosedConnectionError` when the pipeline (or its connection) closes first.
 * A rejection never means the message was not stored: the caller retries with the same
 * `Nats-Msg-Id`, which the stream deduplicates. Never throws synchronously.
 */
export class JetStreamPublisher {
  private readonly inbox: string;
  private readonly sub: Subscription;
  /** In send order, so the sweep only looks at the oldest. */
  private readonly inFlight = new Map<string, Pending>();
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** Publishes waiting for the end of this turn's poll phase. */
  private queued: Pending[] = [];
  private handOver: ReturnType<typeof setImmediate> | undefined;
  private seq = 0;
  /** A write whose signal aborts is dropped; a late PubAck for it is ignored. */
  private readonly aborts = new AbortWatch<Pending>((p, signal) => {
    if (p.token !== "") this.inFlight.delete(p.token);
    p.done = true;
    p.reject(p.onAbortError ? p.onAbortError(signal) : signal.reason);
  });
  private closed = false;

  constructor(
    private readonly nc: NatsConnection,
    private readonly opts: { readonly timeoutMs?: number; readonly inboxPrefix?: string } = {},
  ) {
    this.inbox = `${createInbox(opts.inboxPrefix)}.`;
    this.sub = nc.subscribe(`${this.inbox}*`, { callback: (err, m) => (err ? this.close(err) : this.answer(m)) });
    nc.closed().then(
      (err) => this.close(err ?? undefined),
      (err: unknown) => this.close(err),
    );
  }

  /** Publishes awaiting their PubAck (or their turn to be sent). */
  get pending(): number {
    return this.queued.length + this.inFlight.size;
  }

  /** `onAbortError` maps an aborted signal to the error to reject with. */
  publish(subject: string, payload: Uint8Array, headers: MsgHdrs, signal?: AbortSignal, onAbortError?: (s: AbortSignal) => unknown): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.closed) return reject(new natsErrors.ClosedConnectionError());
      if (signal?.aborted) return reject(onAbortError ? onAbortError(signal) : signal.reason);
      const p: Pending = { subject, payload, headers, signal, resolve, reject, onAbortError, token: "", sentAt: 0, done: false };
      if (signal) this.aborts.add(signal, p);
      this.queued.push(p);
      this.handOver ??= setImmediate(this.sendQueued);
    });
  }

  /** Rejects everything still pending and unsubscribes. Idempotent. */
  close(err?: unknown): void {
    if (this.closed) return;
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.handOver) clearImmediate(this.handOver);
    const e = err instanceof Error ? err : new natsErrors.ClosedConnectionError();
    const all = [...this.queued, ...this.inFlight.values()];
    this.queued = [];
    this.inFlight.clear();
    for (const p of all) this.fail(p, e);
    try {
      this.sub.unsubscribe();
    } catch {
      // the connection is already closed
    }
  }

  private readonly sendQueued = (): void => {
    this.handOver = undefined;
    const queued = this.queued;
    this.queued = [];
    const now = performance.now();
    for (const p of queued) if (!p.done) this.sendOne(p, now);
    this.armSweeper();
  };

  private sendOne(p: Pending, now: number): void {
    const token = (this.seq++).toString(36);
    try {
      this.nc.publish(p.subject, p.payload, { reply: this.inbox + token, headers: p.headers });
    } catch (err) {
      this.fail(p, err);
      return;
    }
    p.token = token;
    p.sentAt = now;
    this.inFlight.set(token, p);
  }

  private armSweeper(): void {
    if (this.sweeper === undefined && this.inFlight.size > 0) {
      this.sweeper = setInterval(this.sweep, Math.max(10, Math.floor(this.timeout / 4)));
      this.sweeper.unref();
    }
  }

  private get timeout(): number {
    return this.opts.timeoutMs ?? PUBLISH_TIMEOUT_MS;
  }

  private answer(m: Msg): void {
    const token = m.subject.slice(this.inbox.length);
    const p = this.inFlight.get(token);
    if (p === undefined) return; // timed out or aborted already
    this.inFlight.delete(token);
    const err = pubAckError(m);
    if (err === undefined) this.succeed(p);
    else this.fail(p, err);
  }

  private readonly sweep = (): void => {
    const limit = performance.now() - this.timeout;
    for (const [token, p] of this.inFlight) {
      if (p.sentAt > limit) break;
      this.inFlight.delete(token);
      this.fail(p, new natsErrors.TimeoutError());
    }
    if (this.inFlight.size === 0 && this.sweeper !== undefined) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  };

  private succeed(p: Pending): void {
    if (p.signal) this.aborts.delete(p.signal, p);
    p.done = true;
    p.resolve();
  }

  private fail(p: Pending, err: unknown): void {
    if (p.signal) this.aborts.delete(p.signal, p);
    p.done = true;
    p.reject(err);
  }
}

/** `undefined` for a PubAck; the error the answer stands for otherwise. */
export function pubAckError(m: Msg): Error | undefined {
  const data = m.data;
  if (data.length === 0) {
    // A status message: 503 is "no responders" (no stream captures the subject).
    const code = m.headers?.code ?? 0;
    return code === 503 ? new natsErrors.NoRespondersError(m.subject) : new natsErrors.RequestError(`unexpected status ${code} ${m.headers?.description ?? ""}`.trim());
  }
  // A PubAck is `{"stream":"S","seq":1}` (plus "domain" and "duplicate"): parse only answers that
  // carry an error, which JSON.parse is then cheap next to.
  if (!includesError(data)) return undefined;
  let v: { error?: { code: number; err_code: number; description: string } };
  try {
    v = JSON.parse(new TextDecoder().decode(data)) as typeof v;
  } catch (err) {
    return new natsErrors.RequestError("invalid PubAck", { cause: err });
  }
  return v.error ? new JetStreamApiError(v.error) : undefined;
}

/** `"error"` anywhere in the answer (a PubAck never has it: stream names cannot hold quotes). */
function includesError(data: Uint8Array): boolean {
  // "error" is 7 bytes: look for the `"e` that opens it and compare the rest.
  for (let i = data.indexOf(0x22); i >= 0 && i + 6 < data.length; i = data.indexOf(0x22, i + 1)) {
    if (data[i + 1] === 0x65 && data[i + 2] === 0x72 && data[i + 3] === 0x72 && data[i + 4] === 0x6f && data[i + 5] === 0x72 && data[i + 6] === 0x22) return true;
  }
  return false;
}
