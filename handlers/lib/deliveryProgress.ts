/**
 * Progress of a delivery job handed back for another attempt (issue 17): what a retry still has to
 * post, so that it posts to those members only instead of the whole shard again.
 *
 * A `deliver` worker hands a job back (batchItemFailures) when its time margin came before the end of
 * the shard, or when posts failed for another reason than 410. Before it does, it records the
 * connections it did not reach (the members it left unattempted and those whose post failed) in one
 * item of the rooms table; the next receive of the job reads it and posts to the shard's members that
 * are on it, and the attempt that finishes deletes it. Members the first attempt reached get the
 * frame once, and a shard too large for one attempt's time is finished over several instead of
 * starting again each time.
 *
 *   rooms  PK "<roomId>#jobs", SK "<broadcast id>.<shard>" (the job's deduplication id)
 *          remaining: connection ids; enqueuedAtMs: the job's; expiresAt (TTL)
 *
 * The partition is the room's own, beside its member partitions: no membership Query reads it (room
 * ids cannot contain `#`). The item is matched to the job by `enqueuedAtMs` too, so the progress of
 * an earlier job with the same broadcast id (a route retried by its client after SQS's 5-minute
 * deduplication) is never taken for this one's.
 *
 * Where no progress was recorded (the worker was killed or ran past its timeout, the write failed,
 * or the list was too large for an item) or it cannot be read, a retry posts to the whole shard; a
 * worker killed while resuming leaves the list recorded before it, which its retry posts to again.
 * Those are the documented duplicates (docs/protocol.md, "Delivery in large rooms").
 *
 * IAM: GetItem, UpdateItem and DeleteItem on the rooms table (handlers/routes.ts, `deliver`).
 */
import { DeleteCommand, GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { epochSeconds, tableName, type TablesContext } from "./data";
import { DELIVERY_MAX_RECEIVE_COUNT, jobDeduplicationId, MAX_VISIBILITY_TIMEOUT_SECONDS, type DeliveryJob } from "./deliveries";

/** Partition of a room's delivery progress items. */
export function progressPartition(roomId: string): string {
  return `${roomId}#jobs`;
}

/**
 * A job can come back at most DELIVERY_MAX_RECEIVE_COUNT times, each after at most SQS's longest
 * visibility timeout: its progress is kept that long (then TTL removes it, if no attempt finished).
 */
export const PROGRESS_LIFETIME_SECONDS = DELIVERY_MAX_RECEIVE_COUNT * MAX_VISIBILITY_TIMEOUT_SECONDS;

/**
 * Most bytes of connection ids one progress item holds: DynamoDB's items are at most 400 KB, keys
 * and the other attributes take well under 1 KB. A list is at most a shard's connections: with the
 * default roomShardSize (1,000 users, 2 devices each allowed for) and API Gateway's 16-character ids
 * that is 34 KB, at the largest (10,000) 340 KB. A longer list is not recorded, and the retry posts
 * to the whole shard.
 */
export const MAX_PROGRESS_BYTES = 380 * 1024;

/** A list of strings' size as DynamoDB counts it: each element's UTF-8 bytes plus 1, and 3 for the list. */
export function listBytes(ids: readonly string[]): number {
  return ids.reduce((n, id) => n + Buffer.byteLength(id, "utf8") + 1, 3);
}

function progressKey(job: Pick<DeliveryJob, "id" | "roomId" | "shard">): { roomId: string; sk: string } {
  return { roomId: progressPartition(job.roomId), sk: jobDeduplicationId(job) };
}

/** The connections an earlier attempt of this job left to post, or undefined when none was recorded. */
export async function readProgress(ctx: TablesContext, job: DeliveryJob, nowMs: number): Promise<ReadonlySet<string> | undefined> {
  const out = await ctx.doc.send(new GetCommand({ TableName: tableName(ctx, "rooms"), Key: progressKey(job), ConsistentRead: true }));
  const item = out.Item;
  if (!item || item.enqueuedAtMs !== job.enqueuedAtMs || !(Number(item.expiresAt) > epochSeconds(nowMs))) return undefined;
  if (!Array.isArray(item.remaining) || !item.remaining.every((id) => typeof id === "string")) return undefined;
  return new Set(item.remaining as string[]);
}

/**
 * Records the connections this attempt did not reach. False, writing nothing, when the list is too
 * large for one item (the retry then posts to the whole shard).
 */
export async function saveProgress(ctx: TablesContext, job: DeliveryJob, remaining: readonly string[], nowMs: number): Promise<boolean> {
  if (listBytes(remaining) > MAX_PROGRESS_BYTES) return false;
  await ctx.doc.send(
    new UpdateCommand({
      TableName: tableName(ctx, "rooms"),
      Key: progressKey(job),
      UpdateExpression: "SET remaining = :r, enqueuedAtMs = :e, expiresAt = :x",
      ExpressionAttributeValues: { ":r": [...remaining], ":e": job.enqueuedAtMs, ":x": epochSeconds(nowMs) + PROGRESS_LIFETIME_SECONDS },
    }),
  );
  return true;
}

/** Deletes a job's progress once an attempt has reached everyone it listed. */
export async function clearProgress(ctx: TablesContext, job: DeliveryJob): Promise<void> {
  await ctx.doc.send(new DeleteCommand({ TableName: tableName(ctx, "rooms"), Key: progressKey(job) }));
}
