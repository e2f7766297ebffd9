/**
 * The model against measurements: (1) today's single-invocation broadcast as bench/results.json's
 * latency case measured it (20 ms per `@connections` call, 50 posts in flight and 1), which fits the
 * local runtime's per-post costs and checks the post-latency/concurrency core; (2) the large-room
 * bench rows (branch `sink`'s `large-room` case), run in the local configuration of each row.
 */
import * as fs from "node:fs";
import type { BenchResults } from "../lib/results";
import { predict } from "./predict";
import { constant } from "./random";
import { defaultParams, type LocalCpu, ModelInputError, type ModelParams } from "./simulate";

/**
 * One measured large-room broadcast size (the shape agreed with branch `sink`, under
 * `largeRoom.rows` in bench/results.json): percentiles of every member's receipt, ms after the send.
 */
export interface LargeRoomMeasurement {
  readonly members: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** The gateway's managementLatencyMs. */
  readonly postLatencyMs: number;
  /** The local event source mapping's concurrency (deliveryWorkerConcurrency of the run). */
  readonly workers: number;
  /** deliveryPostsPerSecond of the run. */
  readonly postsPerSecond: number;
  /** roomShardSize of the run. */
  readonly shardSize: number;
  /** Real WebSocket clients, or the gateway's counting sink. */
  readonly source: "sockets" | "sink";
  /** largeRoomUsers of the run (settings default when absent). */
  readonly largeRoomUsers?: number;
  /** Distinct users in the room (members when absent): shards and the threshold count users. */
  readonly users?: number;
  /** Who posted: the chat route or the workers (decided by users and largeRoomUsers when absent). */
  readonly path?: "route" | "workers";
  /** 1-minute load average when the row was measured (the machine is shared). */
  readonly loadAverage1m?: number;
  /** fanoutConcurrency of the run (settings default when absent). */
  readonly fanoutConcurrency?: number;
}

export interface Comparison {
  readonly label: string;
  readonly role: "fitted" | "validated";
  readonly members: number;
  readonly measured: { readonly p50: number; readonly p99: number };
  readonly predicted: { readonly p50: number; readonly p99: number };
  /** (predicted - measured) / measured */
  readonly errorP50: number;
  readonly errorP99: number;
}

/** (predicted - measured) / measured. */
export function relativeError(predicted: number, measured: number): number {
  return (predicted - measured) / measured;
}

/** The local runtime's fixed route time and per-post costs, fitted on today's broadcast measurements. */
export interface LocalFit {
  readonly routeMs: number;
  readonly cpu: LocalCpu;
  /** Which rows the fit used (the others validate it). */
  readonly fittedOn: string;
}

type LatencyCase = NonNullable<BenchResults["latency"]>;

/**
 * Fits the local configuration from the latency case: with r the route's fixed time, L the
 * management latency, c the serial CPU and d the loopback time per post, a sequential broadcast's
 * k-th receipt is r + k (L + c + d) and the first is r + L + c + d (the smallest room's fastest
 * receipt); a bounded one at the largest size is CPU-bound, its p99-th receipt at about
 * r + (0.99 n) c + L + d. Three equations, three unknowns.
 */
export function fitLocal(latency: LatencyCase): LocalFit {
  const rows = [...latency.rows].sort((a, b) => a.members - b.members);
  const largest = rows[rows.length - 1];
  const smallest = rows[0];
  if (!largest?.sequential || rows.length < 2)
    throw new ModelInputError("the latency case needs two room sizes and a sequential run at the largest to fit the local configuration");
  const L = latency.managementLatencyMs;
  const k = Math.ceil(0.99 * largest.members);
  const first = smallest.bounded.min;
  // sequential p99 - first = (k - 1)(L + s), s = c + d
  const s = (largest.sequential.p99 - first) / (k - 1) - L;
  const r = first - L - s;
  // bounded p99 = r + k c + L + d = r + L + s + (k - 1) c
  const c = Math.max(0, (largest.bounded.p99 - r - L - s) / (k - 1));
  const d = Math.max(0, s - c);
  return {
    routeMs: Math.max(0, r),
    cpu: { cpuMsPerPost: c, overheadMsPerPost: d },
    fittedOn: `${largest.members} members (bounded and sequential p99) and the fastest receipt at ${smallest.members}`,
  };
}

/** Local parameters shared by both comparisons: constant latencies, no cold starts, no account throttle. */
function localParams(members: number, fit: LocalFit, postLatencyMs: number): ModelParams {
  const d = defaultParams(members);
  return {
    ...d,
    post: constant(postLatencyMs),
    route: constant(fit.routeMs),
    // The route and the worker read DynamoDB Local on loopback: folded into the fitted route time.
    queryPage: constant(0),
    getItem: constant(0),
    sendBatch: constant(LOCAL_SQS_MS),
    receive: constant(LOCAL_SQS_MS),
    coldStart: constant(0),
    accountPostsPerSecond: 1e9,
    accountBurst: 1e9,
    scenario: "steady",
    local: fit.cpu,
  };
}

/** A call to the local SQS emulator on loopback (ms): an assumption until branch `sqs` measures it. */
export const LOCAL_SQS_MS = 5;

/** Today's path in the local configuration against bench/results.json's latency rows. */
export function validateToday(latency: LatencyCase, fit: LocalFit, runs: number, seed: number): Comparison[] {
  const out: Comparison[] = [];
  const largest = Math.max(...latency.rows.map((r) => r.members));
  for (const row of latency.rows) {
    for (const [mode, concurrency, summary] of [
      ["bounded", latency.boundedConcurrency, row.bounded],
      ["sequential", latency.sequentialConcurrency, row.sequential],
    ] as const) {
      if (!summary) continue;
      const p: ModelParams = {
        ...localParams(row.members, fit, latency.managementLatencyMs),
        largeRoomUsers: row.members,
        fanoutConcurrency: concurrency,
      };
      const pred = predict(p, runs, seed);
      out.push({
        label: `today, ${row.members} members, ${concurrency} in flight (${mode})`,
        role: row.members === largest ? "fitted" : "validated",
        members: row.members,
        measured: { p50: summary.p50, p99: summary.p99 },
        predicted: pred.receipt,
        errorP50: relativeError(pred.receipt.p50, summary.p50),
        errorP99: relativeError(pred.receipt.p99, summary.p99),
      });
    }
  }
  return out;
}

/** The large-room rows in the local configuration of each. */
export function compareLargeRoom(rows: readonly LargeRoomMeasurement[], fit: LocalFit, runs: number, seed: number): Comparison[] {
  return rows.map((row) => {
    const users = row.users ?? row.members;
    const threshold = row.largeRoomUsers ?? defaultParams(row.members).largeRoomUsers;
    const p: ModelParams = {
      ...localParams(row.members, fit, row.postLatencyMs),
      users,
      // The path the run took, when the row says: the route posted iff users <= largeRoomUsers.
      largeRoomUsers:
        row.path === "route" ? Math.max(threshold, users) : row.path === "workers" ? Math.min(threshold, users - 1) : threshold,
      fanoutConcurrency: row.fanoutConcurrency ?? defaultParams(row.members).fanoutConcurrency,
      roomShardSize: row.shardSize,
      deliveryWorkerConcurrency: row.workers,
      deliveryPostsPerSecond: row.postsPerSecond,
    };
    const pred = predict(p, runs, seed);
    return {
      label:
        `${row.path ?? ""} ${row.members} members (${row.source}${row.users !== undefined ? `, ${row.users} users` : ""}), ` +
        `${row.workers} workers at ${row.postsPerSecond}/s, shards of ${row.shardSize}` +
        (row.loadAverage1m !== undefined ? `, load ${row.loadAverage1m}` : ""),
      role: "validated",
      members: row.members,
      measured: { p50: row.p50Ms, p99: row.p99Ms },
      predicted: pred.receipt,
      errorP50: relativeError(pred.receipt.p50, row.p50Ms),
      errorP99: relativeError(pred.receipt.p99, row.p99Ms),
    };
  });
}

function isMeasurement(o: unknown): o is LargeRoomMeasurement {
  const r = o as Partial<LargeRoomMeasurement> | null;
  const pos = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v > 0;
  return (
    typeof r === "object" &&
    r !== null &&
    Number.isInteger(r.members) &&
    pos(r.members) &&
    pos(r.p50Ms) &&
    pos(r.p99Ms) &&
    typeof r.postLatencyMs === "number" &&
    r.postLatencyMs >= 0 &&
    Number.isInteger(r.workers) &&
    pos(r.workers) &&
    pos(r.postsPerSecond) &&
    Number.isInteger(r.shardSize) &&
    pos(r.shardSize) &&
    (r.source === "sockets" || r.source === "sink") &&
    (r.largeRoomUsers === undefined || (Number.isInteger(r.largeRoomUsers) && r.largeRoomUsers >= 0)) &&
    (r.fanoutConcurrency === undefined || (Number.isInteger(r.fanoutConcurrency) && r.fanoutConcurrency >= 1)) &&
    (r.users === undefined || (Number.isInteger(r.users) && r.users >= 1 && r.users <= (r.members ?? 0))) &&
    (r.path === undefined || r.path === "route" || r.path === "workers")
  );
}

/**
 * The large-room rows of a calibration file: bench/results.json (its `largeRoom.rows`), an object
 * with `rows`, or an array of rows. A file without rows gives []; a malformed one throws ModelInputError.
 */
export function readCalibration(file: string): LargeRoomMeasurement[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new ModelInputError(`calibration file ${file}: ${(err as Error).message}`);
  }
  const o = parsed as { largeRoom?: { rows?: unknown }; rows?: unknown } | unknown[] | null;
  const rows = Array.isArray(o) ? o : (o?.largeRoom?.rows ?? o?.rows);
  if (rows === undefined) return [];
  if (!Array.isArray(rows)) throw new ModelInputError(`calibration file ${file}: rows must be an array`);
  rows.forEach((r, i) => {
    if (!isMeasurement(r))
      throw new ModelInputError(
        `calibration file ${file}: row ${i} is not {members, p50Ms, p99Ms, postLatencyMs, workers, postsPerSecond, shardSize, source: "sockets"|"sink"}: ${JSON.stringify(r)}`,
      );
  });
  return rows as LargeRoomMeasurement[];
}
