/**
 * Small async helpers for tests: polling with a deadline, deferred promises, sleeping.
 */

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `predicate` every `intervalMs` until it returns true, or rejects after `timeoutMs` with
 * `message` (or a generic one). The predicate may be async.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  message?: string | (() => string),
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return;
    if (Date.now() > deadline) {
      const text = typeof message === "function" ? message() : message;
      throw new Error(`waitFor timed out after ${timeoutMs}ms${text ? `: ${text}` : ""}`);
    }
    await sleep(intervalMs);
  }
}

export interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
  readonly settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  let settled = false;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Avoid unhandled-rejection noise when nobody awaits a rejected deferred.
  promise.catch(() => {});
  return {
    promise,
    resolve(v) {
      settled = true;
      resolve(v);
    },
    reject(e) {
      settled = true;
      reject(e);
    },
    get settled() {
      return settled;
    },
  };
}

/** Rejects with a named timeout error when `p` takes longer than `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what = "operation"): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms}ms`)), ms);
    }),
  ]);
}
