/**
 * Keeps the test process's promises cheap while the suites build hundreds of handler instances.
 *
 * In Node 20 every enabled AsyncLocalStorage costs every promise created anywhere in the process:
 * node:async_hooks' init hook loops over all enabled instances and gives the new promise one symbol
 * property per instance. An instance is enabled by its first run() and stays enabled until disable().
 * Each handler factory creates one (handlers/lib/usage.ts createUsageScope, also push/), so after
 * tests/handlers about a hundred are enabled for the rest of the run: a stack run under mocks, which
 * makes tens of thousands of promises, took 25-60 s instead of 2-5 s, and everything after the
 * handler suites (local runtime, push, reliability) paid the same tax on its own promises.
 *
 * Installed by tests/support/globalFixtures.ts before any test file loads: AsyncLocalStorage
 * instances created from then on are enabled only while one of their run() calls is in progress.
 * Inside a run nothing changes (the store propagates to everything the callback starts and awaits).
 * What changes: when the last pending run of an instance settles, the instance is disabled, as
 * `disable()` would; its next run() enables it again. So an asynchronous callback's work that
 * outlives the promise run() returned (fire-and-forget) no longer sees the store after that promise
 * settled. A run whose callback returns no promise, or any enterWith(), keeps the instance enabled
 * for good (Node's behaviour), as its asynchronous work has no end to wait for.
 */
const hooks = require("node:async_hooks") as typeof import("node:async_hooks");

const Native = hooks.AsyncLocalStorage;

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

class ReleasingAsyncLocalStorage<T> extends Native<T> {
  /** run() calls whose promise has not settled yet. */
  private pending = 0;
  /** Node's behaviour from now on: never disabled here. */
  private pinned = false;

  override enterWith(store: T): void {
    this.pinned = true;
    super.enterWith(store);
  }

  override run<R, A extends unknown[]>(store: T, callback: (...args: A) => R, ...args: A): R {
    const result = super.run(store, callback, ...args);
    if (!isThenable(result)) {
      this.pinned = true;
      return result;
    }
    this.pending++;
    const settled = () => {
      this.pending--;
      if (this.pending === 0 && !this.pinned) this.disable();
    };
    result.then(settled, settled);
    return result;
  }
}

(hooks as { AsyncLocalStorage: typeof Native }).AsyncLocalStorage = ReleasingAsyncLocalStorage;
