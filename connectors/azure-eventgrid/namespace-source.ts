/**
 * `azure_eventgrid_namespace` source: pull delivery from a namespace topic's event subscription,
 * at least once.
 *
 * - Flow control: each of `receivers` loops reserves window slots (`inbox.reserve(1, max_events)`)
 *   and receives at most as many events as it holds, so parallel receives never hold more events
 *   than the route's window and memory stays flat while a sink is down.
 * - Reading: the response text itself (namespace-mapping.ts), never the client's mapped events,
 *   which lose extension attributes and binary data.
 * - Locks: the kit's lease keeper renews the locks of unsettled events (`renewLock`) once half of
 *   `lock_duration` has passed, so a slow sink keeps its events; a lock that cannot be renewed is
 *   logged (the event will come back).
 * - Settle → native verb, through the kit's settle batcher (the settles of one event-loop turn
 *   leave in one call per verb, ≤ 100 lock tokens, per-token failures retried when transient):
 *   delivered → acknowledge; dead_lettered → reject (after our dead-letter sink took it: it must
 *   never come back, and Event Grid's own dead-letter destination, if any, records it too);
 *   rejected → reject; errored → release with the kit's `releaseDelay`, rounded up to the delays
 *   Event Grid accepts (0, 10 s, 1 min, 10 min, 1 h; 0 at shutdown).
 * - `deliveryCount` of the broker is the message's delivery count (1 on the first delivery).
 * - Tracing: a received event has no trace field of its own besides its `traceparent` extension, so
 *   `Received.trace` stays unset and the extension is the delivery's parent.
 */
import { DEFAULT_MAX_DEPTH } from "../../src/cloudevents/index.js";
import type { ConnectorContext } from "../../src/core/connector.js";
import type { EntryResult } from "../../src/core/batch-writer.js";
import { BridgeError } from "../../src/core/errors.js";
import { LeaseKeeper } from "../../src/core/lease-keeper.js";
import type { Outcome } from "../../src/core/outcome.js";
import { EVENT_GRID_RELEASE_DELAYS_MS, releaseDelay } from "../../src/core/release-delay.js";
import { SettleBatcher } from "../../src/core/settle-batcher.js";
import { sleep } from "../../src/core/sleep.js";
import type { Inbox, Received, Reservation, Source } from "../../src/core/source.js";
import { FailureLog, classify, clientOptions, credentialFor } from "./client.js";
import type { NamespaceSourceConfig } from "./definition.js";
import { decodeReceive, decodeReceiveParsed, type ReceiveDecodeOptions, type ReceivedDetail } from "./namespace-mapping.js";

type Verb = "acknowledge" | "release" | "reject";

interface SettleResult {
  readonly succeededLockTokens?: readonly string[];
  readonly failedLockTokens?: readonly { readonly lockToken: string; readonly error?: { readonly code?: string; readonly message?: string } }[];
}

interface Receiver {
  receiveEvents(options: Record<string, unknown>): Promise<unknown>;
  acknowledgeEvents(tokens: string[], options: Record<string, unknown>): Promise<SettleResult>;
  releaseEvents(tokens: string[], options: Record<string, unknown>): Promise<SettleResult>;
  rejectEvents(tokens: string[], options: Record<string, unknown>): Promise<SettleResult>;
  renewEventLocks(tokens: string[], options: Record<string, unknown>): Promise<SettleResult>;
}

/** Lock tokens per settle or renew call. */
const MAX_TOKENS = 100;
/** Error codes with which a token will never succeed again (its lock is gone). */
const LOST_CODES = new Set(["TokenLost", "LockLost", "BadToken", "NotFound"]);

export function createNamespaceSource(cfg: NamespaceSourceConfig, ctx: ConnectorContext): Source {
  return new NamespaceSource(cfg, ctx);
}

/** Per-token results of a settle or renew call, in the order of `tokens`. */
export function perTokenResults(tokens: readonly string[], result: SettleResult | undefined, verb: string): EntryResult[] {
  const failed = new Map((result?.failedLockTokens ?? []).map((f) => [f.lockToken, f.error]));
  return tokens.map((t) => {
    if (!failed.has(t)) return undefined;
    const e = failed.get(t);
    const code = e?.code ?? "unknown";
    return new BridgeError("CEB_SETTLE", `${verb} of a lock token failed: ${code}${e?.message ? ` (${e.message})` : ""}`, !LOST_CODES.has(code));
  });
}

class NamespaceSource implements Source {
  private receiver: Receiver | undefined;
  private readonly stopping = new AbortController();
  private loops: Promise<void>[] = [];
  private readonly leases: LeaseKeeper<string>;
  private readonly settles: SettleBatcher<string, Verb>;
  private readonly failures: FailureLog;
  private readonly decodeOptions: ReceiveDecodeOptions;
  private up = false;

  constructor(
    private readonly cfg: NamespaceSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {
    const invalidSource = `${cfg.endpoint.replace(/\/+$/, "")}/topics/${encodeURIComponent(cfg.topic)}/eventsubscriptions/${encodeURIComponent(cfg.subscription)}`;
    this.decodeOptions = { maxDepth: DEFAULT_MAX_DEPTH, invalidSource };
    this.failures = new FailureLog(ctx.log, "Event Grid receive");
    this.leases = new LeaseKeeper<string>({
      leaseMs: cfg.lock_duration,
      maxBatch: MAX_TOKENS,
      extend: (tokens) => this.call("renewLock", tokens, 0),
      onLost: (_token, error) => ctx.log.warn({ code: error.code, err: error.message }, "an event's lock could not be renewed; Event Grid will deliver it again"),
    });
    this.settles = new SettleBatcher<string, Verb>({ apply: (verb, tokens, delayMs) => this.call(verb, tokens, delayMs) }, { maxBatch: MAX_TOKENS, log: ctx.log });
  }

  async start(inbox: Inbox): Promise<void> {
    if (this.receiver) throw new Error("azure_eventgrid_namespace source started twice");
    const ns = await import("@azure/eventgrid-namespaces");
    const credential = await credentialFor(this.cfg, (key) => new ns.AzureKeyCredential(key));
    this.receiver = new ns.EventGridReceiverClient(this.cfg.endpoint, credential as never, this.cfg.topic, this.cfg.subscription, clientOptions(this.cfg.endpoint, this.cfg.tls) as never) as unknown as Receiver;
    for (let i = 0; i < this.cfg.receivers; i++) this.loops.push(this.pull(inbox));
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.ctx.setUp(up);
  }

  private async pull(inbox: Inbox): Promise<void> {
    const signal = this.stopping.signal;
    let attempt = 0;
    while (!signal.aborted && inbox.accepting) {
      let room: Reservation | undefined;
      try {
        room = await inbox.reserve(1, this.cfg.max_events, signal);
        if (signal.aborted || !inbox.accepting) break;
        const startedAt = Date.now();
        const details = await this.receive(room.slots, signal);
        attempt = 0;
        this.failures.ok();
        this.setUp(true);
        for (const d of details) this.handle(d, room, startedAt);
      } catch (err) {
        if (signal.aborted) break;
        attempt++;
        const f = classify(err);
        this.failures.failed(f, attempt);
        if (attempt >= 2 || !f.retryable) this.setUp(false);
        const backoff = f.retryAfterMs ?? Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
        await sleep(backoff, signal);
      } finally {
        room?.release();
      }
    }
  }

  /**
   * One receive call. The events are read from the response (namespace-mapping.ts), never from the
   * client's mapped events. The client's parsed body is taken in `onResponse` and its `value` emptied,
   * so the client's own mapping of every event (extensions dropped, base64 decoded, dates built)
   * does no work; the text is kept for the depth check and in case the client parsed nothing.
   */
  private async receive(max: number, signal: AbortSignal): Promise<ReceivedDetail[]> {
    let text: string | undefined;
    let parsed: unknown;
    let status = 0;
    let details: ReceivedDetail[] | undefined;
    let failure: unknown;
    const waitSeconds = Math.max(1, Math.ceil(this.cfg.max_wait / 1000));
    try {
      await this.receiver!.receiveEvents({
        maxEvents: max,
        maxWaitTime: waitSeconds,
        abortSignal: signal,
        requestOptions: { timeout: waitSeconds * 1000 + this.cfg.timeout },
        onResponse: (r: { status: number; bodyAsText?: string | null; parsedBody?: unknown }) => {
          status = r.status;
          text = r.bodyAsText ?? undefined;
          parsed = r.parsedBody;
          if (status !== 200 || text === undefined) return;
          try {
            details = typeof parsed === "object" && parsed !== null ? decodeReceiveParsed(parsed, text, this.decodeOptions) : decodeReceive(text, this.decodeOptions);
          } catch (err) {
            failure = err;
          }
          if (details && typeof parsed === "object" && parsed !== null && Array.isArray((parsed as { value?: unknown }).value)) {
            (parsed as { value: unknown[] }).value = [];
          }
        },
      });
    } catch (err) {
      // The client maps the events after `onResponse`; if only its mapping failed, ours stands.
      if (status !== 200 || (details === undefined && failure === undefined)) throw err;
    }
    if (failure !== undefined) throw failure;
    return details ?? [];
  }

  private handle(d: ReceivedDetail, room: Reservation, grantedAt: number): void {
    if (room.slots < 1) {
      // The service never returns more than maxEvents; if it ever did, hand the extra back at once.
      this.settles.settle("release", d.lockToken, 0);
      return;
    }
    const token = d.lockToken;
    const done = this.leases.hold(token, grantedAt);
    let settled = false;
    const received: Received = {
      events: [d.decoded.event],
      ...(d.decoded.invalid ? { invalid: d.decoded.invalid } : {}),
      ...(d.deliveryCount !== undefined ? { deliveryCount: d.deliveryCount } : {}),
      settle: (outcome) => {
        if (settled) return;
        settled = true;
        done();
        this.apply(token, outcome, d.deliveryCount);
      },
    };
    if (!room.offer(received)) {
      // The route stopped accepting: hand the event back at once.
      settled = true;
      done();
      this.settles.settle("release", token, 0);
    }
  }

  private apply(token: string, outcome: Outcome, deliveryCount: number | undefined): void {
    switch (outcome.status) {
      case "delivered":
        return this.settles.settle("acknowledge", token);
      case "dead_lettered":
      case "rejected":
        return this.settles.settle("reject", token);
      case "errored":
        return this.settles.settle("release", token, releaseDelay(outcome, deliveryCount, { allowedMs: EVENT_GRID_RELEASE_DELAYS_MS }));
    }
  }

  /** One acknowledge / release / reject / renewLock call with per-token results. */
  private async call(verb: Verb | "renewLock", tokens: readonly string[], delayMs: number): Promise<EntryResult[]> {
    const receiver = this.receiver;
    if (!receiver) throw new BridgeError("CEB_NOT_CONNECTED", "the Event Grid receiver is closed", false);
    const list = [...tokens];
    const options = { requestOptions: { timeout: this.cfg.timeout } };
    let result: SettleResult;
    try {
      switch (verb) {
        case "acknowledge":
          result = await receiver.acknowledgeEvents(list, options);
          break;
        case "reject":
          result = await receiver.rejectEvents(list, options);
          break;
        case "release":
          result = await receiver.releaseEvents(list, { ...options, releaseDelay: String(Math.round(delayMs / 1000)) });
          break;
        case "renewLock":
          result = await receiver.renewEventLocks(list, options);
          break;
      }
    } catch (err) {
      const f = classify(err);
      throw new BridgeError("CEB_SETTLE", `${verb} of ${list.length} lock token(s) failed: ${f.message}`, f.retryable);
    }
    return perTokenResults(list, result, verb);
  }

  async stop(): Promise<void> {
    if (this.stopping.signal.aborted) return;
    // Receives under way are abandoned: nothing is locked for a receive that has not answered yet.
    this.stopping.abort();
    await Promise.all(this.loops.map((l) => l.catch(() => {})));
  }

  async close(deadline?: AbortSignal): Promise<void> {
    await this.stop();
    await this.settles.close(deadline);
    this.leases.close();
    this.setUp(false);
    this.receiver = undefined;
  }
}

