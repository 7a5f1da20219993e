/**
 * `nats` source: a core NATS subscription (optionally in a queue group). At most once: core NATS
 * cannot pause or redeliver, so a full window drops the message and counts it
 * (`cebridge_events_dropped_total{reason="overflow"}`), and `settle` has nothing to do.
 */
import type { Msg, Subscription } from "@nats-io/nats-core";
import type { ConnectorContext } from "../../src/core/connector.js";
import type { Inbox, Received, Source } from "../../src/core/source.js";
import { NatsLink } from "./connect.js";
import type { NatsSourceConfig } from "./definition.js";
import { headerEntries, inboundOptions } from "./inbound.js";
import { decodeNatsMessage, type InboundOptions } from "./mapping.js";

export function createCoreSource(cfg: NatsSourceConfig, ctx: ConnectorContext): Source {
  return new CoreNatsSource(cfg, ctx);
}

class CoreNatsSource implements Source {
  private link: NatsLink | undefined;
  private sub: Subscription | undefined;
  private inbox: Inbox | undefined;
  private stopped = false;
  private readonly opts: InboundOptions;

  constructor(
    private readonly cfg: NatsSourceConfig,
    private readonly ctx: ConnectorContext,
  ) {
    this.opts = inboundOptions(cfg);
  }

  async start(inbox: Inbox): Promise<void> {
    if (this.link) throw new Error("nats source started twice");
    this.inbox = inbox;
    this.link = new NatsLink(this.cfg, this.ctx, "source", {
      onOpen: async (nc) => {
        // A reopened connection needs a new subscription; reconnects of one connection keep it.
        this.sub = nc.subscribe(this.cfg.subject, {
          ...(this.cfg.queue !== undefined ? { queue: this.cfg.queue } : {}),
          callback: (err, msg) => {
            if (err) this.ctx.log.warn({ err: err.message }, "NATS subscription error");
            else this.onMessage(msg);
          },
        });
        // Round trip: the server has registered the subscription once flush resolves.
        await nc.flush();
      },
    });
    await this.link.open();
  }

  private onMessage(msg: Msg): void {
    if (this.stopped || !this.inbox) return;
    const decoded = decodeNatsMessage({ subject: msg.subject, headers: headerEntries(msg.headers), payload: msg.data }, this.opts);
    const received: Received = {
      events: [decoded.event],
      ...(decoded.invalid ? { invalid: decoded.invalid } : {}),
      trace: decoded.trace,
      settle() {
        // Core NATS has no acknowledgement: nothing to do.
      },
    };
    if (!this.inbox.offer(received)) this.ctx.countDropped("overflow");
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      this.sub?.unsubscribe();
    } catch {
      // connection already closed
    }
  }

  async close(): Promise<void> {
    await this.stop();
    await this.link?.close();
  }
}
