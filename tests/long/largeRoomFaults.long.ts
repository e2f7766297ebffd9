/**
 * Issue 17's faults that take the longest, end to end on the local runtime (tests/support/largeRooms.ts;
 * the other large-room cases, a throttled `@connections` among them, are in
 * tests/handlers/largeRooms.test.ts): a worker killed mid-shard, a shard that fails twice, and a
 * worker that runs past its timeout. Each ends with every member
 * holding the message, at most as many times as the documented retries allow. They run at once, each
 * in its own runtime (its own queue, workers and tables): most of a case is waiting for a visibility
 * timeout, so together they take the longest one's time. Each case's assertions are its own `it`.
 */
import * as assert from "node:assert/strict";
import { fixture, SHARDS, survives } from "../support/largeRooms";

/**
 * Three runtimes at once start instances more slowly than one: a failed job comes back after 20 s
 * instead of the single runtime's 12 s, so it is never held by two workers at once (the margin the
 * visibility timeout keeps over the worker's 4 s timeout plus a cold start; tests/support/largeRooms.ts).
 */
const SLOWER = { deliveryVisibilityTimeoutSeconds: 20 } as const;

describe("large rooms under faults (local runtime, real sockets, three runtimes at once)", function () {
  this.timeout(180_000);
  const cases: Record<string, () => Promise<void>> = {
    kill: () =>
      survives("kill", 2, { ...SLOWER, functionOverrides: { deliver: fixture("crash") } }, (rt) => {
        assert.ok(rt.stats.functions.deliver.crashes >= 1, "a worker instance died");
        assert.ok(rt.stats.deliveryQueue().mapping.failedInvocations >= 1);
      }),
    hang: () =>
      survives("hang", 2, { ...SLOWER, functionOverrides: { deliver: fixture("hang") } }, (rt) => {
        assert.ok(rt.stats.functions.deliver.timeouts >= 1);
      }),
    twice: () =>
      survives("twice", 3, { ...SLOWER, functionOverrides: { deliver: fixture("throw") } }, (rt) => {
        assert.ok(rt.stats.deliveryQueue().mapping.recordsReportedFailed >= 2 * SHARDS, "every shard was reported failed twice");
      }),
  };
  const running = new Map<string, Promise<void>>();
  before(() => {
    for (const [label, run] of Object.entries(cases)) {
      const p = run();
      p.catch(() => undefined); // reported by its own `it`
      running.set(label, p);
    }
  });
  after(async () => {
    await Promise.allSettled(running.values());
  });

  it("a worker killed mid-shard: the job comes back and every member gets the message", () => running.get("kill"));

  it("a worker that runs past its timeout: the job comes back and every member gets the message", () => running.get("hang"));

  it("a shard that fails twice is delivered by its third attempt", () => running.get("twice"));
});
