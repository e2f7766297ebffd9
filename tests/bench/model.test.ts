/**
 * The large-room model's properties (bench/model, scripts/model.ts): deterministic for a seed, never
 * faster than the post budget allows, never slower with more workers while the budget holds, capped by
 * the account's budget, and its calibration error computed as stated. No timings are asserted: every
 * figure below is simulated time.
 */
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
  compareLargeRoom,
  fitLocal,
  type LargeRoomMeasurement,
  type LocalFit,
  readCalibration,
  relativeError,
  validateToday,
} from "../../bench/model/calibration";
import { floorMs, partitionReadUnits, predict } from "../../bench/model/predict";
import { constant, seededRandom } from "../../bench/model/random";
import {
  defaultParams,
  ModelInputError,
  type ModelParams,
  queryReadUnits,
  shardCount,
  shardSizes,
  simulateOnce,
} from "../../bench/model/simulate";
import type { BenchResults } from "../../bench/lib/results";
import { DEFAULT_SEED, parseModelArgs, rowParams, runModel } from "../../scripts/model";

/** A worker-path room with every latency constant: the schedule is exact arithmetic. */
function exact(members: number, o: Partial<ModelParams> = {}): ModelParams {
  return {
    ...defaultParams(members),
    post: constant(20),
    throttled: constant(5),
    route: constant(10),
    sendBatch: constant(5),
    receive: constant(5),
    coldStart: constant(0),
    getItem: constant(2),
    queryPage: constant(5),
    ...o,
  };
}

const FIT: LocalFit = { routeMs: 10, cpu: { cpuMsPerPost: 0.5, overheadMsPerPost: 2 }, fittedOn: "test" };

describe("large-room model (bench/model)", () => {
  describe("determinism", () => {
    it("gives the same receipts for the same seed and different ones for another seed", () => {
      const p = defaultParams(5000);
      const a = simulateOnce(p, 42);
      const b = simulateOnce(p, 42);
      const c = simulateOnce(p, 43);
      assert.deepEqual(Array.from(a.receipts), Array.from(b.receipts));
      assert.equal(a.lastMs, b.lastMs);
      assert.notEqual(a.lastMs, c.lastMs);
    });

    it("seeded PRNG repeats its sequence and stays in [0, 1)", () => {
      const r1 = seededRandom(7);
      const r2 = seededRandom(7);
      for (let i = 0; i < 1000; i++) {
        const v = r1();
        assert.equal(v, r2());
        assert.ok(v >= 0 && v < 1);
      }
    });

    it("delivers to every member exactly once (no NaN receipt) when nothing is throttled", () => {
      const r = simulateOnce(defaultParams(20_000), 1);
      assert.equal(r.failed, 0);
      assert.equal(Array.from(r.receipts).filter((t) => Number.isNaN(t)).length, 0);
      assert.equal(r.receipts.length, 20_000);
    });
  });

  describe("the floor", () => {
    for (const [members, workers, postsPerSecond] of [
      [2000, 2, 1000],
      [10_000, 5, 5000],
      [10_000, 16, 5000],
      [50_000, 8, 10_000],
      [100_000, 32, 10_000],
    ] as const) {
      it(`is respected: ${members} members, ${workers} workers at ${postsPerSecond}/s take at least members / budget`, () => {
        const p = { ...defaultParams(members), deliveryWorkerConcurrency: workers, deliveryPostsPerSecond: postsPerSecond };
        const floor = floorMs(p);
        assert.equal(floor, (members / postsPerSecond) * 1000);
        for (const scenario of ["steady", "idle"] as const) {
          const pred = predict({ ...p, scenario }, 3, 5);
          assert.ok(pred.last.p50 >= floor, `${scenario}: ${pred.last.p50} < ${floor}`);
          assert.ok(pred.ratio >= 1);
        }
      });
    }

    it("is set by the account's budget when the posts' budget is larger", () => {
      const p = {
        ...defaultParams(10_000),
        deliveryPostsPerSecond: 50_000,
        accountPostsPerSecond: 10_000,
        otherAccountPostsPerSecond: 2000,
      };
      assert.equal(floorMs(p), (10_000 / 8000) * 1000);
    });
  });

  describe("workers and the budget", () => {
    it("more workers are never slower while each keeps its rate and their sum stays within the budget", () => {
      let previous = Number.POSITIVE_INFINITY;
      for (let workers = 1; workers <= 20; workers++) {
        const p = exact(10_000, { deliveryWorkerConcurrency: workers, deliveryPostsPerSecond: workers * 500 });
        const last = simulateOnce(p, 3).lastMs;
        assert.ok(last <= previous, `${workers} workers: ${last} ms after ${previous} ms with one fewer`);
        previous = last;
      }
    });

    it("the account's budget caps the post rate: posts beyond it are answered 429 and the broadcast takes at least (members - burst) / rate", () => {
      const p = exact(30_000, {
        deliveryWorkerConcurrency: 64,
        deliveryPostsPerSecond: 60_000,
        accountPostsPerSecond: 10_000,
        accountBurst: 5000,
        throttleRetries: 50,
        roomShardSize: 500,
      });
      const r = simulateOnce(p, 9);
      assert.ok(r.throttled > 0, "some posts were throttled");
      assert.equal(r.failed, 0);
      assert.ok(r.lastMs >= ((30_000 - 5000) / 10_000) * 1000, `${r.lastMs}`);
      // In any window of one second, at most rate + burst receipts.
      const sorted = Float64Array.from(r.receipts).sort();
      for (let i = 0, j = 0; i < sorted.length; i++) {
        while (sorted[i] - sorted[j] > 1000) j++;
        assert.ok(i - j + 1 <= 15_000, `window at ${sorted[i]} ms holds ${i - j + 1} receipts`);
      }
    });

    it("without retries left, a throttled post fails and is counted, not delivered", () => {
      const p = exact(5000, {
        largeRoomUsers: 100_000,
        fanoutConcurrency: 256,
        accountPostsPerSecond: 1000,
        accountBurst: 10,
        throttleRetries: 0,
      });
      const r = simulateOnce(p, 2);
      assert.ok(r.failed > 0);
      assert.equal(Array.from(r.receipts).filter((t) => Number.isNaN(t)).length, r.failed);
    });

    it("a worker's slices (deliver.ts's first version) wait for their slowest post; a sliding window (deliver.ts) does not", () => {
      // One shard of 2,000 at 1,000 posts/s: slices of 50 paced 50 ms apart. Posts of 20 ms median and
      // 200 ms p99 (mean 33 ms): a window of 50 in flight sustains about 1,500/s, so pacing sets its pace
      // (about 2 s); a slice lasts as long as its slowest of 50 posts (about 150 ms), 40 slices.
      const p = exact(2000, {
        roomShardSize: 2000,
        deliveryWorkerConcurrency: 2,
        deliveryPostsPerSecond: 2000,
        post: { medianMs: 20, p99Ms: 200 },
      });
      assert.equal(p.workerPosting, "window", "the model's default is how deliver.ts posts");
      const slices = simulateOnce({ ...p, workerPosting: "slices" }, 1).lastMs;
      const window = simulateOnce(p, 1).lastMs;
      assert.ok(window < 2500, `window ${window}`);
      assert.ok(slices > 1.5 * window, `slices ${slices}, window ${window}`);
    });

    it("the event source mapping never runs more workers than maximumConcurrency or shards", () => {
      assert.equal(simulateOnce(exact(10_000, { deliveryWorkerConcurrency: 5 }), 1).peakWorkers, 5);
      assert.equal(simulateOnce(exact(10_000, { deliveryWorkerConcurrency: 64 }), 1).peakWorkers, 16);
    });

    it("after an idle period the mapping starts at 5 and every new environment is cold", () => {
      const p = exact(100_000, {
        deliveryWorkerConcurrency: 20,
        deliveryPostsPerSecond: 10_000,
        coldStart: constant(300),
      });
      const idle = simulateOnce({ ...p, scenario: "idle" }, 1);
      const steady = simulateOnce(p, 1);
      assert.equal(steady.coldStarts, 0);
      assert.equal(idle.coldStarts, 20);
      assert.ok(idle.lastMs > steady.lastMs);
    });
  });

  describe("shards and partitions", () => {
    it("spreads a room over a power of two of shards of at most roomShardSize while it can", () => {
      assert.equal(shardCount(1000, 1000), 1);
      assert.equal(shardCount(1001, 1000), 2);
      assert.equal(shardCount(10_000, 1000), 16);
      assert.equal(shardCount(100_000, 1000), 128);
      assert.equal(shardCount(10_000_000, 1000), 1024);
      for (const [users, shards, f] of [
        [100_000, 128, 1],
        [100_001, 128, 1.5],
        [10_000, 16, 2],
      ] as const) {
        const sizes = shardSizes(users, shards, f);
        assert.equal(
          sizes.reduce((s, x) => s + x, 0),
          users,
        );
        assert.ok(Math.max(...sizes) <= Math.ceil((f * users) / shards) + 1);
      }
    });

    it("models branch shards' placement: joins only (older half full, newer half sharing the rest) and its bound's worst case", () => {
      assert.deepEqual(shardSizes(3000, 4, 1, "joins", 1000), [1000, 1000, 500, 500]);
      assert.deepEqual(shardSizes(3000, 4, 1, "bound", 1000), [1000, 1000, 1000, 0]);
      for (const placement of ["joins", "bound"] as const) {
        const sizes = shardSizes(100_000, 128, 1, placement, 1000);
        assert.equal(
          sizes.reduce((s, x) => s + x, 0),
          100_000,
        );
        assert.equal(Math.max(...sizes), 1000, "no shard above roomShardSize (the placement's documented bound)");
      }
      const p = { ...defaultParams(100_000), deliveryPostsPerSecond: 10_000 };
      assert.ok(partitionReadUnits({ ...p, placement: "bound" }) <= 2400);
    });

    it("prices a strongly consistent Query at 1 unit per 4 KB of each 1 MB page", () => {
      assert.equal(queryReadUnits(1000, 141), 35);
      assert.equal(queryReadUnits(0, 141), 1);
      // 100,000 x 141 B = 13.4 pages of 1 MB: 13 full pages of 256 units and the rest.
      assert.equal(queryReadUnits(100_000, 141), 13 * 256 + Math.ceil((100_000 * 141 - 13 * 1024 * 1024) / 4096));
    });

    it("keeps every partition of a 100,000-member room under 80% of 3,000 read units at 1 message/s; one partition would not be", () => {
      const p = rowParams({ overrides: {}, postsPerSecondGiven: false }, 100_000);
      assert.ok(partitionReadUnits(p) <= 2400);
      assert.ok(queryReadUnits(100_000, p.memberItemBytes) > 3000);
    });
  });

  describe("calibration", () => {
    const row = (o: Partial<LargeRoomMeasurement> = {}): LargeRoomMeasurement => ({
      members: 2000,
      p50Ms: 500,
      p99Ms: 900,
      postLatencyMs: 20,
      workers: 2,
      postsPerSecond: 2000,
      shardSize: 1000,
      source: "sink",
      largeRoomUsers: 1000,
      ...o,
    });
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "model-test-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("states the relative error as (model - measured) / measured", () => {
      assert.equal(relativeError(110, 100), 0.1);
      assert.equal(relativeError(75, 100), -0.25);
    });

    it("computes the error of each row of a synthetic calibration file", () => {
      const [probe] = compareLargeRoom([row()], FIT, 5, 1);
      // A file whose measurements are 1.25x and 0.8x what the model predicts: errors -20% and +25%.
      const file = path.join(dir, "results.json");
      const measured = row({ p50Ms: probe.predicted.p50 * 1.25, p99Ms: probe.predicted.p99 * 0.8 });
      fs.writeFileSync(file, JSON.stringify({ schemaVersion: 1, largeRoom: { rows: [measured] } }));
      const rows = readCalibration(file);
      assert.deepEqual(rows, [measured]);
      const [c] = compareLargeRoom(rows, FIT, 5, 1);
      assert.ok(Math.abs(c.errorP50 - -0.2) < 1e-12, `${c.errorP50}`);
      assert.ok(Math.abs(c.errorP99 - 0.25) < 1e-12, `${c.errorP99}`);
      assert.equal(c.role, "validated");
    });

    it("runs a row on the path it took and shards it by its users", () => {
      // 1,000 members of 100 users that the route posted to (branch sink's row shape), and the same
      // room delivered by workers: different paths, so different predictions.
      const route = row({ members: 1000, users: 100, path: "route", largeRoomUsers: 1000 });
      const [a] = compareLargeRoom([route], FIT, 3, 1);
      const [b] = compareLargeRoom([{ ...route, path: "workers" }], FIT, 3, 1);
      assert.match(a.label, /^route 1000 members \(sink, 100 users\)/);
      assert.notEqual(a.predicted.p99, b.predicted.p99);
    });

    it("reads rows from results.json, an object with rows, or an array; none from a file without them", () => {
      const write = (name: string, v: unknown) => {
        const f = path.join(dir, name);
        fs.writeFileSync(f, JSON.stringify(v));
        return f;
      };
      assert.equal(readCalibration(write("a.json", { rows: [row()] })).length, 1);
      assert.equal(readCalibration(write("b.json", [row(), row({ members: 10_000 })])).length, 2);
      assert.deepEqual(readCalibration(write("c.json", { schemaVersion: 1 })), []);
    });

    it("refuses a malformed row or file with a typed error naming the row", () => {
      const f = path.join(dir, "bad.json");
      fs.writeFileSync(f, JSON.stringify({ rows: [row(), { ...row(), source: "guess" }] }));
      assert.throws(
        () => readCalibration(f),
        (e: Error) => e instanceof ModelInputError && /row 1/.test(e.message),
      );
      fs.writeFileSync(f, "{not json");
      assert.throws(() => readCalibration(f), ModelInputError);
    });

    it("says the model is not calibrated when no large-room measurement exists, inventing no figure", () => {
      const file = path.join(dir, "empty.json");
      fs.writeFileSync(file, JSON.stringify({ schemaVersion: 1 }));
      const report = runModel({ ...parseModelArgs(["--members", "1000", "--runs", "2", "--no-search"]), resultsPath: file });
      assert.ok("missing" in report.calibration);
      assert.match((report.calibration as { missing: string }).missing, /NOT calibrated/);
      assert.equal(report.validation, undefined);
    });

    it("recovers the local configuration from measurements the model itself produced", () => {
      const sizes = [10, 100, 1000];
      const dummy = sizes.map((members) => ({
        members,
        messages: 1,
        bounded: summary(1, 1),
        sequential: summary(1, 1),
        speedupP99: null,
        p99Met: true,
        speedupMet: null,
      }));
      const predicted = validateToday(
        { managementLatencyMs: 20, boundedConcurrency: 50, sequentialConcurrency: 1, method: "synthetic", rows: dummy },
        FIT,
        1,
        1,
      ).map((c) => c.predicted);
      // The fastest receipt: route + one post's CPU, loopback and latency.
      const first = FIT.routeMs + FIT.cpu.cpuMsPerPost + FIT.cpu.overheadMsPerPost + 20;
      const rows = dummy.map((d, i) => ({
        ...d,
        bounded: { ...summary(predicted[2 * i].p50, predicted[2 * i].p99), min: first },
        sequential: summary(predicted[2 * i + 1].p50, predicted[2 * i + 1].p99),
      }));
      const fit = fitLocal({ managementLatencyMs: 20, boundedConcurrency: 50, sequentialConcurrency: 1, method: "synthetic", rows });
      assert.ok(Math.abs(fit.routeMs - FIT.routeMs) < 0.5, `route ${fit.routeMs}`);
      assert.ok(Math.abs(fit.cpu.cpuMsPerPost - FIT.cpu.cpuMsPerPost) < 0.05, `cpu ${fit.cpu.cpuMsPerPost}`);
      assert.ok(Math.abs(fit.cpu.overheadMsPerPost - FIT.cpu.overheadMsPerPost) < 0.1, `loopback ${fit.cpu.overheadMsPerPost}`);
    });
  });

  describe("docs/performance.md", () => {
    it("shows the 10,000-member row the model prints with the defaults, and the first version's slices with the same settings", () => {
      const doc = fs.readFileSync(path.join(__dirname, "..", "..", "docs", "performance.md"), "utf8");
      const section = doc.slice(doc.indexOf("## Large rooms: the model"));
      const defaults = predict(rowParams({ overrides: {}, postsPerSecondGiven: false }, 10_000), 100, DEFAULT_SEED);
      const row = `| 10,000 | workers | 16 | 8 | 5,000 | ${(defaults.last.p50 / 1000).toFixed(2)} s | **${(defaults.last.p99 / 1000).toFixed(2)} s** |`;
      assert.ok(section.includes(row), row);
      assert.ok(section.includes(`**${defaults.ratio.toFixed(3)}x**`));
      const slices = predict(rowParams({ overrides: { workerPosting: "slices" }, postsPerSecondGiven: false }, 10_000), 100, DEFAULT_SEED);
      assert.ok(section.includes(`${(slices.last.p99 / 1000).toFixed(2)} s = ${slices.ratio.toFixed(3)}x`));
    });
  });

  describe("npm run model's command line", () => {
    it("runs 100,000+ member rows at the account's budget unless --posts-per-second is given", () => {
      assert.equal(rowParams(parseModelArgs([]), 100_000).deliveryPostsPerSecond, 10_000);
      assert.equal(rowParams(parseModelArgs([]), 10_000).deliveryPostsPerSecond, 5000);
      assert.equal(rowParams(parseModelArgs(["--posts-per-second", "3000"]), 100_000).deliveryPostsPerSecond, 3000);
    });

    it("refuses bad input with a typed error naming the option", () => {
      for (const [args, re] of [
        [["--members", "10,x"], /--members/],
        [["--worker-concurrency", "0"], /deliveryWorkerConcurrency/],
        [["--shard-imbalance", "3"], /shardImbalance/],
        [["--runs", "0"], /--runs/],
        [["--bogus"], /unknown option --bogus/],
      ] as const) {
        assert.throws(
          () => parseModelArgs(args),
          (e: Error) => e instanceof ModelInputError && re.test(e.message),
          args.join(" "),
        );
      }
    });
  });
});

function summary(p50: number, p99: number): NonNullable<BenchResults["latency"]>["rows"][number]["bounded"] {
  return { count: 1, min: p50, p50, p95: p99, p99, max: p99, mean: p50 };
}
