/**
 * The prom-client classes cebridge uses, each from its own file. prom-client's index also loads its
 * default process metrics, whose CPU metric requires `@opentelemetry/api` (for exemplars): about
 * 25 ms of start-up, and OpenTelemetry in a daemon that has tracing off. The classes are the same
 * objects the index exports (one module cache), so anything typed against `prom-client` accepts them.
 */
import { createRequire } from "node:module";
import type * as Prom from "prom-client";

const require = createRequire(import.meta.url);

export const Registry: typeof Prom.Registry = require("prom-client/lib/registry");
export type Registry = Prom.Registry;
export const Counter: typeof Prom.Counter = require("prom-client/lib/counter");
export type Counter<T extends string = string> = Prom.Counter<T>;
export const Gauge: typeof Prom.Gauge = require("prom-client/lib/gauge");
export type Gauge<T extends string = string> = Prom.Gauge<T>;
export const Histogram: typeof Prom.Histogram = require("prom-client/lib/histogram");
export type Histogram<T extends string = string> = Prom.Histogram<T>;
