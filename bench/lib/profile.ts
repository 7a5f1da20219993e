/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and sums self time per function, so the report
 * can list the daemon's own hot functions (files under dist/src and dist/connectors, shown as their
 * TypeScript sources) apart from Node internals and dependencies.
 */
import { readFileSync } from "node:fs";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface HotFunction {
  name: string;
  /** repo-relative source, e.g. connectors/nats/outbound.ts:34 (line of the compiled .js, 1-based) */
  where: string;
  category: "ours" | "dependency" | "node" | "v8";
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** share of samples by category (idle excluded from the total) */
  byCategory: Record<string, number>;
  /** self time per dependency package */
  byPackage: Record<string, number>;
  ours: HotFunction[];
  /** our functions by inclusive time (everything below them on the stack, dependencies included) */
  oursInclusive: HotFunction[];
  all: HotFunction[];
}

function classify(url: string, name: string): { category: HotFunction["category"]; where: string; pkg?: string } {
  if (url === "") return { category: "v8", where: name };
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    const pkg = rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return { category: "dependency", where: url.slice(nm + 1), pkg };
  }
  if (url.startsWith("node:") || !url.includes("/")) return { category: "node", where: url };
  const m = /\/dist\/((?:src|connectors)\/.*)\.js$/.exec(url);
  if (m) return { category: "ours", where: `${m[1]}.ts` };
  return { category: "node", where: url };
}

export function summarize(file: string, top = 15): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of prof.nodes) byId.set(n.id, n);
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const id = prof.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, HotFunction>();
  const byCategory: Record<string, number> = {};
  const byPackage: Record<string, number> = {};
  let total = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const cf = node.callFrame;
    const name = cf.functionName || "(anonymous)";
    if (name === "(idle)") continue;
    total += us;
    const c = classify(cf.url, name);
    byCategory[c.category] = (byCategory[c.category] ?? 0) + us / 1000;
    if (c.pkg) byPackage[c.pkg] = (byPackage[c.pkg] ?? 0) + us / 1000;
    const where = c.category === "ours" || c.category === "dependency" ? `${c.where}:${cf.lineNumber + 1}` : c.where;
    const key = `${name}@${where}`;
    const h = fn.get(key) ?? { name, where, category: c.category, selfMs: 0, selfPct: 0 };
    h.selfMs += us / 1000;
    fn.set(key, h);
  }
  // Inclusive time of our functions: each sample counts once for every distinct one of ours on its stack.
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const incl = new Map<string, HotFunction>();
  for (const [id, us] of self) {
    if (byId.get(id)!.callFrame.functionName === "(idle)") continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur)!.callFrame;
      const c = classify(cf.url, cf.functionName);
      if (c.category !== "ours") continue;
      const name = cf.functionName || "(anonymous)";
      const where = `${c.where}:${cf.lineNumber + 1}`;
      const key = `${name}@${where}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const h = incl.get(key) ?? { name, where, category: "ours" as const, selfMs: 0, selfPct: 0 };
      h.selfMs += us / 1000;
      incl.set(key, h);
    }
  }
  const inclusive = [...incl.values()].sort((a, b) => b.selfMs - a.selfMs);
  for (const h of inclusive) h.selfPct = (h.selfMs / (total / 1000)) * 100;
  const all = [...fn.values()].sort((a, b) => b.selfMs - a.selfMs);
  for (const h of all) h.selfPct = (h.selfMs / (total / 1000)) * 100;
  return {
    file,
    totalMs: total / 1000,
    byCategory,
    byPackage,
    ours: all.filter((h) => h.category === "ours").slice(0, top),
    oursInclusive: inclusive.slice(0, top),
    all: all.slice(0, top),
  };
}
