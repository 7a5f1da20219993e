/**
 * Samples a process's resident set size from `/proc/<pid>/status` (VmRSS) every `everyMs`
 * (100 ms by default). Reading the file costs the sampled process nothing.
 */
import { readdirSync, readFileSync } from "node:fs";

export interface RssSample {
  /** ms since the sampler started */
  readonly t: number;
  /** resident set size in MiB */
  readonly mb: number;
}

/** VmRSS of `pid` in MiB, or undefined when the process is gone. */
export function readRssMb(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) used so far by `pid`, in ms, from /proc/<pid>/stat; undefined when gone. */
export function readCpuMs(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces: split after its closing parenthesis.
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return ((utime + stime) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}

/** USER_HZ; 100 on every Linux that matters. */
const CLOCK_TICKS = 100;

export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly t0 = performance.now();

  constructor(
    private readonly pid: number,
    private readonly everyMs = 100,
  ) {}

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), this.everyMs);
    this.timer.unref();
    return this;
  }

  /** Marks the current time, so that a window of samples can be read later (see `peakSince`). */
  now(): number {
    return performance.now() - this.t0;
  }

  sample(): void {
    const mb = readRssMb(this.pid);
    if (mb !== undefined) this.samples.push({ t: performance.now() - this.t0, mb });
  }

  stop(): RssSample[] {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    return this.samples;
  }

  get peak(): number {
    let max = Number.NaN;
    for (const s of this.samples) if (!(s.mb <= max)) max = s.mb;
    return max;
  }

  /** Peak RSS among samples taken at or after `t` (a value from `now()`). */
  peakSince(t: number): number {
    let max = Number.NaN;
    for (const s of this.samples) if (s.t >= t && !(s.mb <= max)) max = s.mb;
    return max;
  }
}

/** Busy CPU ms of the whole machine so far (all cores), from /proc/stat. */
function machineBusyMs(): number {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return (busy * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** This process's CPU ms including its waited-for children (utime+stime+cutime+cstime). */
function selfWithChildrenMs(): number {
  try {
    const text = readFileSync("/proc/self/stat", "utf8");
    const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** CPU ms of the live descendants of `root`, by pid. */
function liveDescendants(root: number): Map<number, number> {
  const parent = new Map<number, number>();
  const cpu = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync("/proc");
  } catch {
    return new Map();
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const text = readFileSync(`/proc/${name}/stat`, "utf8");
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      parent.set(Number(name), Number(f[1]));
      cpu.set(Number(name), ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS);
    } catch {
      // gone
    }
  }
  const out = new Map<number, number>();
  for (const [pid, ms] of cpu) {
    for (let p = parent.get(pid), i = 0; p !== undefined && p > 1 && i < 32; p = parent.get(p), i++) {
      if (p === root) {
        out.set(pid, ms);
        break;
      }
    }
  }
  return out;
}

/**
 * Measures how much CPU the rest of the machine used between `start()` and `stop()` (whole-machine
 * busy time from /proc/stat minus this process tree's, exited children included), as a share of
 * one core: other work on a shared machine that skews the figures.
 */
export class ForeignCpu {
  private machine0 = 0;
  private self0 = 0;
  private live0 = new Map<number, number>();
  private t0 = 0;

  start(): this {
    this.machine0 = machineBusyMs();
    this.self0 = selfWithChildrenMs();
    this.live0 = liveDescendants(process.pid);
    this.t0 = performance.now();
    return this;
  }

  /** { foreignPct, oursPct }: CPU % of one core used by others and by this process tree. */
  stop(): { foreignPct: number; oursPct: number } {
    const wall = performance.now() - this.t0;
    const machine = machineBusyMs() - this.machine0;
    const live1 = liveDescendants(process.pid);
    let ours = selfWithChildrenMs() - this.self0;
    for (const [pid, ms] of live1) ours += ms - (this.live0.get(pid) ?? 0);
    // A child that was alive at start and exited since: its whole life went into cutime.
    for (const [pid, ms] of this.live0) if (!live1.has(pid)) ours -= ms;
    return { foreignPct: (Math.max(0, machine - ours) / wall) * 100, oursPct: (ours / wall) * 100 };
  }
}
