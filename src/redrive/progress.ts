/**
 * Redrive progress for the operator. On a terminal: one bar redrawn in place (at most ten times a
 * second), with messages printed above it. Elsewhere (a pipe, a log file): plain lines, a progress
 * line at most once a second when something changed, and the messages as they come.
 */

export interface Counts {
  /** Dead letters read (file lines, or events received from the source). */
  read: number;
  /** Lines the journal says an earlier run handled. */
  alreadyDone: number;
  unreadable: number;
  /** Not matched by `--filter`. */
  notMatching: number;
  /** No sink to send to (see the message). */
  skipped: number;
  delivered: number;
  /** Failed again and written back to the dead-letter sink with the new reason. */
  deadLettered: number;
  /** Not handled this time (transient failure, interrupted, no dead-letter sink): a later run retries them. */
  left: number;
  /** Dry run: would have been sent. */
  wouldSend: number;
}

export function zeroCounts(): Counts {
  return { read: 0, alreadyDone: 0, unreadable: 0, notMatching: 0, skipped: 0, delivered: 0, deadLettered: 0, left: 0, wouldSend: 0 };
}

export interface ProgressOptions {
  readonly out: NodeJS.WritableStream & { columns?: number };
  readonly tty: boolean;
  /** Dead letters to process, when known (a file); undefined for a source. */
  readonly total?: number;
  readonly now?: () => number;
}

export class Progress {
  private lastDraw = 0;
  private lastPlain = "";
  private drawn = false;
  private readonly started: number;
  private readonly now: () => number;

  constructor(
    private readonly opts: ProgressOptions,
    private readonly counts: Counts,
  ) {
    this.now = opts.now ?? Date.now;
    this.started = this.now();
  }

  /** Dead letters finished with, whatever happened to them. */
  processed(): number {
    const c = this.counts;
    return c.delivered + c.deadLettered + c.left + c.skipped + c.unreadable + c.notMatching + c.wouldSend;
  }

  /** Call after the counts changed; draws when it is time to. */
  update(force = false): void {
    const t = this.now();
    if (this.opts.tty) {
      if (!force && t - this.lastDraw < 100) return;
      this.lastDraw = t;
      this.opts.out.write(`\r\x1b[2K${this.bar()}`);
      this.drawn = true;
      return;
    }
    if (!force && t - this.lastDraw < 1000) return;
    const line = this.plainLine();
    if (line === this.lastPlain) return;
    this.lastDraw = t;
    this.lastPlain = line;
    this.opts.out.write(line + "\n");
  }

  /** A message line (an event that failed again, a skipped one) above the bar. */
  message(text: string): void {
    if (this.opts.tty && this.drawn) this.opts.out.write("\r\x1b[2K");
    this.opts.out.write(text + "\n");
    if (this.opts.tty && this.drawn) this.opts.out.write(this.bar());
  }

  /** Final redraw; the bar stays on screen, followed by a line break. */
  finish(): void {
    this.update(true);
    if (this.opts.tty) this.opts.out.write("\n");
  }

  rate(): number {
    const s = (this.now() - this.started) / 1000;
    return s > 0 ? this.processed() / s : 0;
  }

  private bar(): string {
    const c = this.counts;
    const done = this.processed();
    const total = this.opts.total;
    const stats = ` ${Math.round(this.rate())}/s  ok ${c.delivered}  dead-lettered ${c.deadLettered}  left ${c.left}`;
    const columns = this.opts.out.columns && this.opts.out.columns > 20 ? this.opts.out.columns : 80;
    if (total === undefined || total === 0) return `redrive ${spinner(done)} ${done} processed${stats}`.slice(0, columns - 1);
    const pct = Math.min(100, Math.floor((100 * done) / total));
    const label = ` ${done}/${total} ${String(pct).padStart(3)}%${stats}`;
    const width = Math.max(20, Math.min(40, columns - label.length - 12));
    const fill = Math.round((width * Math.min(done, total)) / total);
    return `redrive [${"#".repeat(fill)}${"-".repeat(width - fill)}]${label}`.slice(0, columns - 1);
  }

  private plainLine(): string {
    const c = this.counts;
    const of = this.opts.total !== undefined ? `/${this.opts.total}` : "";
    return `redrive: ${this.processed()}${of} processed (${c.delivered} delivered, ${c.deadLettered} dead-lettered again, ${c.left} left, ${c.skipped + c.unreadable} skipped)`;
  }
}

function spinner(n: number): string {
  return "|/-\\"[n % 4]!;
}

/** The closing summary, one line per kind that occurred. */
export function summary(c: Counts, opts: { dryRun: boolean; seconds: number; interrupted: boolean; from: string }): string {
  const lines: string[] = [];
  const head = opts.interrupted ? "redrive interrupted" : opts.dryRun ? "redrive dry run" : "redrive done";
  lines.push(`${head}: ${c.read} dead letter(s) read from ${opts.from} in ${opts.seconds.toFixed(1)} s`);
  const row = (n: number, text: string) => n > 0 && lines.push(`  ${String(n).padStart(7)}  ${text}`);
  row(c.alreadyDone, "already handled by an earlier redrive (skipped)");
  row(c.notMatching, "not matching --filter (left in place)");
  row(c.unreadable, "unreadable (left in place)");
  row(c.skipped, "no sink to send to (left in place)");
  row(c.wouldSend, "would be sent");
  row(c.delivered, "delivered");
  row(c.deadLettered, "failed again and were dead-lettered with the new reason");
  row(c.left, "not handled this time (left for the next run)");
  return lines.join("\n");
}
