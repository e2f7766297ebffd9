/**
 * Issue 17's targets for large rooms, judged on the model's predictions, and the search for settings
 * that meet them when the defaults do not (the lead decides; handlers/settings.ts is not changed here).
 */
import { PARTITION_READ_TARGET, type Prediction, predict } from "./predict";
import type { ModelParams, Placement } from "./simulate";

export interface Target {
  readonly name: string;
  readonly met: boolean;
  readonly detail: string;
}

/** 1,000 members: p99 no worse than today, at most 1 s at 20 ms per post. */
export const SMALL_ROOM_P99_MS = 1000;
/** 10,000 members: p99 within 1.25x the floor set by the configured post budget. */
export const POST_BUDGET_RATIO = 1.25;
/** 100,000 members: within 1.2x the account-budget floor (10 s at 10,000 posts/s). */
export const ACCOUNT_BUDGET_RATIO = 1.2;

const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

export function smallRoomTarget(p: Prediction): Target {
  return {
    name: `${p.members} members: p99 <= 1 s (today's path at 20 ms per post)`,
    met: p.last.p99 <= SMALL_ROOM_P99_MS,
    detail: `last receipt p99 ${s(p.last.p99)}`,
  };
}

export function postBudgetTarget(p: Prediction): Target {
  return {
    name: `${p.members} members: p99 within ${POST_BUDGET_RATIO}x the post-budget floor`,
    met: p.ratio <= POST_BUDGET_RATIO,
    detail: `last receipt p99 ${s(p.last.p99)} = ${p.ratio.toFixed(3)}x the floor ${s(p.floorMs)}`,
  };
}

export function accountBudgetTarget(p: Prediction): Target {
  return {
    name: `${p.members} members at the account's budget: within ${ACCOUNT_BUDGET_RATIO}x its floor`,
    met: p.ratio <= ACCOUNT_BUDGET_RATIO,
    detail: `last receipt p99 ${s(p.last.p99)} = ${p.ratio.toFixed(3)}x the floor ${s(p.floorMs)}`,
  };
}

export function partitionTarget(p: Prediction): Target {
  return {
    name: `${p.members} members at 1 message/s: no partition above 80% of 3,000 read units/s`,
    met: p.peakPartitionReadUnitsPerSecond <= PARTITION_READ_TARGET,
    detail:
      `busiest partition ${p.peakPartitionReadUnitsPerSecond.toFixed(0)} RCU/s (limit ${PARTITION_READ_TARGET}); ` +
      `today's single partition would need ${p.singlePartitionReadUnitsPerSecond.toFixed(0)}`,
  };
}

export interface Candidate {
  readonly deliveryWorkerConcurrency: number;
  readonly roomShardSize: number;
  /** The worst of the placements searched (largest ratio), at 10,000 and at 100,000 members. */
  readonly tenThousand: Prediction;
  readonly hundredThousand: Prediction;
  readonly met: boolean;
}

export const SEARCH_WORKERS = [5, 8, 10, 12, 16, 20, 32, 64] as const;
export const SEARCH_SHARD_SIZES = [500, 1000, 2000] as const;
/** Equal shards, and branch `shards`' least-loaded placement after joins (simulate.ts Placement). */
export const SEARCH_PLACEMENTS: readonly Placement[] = ["equal", "joins"];

/**
 * Settings (worker concurrency, shard size) meeting the 10,000 and 100,000 targets and the partition
 * target together under every placement in `placements`, fewest workers first, then the largest
 * shards (fewer invocations, fewer requests). `base(members)` gives each size's parameters (the
 * 100,000 row at the account's budget).
 */
export function searchSettings(
  base: (members: number) => ModelParams,
  runs: { small: number; large: number },
  seed: number,
  placements: readonly Placement[] = SEARCH_PLACEMENTS,
): Candidate[] {
  const out: Candidate[] = [];
  const worst = (a: Prediction | undefined, b: Prediction) => (a === undefined || b.ratio > a.ratio ? b : a);
  for (const workers of SEARCH_WORKERS) {
    for (const shardSize of SEARCH_SHARD_SIZES) {
      let ten: Prediction | undefined;
      let hundred: Prediction | undefined;
      let met = true;
      for (const placement of placements) {
        const over = (m: number): ModelParams => ({ ...base(m), deliveryWorkerConcurrency: workers, roomShardSize: shardSize, placement });
        const t = predict(over(10_000), runs.small, seed);
        const h = predict(over(100_000), runs.large, seed);
        met = met && postBudgetTarget(t).met && accountBudgetTarget(h).met && partitionTarget(h).met;
        ten = worst(ten, t);
        hundred = worst(hundred, h);
      }
      out.push({ deliveryWorkerConcurrency: workers, roomShardSize: shardSize, tenThousand: ten!, hundredThousand: hundred!, met });
    }
  }
  return out.sort(
    (a, b) =>
      Number(b.met) - Number(a.met) || a.deliveryWorkerConcurrency - b.deliveryWorkerConcurrency || b.roomShardSize - a.roomShardSize,
  );
}
