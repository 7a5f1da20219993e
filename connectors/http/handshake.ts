/**
 * The sender's side of the CloudEvents webhook abuse-protection handshake (http-webhook.md §4):
 * an `OPTIONS` to the exact target URL with `WebHook-Request-Origin` (and `WebHook-Request-Rate`
 * when a rate is asked for). Consent is the response's `WebHook-Allowed-Origin` naming our origin
 * (or `*`); the status code is not a consent signal. `WebHook-Allowed-Rate` (requests per minute,
 * or `*`) bounds what we may send afterwards.
 *
 * `judgeHandshake` is the pure part (status and headers → grant, refusal, or "ask again later");
 * `RateSpacer` spreads requests evenly so that no minute holds more than the granted rate.
 */
import { HandshakeError, SinkError } from "../../src/core/errors.js";
import { sleep } from "../../src/core/sleep.js";

/** What the target granted. `ratePerMinute` undefined: no limit (`*`, or no rate asked and none given). */
export interface Grant {
  readonly origin: string;
  readonly ratePerMinute: number | undefined;
}

export interface HandshakeAnswer {
  readonly status: number;
  readonly allowedOrigin: string | undefined;
  readonly allowedRate: string | undefined;
}

/**
 * Judges a handshake answer. Returns the grant, or throws: a `SinkError` (transient) for 408, 429
 * and 5xx, where asking again later may succeed; a `HandshakeError` (permanent) for anything else
 * that is not a grant of our origin.
 */
export function judgeHandshake(answer: HandshakeAnswer, origin: string, requestedRate: number | undefined): Grant {
  const { status } = answer;
  if (status === 408 || status === 429 || status >= 500) {
    throw new SinkError(`the handshake (OPTIONS) was answered ${status}`, true);
  }
  const allowed = answer.allowedOrigin?.trim();
  if (allowed === undefined || allowed === "") {
    throw new HandshakeError(`the target answered the handshake (OPTIONS) with ${status} and no WebHook-Allowed-Origin: it did not consent to deliveries`);
  }
  if (allowed !== "*" && allowed.toLowerCase() !== origin.toLowerCase()) {
    throw new HandshakeError(`the target granted origin "${truncate(allowed)}", not "${origin}"`);
  }
  const rate = answer.allowedRate?.trim();
  if (rate === undefined || rate === "") return { origin, ratePerMinute: requestedRate };
  if (rate === "*") return { origin, ratePerMinute: undefined };
  if (!/^\d{1,9}$/.test(rate)) throw new HandshakeError(`the target answered WebHook-Allowed-Rate "${truncate(rate)}", which is neither a number nor *`);
  const n = Number(rate);
  if (n === 0) throw new HandshakeError("the target granted a rate of 0 requests per minute");
  return { origin, ratePerMinute: n };
}

function truncate(s: string): string {
  return s.length > 100 ? `${s.slice(0, 100)}...` : s;
}

/**
 * Hands out request start times at least `60000 / ratePerMinute` ms apart, in call order, so that
 * any 60 s holds at most the granted number of requests. A caller whose signal aborts while it
 * waits gives up its turn (the time it held stays used: simpler, and only ever slower).
 */
export class RateSpacer {
  private next = 0;
  private readonly gapMs: number;

  constructor(ratePerMinute: number) {
    this.gapMs = 60_000 / ratePerMinute;
  }

  /** Resolves when the caller may send; rejects with a transient error when `signal` aborts first. */
  async turn(signal: AbortSignal): Promise<void> {
    const now = Date.now();
    const at = Math.max(now, this.next);
    this.next = at + this.gapMs;
    if (at <= now) return;
    if (!(await sleep(at - now, signal))) {
      throw new SinkError("the write's deadline passed while it waited for the rate the target granted (WebHook-Allowed-Rate)", true, { code: "CEB_SINK_TIMEOUT" });
    }
  }
}

/** How a gate asks: one OPTIONS request carrying `headers`, answered with status and headers. */
export type AskFn = (headers: Record<string, string>, signal: AbortSignal) => Promise<HandshakeAnswer>;

const RETRY_FIRST_MS = 1_000;
const RETRY_MAX_MS = 30_000;

/**
 * The handshake of one sink: asked once (retrying what may clear up), then every request waits for
 * the grant and for its turn under the granted rate.
 */
export class HandshakeGate {
  private grant: Promise<Grant> | undefined;
  private granted = false;
  private spacer: RateSpacer | undefined;
  private readonly closing = new AbortController();

  constructor(
    private readonly ask: AskFn,
    readonly origin: string,
    private readonly requestedRate: number | undefined,
    private readonly onRetry: (error: Error, delayMs: number) => void,
  ) {}

  /**
   * Resolves with the grant. Transient failures (network, 408, 429, 5xx) are retried with backoff
   * until granted or closed; a refusal rejects with a `HandshakeError`, and stays refused.
   */
  open(): Promise<Grant> {
    this.grant ??= this.run();
    return this.grant;
  }

  /** Waits for the grant (bounded by `signal`) and for this request's turn under the granted rate. */
  async beforeRequest(signal: AbortSignal): Promise<void> {
    if (!this.granted) {
      const grant = this.open();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new SinkError("the target has not granted the handshake yet", true, { code: "CEB_SINK_TIMEOUT" }));
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        grant.then(
          () => {
            signal.removeEventListener("abort", onAbort);
            resolve();
          },
          (err: unknown) => {
            signal.removeEventListener("abort", onAbort);
            reject(err);
          },
        );
      });
    }
    await this.spacer?.turn(signal);
  }

  /** Stops retrying; a pending `open` rejects. */
  close(): void {
    this.closing.abort();
  }

  private async run(): Promise<Grant> {
    const headers: Record<string, string> = { "webhook-request-origin": this.origin };
    if (this.requestedRate !== undefined) headers["webhook-request-rate"] = String(this.requestedRate);
    for (let attempt = 0; ; attempt++) {
      try {
        const grant = judgeHandshake(await this.ask(headers, this.closing.signal), this.origin, this.requestedRate);
        if (grant.ratePerMinute !== undefined) this.spacer = new RateSpacer(grant.ratePerMinute);
        this.granted = true;
        return grant;
      } catch (err) {
        if (err instanceof HandshakeError || this.closing.signal.aborted) throw err;
        const delay = Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** Math.min(attempt, 10));
        this.onRetry(err as Error, delay);
        if (!(await sleep(delay, this.closing.signal))) throw new SinkError("the sink closed before the handshake was granted", true);
      }
    }
  }

}
