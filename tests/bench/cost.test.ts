/**
 * The cost model's arithmetic on a hand-checked case. The inputs are round numbers chosen so that
 * every expected figure below was worked out by hand (the working is in the comments), not by
 * calling the code under test.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { CostInputs } from "../../bench/lib/results";
import { CostInputError, estimateCost, FALLBACK_INPUTS, loadCostInputs, parseArgs, PRICES, type Workload } from "../../scripts/cost";

const u = (o: Partial<CostInputs["authorizer"]>) => ({ readUnits: 0, writeUnits: 0, itemsRead: 0, managementCalls: 0, durationMs: 0, logBytes: 0, ...o });

const INPUTS: CostInputs = {
  source: "hand-checked test inputs",
  chat: { fixed: u({ readUnits: 1, writeUnits: 2, itemsRead: 1, durationMs: 10, logBytes: 700 }), perMember: u({ readUnits: 0.1, itemsRead: 1, managementCalls: 1, durationMs: 1 }) },
  connect: { fixed: u({ readUnits: 1, writeUnits: 3, durationMs: 30, logBytes: 500 }), perMember: u({ managementCalls: 1 }) },
  disconnect: { fixed: u({ writeUnits: 2, durationMs: 20, logBytes: 300 }), perMember: u({ managementCalls: 1 }) },
  authorizer: u({ durationMs: 5, logBytes: 200 }),
  ping: u({ writeUnits: 1, durationMs: 4, logBytes: 100 }),
  scanReadUnitsPerConnection: 0.05,
  customMetricSeries: 10,
  fanoutConcurrency: 50,
  managementLatencyMs: 20,
};

// 100 connections in 10 rooms (10 members each), 10 messages a minute, for 10 hours, 1024 MB functions,
// 2-hour sessions, no pings: 600 minutes, 6,000 chat messages, 100 * 10 / 2 = 500 sessions.
const WORKLOAD: Workload = { connections: 100, rooms: 10, messagesPerMinute: 10, hours: 10, memoryMb: 1024, sessionHours: 2, pingIntervalMinutes: 0 };

function line(design: ReturnType<typeof estimateCost>["ours"], item: string) {
  const found = design.services.flatMap((s) => s.lines).find((l) => l.item === item);
  assert.ok(found, `line ${item}`);
  return found;
}

const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `${actual} != ${expected}`);

describe("cost model (scripts/cost.ts)", () => {
  const e = estimateCost(WORKLOAD, INPUTS);

  it("counts API Gateway messages as inbound plus one outbound per @connections call, and connection minutes", () => {
    // inbound 6,000; outbound 6,000 * 10 + 500 sessions * (10 joined + 10 left) = 70,000; total 76,000 -> $0.076
    close(line(e.ours, "apiGatewayMessage").quantity, 76_000);
    close(line(e.ours, "apiGatewayMessage").usd, 0.076);
    // 100 connections * 600 minutes = 60,000 minutes * $0.25 per million = $0.015
    close(line(e.ours, "apiGatewayConnectionMinute").quantity, 60_000);
    close(line(e.ours, "apiGatewayConnectionMinute").usd, 0.015);
  });

  it("prices Lambda requests and GB-seconds from the measured durations", () => {
    // 6,000 chat + 500 * (authorizer + connect + disconnect) = 7,500 requests -> $0.0015
    close(line(e.ours, "lambdaRequest").quantity, 7_500);
    close(line(e.ours, "lambdaRequest").usd, 0.0015);
    // 1 GB: 6,000 * 0.020 s (10 + 1 * 10 members) + 500 * (0.005 + 0.030 + 0.020) = 120 + 27.5 = 147.5 GB-s
    close(line(e.ours, "lambdaGbSecondArm").quantity, 147.5);
    close(line(e.ours, "lambdaGbSecondArm").usd, 147.5 * 0.0000133334);
  });

  it("prices DynamoDB read and write units per operation", () => {
    // reads: 6,000 * (1 + 0.1 * 10) + 500 * (1 + 0) = 12,500 -> $0.0015625
    close(line(e.ours, "dynamoReadUnit").quantity, 12_500);
    close(line(e.ours, "dynamoReadUnit").usd, 0.0015625);
    // writes: 6,000 * 2 + 500 * (3 + 2) = 14,500 -> $0.0090625
    close(line(e.ours, "dynamoWriteUnit").quantity, 14_500);
    close(line(e.ours, "dynamoWriteUnit").usd, 0.0090625);
  });

  it("prices CloudWatch log bytes (with Lambda's own lines) and custom metrics prorated by the hour", () => {
    // 6,000 * 700 + 500 * (500 + 300 + 200) + 7,500 * 300 platform bytes = 6,950,000 bytes
    close(line(e.ours, "logsIngestedGb").quantity, 6_950_000 / 2 ** 30);
    // 10 series * 10 h / 730 h
    close(line(e.ours, "customMetricMonth").quantity, 100 / 730);
    close(line(e.ours, "customMetricMonth").usd, (100 / 730) * 0.3);
  });

  it("adds the lines up to the total", () => {
    const expected = 0.076 + 0.015 + 0.0015 + 147.5 * 0.0000133334 + 0.0015625 + 0.0090625 + (6_950_000 / 2 ** 30) * 0.5 + (100 / 730) * 0.3;
    close(e.ours.totalUsd, expected);
  });

  it("prices the Scan design with a Scan of every connection per message and nothing else changed", () => {
    // reads: 6,000 * (1 + 0.05 * 100 connections) + 500 = 36,500
    close(line(e.scan, "dynamoReadUnit").quantity, 36_500);
    assert.equal(e.scan.counts.dynamoItemsReadPerChatMessage, 100);
    assert.equal(e.ours.counts.dynamoItemsReadPerChatMessage, 11);
    close(line(e.scan, "dynamoWriteUnit").quantity, 14_500);
    close(line(e.scan, "apiGatewayMessage").quantity, 76_000);
    close(e.scan.totalUsd - e.ours.totalUsd, (36_500 - 12_500) * 0.125e-6);
  });

  it("uses the prices of one table that names its source and date", () => {
    assert.match(PRICES.readOn, /^\d{4}-\d{2}-\d{2}$/);
    for (const [key, p] of Object.entries(PRICES)) {
      if (typeof p === "string") continue;
      assert.match(p.source, /^https:\/\/aws\.amazon\.com\//, key);
      assert.ok(p.usd > 0, key);
    }
  });

  it("rejects bad input with a typed error naming the option", () => {
    assert.throws(() => parseArgs(["--connections", "10", "--rooms", "20", "--messages-per-minute", "1"]), (err: Error) => err instanceof CostInputError && /--rooms/.test(err.message));
    assert.throws(() => parseArgs(["--connections", "ten", "--rooms", "1", "--messages-per-minute", "1"]), (err: Error) => err instanceof CostInputError && /--connections must be a number/.test(err.message));
    assert.throws(() => parseArgs(["--rooms", "1", "--messages-per-minute", "1"]), (err: Error) => err instanceof CostInputError && /--connections is required/.test(err.message));
    assert.throws(() => parseArgs(["--connections", "1", "--rooms", "1", "--messages-per-minute", "1", "--hours", "1000"]), (err: Error) => err instanceof CostInputError && /--hours/.test(err.message));
    assert.throws(() => parseArgs(["--connections", "1", "--rooms", "1", "--messages-per-minute", "1", "--bogus", "1"]), (err: Error) => err instanceof CostInputError && /unknown option --bogus/.test(err.message));
    const ok = parseArgs(["--connections=5", "--rooms", "1", "--messages-per-minute", "0.5"]);
    assert.deepEqual(ok.workload, { connections: 5, rooms: 1, messagesPerMinute: 0.5, hours: 730, memoryMb: 256, sessionHours: 2, pingIntervalMinutes: 9 });
  });

  it("falls back to the documented inputs when bench/results.json is missing or has no costInputs", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cost-"));
    try {
      const missing = loadCostInputs(path.join(dir, "absent.json"));
      assert.equal(missing.inputs, FALLBACK_INPUTS);
      assert.match(missing.warning ?? "", /not found/);
      const file = path.join(dir, "results.json");
      fs.writeFileSync(file, JSON.stringify({ schemaVersion: 1 }));
      assert.match(loadCostInputs(file).warning ?? "", /no costInputs/);
      fs.writeFileSync(file, JSON.stringify({ schemaVersion: 1, costInputs: INPUTS }));
      assert.deepEqual(loadCostInputs(file), { inputs: INPUTS });
      fs.writeFileSync(file, "{not json");
      assert.throws(() => loadCostInputs(file), CostInputError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
