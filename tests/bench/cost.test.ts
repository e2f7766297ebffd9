/**
 * The cost model's arithmetic on a hand-checked case. The inputs are round numbers chosen so that
 * every expected figure below was worked out by hand (the working is in the comments), not by
 * calling the code under test.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { LARGE_ROOM_DESIGN } from "../../bench/lib/costInputs";
import type { CostInputs } from "../../bench/lib/results";
import { emfDocument } from "../../handlers/lib/emf";
import { emptyUsage } from "../../handlers/lib/usage";
import { canEmit, customMetricSeries, METRIC_NAMES, METRICS } from "../../handlers/metrics";
import { FUNCTIONS, type FunctionSpec } from "../../handlers/routes";
import { TABLE_NAMES } from "../../handlers/tables";
import {
  CostInputError,
  DEFAULT_LARGE_ROOM,
  estimateCost,
  FALLBACK_INPUTS,
  formatLargeRoom,
  type LargeRoomWorkload,
  largeRoomCost,
  loadCostInputs,
  monitoringFootprint,
  parseArgs,
  PRICES,
  type MonitoringFootprint,
  type Workload,
} from "../../scripts/cost";

const u = (o: Partial<CostInputs["authorizer"]>) => ({
  readUnits: 0,
  writeUnits: 0,
  itemsRead: 0,
  managementCalls: 0,
  durationMs: 0,
  logBytes: 0,
  ...o,
});

const INPUTS: CostInputs = {
  source: "hand-checked test inputs",
  chat: {
    fixed: u({ readUnits: 1, writeUnits: 2, itemsRead: 1, durationMs: 10, logBytes: 700 }),
    perMember: u({ readUnits: 0.1, itemsRead: 1, managementCalls: 1, durationMs: 1 }),
  },
  connect: { fixed: u({ readUnits: 1, writeUnits: 3, durationMs: 30, logBytes: 500 }), perMember: u({ managementCalls: 1 }) },
  disconnect: { fixed: u({ writeUnits: 2, durationMs: 20, logBytes: 300 }), perMember: u({ managementCalls: 1 }) },
  authorizer: u({ durationMs: 5, logBytes: 200 }),
  ping: u({ writeUnits: 1, durationMs: 4, logBytes: 100 }),
  scanReadUnitsPerConnection: 0.05,
  fanoutConcurrency: 50,
  managementLatencyMs: 20,
};

// 100 connections in 10 rooms (10 members each), 10 messages a minute, for 10 hours, 1024 MB functions,
// 2-hour sessions, no pings: 600 minutes, 6,000 chat messages, 100 * 10 / 2 = 500 sessions.
const WORKLOAD: Workload = {
  connections: 100,
  rooms: 10,
  messagesPerMinute: 10,
  hours: 10,
  memoryMb: 1024,
  sessionHours: 2,
  pingIntervalMinutes: 0,
  detailedMonitoring: false,
  typingPerMinute: 0,
  reactionsPerMinute: 0,
  readsPerMinute: 0,
};
// 10 metric series, 12 alarms reading 20 metrics, one dashboard.
const MONITORING: MonitoringFootprint = { customMetricSeries: 10, alarmMetrics: 20, alarms: 12, dashboards: 1 };

function line(design: ReturnType<typeof estimateCost>["ours"], item: string) {
  const found = design.services.flatMap((s) => s.lines).find((l) => l.item === item);
  assert.ok(found, `line ${item}`);
  return found;
}

const close = (actual: number, expected: number) =>
  assert.ok(Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)), `${actual} != ${expected}`);

describe("cost model (scripts/cost.ts)", () => {
  const e = estimateCost(WORKLOAD, INPUTS, MONITORING);

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

  it("prices the alarms per metric they read and the dashboard for the whole month, whatever the traffic hours", () => {
    // 20 alarm metrics * $0.10 = $2.00; 1 dashboard * $3.00
    close(line(e.ours, "alarmMetricMonth").quantity, 20);
    close(line(e.ours, "alarmMetricMonth").usd, 2);
    close(line(e.ours, "dashboardMonth").quantity, 1);
    close(line(e.ours, "dashboardMonth").usd, 3);
  });

  it("adds the lines up to the total", () => {
    const expected =
      0.076 + 0.015 + 0.0015 + 147.5 * 0.0000133334 + 0.0015625 + 0.0090625 + (6_950_000 / 2 ** 30) * 0.5 + (100 / 730) * 0.3 + 2 + 3;
    close(e.ours.totalUsd, expected);
  });

  describe("typing, reactions and reads (issue 18)", () => {
    const signalInputs: CostInputs = {
      ...INPUTS,
      typing: { fixed: u({ readUnits: 1, writeUnits: 3, durationMs: 5, logBytes: 100 }), perMember: u({ managementCalls: 1 }) },
      react: { fixed: u({ readUnits: 2, writeUnits: 6, durationMs: 10, logBytes: 100 }), perMember: u({ managementCalls: 1 }) },
      read: { fixed: u({ writeUnits: 3, durationMs: 5, logBytes: 100 }), perMember: u({}) },
    };
    // 1 typing, 2 reactions and 3 reads a minute for 600 minutes: 600, 1,200 and 1,800 frames.
    const busy = (members: number) =>
      estimateCost(
        { ...WORKLOAD, connections: members * 10, typingPerMinute: 1, reactionsPerMinute: 2, readsPerMinute: 3 },
        signalInputs,
        MONITORING,
      );

    it("adds each frame's inbound message, invocation, units and posts to the chat workload's", () => {
      const quiet = estimateCost({ ...WORKLOAD, connections: 100 }, signalInputs, MONITORING);
      const e2 = busy(10);
      // inbound +3,600; outbound: typing 600 * 10 + reactions 1,200 * 10 = 18,000
      close(line(e2.ours, "apiGatewayMessage").quantity - line(quiet.ours, "apiGatewayMessage").quantity, 3_600 + 18_000);
      close(line(e2.ours, "lambdaRequest").quantity - line(quiet.ours, "lambdaRequest").quantity, 3_600);
      // reads: 600 * 1 + 1,200 * 2 = 3,000; writes: 600 * 3 + 1,200 * 6 + 1,800 * 3 = 14,400
      close(line(e2.ours, "dynamoReadUnit").quantity - line(quiet.ours, "dynamoReadUnit").quantity, 3_000);
      close(line(e2.ours, "dynamoWriteUnit").quantity - line(quiet.ours, "dynamoWriteUnit").quantity, 14_400);
      // 1 GB: 600 * 0.005 + 1,200 * 0.010 + 1,800 * 0.005 = 3 + 12 + 9 = 24 GB-s
      close(line(e2.ours, "lambdaGbSecondArm").quantity - line(quiet.ours, "lambdaGbSecondArm").quantity, 24);
    });

    it("posts no typing to a room above typingMaxRoomUsers (100 by default)", () => {
      const quiet = estimateCost({ ...WORKLOAD, connections: 2000, rooms: 10 }, signalInputs, MONITORING);
      const e2 = busy(200);
      // 200 members: typing posts nothing; reactions 1,200 * 200 = 240,000 posts
      close(line(e2.ours, "apiGatewayMessage").quantity - line(quiet.ours, "apiGatewayMessage").quantity, 3_600 + 240_000);
    });

    it("reads the three rates from the command line, 0 when left out, and refuses negative ones", () => {
      const base = ["--connections", "10", "--rooms", "2", "--messages-per-minute", "1"];
      assert.equal(parseArgs(base).workload!.typingPerMinute, 0);
      const w = parseArgs([...base, "--typing-per-minute", "4", "--reactions-per-minute", "5", "--reads-per-minute", "6"]).workload!;
      assert.deepEqual([w.typingPerMinute, w.reactionsPerMinute, w.readsPerMinute], [4, 5, 6]);
      assert.throws(() => parseArgs([...base, "--reads-per-minute=-1"]), /--reads-per-minute must be a number >= 0/);
    });
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
    assert.throws(
      () => parseArgs(["--connections", "10", "--rooms", "20", "--messages-per-minute", "1"]),
      (err: Error) => err instanceof CostInputError && /--rooms/.test(err.message),
    );
    assert.throws(
      () => parseArgs(["--connections", "ten", "--rooms", "1", "--messages-per-minute", "1"]),
      (err: Error) => err instanceof CostInputError && /--connections must be a number/.test(err.message),
    );
    assert.throws(
      () => parseArgs(["--rooms", "1", "--messages-per-minute", "1"]),
      (err: Error) => err instanceof CostInputError && /--connections is required/.test(err.message),
    );
    assert.throws(
      () => parseArgs(["--connections", "1", "--rooms", "1", "--messages-per-minute", "1", "--hours", "1000"]),
      (err: Error) => err instanceof CostInputError && /--hours/.test(err.message),
    );
    assert.throws(
      () => parseArgs(["--connections", "1", "--rooms", "1", "--messages-per-minute", "1", "--bogus", "1"]),
      (err: Error) => err instanceof CostInputError && /unknown option --bogus/.test(err.message),
    );
    const ok = parseArgs(["--connections=5", "--rooms", "1", "--messages-per-minute", "0.5"]);
    assert.deepEqual(ok.workload, {
      connections: 5,
      rooms: 1,
      messagesPerMinute: 0.5,
      hours: 730,
      memoryMb: 256,
      sessionHours: 2,
      pingIntervalMinutes: 9,
      detailedMonitoring: false,
      typingPerMinute: 0,
      reactionsPerMinute: 0,
      readsPerMinute: 0,
    });
    assert.equal(
      parseArgs(["--connections", "5", "--rooms", "1", "--messages-per-minute", "1", "--detailed-monitoring"]).workload!.detailedMonitoring,
      true,
    );
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

  describe("monitoring footprint, computed from the code", () => {
    /** Every distinct series the EMF lines of all functions can produce, read from the documents emfDocument writes. */
    function emittedSeries(functions: readonly FunctionSpec[], perFunction: boolean): Set<string> {
      const series = new Set<string>();
      for (const spec of functions) {
        const usage = emptyUsage();
        for (const m of METRIC_NAMES) usage.metrics[m] = 1; // everything counted at once: the worst case
        const doc = emfDocument("NS", { function: spec.name, stage: "dev", requestId: "r", metrics: usage.metrics, dynamoCalls: [] }, 1, {
          perFunction,
        });
        const directive = (doc._aws as { CloudWatchMetrics: Array<{ Dimensions: string[][]; Metrics: Array<{ Name: string }> }> })
          .CloudWatchMetrics[0];
        for (const set of directive.Dimensions) {
          for (const metric of directive.Metrics) series.add(`${metric.Name}|${set.map((d) => `${d}=${String(doc[d])}`).join(",")}`);
        }
      }
      return series;
    }

    it("counts exactly the series the functions' EMF lines can produce, with and without the per-function dimension", () => {
      for (const perFunction of [false, true]) {
        assert.equal(customMetricSeries(FUNCTIONS, perFunction), emittedSeries(FUNCTIONS, perFunction).size, `perFunction ${perFunction}`);
      }
      assert.equal(monitoringFootprint(false).customMetricSeries, customMetricSeries(FUNCTIONS, false));
      assert.equal(monitoringFootprint(true).customMetricSeries, customMetricSeries(FUNCTIONS, true));
    });

    it("keeps the default stack (detailed monitoring off) at 30 custom metric series or fewer", () => {
      // A new metric or a new dimension in the default set that pushes the bill past 30 series fails here.
      const series = monitoringFootprint(false).customMetricSeries;
      assert.ok(series <= 30, `${series} custom metric series with the default config`);
      // Without detailed monitoring no line carries the Function dimension.
      for (const key of emittedSeries(FUNCTIONS, false)) assert.doesNotMatch(key, /Function=/);
    });

    it("grows with what a function can emit: one more function that posts adds its series only under [Stage, Function]", () => {
      const chat = FUNCTIONS.find((f) => f.name === "chat")!;
      const extra: FunctionSpec = { ...chat, name: "join" };
      const more = [...FUNCTIONS, extra];
      assert.equal(customMetricSeries(more, false), customMetricSeries(FUNCTIONS, false));
      assert.equal(
        customMetricSeries(more, true),
        customMetricSeries(FUNCTIONS, true) + METRIC_NAMES.filter((m) => canEmit(extra, m)).length,
      );
    });

    it("lets a function emit only what its route can produce (authorizer: rejected handshakes; ping: no delivery counters)", () => {
      const authorizer = FUNCTIONS.find((f) => f.name === "authorizer")!;
      assert.deepEqual(
        METRIC_NAMES.filter((m) => canEmit(authorizer, m)),
        [METRICS.rejectedConnects],
      );
      const ping = FUNCTIONS.find((f) => f.name === "ping")!;
      for (const m of [METRICS.deliveries, METRICS.messagesSent, METRICS.dynamoReadUnits]) assert.equal(canEmit(ping, m), false, m);
      assert.equal(canEmit(ping, METRICS.dynamoWriteUnits), true);
      // Its only @connections calls close a connection past its token's expiry (answer, then DELETE).
      assert.equal(canEmit(ping, METRICS.managementCalls), true);
    });

    it("prices every alarm metric of the stack and its one dashboard", () => {
      const m = monitoringFootprint(false);
      // Per function Errors and Invocations, per table read and write throttles, ClientError, ExecutionError + IntegrationError, two EMF metrics,
      // the delivery queue's oldest job age and its dead-letter queue's depth (issue 17).
      assert.equal(m.alarmMetrics, FUNCTIONS.length * 2 + TABLE_NAMES.length * 2 + 1 + 2 + 1 + 1 + 2);
      assert.equal(m.alarms, FUNCTIONS.length + TABLE_NAMES.length + 4 + 2);
      assert.equal(m.dashboards, 1);
      const full = estimateCost({ ...WORKLOAD, hours: 730 }, INPUTS);
      close(line(full.ours, "alarmMetricMonth").usd, m.alarmMetrics * 0.1);
      close(line(full.ours, "dashboardMonth").usd, 3);
      close(line(full.ours, "customMetricMonth").usd, m.customMetricSeries * 0.3);
    });
  });

  describe("large-room case (issue 17)", () => {
    // 20 members in shards of 10: 2 shards, one SendMessageBatch of 2 jobs of 300 + 1,024 bytes (one
    // 64 KB chunk); 2 workers at 1,000 posts/s together = 500/s each = 2 ms per member, slower than
    // the measured 1 ms: each worker runs 10 + 10 x 2 = 30 ms; the route 10 + 1 batch x 10 ms = 20 ms.
    // 1 message a minute for 1 hour: 60 messages; 1,024 MB functions.
    const ROOM: LargeRoomWorkload = {
      members: 20,
      messagesPerMinute: 1,
      hours: 1,
      memoryMb: 1024,
      roomShardSize: 10,
      deliveryWorkerConcurrency: 2,
      deliveryPostsPerSecond: 1000,
    };

    it("counts one broadcast today's way and the workers' way by hand", () => {
      const c = largeRoomCost(INPUTS, ROOM);
      assert.equal(c.shards, 2);
      // Today: 1 inbound + 20 posts; one invocation of 10 + 20 x 1 = 30 ms; reads 1 + 20 x 0.1 = 3; writes 2.
      assert.deepEqual(c.today.perMessage, {
        apiGatewayMessages: 21,
        lambdaRequests: 1,
        lambdaGbSeconds: 0.03,
        readUnits: 3,
        writeUnits: 2,
        sqsRequests: 0,
        logBytes: 700 + 300,
        longestInvocationMs: 30,
      });
      // Workers: route (fixed reads 1 + its first page: the summary and 20 members, 21 x 0.1 = 2.1, so 3)
      // + per shard its Query (10 x 0.1 = 1) = 6 read units;
      // SQS: 1 SendMessageBatch chunk + per job a receive and a delete = 5 requests; GB-s 0.02 + 2 x 0.03.
      const w = c.workers.perMessage;
      assert.equal(w.apiGatewayMessages, 21);
      assert.equal(w.lambdaRequests, 3);
      close(w.lambdaGbSeconds, 0.08);
      assert.equal(w.readUnits, 6);
      assert.equal(w.writeUnits, 2);
      assert.equal(w.sqsRequests, 5);
      assert.equal(w.longestInvocationMs, 30);
      assert.equal(w.logBytes, 700 + 300 + 2 * (700 + 300));
    });

    it("prices the SQS requests at the FIFO rate, idle long polling of 5 pollers included", () => {
      const c = largeRoomCost(INPUTS, ROOM);
      // 60 messages x 5 requests + 5 pollers x 3 polls a minute x 60 minutes = 300 + 900.
      const sqs = c.workers.services.find((s) => s.service === "SQS")!;
      assert.equal(sqs.lines[0].quantity, 1200);
      close(sqs.usd, 1200 * 0.5e-6);
      assert.equal(PRICES.sqsFifoRequest.usd, 0.5e-6);
      assert.equal(
        c.today.services.find((s) => s.service === "SQS"),
        undefined,
      );
      close(c.today.usdPerDelivery, c.today.totalUsd / (60 * 20));
      close(c.ratio, c.workers.usdPerDelivery / c.today.usdPerDelivery);
    });

    it("bills a SendMessageBatch per 64 KB chunk of its entries", () => {
      // 16 shards: 2 batches (10 + 6 jobs) of 100 KB frames: ceil(10 x 102,700 / 65,536) = 16 and 10 chunks.
      const c = largeRoomCost(INPUTS, { ...ROOM, members: 160 }, { ...LARGE_ROOM_DESIGN, frameBytes: 102_400, jobEnvelopeBytes: 300 });
      assert.equal(c.shards, 16);
      // Receives: 16 x ceil(102,700 / 65,536) = 32 chunks; deletes: 16.
      assert.equal(c.workers.perMessage.sqsRequests, 16 + 10 + 32 + 16);
    });

    it("at 100,000 members with the committed measurements stays within 10% of today's cost per delivery", () => {
      const { inputs } = loadCostInputs(path.join(__dirname, "..", "..", "bench", "results.json"));
      const c = largeRoomCost(inputs, { ...DEFAULT_LARGE_ROOM, members: 100_000 });
      assert.ok(c.withinTenPercent, `ratio ${c.ratio}`);
      assert.ok(c.workers.readUnitsPerDelivery <= c.today.readUnitsPerDelivery * 1.1);
      assert.ok(c.today.perMessage.longestInvocationMs > 29_000, "today's route would pass the integration timeout");
      assert.ok(c.workers.perMessage.longestInvocationMs < 29_000);
    });

    it("docs/cost.md's 100,000-member example is what npm run cost prints from the committed results", () => {
      const { inputs } = loadCostInputs(path.join(__dirname, "..", "..", "bench", "results.json"));
      const printed = formatLargeRoom(largeRoomCost(inputs, { ...DEFAULT_LARGE_ROOM, members: 100_000 })).split("\n");
      const doc = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "cost.md"), "utf8");
      const block = doc.slice(doc.indexOf("$ npm run cost -- --large-room-members 100000")).split("```")[0].split("\n").slice(1);
      const shown = block.filter((l) => l.trim() !== "");
      assert.ok(shown.length >= 15, "the example is in docs/cost.md");
      for (const l of shown) assert.ok(printed.includes(l), `docs/cost.md shows a line npm run cost does not print: ${l}`);
    });

    it("takes the large-room case alone or beside the workload, and refuses its flags without --large-room-members", () => {
      const alone = parseArgs(["--large-room-members", "100000", "--large-room-messages-per-minute", "2", "--worker-concurrency", "8"]);
      assert.equal(alone.workload, undefined);
      assert.deepEqual(alone.largeRoom, { ...DEFAULT_LARGE_ROOM, members: 100_000, messagesPerMinute: 2, deliveryWorkerConcurrency: 8 });
      const both = parseArgs(["--connections", "10", "--rooms", "1", "--messages-per-minute", "1", "--large-room-members", "5000"]);
      assert.ok(both.workload && both.largeRoom);
      assert.throws(
        () => parseArgs(["--connections", "10", "--rooms", "1", "--messages-per-minute", "1", "--worker-concurrency", "8"]),
        (e: Error) => e instanceof CostInputError && /--worker-concurrency needs --large-room-members/.test(e.message),
      );
      assert.throws(
        () => parseArgs(["--large-room-members", "100000", "--worker-concurrency", "1"]),
        (e: Error) => e instanceof CostInputError && /--worker-concurrency must be an integer from 2 to 1000/.test(e.message),
      );
      assert.throws(() => parseArgs(["--large-room-members", "0"]), /--large-room-members must be an integer/);
    });
  });
});
