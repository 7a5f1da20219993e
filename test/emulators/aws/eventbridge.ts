/**
 * The emulated EventBridge API (AWS JSON 1.1, `X-Amz-Target: AWSEvents.<Op>`, docs/clouds.md §1.2,
 * §1.6, §1.7): event buses, PutEvents with per-entry validation and results, rules with event
 * patterns, and SQS targets that receive the event envelope (or `Input` / `InputPath`) exactly as a
 * rule writes it.
 */
import { randomUUID } from "node:crypto";
import { matches, parsePattern, PatternError } from "./event-pattern.js";
import type { Faults } from "./faults.js";
import type { SqsService } from "./sqs.js";
import { isXRayHeader } from "./sqs-validate.js";
import { AwsError, validation } from "./wire.js";

export interface EventBridgeOptions {
  readonly region: string;
  readonly accountId: string;
  /** Largest PutEvents call: the sum of its entry sizes (AWS formula). */
  readonly maxEntryBytes: number;
  readonly sqs: SqsService;
  readonly faults: Faults;
  readonly now?: () => number;
}

/** The event as a bus sees it and as an SQS target receives it (§1.7). */
export interface Envelope {
  readonly version: "0";
  readonly id: string;
  readonly "detail-type": string;
  readonly source: string;
  readonly account: string;
  readonly time: string;
  readonly region: string;
  readonly resources: readonly string[];
  readonly detail: Record<string, unknown>;
}

export interface Target {
  readonly Id: string;
  readonly Arn: string;
  readonly Input?: string;
  readonly InputPath?: string;
  readonly SqsParameters?: { readonly MessageGroupId?: string };
}

interface Rule {
  readonly name: string;
  readonly bus: string;
  readonly arn: string;
  pattern: Record<string, unknown>;
  enabled: boolean;
  readonly targets: Map<string, Target>;
}

type Json = Record<string, unknown>;

/** PutEvents entry size as AWS documents it: Time 14 bytes if set, then the UTF-8 bytes of Source, DetailType, Detail and each resource. */
export function entrySize(e: Json): number {
  let n = e["Time"] !== undefined && e["Time"] !== null ? 14 : 0;
  for (const k of ["Source", "DetailType", "Detail"]) if (typeof e[k] === "string") n += Buffer.byteLength(e[k] as string);
  if (Array.isArray(e["Resources"])) for (const r of e["Resources"]) if (typeof r === "string") n += Buffer.byteLength(r);
  return n;
}

export class EventBridgeService {
  readonly buses = new Set(["default"]);
  readonly rules = new Map<string, Rule>();
  /** Every event a bus accepted, in order (capped at 200 000). */
  readonly accepted: Envelope[] = [];
  /** Entries each PutEvents call carried, in order (for "only the failed entries were resent"). */
  readonly putEventsCalls: Json[][] = [];
  /** Deliveries a target could not take (missing queue, FIFO without a group id). */
  readonly deliveryFailures: { rule: string; target: string; reason: string }[] = [];
  private readonly now: () => number;

  constructor(private readonly opts: EventBridgeOptions) {
    this.now = opts.now ?? Date.now;
  }

  private busName(nameOrArn: unknown): string {
    if (nameOrArn === undefined || nameOrArn === null || nameOrArn === "") return "default";
    const s = String(nameOrArn);
    const m = /^arn:aws[a-z-]*:events:([^:]*):(\d{12}):event-bus\/(.+)$/.exec(s);
    if (m) return m[1] === this.opts.region && m[2] === this.opts.accountId ? m[3]! : `\u0000foreign:${s}`;
    return s;
  }

  busArn(name: string): string {
    return `arn:aws:events:${this.opts.region}:${this.opts.accountId}:event-bus/${name}`;
  }

  async handle(op: string, req: Json): Promise<Json> {
    switch (op) {
      case "CreateEventBus": {
        const name = String(req["Name"] ?? "");
        if (!/^[A-Za-z0-9._-]{1,256}$/.test(name)) throw validation("Event bus name is invalid");
        if (this.buses.has(name)) throw new AwsError(400, "ResourceAlreadyExistsException", `Event bus ${name} already exists.`);
        this.buses.add(name);
        return { EventBusArn: this.busArn(name) };
      }
      case "DeleteEventBus":
        this.buses.delete(String(req["Name"] ?? ""));
        return {};
      case "PutRule":
        return this.putRule(req);
      case "PutTargets":
        return this.putTargets(req);
      case "RemoveTargets": {
        const rule = this.rule(req);
        for (const id of (req["Ids"] ?? []) as string[]) rule.targets.delete(id);
        return { FailedEntryCount: 0, FailedEntries: [] };
      }
      case "DeleteRule":
        this.rules.delete(`${this.busName(req["EventBusName"])}/${String(req["Name"] ?? "")}`);
        return {};
      case "PutEvents":
        return this.putEvents(req);
      default:
        throw new AwsError(400, "UnknownOperationException", `Unknown operation ${op}`);
    }
  }

  private rule(req: Json): Rule {
    const key = `${this.busName(req["EventBusName"])}/${String(req["Rule"] ?? req["Name"] ?? "")}`;
    const r = this.rules.get(key);
    if (!r) throw new AwsError(400, "ResourceNotFoundException", `Rule ${String(req["Rule"] ?? req["Name"])} does not exist.`);
    return r;
  }

  private putRule(req: Json): Json {
    const name = String(req["Name"] ?? "");
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name)) throw validation("Rule name is invalid");
    const bus = this.busName(req["EventBusName"]);
    if (!this.buses.has(bus)) throw new AwsError(400, "ResourceNotFoundException", `Event bus ${bus} does not exist.`);
    if (req["ScheduleExpression"] !== undefined) throw validation("This emulator supports event patterns only, not ScheduleExpression");
    if (typeof req["EventPattern"] !== "string") throw validation("Parameter EventPattern is required");
    let pattern: Record<string, unknown>;
    try {
      pattern = parsePattern(req["EventPattern"]);
    } catch (err) {
      if (err instanceof PatternError) throw new AwsError(400, "InvalidEventPatternException", `Event pattern is not valid. Reason: ${err.message}`);
      throw err;
    }
    const key = `${bus}/${name}`;
    const arn = `arn:aws:events:${this.opts.region}:${this.opts.accountId}:rule/${bus === "default" ? "" : `${bus}/`}${name}`;
    const existing = this.rules.get(key);
    const enabled = req["State"] !== "DISABLED";
    if (existing) {
      existing.pattern = pattern;
      existing.enabled = enabled;
    } else this.rules.set(key, { name, bus, arn, pattern, enabled, targets: new Map() });
    return { RuleArn: arn };
  }

  private putTargets(req: Json): Json {
    const rule = this.rule(req);
    const targets = req["Targets"];
    if (!Array.isArray(targets) || targets.length === 0 || targets.length > 10) throw validation("Targets must have 1 to 10 entries");
    for (const t of targets as Target[]) {
      if (typeof t.Id !== "string" || typeof t.Arn !== "string") throw validation("Every target needs Id and Arn");
      rule.targets.set(t.Id, t);
    }
    return { FailedEntryCount: 0, FailedEntries: [] };
  }

  private putEvents(req: Json): Json {
    if (req["EndpointId"] !== undefined) throw validation("Global endpoints (EndpointId) are not emulated");
    const entries = req["Entries"];
    if (!Array.isArray(entries) || entries.length < 1 || entries.length > 10) {
      throw validation("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length less than or equal to 10");
    }
    const total = (entries as Json[]).reduce((n, e) => n + entrySize(e), 0);
    if (total > this.opts.maxEntryBytes) throw validation(`Total size of the entries in the request is over the limit (${total} > ${this.opts.maxEntryBytes} bytes).`);
    this.putEventsCalls.push(entries as Json[]);
    const call = this.putEventsCalls.length;
    let failed = 0;
    const results = (entries as Json[]).map((e, i) => {
      const fault = this.opts.faults.entryFault("PutEvents", e, i, call);
      const problem = fault ? { ErrorCode: fault.code, ErrorMessage: fault.message ?? fault.code } : this.accept(e);
      if ("ErrorCode" in problem) failed++;
      return problem;
    });
    return { FailedEntryCount: failed, Entries: results };
  }

  /** Validates one entry; on success records and routes it and returns its EventId. */
  private accept(e: Json): { EventId: string } | { ErrorCode: string; ErrorMessage: string } {
    const source = e["Source"];
    const detailType = e["DetailType"];
    const detailText = e["Detail"];
    if (typeof source !== "string" || source === "" || typeof detailType !== "string" || detailType === "" || typeof detailText !== "string") {
      return { ErrorCode: "InvalidArgument", ErrorMessage: "Parameters Source, DetailType and Detail are required." };
    }
    if (detailType.length > 128) return { ErrorCode: "InvalidArgument", ErrorMessage: "DetailType is longer than 128 characters." };
    if (source.startsWith("aws.")) {
      return { ErrorCode: "NotAuthorizedForSourceException", ErrorMessage: `Not authorized for the source ${source}.` };
    }
    let detail: unknown;
    try {
      detail = JSON.parse(detailText);
    } catch {
      return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
    }
    if (typeof detail !== "object" || detail === null || Array.isArray(detail)) return { ErrorCode: "MalformedDetail", ErrorMessage: "Detail is malformed." };
    const bus = this.busName(e["EventBusName"]);
    if (!this.buses.has(bus)) return { ErrorCode: "ResourceNotFoundException", ErrorMessage: `Event bus ${bus.replace("\u0000foreign:", "")} does not exist.` };
    const resources = e["Resources"];
    if (resources !== undefined && (!Array.isArray(resources) || resources.some((r) => typeof r !== "string"))) {
      return { ErrorCode: "InvalidArgument", ErrorMessage: "Resources must be a list of strings." };
    }
    const t = e["Time"];
    const at = typeof t === "number" ? t * 1000 : this.now();
    const envelope: Envelope = {
      version: "0",
      id: randomUUID(),
      "detail-type": detailType,
      source,
      account: this.opts.accountId,
      time: new Date(Math.floor(at / 1000) * 1000).toISOString().replace(".000Z", "Z"),
      region: this.opts.region,
      resources: (resources as string[] | undefined) ?? [],
      detail: detail as Record<string, unknown>,
    };
    if (this.accepted.length < 200_000) this.accepted.push(envelope);
    const trace = isXRayHeader(e["TraceHeader"]) ? e["TraceHeader"] : undefined;
    this.route(bus, envelope, trace);
    return { EventId: envelope.id };
  }

  private route(bus: string, env: Envelope, trace: string | undefined): void {
    for (const rule of this.rules.values()) {
      if (rule.bus !== bus || !rule.enabled || !matches(rule.pattern, env as unknown as Record<string, unknown>)) continue;
      for (const t of rule.targets.values()) this.deliver(rule, t, env, trace);
    }
  }

  private deliver(rule: Rule, t: Target, env: Envelope, trace: string | undefined): void {
    const fail = (reason: string): void => void this.deliveryFailures.push({ rule: rule.name, target: t.Id, reason });
    const q = this.opts.sqs.queueByArn(t.Arn);
    if (!q) return fail(`target ${t.Arn} is not an SQS queue of this emulator`);
    let body: string;
    if (t.Input !== undefined) body = t.Input;
    else if (t.InputPath !== undefined) {
      const v = jsonPath(env, t.InputPath);
      if (v === undefined) return fail(`InputPath ${t.InputPath} selects nothing`);
      body = typeof v === "string" ? v : JSON.stringify(v);
    } else body = JSON.stringify(env);
    const group = t.SqsParameters?.MessageGroupId;
    if (q.settings.fifo && group === undefined) return fail("a FIFO queue target needs SqsParameters.MessageGroupId");
    // A rule writes no message attributes; a FIFO target is deduplicated on the event id.
    q.send({ body, traceHeader: trace, ...(q.settings.fifo ? { groupId: group, dedupId: env.id } : {}) });
  }
}

/** `$`, `$.a`, `$.a.b` — the InputPath forms tests use. */
function jsonPath(doc: unknown, path: string): unknown {
  if (path === "$") return doc;
  if (!path.startsWith("$.")) return undefined;
  let cur: unknown = doc;
  for (const key of path.slice(2).split(".")) {
    if (typeof cur !== "object" || cur === null) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
