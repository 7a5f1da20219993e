/**
 * Groups the lines written during one event-loop turn into a single write, then settles each
 * caller's promise with the outcome of that write. One syscall per turn instead of one per event.
 */
export class LineBatcher {
  private lines: string[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();

  /** `flush` receives the joined text of one batch and resolves once it is written (and synced). */
  constructor(private readonly flush: (text: string) => Promise<void>) {}

  write(line: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.lines.push(line);
      this.waiters.push({ resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.run());
      }
    });
  }

  /** Resolves after every write accepted so far has been flushed. */
  async idle(): Promise<void> {
    while (this.scheduled || this.lines.length > 0) await new Promise((r) => setImmediate(r));
    await this.chain;
  }

  private run(): void {
    this.scheduled = false;
    const text = this.lines.join("");
    const waiters = this.waiters;
    this.lines = [];
    this.waiters = [];
    // Batches are written in order: the next waits for the previous one.
    this.chain = this.chain.then(() =>
      this.flush(text).then(
        () => waiters.forEach((w) => w.resolve()),
        (err) => waiters.forEach((w) => w.reject(err)),
      ),
    );
  }
}
