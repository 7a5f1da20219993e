/**
 * Many pending operations on few abort signals, with one listener per signal instead of one per
 * operation.
 *
 * The engine gives every write of one short deadline slot the same signal (engine/deadlines.ts), so
 * hundreds of writes in flight share a handful of signals. Node's EventTarget compares a new
 * listener with every listener already on the signal, on each add and each remove: a listener per
 * write made that quadratic (3.8 % of the JetStream → JetStream daemon's CPU in `same`, measured
 * with --cpu-prof). Here each signal gets one listener, added with its first item and removed with
 * its last; items are kept in a Set.
 */
export class AbortWatch<T> {
  private readonly groups = new Map<AbortSignal, { readonly items: Set<T>; readonly listener: () => void }>();

  /** `onAbort` runs once for every item still watched when its signal aborts, in the order added. */
  constructor(private readonly onAbort: (item: T, signal: AbortSignal) => void) {}

  /**
   * Watches `item` until `delete`, or until `signal` aborts. The caller checks `signal.aborted`
   * first: an already aborted signal never fires.
   */
  add(signal: AbortSignal, item: T): void {
    let group = this.groups.get(signal);
    if (group === undefined) {
      const items = new Set<T>();
      const listener = () => {
        this.groups.delete(signal);
        for (const it of items) this.onAbort(it, signal);
      };
      group = { items, listener };
      this.groups.set(signal, group);
      signal.addEventListener("abort", listener, { once: true });
    }
    group.items.add(item);
  }

  /** Stops watching `item`; no-op when it is not watched (any more). */
  delete(signal: AbortSignal, item: T): void {
    const group = this.groups.get(signal);
    if (group === undefined || !group.items.delete(item)) return;
    if (group.items.size === 0) {
      this.groups.delete(signal);
      signal.removeEventListener("abort", group.listener);
    }
  }

  /** Signals with a listener now (for tests). */
  get signals(): number {
    return this.groups.size;
  }
}
