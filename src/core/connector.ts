import type { Static, TObject } from "@sinclair/typebox";
import type { Logger } from "./logger.js";
import type { Sink, SinkGuarantee } from "./sink.js";
import type { Source } from "./source.js";

/** What the daemon hands every connector instance. */
export interface ConnectorContext {
  /** The component id from the config file (`sources.<id>` / `sinks.<id>`). */
  readonly id: string;
  /** `engine.instance_id`: names this daemon in client ids and loop markers. */
  readonly instanceId: string;
  /** A logger already bound to this component. */
  readonly log: Logger;
  /** Reports connection state: drives `/readyz`, `/status` and `cebridge_connector_up`. */
  setUp(up: boolean): void;
  /** Counts an event the source had to drop (it cannot pause and the window was full). */
  countDropped(reason: "overflow"): void;
}

/** A problem found by a connector's own cross-field check. `path` is relative to the component. */
export interface LintIssue {
  readonly level: "error" | "warning";
  readonly path: readonly (string | number)[];
  readonly message: string;
}

interface DefinitionBase<S extends TObject> {
  /** snake_case name used as `type:` in the config file. */
  readonly type: string;
  readonly summary: string;
  readonly stability: "stable" | "beta" | "experimental";
  /**
   * The component's options, without `type`. Unknown keys are errors; `default`s are applied;
   * durations and sizes arrive as numbers (ms, bytes); `writeOnly: true` marks secrets.
   */
  readonly schema: S;
  /** Cross-field checks that a schema cannot express. Pure. */
  readonly lint?: (cfg: Static<S>) => readonly LintIssue[];
}

/** A source connector: its definition is loaded eagerly, its implementation lazily. */
export interface SourceDefinition<S extends TObject = TObject> extends DefinitionBase<S> {
  readonly kind: "source";
  /** False when the source cannot pause (it drops on a full window); `lint` warns. */
  readonly pausable: (cfg: Static<S>) => boolean;
  /** Imports the implementation (and its SDK). Called once per type, only if a config uses it. */
  readonly load: () => Promise<(cfg: Static<S>, ctx: ConnectorContext) => Source>;
}

/** A sink connector: its definition is loaded eagerly, its implementation lazily. */
export interface SinkDefinition<S extends TObject = TObject> extends DefinitionBase<S> {
  readonly kind: "sink";
  readonly guarantee: (cfg: Static<S>) => SinkGuarantee;
  readonly load: () => Promise<(cfg: Static<S>, ctx: ConnectorContext) => Sink>;
}

export type ConnectorDefinition = SourceDefinition | SinkDefinition;

/** Typed helper so that `load`'s factory sees the schema's static type. */
export function defineSource<S extends TObject>(def: SourceDefinition<S>): SourceDefinition {
  return def as unknown as SourceDefinition;
}

/** Typed helper so that `load`'s factory sees the schema's static type. */
export function defineSink<S extends TObject>(def: SinkDefinition<S>): SinkDefinition {
  return def as unknown as SinkDefinition;
}

/** Connector definitions by kind and type. Built once in `main.ts`, read by config and engine. */
export class Registry {
  private readonly sources = new Map<string, SourceDefinition>();
  private readonly sinks = new Map<string, SinkDefinition>();

  register(def: ConnectorDefinition): this {
    const map: Map<string, ConnectorDefinition> = def.kind === "source" ? this.sources : this.sinks;
    if (map.has(def.type)) throw new Error(`${def.kind} type "${def.type}" is registered twice`);
    map.set(def.type, def);
    return this;
  }

  source(type: string): SourceDefinition | undefined {
    return this.sources.get(type);
  }

  sink(type: string): SinkDefinition | undefined {
    return this.sinks.get(type);
  }

  sourceTypes(): string[] {
    return [...this.sources.keys()].sort();
  }

  sinkTypes(): string[] {
    return [...this.sinks.keys()].sort();
  }
}
