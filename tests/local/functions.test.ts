/**
 * The function host: one worker per function, cold start, concurrency, timeouts that replace the
 * instance without failing the other invocations, init errors, and captured logs and EMF metrics.
 */
import * as assert from "node:assert/strict";
import * as path from "node:path";
import type { FunctionName } from "../../handlers/routes";
import { FunctionHost, emptyFunctionStats, type EmfRecord, type FunctionStats } from "../../local/functions";
import type { LogEntry } from "../../local/logger";
import { eventually } from "./wsClient";

const FIXTURES = path.join(__dirname, "fixtures");

function host(file: string, timeoutMs = 2000): { h: FunctionHost; stats: FunctionStats; logs: LogEntry[]; emf: EmfRecord[] } {
  const stats = emptyFunctionStats();
  const logs: LogEntry[] = [];
  const emf: EmfRecord[] = [];
  const h = new FunctionHost({
    name: "chat" as FunctionName,
    source: { kind: "module", modulePath: path.join(FIXTURES, file) },
    env: { AWS_LAMBDA_FUNCTION_NAME: "chat-test-chat" },
    timeoutMs,
    memoryMb: 256,
    region: "us-east-1",
    accountId: "000000000000",
    logger: (e) => logs.push(e),
    stats,
    onEmf: (r) => emf.push(r),
  });
  return { h, stats, logs, emf };
}

describe("local function host", function () {
  this.timeout(30_000);

  it("cold-starts one instance, then serves concurrent invocations with a Lambda-like context", async () => {
    const { h, stats } = host("logs.js");
    try {
      const results = await Promise.all([1, 2, 3].map((id) => h.invoke<{ body: string }>({ id, ms: 200, deliveries: 1 }, `req-${id}`)));
      assert.equal(stats.coldStarts, 1);
      assert.equal(stats.invocations, 3);
      for (const [i, r] of results.entries()) {
        assert.ok(r.ok);
        assert.deepEqual(JSON.parse(r.result.body), { id: i + 1, remaining: true, fn: "chat-test-chat" });
      }
      // Each waited for the init (on Lambda each would have cold-started its own instance); the next one is warm.
      assert.ok(results.every((r) => r.coldStart));
      const warm = await h.invoke({ id: 4, ms: 1, deliveries: 0 }, "req-4");
      assert.equal(warm.coldStart, false);
      assert.equal(stats.coldStarts, 1);
    } finally {
      await h.stop();
    }
  });

  it("forwards structured logs with their level, plain text, and turns EMF lines into metrics", async () => {
    const { h, logs, emf } = host("logs.js");
    try {
      await h.invoke({ id: 1, ms: 1, deliveries: 7 }, "req-emf");
      await eventually(
        () => (emf.length === 1 && logs.some((l) => l.message === "plain text on stderr") ? true : undefined),
        5000,
        "the log lines",
      );
      assert.deepEqual(emf[0].values, { Deliveries: 7 });
      assert.equal(emf[0].requestId, "req-emf");
      const structured = logs.find((l) => l.message === "structured");
      assert.equal(structured?.level, "warn");
      assert.equal(structured?.data?.requestId, "req-emf");
      assert.equal(logs.find((l) => l.message === "plain text on stderr")?.level, "error");
    } finally {
      await h.stop();
    }
  });

  it("times out one invocation without failing the others on the same instance, then replaces the instance", async () => {
    const { h, stats } = host("logs.js", 600);
    try {
      const slow = h.invoke({ id: 1, ms: 2000, deliveries: 0 }, "slow");
      await new Promise((r) => setTimeout(r, 100));
      const quick = h.invoke({ id: 2, ms: 300, deliveries: 0 }, "quick");
      const [s, q] = await Promise.all([slow, quick]);
      assert.equal(s.ok, false);
      assert.equal(!s.ok && s.kind, "timeout");
      assert.ok(q.ok, "the other invocation completed");
      const next = await h.invoke({ id: 3, ms: 1, deliveries: 0 }, "next");
      assert.ok(next.ok);
      assert.equal(next.coldStart, true);
      assert.equal(stats.coldStarts, 2);
      assert.equal(stats.timeouts, 1);
    } finally {
      await h.stop();
    }
  });

  it("reports a failing factory as an init error and tries a fresh instance next time", async () => {
    const { h, stats } = host("initFails.js");
    try {
      const a = await h.invoke({}, "a");
      assert.equal(!a.ok && a.kind, "init");
      assert.match(!a.ok ? a.error.message : "", /environment variable TABLE is not set/);
      const b = await h.invoke({}, "b");
      assert.equal(!b.ok && b.kind, "init");
      assert.equal(stats.errors, 2);
      assert.equal(stats.coldStarts, 0);
    } finally {
      await h.stop();
    }
  });

  it("answers an error outcome, not an exception, once stopped", async () => {
    const { h } = host("logs.js");
    await h.stop();
    const r = await h.invoke({ id: 1, ms: 1, deliveries: 0 }, "late");
    assert.equal(r.ok, false);
  });
});
