/**
 * Large rooms (issue 17): the contract between the routes that broadcast to a room of more than
 * `largeRoomUsers` users and the delivery workers that post it, one queue message (a job) per
 * shard of the room's membership (data.ts memberPartition).
 *
 * The queue is an SQS FIFO queue read by the `deliver` function through an event source mapping
 * (docs/architecture.md, "Large rooms", says why, with the numbers):
 * - MessageGroupId = room and shard: jobs of one shard are delivered in the order they were sent,
 *   one at a time, so two messages of one sender reach every member in the order they were sent
 *   (as the single-invocation fan-out keeps it today); shards of one room run in parallel.
 * - MessageDeduplicationId = the broadcast's id and the shard: a producer that retries a send (or a
 *   route retried by its client with the same clientMessageId) enqueues nothing twice within
 *   SQS's 5-minute deduplication interval.
 *
 * Plain constants and pure functions only (closure serialization: ../shared/STYLE.md).
 */
import { internalError } from "./errors";
import { ROOM_ID_PATTERN } from "./frames";

/** Environment variable holding the delivery queue's URL (every function that broadcasts to rooms). */
export const DELIVERY_QUEUE_URL_ENV = "DELIVERY_QUEUE_URL";

export const DELIVERY_JOB_VERSION = 1;

/** One shard's share of one broadcast. */
export interface DeliveryJob {
  readonly v: typeof DELIVERY_JOB_VERSION;
  /** Identifies the broadcast (a chat's messageId, else a random UUID): with the shard, the deduplication id. */
  readonly id: string;
  readonly roomId: string;
  /** The member partition to read (data.ts memberPartition). */
  readonly shard: number;
  /** The frame, posted as JSON.stringify(frame): the producer's payload byte for byte. */
  readonly frame: Readonly<Record<string, unknown>>;
  /** A connection the frame is not posted to (the sender's own, answered by its route). */
  readonly exclude?: string;
  /** When the route enqueued it (epoch ms): the workers report the age of what they deliver. */
  readonly enqueuedAtMs: number;
}

/**
 * SendMessageBatch takes at most 10 entries whose bodies total at most 256 KiB (SQS quotas; the
 * 1 MiB messages SQS accepts since 2025 are not assumed, so an older queue or emulator works too).
 */
export const SQS_BATCH_ENTRIES = 10;
export const SQS_BATCH_BYTES = 256 * 1024;
/** A job's body: a frame is at most 128 KB (API Gateway's message limit), the envelope is small. */
export const MAX_JOB_BYTES = SQS_BATCH_BYTES;

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/** FIFO MessageGroupId of a room's shard: `<roomId>.<shard>` (room ids are [A-Za-z0-9_-], at most 64). */
export function jobGroupId(roomId: string, shard: number): string {
  return `${roomId}.${shard}`;
}

/** FIFO MessageDeduplicationId of a job: `<id>.<shard>` (at most 128 characters). */
export function jobDeduplicationId(job: Pick<DeliveryJob, "id" | "shard">): string {
  return `${job.id}.${job.shard}`;
}

export function encodeJob(job: DeliveryJob): string {
  return JSON.stringify(job);
}

/**
 * Parses and checks a job body. A body that is not a job (a message someone else sent to the queue,
 * a newer version) throws: the worker reports it failed, and after maxReceiveCount receives SQS moves
 * it to the dead-letter queue, where an operator can read it.
 */
export function parseJob(body: string): DeliveryJob {
  let o: unknown;
  try {
    o = JSON.parse(body);
  } catch {
    throw internalError("delivery job is not JSON");
  }
  const j = o as Partial<DeliveryJob> | null;
  if (
    typeof j !== "object" ||
    j === null ||
    j.v !== DELIVERY_JOB_VERSION ||
    typeof j.id !== "string" ||
    !ID_PATTERN.test(j.id) ||
    typeof j.roomId !== "string" ||
    !ROOM_ID_PATTERN.test(j.roomId) ||
    typeof j.shard !== "number" ||
    !Number.isInteger(j.shard) ||
    j.shard < 0 ||
    typeof j.frame !== "object" ||
    j.frame === null ||
    Array.isArray(j.frame) ||
    (j.exclude !== undefined && typeof j.exclude !== "string") ||
    typeof j.enqueuedAtMs !== "number"
  ) {
    throw internalError("delivery job has an unknown shape or version");
  }
  return j as DeliveryJob;
}

/** A token bucket: `take(n)` resolves once n tokens are available (the caller may run into debt and wait it off). */
export interface Pacer {
  take(n: number): Promise<void>;
}

/**
 * Paces a delivery worker at `ratePerSecond` posts (deliveryPostsPerSecond / deliveryWorkerConcurrency,
 * so that the workers together stay inside the configured share of the account's `@connections`
 * budget: AWS-FACTS, "Scaling facts"), with bursts of at most `burst` tokens. A request larger than
 * what is left runs the bucket into debt and waits until it is paid off, so the long-run rate is
 * exact whatever the slice sizes.
 */
export function createPacer(
  ratePerSecond: number,
  burst: number,
  now: () => number = Date.now,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Pacer {
  if (!(ratePerSecond > 0) || !(burst >= 1))
    throw internalError(`a pacer needs a positive rate and a burst of at least 1 (${ratePerSecond}, ${burst})`);
  let tokens = burst;
  let last = now();
  return {
    async take(n: number): Promise<void> {
      const t = now();
      tokens = Math.min(burst, tokens + ((t - last) * ratePerSecond) / 1000);
      last = t;
      tokens -= n;
      if (tokens < 0) await sleep(Math.ceil((-tokens * 1000) / ratePerSecond));
    },
  };
}

/**
 * The burst of a worker's token bucket: at most the fan-out's concurrency (the posts in flight), and
 * about 100 ms of its budget, so that a worker starting a shard does not exceed its share for long.
 */
export function burstSize(ratePerSecond: number, concurrency: number): number {
  return Math.max(1, Math.min(concurrency, Math.ceil(ratePerSecond / 10)));
}

/**
 * SendMessageBatch calls for these jobs: at most SQS_BATCH_ENTRIES entries and SQS_BATCH_BYTES of
 * bodies per call, in order (a room's shards in turn; each shard is its own FIFO group, so the
 * order between calls matters only within a group, and one broadcast has one job per group).
 */
export function batchJobs(jobs: readonly DeliveryJob[]): DeliveryJob[][] {
  const batches: DeliveryJob[][] = [];
  let current: DeliveryJob[] = [];
  let bytes = 0;
  for (const job of jobs) {
    const size = Buffer.byteLength(encodeJob(job), "utf8");
    if (size > MAX_JOB_BYTES) throw internalError(`delivery job of ${size} bytes is over ${MAX_JOB_BYTES}`);
    if (current.length >= SQS_BATCH_ENTRIES || (current.length > 0 && bytes + size > SQS_BATCH_BYTES)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(job);
    bytes += size;
  }
  if (current.length > 0) batches.push(current);
  return batches;
}

/** Receives of a delivery job before SQS moves it to the dead-letter queue (the stack's and the local runtime's). */
export const DELIVERY_MAX_RECEIVE_COUNT = 5;
/** AWS suggests a visibility timeout of six times the function's timeout (Lambda developer guide, SQS). */
export const DELIVERY_VISIBILITY_FACTOR = 6;
/** SQS's longest visibility timeout (12 hours). */
export const MAX_VISIBILITY_TIMEOUT_SECONDS = 43_200;

/** The delivery queue's visibility timeout for a worker timeout: six times it, within SQS's 12 hours. */
export function deliveryVisibilityTimeoutSeconds(workerTimeoutSeconds: number): number {
  return Math.min(DELIVERY_VISIBILITY_FACTOR * workerTimeoutSeconds, MAX_VISIBILITY_TIMEOUT_SECONDS);
}

/** Lambda's longest timeout (the worker is invoked by its event source mapping, not by API Gateway). */
export const MAX_LAMBDA_TIMEOUT_SECONDS = 900;

/**
 * Timeout of the `deliver` worker: a shard holds at most roomShardSize users (data.ts placement,
 * tests/handlers/shards.test.ts) and a worker posts to each of their connections, 2 per user
 * allowed for (devices), at deliveryPostsPerSecond / deliveryWorkerConcurrency a second, so a shard
 * takes at most 2 x roomShardSize x concurrency / postsPerSecond seconds; three
 * times that leaves room for DynamoDB reads, retries of throttled posts and a cold start, and never
 * less than lambdaTimeoutSeconds. Undefined when that exceeds Lambda's 900 s.
 */
export function deliveryWorkerTimeoutSeconds(c: {
  readonly roomShardSize: number;
  readonly deliveryWorkerConcurrency: number;
  readonly deliveryPostsPerSecond: number;
  readonly lambdaTimeoutSeconds: number;
}): number | undefined {
  const shardSeconds = (2 * c.roomShardSize * c.deliveryWorkerConcurrency) / c.deliveryPostsPerSecond;
  const timeout = Math.max(c.lambdaTimeoutSeconds, Math.ceil(3 * shardSeconds));
  return timeout <= MAX_LAMBDA_TIMEOUT_SECONDS ? timeout : undefined;
}
