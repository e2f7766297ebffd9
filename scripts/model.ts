/**
 * The large-room delivery model (issue 17, "Modelled"): a seeded discrete-event simulation of the
 * deployed path (bench/model/simulate.ts) for rooms of 1,000 to 1,000,000 members, the issue's
 * targets, settings that meet them when the defaults do not, the model against today's measured
 * broadcast, and against the large-room bench rows when they exist.
 *
 *   npm run model [-- --members 1000,10000,100000,1000000] [--calibration <file>] [--json] [--help]
 *
 * docs/performance.md, "Large rooms: the model", lists every assumption and its source.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import {
  type Comparison,
  compareLargeRoom,
  fitLocal,
  type LargeRoomMeasurement,
  type LocalFit,
  readCalibration,
  validateToday,
} from "../bench/model/calibration";
import { type Prediction, PARTITION_READ_TARGET, predict } from "../bench/model/predict";
import { defaultParams, ModelInputError, type ModelParams, validateParams } from "../bench/model/simulate";
import {
  accountBudgetTarget,
  type Candidate,
  partitionTarget,
  postBudgetTarget,
  searchSettings,
  smallRoomTarget,
  type Target,
} from "../bench/model/targets";
import type { BenchResults, CostInputs } from "../bench/lib/results";
import { parseCommandLine } from "./commandLine";
import { FALLBACK_INPUTS, largeRoomCost } from "./cost";

const USAGE = `usage: npm run model [-- --members 1000,10000,100000,1000000]
       [--large-room-users <n>] [--room-shard-size <n>] [--worker-concurrency <n>] [--posts-per-second <n>]
       [--fanout-concurrency <n>] [--account-posts-per-second <n>] [--account-burst <n>]
       [--other-account-posts-per-second <n>] [--post-median-ms <ms>] [--post-p99-ms <ms>]
       [--receive-median-ms <ms>] [--receive-p99-ms <ms>] [--cold-start-median-ms <ms>] [--cold-start-p99-ms <ms>]
       [--shard-imbalance <1-2>] [--placement equal|joins|bound] [--worker-posting slices|window]
       [--enqueue-concurrency <n>] [--messages-per-second <n>]
       [--runs <n>] [--seed <n>] [--calibration <file>] [--results <path>] [--no-search] [--json]
Rooms of 100,000 members or more run at the account's budget (--posts-per-second = --account-posts-per-second)
unless --posts-per-second is given.`;

const OPTIONS = {
  members: { type: "string" },
  "large-room-users": { type: "string" },
  "room-shard-size": { type: "string" },
  "worker-concurrency": { type: "string" },
  "posts-per-second": { type: "string" },
  "fanout-concurrency": { type: "string" },
  "account-posts-per-second": { type: "string" },
  "account-burst": { type: "string" },
  "other-account-posts-per-second": { type: "string" },
  "post-median-ms": { type: "string" },
  "post-p99-ms": { type: "string" },
  "receive-median-ms": { type: "string" },
  "receive-p99-ms": { type: "string" },
  "cold-start-median-ms": { type: "string" },
  "cold-start-p99-ms": { type: "string" },
  "shard-imbalance": { type: "string" },
  placement: { type: "string" },
  "worker-posting": { type: "string" },
  "enqueue-concurrency": { type: "string" },
  "messages-per-second": { type: "string" },
  runs: { type: "string" },
  seed: { type: "string" },
  calibration: { type: "string" },
  results: { type: "string" },
  "no-search": { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export interface ModelOptions {
  readonly members: readonly number[];
  /** Parameters the command line sets for every row. */
  readonly overrides: Partial<ModelParams>;
  /** --posts-per-second was given: the 100,000+ rows keep it instead of the account's budget. */
  readonly postsPerSecondGiven: boolean;
  readonly runs?: number;
  readonly seed: number;
  readonly calibration?: string;
  readonly resultsPath: string;
  readonly search: boolean;
  readonly json: boolean;
}

export const DEFAULT_MEMBERS = [1000, 10_000, 100_000, 1_000_000] as const;
/** From this size on a row models the account-budget configuration (the issue's 100,000-member target). */
export const ACCOUNT_BUDGET_MEMBERS = 100_000;
export const DEFAULT_SEED = 17;

export function parseModelArgs(argv: readonly string[]): ModelOptions {
  const parsed = parseCommandLine({ args: [...argv], options: OPTIONS }, (m) => new ModelInputError(m), `\n${USAGE}`).values;
  if (parsed.help) throw new ModelInputError(USAGE);
  const num = (flag: keyof typeof OPTIONS): number | undefined => {
    const raw = parsed[flag];
    if (typeof raw !== "string") return undefined;
    const v = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(v)) throw new ModelInputError(`--${flag} must be a number, got "${raw}"`);
    return v;
  };
  const members = (parsed.members ?? DEFAULT_MEMBERS.join(",")).split(",").map((m) => {
    const v = Number(m);
    if (m.trim() === "" || !Number.isInteger(v) || v < 1 || v > 10_000_000)
      throw new ModelInputError(`--members takes integers from 1 to 10000000 separated by commas, got "${m}"`);
    return v;
  });
  const base = defaultParams(1);
  const latency = (median: number | undefined, p99: number | undefined, d: { medianMs: number; p99Ms: number }) =>
    median === undefined && p99 === undefined
      ? undefined
      : { medianMs: median ?? d.medianMs, p99Ms: p99 ?? Math.max(median ?? d.medianMs, d.p99Ms) };
  const o: Record<string, unknown> = {
    largeRoomUsers: num("large-room-users"),
    roomShardSize: num("room-shard-size"),
    deliveryWorkerConcurrency: num("worker-concurrency"),
    deliveryPostsPerSecond: num("posts-per-second"),
    fanoutConcurrency: num("fanout-concurrency"),
    accountPostsPerSecond: num("account-posts-per-second"),
    accountBurst: num("account-burst"),
    otherAccountPostsPerSecond: num("other-account-posts-per-second"),
    post: latency(num("post-median-ms"), num("post-p99-ms"), base.post),
    receive: latency(num("receive-median-ms"), num("receive-p99-ms"), base.receive),
    coldStart: latency(num("cold-start-median-ms"), num("cold-start-p99-ms"), base.coldStart),
    shardImbalance: num("shard-imbalance"),
    placement: parsed.placement,
    workerPosting: parsed["worker-posting"],
    enqueueConcurrency: num("enqueue-concurrency"),
    messagesPerSecond: num("messages-per-second"),
  };
  for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k];
  const overrides = o as Partial<ModelParams>;
  validateParams({ ...base, ...overrides });
  const runs = num("runs");
  if (runs !== undefined && !(Number.isInteger(runs) && runs >= 1 && runs <= 1000))
    throw new ModelInputError(`--runs must be an integer from 1 to 1000, got ${runs}`);
  const seed = num("seed") ?? DEFAULT_SEED;
  if (!(Number.isInteger(seed) && seed >= 0)) throw new ModelInputError(`--seed must be an integer >= 0, got ${seed}`);
  return {
    members,
    overrides,
    postsPerSecondGiven: overrides.deliveryPostsPerSecond !== undefined,
    ...(runs !== undefined ? { runs } : {}),
    seed,
    ...(parsed.calibration !== undefined ? { calibration: parsed.calibration } : {}),
    resultsPath: parsed.results ?? path.join(__dirname, "..", "bench", "results.json"),
    search: !parsed["no-search"],
    json: parsed.json ?? false,
  };
}

/** A row's parameters: the defaults, the command line's, and for 100,000+ members the account's budget. */
export function rowParams(o: Pick<ModelOptions, "overrides" | "postsPerSecondGiven">, members: number): ModelParams {
  const p: ModelParams = { ...defaultParams(members), ...o.overrides, members };
  if (members >= ACCOUNT_BUDGET_MEMBERS && !o.postsPerSecondGiven)
    return { ...p, deliveryPostsPerSecond: p.accountPostsPerSecond - p.otherAccountPostsPerSecond };
  return p;
}

/** Runs per row unless --runs: enough for a p99 of the last receipt at small sizes, bounded work at large. */
export function defaultRuns(members: number): number {
  return members <= 10_000 ? 100 : members <= 100_000 ? 20 : 3;
}

export interface ModelRow {
  readonly params: ModelParams;
  readonly steady: Prediction;
  readonly idle: Prediction;
  /** Cost per delivery of the path the row takes, and today's (one invocation) at the same size. */
  readonly usdPerDelivery: number;
  readonly todayUsdPerDelivery: number;
}

export interface ModelReport {
  readonly rows: readonly ModelRow[];
  readonly targets: readonly Target[];
  readonly search?: { readonly best?: Candidate; readonly candidates: readonly Candidate[] };
  readonly validation?: { readonly fit: LocalFit; readonly comparisons: readonly Comparison[] } | { readonly error: string };
  readonly calibration: { readonly source: string; readonly comparisons: readonly Comparison[] } | { readonly missing: string };
  readonly costInputsSource: string;
}

function loadResults(file: string): BenchResults | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as BenchResults;
  } catch (err) {
    throw new ModelInputError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
}

export function runModel(o: ModelOptions): ModelReport {
  const results = loadResults(o.resultsPath);
  const inputs: CostInputs = results?.costInputs ?? FALLBACK_INPUTS;
  const rows: ModelRow[] = o.members.map((members) => {
    const params = rowParams(o, members);
    const runs = o.runs ?? defaultRuns(members);
    const steady = predict(params, runs, o.seed);
    const idle = predict({ ...params, scenario: "idle" }, runs, o.seed);
    const cost = largeRoomCost(inputs, {
      members,
      messagesPerMinute: 1,
      hours: 730,
      memoryMb: 256,
      roomShardSize: params.roomShardSize,
      deliveryWorkerConcurrency: params.deliveryWorkerConcurrency,
      deliveryPostsPerSecond: params.deliveryPostsPerSecond,
    });
    return {
      params,
      steady,
      idle,
      usdPerDelivery: steady.path === "route" ? cost.today.usdPerDelivery : cost.workers.usdPerDelivery,
      todayUsdPerDelivery: cost.today.usdPerDelivery,
    };
  });
  const targets: Target[] = [];
  const at = (m: number) => rows.find((r) => r.params.members === m);
  if (at(1000)) targets.push(smallRoomTarget(at(1000)!.steady));
  if (at(10_000)) targets.push(postBudgetTarget(at(10_000)!.steady));
  if (at(100_000)) {
    targets.push(accountBudgetTarget(at(100_000)!.steady));
    targets.push(partitionTarget(at(100_000)!.steady));
  }
  let search: ModelReport["search"];
  if (o.search && targets.some((t) => !t.met)) {
    const candidates = searchSettings((m) => rowParams(o, m), { small: 30, large: 5 }, o.seed);
    search = { candidates, ...(candidates[0]?.met ? { best: candidates[0] } : {}) };
  }
  let validation: ModelReport["validation"];
  if (results?.latency) {
    try {
      const fit = fitLocal(results.latency);
      validation = { fit, comparisons: validateToday(results.latency, fit, 20, o.seed) };
    } catch (err) {
      if (!(err instanceof ModelInputError)) throw err;
      validation = { error: err.message };
    }
  }
  const calibrationFile = o.calibration ?? o.resultsPath;
  let measured: LargeRoomMeasurement[] = [];
  if (o.calibration !== undefined || fs.existsSync(calibrationFile)) measured = readCalibration(calibrationFile);
  let calibration: ModelReport["calibration"];
  if (measured.length === 0) {
    calibration = {
      missing:
        `${calibrationFile} has no large-room measurement (largeRoom.rows, written by the bench's large-room case): ` +
        "the model is NOT calibrated against local runs at 1,000 and 10,000 members; no error can be stated.",
    };
  } else if (!validation || "error" in validation) {
    calibration = { missing: "the large-room rows need the latency case's fit of the local configuration (bench/results.json latency)" };
  } else {
    calibration = { source: calibrationFile, comparisons: compareLargeRoom(measured, validation.fit, 20, o.seed) };
  }
  return {
    rows,
    targets,
    ...(search ? { search } : {}),
    ...(validation ? { validation } : {}),
    calibration,
    costInputsSource: inputs.source,
  };
}

const sec = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${(ms / 1000).toFixed(2)} s`);
const pct = (x: number) => `${x >= 0 ? "+" : ""}${(x * 100).toFixed(1)}%`;

function table(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
}

export function formatReport(r: ModelReport): string {
  const out: string[] = [];
  out.push("Large rooms: the model (seeded discrete-event simulation of the deployed path; assumptions: docs/performance.md)");
  out.push(
    "Times are from the sender's frame to the member's receipt. p50/p99: of the LAST member's receipt over the runs (the broadcast's duration); " +
      "member p99: of every member's receipt. Steady: the event source mapping already scaled, environments warm; after idle: it starts at 5 " +
      "concurrent invocations, adds 300 a minute, every new environment cold.",
  );
  out.push("");
  const head = [
    "Members",
    "Path",
    "Shards",
    "Workers",
    "Posts/s",
    "Runs",
    "p50",
    "p99",
    "member p99",
    "p99 after idle",
    "Floor",
    "p99/floor",
  ];
  const rows: string[][] = [[...head, `Peak RCU/partition (<= ${PARTITION_READ_TARGET})`, "$/delivery", "today $/delivery", "429s"]];
  for (const row of r.rows) {
    const s = row.steady;
    rows.push([
      s.members.toLocaleString("en-US"),
      s.path === "route" ? "route (today)" : "workers",
      String(s.shards),
      s.path === "route" ? "-" : String(s.workers),
      String(row.params.deliveryPostsPerSecond),
      String(s.runs),
      sec(s.last.p50),
      sec(s.last.p99),
      sec(s.receipt.p99),
      sec(row.idle.last.p99),
      sec(s.floorMs),
      `${s.ratio.toFixed(3)}x`,
      s.peakPartitionReadUnitsPerSecond.toFixed(0),
      `$${row.usdPerDelivery.toExponential(3)}`,
      `$${row.todayUsdPerDelivery.toExponential(3)}`,
      String(s.throttled + row.idle.throttled),
    ]);
  }
  out.push(...table(rows));
  out.push(
    `Cost per delivery at 1 message/minute, 256 MB (npm run cost -- --large-room-members <n>); per-operation figures: ${r.costInputsSource}.`,
  );
  out.push("");
  out.push("Targets (steady state; the after-idle p99 is shown beside):");
  for (const t of r.targets) out.push(`  [${t.met ? "met" : "MISSED"}] ${t.name}: ${t.detail}`);
  if (r.search) {
    out.push("");
    if (r.search.best) {
      const b = r.search.best;
      out.push(
        `Settings that meet every target above with equal shards AND with branch shards' least-loaded placement after joins ` +
          `(fewest workers, then largest shards, searched over deliveryWorkerConcurrency and roomShardSize; worst of the two shown; ` +
          `handlers/settings.ts unchanged, the lead decides):`,
      );
      out.push(
        `  deliveryWorkerConcurrency ${b.deliveryWorkerConcurrency}, roomShardSize ${b.roomShardSize}: ` +
          `10,000 members p99 ${sec(b.tenThousand.last.p99)} (${b.tenThousand.ratio.toFixed(3)}x), ` +
          `100,000 members p99 ${sec(b.hundredThousand.last.p99)} (${b.hundredThousand.ratio.toFixed(3)}x), ` +
          `busiest partition ${b.hundredThousand.peakPartitionReadUnitsPerSecond.toFixed(0)} RCU/s`,
      );
      const others = r.search.candidates.filter((c) => c.met && c !== b).slice(0, 5);
      if (others.length)
        out.push(
          `  also meeting them: ${others.map((c) => `${c.deliveryWorkerConcurrency} workers/shards of ${c.roomShardSize}`).join(", ")}`,
        );
    } else {
      out.push("No searched setting meets every target; closest:");
      for (const c of r.search.candidates.slice(0, 3))
        out.push(
          `  ${c.deliveryWorkerConcurrency} workers, shards of ${c.roomShardSize}: ${c.tenThousand.ratio.toFixed(3)}x / ${c.hundredThousand.ratio.toFixed(3)}x`,
        );
    }
  }
  out.push("");
  out.push("Validation against today's measured broadcast (bench/results.json latency case, local runtime, member receipts):");
  if (!r.validation) out.push("  no latency case in the results: nothing to validate against.");
  else if ("error" in r.validation) out.push(`  ${r.validation.error}`);
  else {
    const f = r.validation.fit;
    out.push(
      `  local configuration fitted on ${f.fittedOn}: route ${f.routeMs.toFixed(1)} ms, serial CPU ${f.cpu.cpuMsPerPost.toFixed(3)} ms/post, ` +
        `loopback ${f.cpu.overheadMsPerPost.toFixed(2)} ms/post`,
    );
    out.push(...comparisonTable(r.validation.comparisons).map((l) => `  ${l}`));
  }
  out.push("");
  out.push("Calibration against the large-room bench (local runs at 1,000 and 10,000 members):");
  if ("missing" in r.calibration) out.push(`  ${r.calibration.missing}`);
  else {
    out.push(`  from ${r.calibration.source}:`);
    out.push(...comparisonTable(r.calibration.comparisons).map((l) => `  ${l}`));
  }
  return out.join("\n");
}

function comparisonTable(cs: readonly Comparison[]): string[] {
  const rows = [["Case", "Role", "Measured p50", "Model p50", "Error", "Measured p99", "Model p99", "Error"]];
  for (const c of cs)
    rows.push([
      c.label,
      c.role,
      `${c.measured.p50.toFixed(0)} ms`,
      `${c.predicted.p50.toFixed(0)} ms`,
      pct(c.errorP50),
      `${c.measured.p99.toFixed(0)} ms`,
      `${c.predicted.p99.toFixed(0)} ms`,
      pct(c.errorP99),
    ]);
  return table(rows);
}

export function main(argv: readonly string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const options = parseModelArgs(argv);
    const report = runModel(options);
    process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ModelInputError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
