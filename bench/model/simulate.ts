/**
 * A discrete-event simulation of one broadcast's delivery (issue 17, "Modelled"): from the sender's
 * frame to the receipt at every member, on the deployed path or in the local runtime's configuration.
 *
 * What is simulated (docs/performance.md, "Large rooms: the model", lists every assumption and its source):
 * - A room of at most `largeRoomUsers` users: today's path. The chat route reads the room partition
 *   (Query, 1 MB pages) and posts to every member itself, `fanoutConcurrency` posts in flight.
 * - A larger room: the chat route stores the message and sends one job per shard to the FIFO queue
 *   with SendMessageBatch (10 entries a call, handlers/lib/deliveries.ts); a job is visible when its
 *   batch returns. The event source mapping runs at most min(maximumConcurrency =
 *   deliveryWorkerConcurrency, message groups) workers at once (one in-flight job per message group =
 *   shard: AWS Lambda, "Configuring scaling behavior for SQS event source mappings"); after an idle
 *   period it starts at 5 concurrent invocations and adds up to 300 a minute (same page), and each new
 *   execution environment starts cold. A worker reads the room summary (GetItem) and its shard (Query,
 *   1 MB pages), then posts at deliveryPostsPerSecond / deliveryWorkerConcurrency (a token bucket
 *   of one token: posts start 1/rate apart), at most `fanoutConcurrency` in flight.
 * - Every post first takes a token from the account's `@connections` budget (a token bucket shared by
 *   all workers, 10,000/s with a burst of 5,000 by default, less what other APIs use: AWS-FACTS
 *   "Limits"). Without one the post is answered 429 and retried with exponential backoff and equal
 *   jitter (handlers/lib/fanout.ts: base 25 ms, cap 2 s, 4 retries), keeping its in-flight slot.
 * - Local configuration: one serial CPU (the 2-core machine's gateway, functions and clients) spends
 *   `cpuMsPerPost` per post before the post's latency, plus `overheadMsPerPost` of loopback time.
 *
 * Deterministic: every random draw comes from a PRNG seeded by the run's seed (random.ts).
 */
import { MAX_ROOM_SHARDS } from "../../handlers/lib/data";
import { SQS_BATCH_ENTRIES } from "../../handlers/lib/deliveries";
import { HANDLER_SETTINGS } from "../../handlers/settings";
import { constant, type LatencyDist, type Random, sampler, seededRandom } from "./random";

/** DynamoDB: a Query returns at most 1 MB a page; a strongly consistent read costs 1 unit per 4 KB (AWS-FACTS). */
export const QUERY_PAGE_BYTES = 1024 * 1024;
export const READ_UNIT_BYTES = 4096;
/** DynamoDB's per-partition read limit (AWS-FACTS, "Scaling facts") and the share the issue allows. */
export const PARTITION_READ_UNITS_PER_SECOND = 3000;
export const PARTITION_TARGET_SHARE = 0.8;
/** Lambda's default ceiling of concurrent invocations an SQS event source mapping scales to (services-sqs-scaling). */
export const ESM_CONCURRENCY_CAP = 1250;

export interface EsmScaling {
  /** Concurrent invocations an event source mapping starts with when messages appear on an idle queue (5). */
  readonly initialConcurrency: number;
  /** Invocations it adds per minute while messages remain (300). */
  readonly scaleUpPerMinute: number;
}

export interface LocalCpu {
  /** Serial CPU per post (ms): the local runtime, gateway and receiving clients share 2 cores. */
  readonly cpuMsPerPost: number;
  /** Loopback time per post besides the simulated management latency (ms). */
  readonly overheadMsPerPost: number;
}

export interface ModelParams {
  /** Connections in the room (each receives the broadcast). */
  readonly members: number;
  /** Distinct users (shards and the large-room threshold count users); members when absent. */
  readonly users?: number;
  /** handlers/settings.ts */
  readonly largeRoomUsers: number;
  readonly roomShardSize: number;
  readonly deliveryWorkerConcurrency: number;
  readonly deliveryPostsPerSecond: number;
  readonly fanoutConcurrency: number;
  /** The account's `@connections` budget, shared by every API in the region (10,000/s, burst 5,000). */
  readonly accountPostsPerSecond: number;
  readonly accountBurst: number;
  /** Posts per second other APIs of the account spend at the same time (0). */
  readonly otherAccountPostsPerSecond: number;
  /** One `@connections` POST, request to response (the member receives the frame by then). */
  readonly post: LatencyDist;
  /** A 429 answer. */
  readonly throttled: LatencyDist;
  readonly throttleRetries: number;
  readonly backoffBaseMs: number;
  /** The chat route up to its first post or first SendMessageBatch (gateway, invocation, store, summary). */
  readonly route: LatencyDist;
  readonly sendBatch: LatencyDist;
  /** SendMessageBatch calls the route has in flight at once. */
  readonly enqueueConcurrency: number;
  /** From a job being visible (and a worker slot free) to the worker's handler starting. */
  readonly receive: LatencyDist;
  readonly coldStart: LatencyDist;
  readonly getItem: LatencyDist;
  readonly workerReadsSummary: boolean;
  /**
   * How a worker posts: "window" as deliver.ts does (a post starts whenever one of fanoutConcurrency
   * in flight ends and the worker's token bucket has a token), or "slices" as its first version did
   * (paced slices, each waiting for its slowest post: kept to show why it was replaced).
   */
  readonly workerPosting: "slices" | "window";
  /** Items the route's first Query page reads in a large room (the summary and up to 127 members). */
  readonly routeFirstPageItems: number;
  readonly queryPage: LatencyDist;
  /** Bytes of one member item as DynamoDB sizes it. */
  readonly memberItemBytes: number;
  /** Largest shard / mean shard (1 = equal shards), for placement "equal". */
  readonly shardImbalance: number;
  readonly placement: Placement;
  readonly esm: EsmScaling;
  /** "steady": the mapping already scaled and every environment warm; "idle": the first message after an idle period. */
  readonly scenario: "steady" | "idle";
  /** Set for the local runtime's configuration (no cold starts, no mapping ramp). */
  readonly local?: LocalCpu;
  /** Messages per second in the room, for the partition read rate (the target: 1). */
  readonly messagesPerSecond: number;
}

/** The deployed defaults: settings from handlers/settings.ts, the rest documented in docs/performance.md. */
export function defaultParams(members: number): ModelParams {
  return {
    members,
    largeRoomUsers: HANDLER_SETTINGS.largeRoomUsers.defaultValue,
    roomShardSize: HANDLER_SETTINGS.roomShardSize.defaultValue,
    deliveryWorkerConcurrency: HANDLER_SETTINGS.deliveryWorkerConcurrency.defaultValue,
    deliveryPostsPerSecond: HANDLER_SETTINGS.deliveryPostsPerSecond.defaultValue,
    fanoutConcurrency: HANDLER_SETTINGS.fanoutConcurrency.defaultValue,
    accountPostsPerSecond: 10000,
    accountBurst: 5000,
    otherAccountPostsPerSecond: 0,
    post: { medianMs: 20, p99Ms: 60 },
    throttled: { medianMs: 10, p99Ms: 30 },
    throttleRetries: 4,
    backoffBaseMs: 25,
    route: { medianMs: 40, p99Ms: 120 },
    sendBatch: { medianMs: 10, p99Ms: 40 },
    enqueueConcurrency: 1,
    receive: { medianMs: 20, p99Ms: 100 },
    coldStart: { medianMs: 300, p99Ms: 900 },
    getItem: { medianMs: 5, p99Ms: 20 },
    workerReadsSummary: false,
    workerPosting: "window",
    routeFirstPageItems: 128,
    queryPage: { medianMs: 15, p99Ms: 60 },
    memberItemBytes: 141,
    shardImbalance: 1,
    placement: "equal",
    esm: { initialConcurrency: 5, scaleUpPerMinute: 300 },
    scenario: "steady",
    messagesPerSecond: 1,
  };
}

/** Shards of a room of `users` (1, 2, 4, ... <= MAX_ROOM_SHARDS): users per shard at most roomShardSize while it can. */
export function shardCount(users: number, roomShardSize: number): number {
  let shards = 1;
  while (shards < MAX_ROOM_SHARDS && users > shards * roomShardSize) shards *= 2;
  return shards;
}

/**
 * How a room's users are spread over its shards:
 * - "equal": every shard the same size (the remainder one each); `imbalance` > 1 spreads them
 *   linearly so that the largest is `imbalance` times the mean (the total kept);
 * - "joins": branch `shards`' placement (data.ts placeUser, commit 41eaf9d) with joins only: a room
 *   doubles its shards when it holds roomShardSize users per shard and later arrivals go to the least
 *   loaded shard, so the older half stays full at roomShardSize and the newer half shares the rest;
 * - "bound": the worst case that placement's documented bound allows (no shard above roomShardSize,
 *   whatever the joins and leaves): as many shards as possible full, one with the rest, the others empty.
 */
export type Placement = "equal" | "joins" | "bound";

export function shardSizes(users: number, shards: number, imbalance: number, placement: Placement = "equal", shardSize = users): number[] {
  if (placement !== "equal" && shards > 1 && users <= shardSize * shards) {
    if (placement === "bound") {
      const full = Math.floor(users / shardSize);
      return Array.from({ length: shards }, (_, k) => (k < full ? shardSize : k === full ? users - full * shardSize : 0));
    }
    const half = shards / 2;
    const older = Math.min(users, half * shardSize);
    return [...spreadEvenly(older, half), ...spreadEvenly(users - older, half)];
  }
  const mean = users / shards;
  if (shards === 1 || imbalance <= 1) return spreadEvenly(users, shards);
  const spread = Math.min(imbalance - 1, 1);
  const raw = Array.from({ length: shards }, (_, k) => mean * (1 + spread * ((2 * k) / (shards - 1) - 1)));
  const sizes = raw.map((x) => Math.floor(x));
  let rest = users - sizes.reduce((s, x) => s + x, 0);
  for (let k = shards - 1; rest > 0; k = (k - 1 + shards) % shards, rest--) sizes[k]++;
  return sizes;
}

function spreadEvenly(users: number, shards: number): number[] {
  const base = Math.floor(users / shards);
  return Array.from({ length: shards }, (_, k) => base + (k < users - base * shards ? 1 : 0));
}

/** Read units of a strongly consistent Query of `items` items: per 1 MB page, its bytes rounded up to 4 KB. */
export function queryReadUnits(items: number, itemBytes: number): number {
  let bytes = items * itemBytes;
  let units = 0;
  do {
    const page = Math.min(bytes, QUERY_PAGE_BYTES);
    units += Math.max(1, Math.ceil(page / READ_UNIT_BYTES));
    bytes -= page;
  } while (bytes > 0);
  return units;
}

export function queryPages(items: number, itemBytes: number): number {
  return Math.max(1, Math.ceil((items * itemBytes) / QUERY_PAGE_BYTES));
}

/** One simulated broadcast. */
export interface RunResult {
  /** Receipt time (ms after the send) per member; NaN where a post failed after its retries. */
  readonly receipts: Float64Array;
  readonly lastMs: number;
  readonly throttled: number;
  readonly failed: number;
  readonly coldStarts: number;
  readonly peakWorkers: number;
}

interface Scheduled {
  readonly t: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A binary min-heap of events by time, ties in scheduling order (deterministic). */
class EventQueue {
  now = 0;
  private heap: Scheduled[] = [];
  private seq = 0;

  at(t: number, fn: () => void): void {
    const h = this.heap;
    const e = { t: Math.max(t, this.now), seq: this.seq++, fn };
    let i = h.push(e) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (before(h[p], e)) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  run(): void {
    const h = this.heap;
    while (h.length > 0) {
      const top = h[0];
      const last = h.pop()!;
      if (h.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= h.length) break;
          const c = l + 1 < h.length && before(h[l + 1], h[l]) ? l + 1 : l;
          if (before(last, h[c])) break;
          h[i] = h[c];
          i = c;
        }
        h[i] = last;
      }
      this.now = top.t;
      top.fn();
    }
  }
}

function before(a: Scheduled, b: Scheduled): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}

/** A token bucket refilled continuously at `perSecond`, holding at most `burst` tokens (starts full). */
class TokenBucket {
  private tokens: number;
  private last = 0;
  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
  ) {
    this.tokens = burst;
  }

  take(t: number): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.perSecond) / 1000);
    this.last = t;
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return true;
    }
    return false;
  }
}

export class ModelInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelInputError";
  }
}

export function validateParams(p: ModelParams): void {
  const int = (name: string, v: number, min: number) => {
    if (!(Number.isInteger(v) && v >= min)) throw new ModelInputError(`${name} must be an integer >= ${min}, got ${v}`);
  };
  int("members", p.members, 1);
  if (p.users !== undefined && !(Number.isInteger(p.users) && p.users >= 1 && p.users <= p.members))
    throw new ModelInputError(`users must be an integer from 1 to members (${p.members}), got ${p.users}`);
  int("largeRoomUsers", p.largeRoomUsers, 0);
  int("roomShardSize", p.roomShardSize, 1);
  int("deliveryWorkerConcurrency", p.deliveryWorkerConcurrency, 1);
  int("fanoutConcurrency", p.fanoutConcurrency, 1);
  int("enqueueConcurrency", p.enqueueConcurrency, 1);
  int("throttleRetries", p.throttleRetries, 0);
  for (const [name, v] of [
    ["deliveryPostsPerSecond", p.deliveryPostsPerSecond],
    ["accountPostsPerSecond", p.accountPostsPerSecond],
    ["accountBurst", p.accountBurst],
    ["memberItemBytes", p.memberItemBytes],
    ["messagesPerSecond", p.messagesPerSecond],
  ] as const) {
    if (!(Number.isFinite(v) && v > 0)) throw new ModelInputError(`${name} must be a number > 0, got ${v}`);
  }
  if (!(p.otherAccountPostsPerSecond >= 0 && p.otherAccountPostsPerSecond < p.accountPostsPerSecond))
    throw new ModelInputError(`otherAccountPostsPerSecond must be within [0, accountPostsPerSecond), got ${p.otherAccountPostsPerSecond}`);
  if (!["slices", "window"].includes(p.workerPosting))
    throw new ModelInputError(`workerPosting must be slices or window, got ${p.workerPosting}`);
  if (!["equal", "joins", "bound"].includes(p.placement))
    throw new ModelInputError(`placement must be equal, joins or bound, got ${p.placement}`);
  if (!(p.shardImbalance >= 1 && p.shardImbalance <= 2))
    throw new ModelInputError(`shardImbalance must be within [1, 2], got ${p.shardImbalance}`);
  for (const [name, d] of Object.entries({
    post: p.post,
    throttled: p.throttled,
    route: p.route,
    sendBatch: p.sendBatch,
    receive: p.receive,
    coldStart: p.coldStart,
    getItem: p.getItem,
    queryPage: p.queryPage,
  })) {
    if (!(d.medianMs >= 0 && Number.isFinite(d.p99Ms) && d.p99Ms >= 0))
      throw new ModelInputError(`${name} latency needs a median and p99 >= 0, got ${d.medianMs}/${d.p99Ms}`);
  }
}

interface Env {
  cold: boolean;
}

interface Job {
  readonly shard: number;
  readonly base: number;
  readonly members: number;
}

/** Simulates one broadcast with `seed`. */
export function simulateOnce(p: ModelParams, seed: number): RunResult {
  validateParams(p);
  const rng: Random = seededRandom(seed);
  const q = new EventQueue();
  const draw = (d: LatencyDist) => sampler(d, rng);
  const postLatency = draw(p.post);
  const throttledLatency = draw(p.throttled);
  const receipts = new Float64Array(p.members).fill(Number.NaN);
  const account = new TokenBucket(p.accountPostsPerSecond - p.otherAccountPostsPerSecond, p.accountBurst);
  const local = p.local;
  const cold = p.scenario === "idle" && !local;
  let cpuFreeAt = 0;
  let throttled = 0;
  let failed = 0;
  let coldStarts = 0;
  let peakWorkers = 0;
  let lastMs = 0;

  /** One post to member i (its account token, 429s and retries), then `done`. */
  const attempt = (i: number, attemptNo: number, done: () => void) => {
    const t = q.now;
    if (account.take(t)) {
      let begin = t;
      if (local) {
        begin = Math.max(t, cpuFreeAt) + local.cpuMsPerPost;
        cpuFreeAt = begin;
        begin += local.overheadMsPerPost;
      }
      q.at(begin + postLatency(), () => {
        receipts[i] = q.now;
        if (q.now > lastMs) lastMs = q.now;
        done();
      });
      return;
    }
    throttled++;
    if (attemptNo >= p.throttleRetries) {
      q.at(t + throttledLatency(), () => {
        failed++;
        done();
      });
      return;
    }
    // handlers/lib/fanout.ts backoffDelay: equal jitter under min(2 s, base * 2^attempt).
    const ceiling = Math.min(2000, p.backoffBaseMs * 2 ** attemptNo);
    const backoff = ceiling / 2 + rng() * (ceiling / 2);
    q.at(t + throttledLatency() + backoff, () => attempt(i, attemptNo + 1, done));
  };

  /**
   * Posts to members [base, base + n) from t0 with `fanoutConcurrency` in flight, a new post starting
   * as soon as one ends (fanout.ts's lanes), starts at most `perSecond` apart; then onDone.
   */
  const deliverWindow = (base: number, n: number, t0: number, perSecond: number, onDone: () => void) => {
    if (n === 0) {
      q.at(t0, onDone);
      return;
    }
    const interval = Number.isFinite(perSecond) ? 1000 / perSecond : 0;
    let next = 0;
    let inflight = 0;
    let finished = 0;
    let slot = t0;
    let pumpPending = true;
    const complete = () => {
      inflight--;
      finished++;
      if (finished === n) onDone();
      else if (!pumpPending) pump();
    };
    const pump = () => {
      pumpPending = false;
      const now = q.now;
      while (next < n && inflight < p.fanoutConcurrency) {
        if (slot > now) {
          pumpPending = true;
          q.at(slot, pump);
          return;
        }
        slot = Math.max(slot, now) + interval;
        inflight++;
        attempt(base + next++, 0, complete);
      }
    };
    q.at(t0, pump);
  };

  /**
   * deliver.ts's first version: slices of min(fanoutConcurrency, ceil(rate / 10)) members; before
   * each, the pacer (a token bucket of `slice` tokens refilled at `perSecond`) takes the slice and
   * sleeps while its tokens are negative; the slice's posts run at once and the next slice starts
   * when the slowest of them has returned.
   */
  const deliverSlices = (base: number, n: number, t0: number, perSecond: number, onDone: () => void) => {
    const slice = Math.max(1, Math.min(p.fanoutConcurrency, Math.ceil(perSecond / 10)));
    let tokens = slice;
    let last = t0;
    let next = 0;
    const nextSlice = () => {
      if (next >= n) {
        onDone();
        return;
      }
      const now = q.now;
      const part = Math.min(slice, n - next);
      tokens = Math.min(slice, tokens + ((now - last) * perSecond) / 1000);
      last = now;
      tokens -= part;
      const wait = tokens < 0 ? Math.ceil((-tokens * 1000) / perSecond) : 0;
      const first = base + next;
      next += part;
      q.at(now + wait, () => {
        let left = part;
        const done = () => {
          if (--left === 0) nextSlice();
        };
        for (let k = 0; k < part; k++) attempt(first + k, 0, done);
      });
    };
    q.at(t0, nextSlice);
  };

  const routeDone = draw(p.route)() + (cold ? draw(p.coldStart)() : 0);
  if ((p.users ?? p.members) <= p.largeRoomUsers) {
    // Today's path: the route reads the room (all of its shards, one after the other) and posts itself.
    const shards = shardCount(p.users ?? p.members, p.roomShardSize);
    const sizes = shardSizes(p.members, shards, p.shardImbalance, p.placement, p.roomShardSize);
    const page = draw(p.queryPage);
    let t = routeDone;
    for (const n of sizes) for (let k = queryPages(n, p.memberItemBytes); k > 0; k--) t += page();
    deliverWindow(0, p.members, t, Number.POSITIVE_INFINITY, () => {});
    q.run();
    return { receipts, lastMs, throttled, failed, coldStarts: cold ? 1 : 0, peakWorkers: 0 };
  }

  const shards = shardCount(p.users ?? p.members, p.roomShardSize);
  const sizes = shardSizes(p.members, shards, p.shardImbalance, p.placement, p.roomShardSize);
  const jobs: Job[] = [];
  let base = 0;
  for (let k = 0; k < shards; k++) {
    jobs.push({ shard: k, base, members: sizes[k] });
    base += sizes[k];
  }
  const maxWorkers = Math.min(p.deliveryWorkerConcurrency, ESM_CONCURRENCY_CAP);
  const perWorker = p.deliveryPostsPerSecond / p.deliveryWorkerConcurrency;
  const visible: Job[] = [];
  const idleEnvs: Env[] = [];
  if (!cold) for (let k = 0; k < maxWorkers; k++) idleEnvs.push({ cold: false });
  let limit = cold ? Math.min(maxWorkers, p.esm.initialConcurrency) : maxWorkers;
  let running = 0;
  let rampStarted = false;
  const receive = draw(p.receive);
  const coldStart = draw(p.coldStart);
  const getItem = draw(p.getItem);
  const queryPage = draw(p.queryPage);

  const runJob = (job: Job, env: Env) => {
    let t = q.now;
    if (env.cold) {
      t += coldStart();
      env.cold = false;
      coldStarts++;
    }
    if (p.workerReadsSummary) t += getItem();
    for (let k = queryPages(job.members, p.memberItemBytes); k > 0; k--) t += queryPage();
    (p.workerPosting === "slices" ? deliverSlices : deliverWindow)(job.base, job.members, t, perWorker, () => {
      running--;
      idleEnvs.push(env);
      dispatch();
    });
  };
  // One job per message group: a single broadcast has one job per group, so every visible job is eligible.
  const dispatch = () => {
    while (running < limit && visible.length > 0) {
      const job = visible.shift()!;
      running++;
      if (running > peakWorkers) peakWorkers = running;
      const env = idleEnvs.pop() ?? { cold: true };
      q.at(q.now + receive(), () => runJob(job, env));
    }
  };
  const ramp = () => {
    if (limit >= maxWorkers) return;
    limit++;
    dispatch();
    q.at(q.now + 60000 / p.esm.scaleUpPerMinute, ramp);
  };
  const sendBatch = draw(p.sendBatch);
  const lanes = new Array<number>(p.enqueueConcurrency).fill(routeDone);
  for (let b = 0; b * SQS_BATCH_ENTRIES < jobs.length; b++) {
    let lane = 0;
    for (let l = 1; l < lanes.length; l++) if (lanes[l] < lanes[lane]) lane = l;
    lanes[lane] += sendBatch();
    const batch = jobs.slice(b * SQS_BATCH_ENTRIES, (b + 1) * SQS_BATCH_ENTRIES);
    q.at(lanes[lane], () => {
      visible.push(...batch);
      if (cold && !rampStarted) {
        rampStarted = true;
        q.at(q.now + 60000 / p.esm.scaleUpPerMinute, ramp);
      }
      dispatch();
    });
  }
  q.run();
  return { receipts, lastMs, throttled, failed, coldStarts, peakWorkers };
}

export { constant };
