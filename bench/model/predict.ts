/**
 * Runs the simulation (simulate.ts) several times with derived seeds and summarises a room size:
 * percentiles of the member receipts and of the last member's receipt, the floor the post budget
 * sets, the partitions' read rate, and the issue's targets.
 */
import {
  type ModelParams,
  PARTITION_READ_UNITS_PER_SECOND,
  PARTITION_TARGET_SHARE,
  queryReadUnits,
  type RunResult,
  shardCount,
  shardSizes,
  simulateOnce,
} from "./simulate";

export interface Percentiles {
  readonly p50: number;
  readonly p99: number;
}

export interface Prediction {
  readonly members: number;
  readonly path: "route" | "workers";
  readonly shards: number;
  readonly largestShard: number;
  readonly workers: number;
  readonly runs: number;
  /** Every member's receipt over every run (ms after the send). */
  readonly receipt: Percentiles;
  /** The last member's receipt, per run (ms after the send): the broadcast's duration. */
  readonly last: Percentiles;
  /** members / min(the posts' budget, the account's budget) in ms. */
  readonly floorMs: number;
  /** last.p99 / floorMs */
  readonly ratio: number;
  readonly throttled: number;
  readonly failed: number;
  readonly coldStarts: number;
  readonly peakWorkers: number;
  /** Read units one broadcast spends on its busiest partition, and per second at params.messagesPerSecond. */
  readonly partitionReadUnitsPerMessage: number;
  readonly peakPartitionReadUnitsPerSecond: number;
  /** The same for today's single partition (the room's whole membership in one Query). */
  readonly singlePartitionReadUnitsPerSecond: number;
}

/** Nearest-rank percentile of an ascending-sorted typed array (bench/lib/stats.ts's method). */
export function percentileOf(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1];
}

/** The run's seed for run `i` of a prediction seeded with `seed`. */
export function runSeed(seed: number, i: number): number {
  return (seed + Math.imul(i + 1, 0x9e3779b1)) >>> 0;
}

/** The floor of a broadcast's duration in ms: members / min(deliveryPostsPerSecond, the account's budget). */
export function floorMs(
  p: Pick<ModelParams, "members" | "deliveryPostsPerSecond" | "accountPostsPerSecond" | "otherAccountPostsPerSecond">,
): number {
  return (p.members / Math.min(p.deliveryPostsPerSecond, p.accountPostsPerSecond - p.otherAccountPostsPerSecond)) * 1000;
}

/**
 * Read units per broadcast on the busiest partition. A large room: shard k's Query on its partition;
 * the room's own partition (shard 0) also serves the route's first page (the summary and up to 127
 * members) and, when workers read it, one summary GetItem per job (1 unit each). A small room: one Query.
 */
export function partitionReadUnits(p: ModelParams): number {
  const shards = shardCount(p.users ?? p.members, p.roomShardSize);
  const sizes = shardSizes(p.members, shards, p.shardImbalance, p.placement, p.roomShardSize);
  if ((p.users ?? p.members) <= p.largeRoomUsers) return Math.max(...sizes.map((n) => queryReadUnits(n, p.memberItemBytes)));
  const perShard = sizes.map((n) => queryReadUnits(n, p.memberItemBytes));
  // The route's first page (branch worker's readRoomToBroadcast: the summary and up to 127 members).
  perShard[0] += queryReadUnits(Math.min(p.routeFirstPageItems, p.members + 1), p.memberItemBytes) + (p.workerReadsSummary ? shards : 0);
  return Math.max(...perShard);
}

export function predict(p: ModelParams, runs: number, seed: number): Prediction {
  const results: RunResult[] = [];
  for (let i = 0; i < runs; i++) results.push(simulateOnce(p, runSeed(seed, i)));
  const all = new Float64Array(runs * p.members);
  let n = 0;
  for (const r of results) for (const v of r.receipts) if (!Number.isNaN(v)) all[n++] = v;
  const receipts = all.subarray(0, n).sort();
  const lasts = Float64Array.from(results.map((r) => r.lastMs)).sort();
  const shards = shardCount(p.users ?? p.members, p.roomShardSize);
  const sizes = shardSizes(p.members, shards, p.shardImbalance, p.placement, p.roomShardSize);
  const floor = floorMs(p);
  const last = { p50: percentileOf(lasts, 50), p99: percentileOf(lasts, 99) };
  const perMessage = partitionReadUnits(p);
  return {
    members: p.members,
    path: (p.users ?? p.members) <= p.largeRoomUsers ? "route" : "workers",
    shards,
    largestShard: Math.max(...sizes),
    workers: (p.users ?? p.members) <= p.largeRoomUsers ? 0 : p.deliveryWorkerConcurrency,
    runs,
    receipt: { p50: percentileOf(receipts, 50), p99: percentileOf(receipts, 99) },
    last,
    floorMs: floor,
    ratio: last.p99 / floor,
    throttled: results.reduce((s, r) => s + r.throttled, 0),
    failed: results.reduce((s, r) => s + r.failed, 0),
    coldStarts: results.reduce((s, r) => s + r.coldStarts, 0),
    peakWorkers: Math.max(...results.map((r) => r.peakWorkers)),
    partitionReadUnitsPerMessage: perMessage,
    peakPartitionReadUnitsPerSecond: perMessage * p.messagesPerSecond,
    singlePartitionReadUnitsPerSecond: queryReadUnits(p.members, p.memberItemBytes) * p.messagesPerSecond,
  };
}

/** The partition read rate the issue allows: 80% of 3,000 read units per second. */
export const PARTITION_READ_TARGET = PARTITION_READ_UNITS_PER_SECOND * PARTITION_TARGET_SHARE;
