/**
 * Glue between nats.js messages and the pure mapping: header flattening and mapping options.
 */
import { randomUUID } from "node:crypto";
import type { MsgHdrs } from "@nats-io/nats-core";
import type { HeaderEntries, InboundOptions } from "./mapping.js";
import { firstServer, type NatsConnConfig } from "./connect.js";

/** Flattens nats.js headers into one `[name, value]` entry per value, names as received. */
export function headerEntries(h: MsgHdrs | undefined): HeaderEntries {
  if (h === undefined) return [];
  const out: [string, string][] = [];
  for (const [k, values] of h) for (const v of values) out.push([k, v]);
  return out;
}

export function inboundOptions(
  cfg: NatsConnConfig & { plain?: { source?: string; type?: string } | undefined; max_payload?: number | undefined },
): InboundOptions {
  return {
    plainSource: cfg.plain?.source ?? "nats://{server}/{subject}",
    plainType: cfg.plain?.type ?? "io.nats.message",
    server: firstServer(cfg.servers),
    maxPayload: cfg.max_payload,
    now: () => new Date(),
    newId: randomUUID,
  };
}
