/**
 * `deliver` (issue 17): the delivery worker. Invoked by the delivery queue's event source mapping
 * (SQS FIFO, batch size 1, ReportBatchItemFailures, maximumConcurrency = deliveryWorkerConcurrency:
 * docs/architecture.md, "Large rooms: the delivery queue"), each record one job
 * (handlers/lib/deliveries.ts): one shard of one broadcast to a large room.
 *
 * Per record: parse the job (a body that is not one fails its record, and after maxReceiveCount
 * receives SQS moves it to the dead-letter queue), read its shard (data.ts readShard), and post the
 * frame to every live member but `exclude` through the fan-out every route uses (fanout.ts: gone
 * members removed with their memberships, throttled posts retried with backoff), a sliding window
 * of fanoutConcurrency posts in flight, each started when the worker's token bucket (at
 * deliveryPostsPerSecond / deliveryWorkerConcurrency) has a token, so that all workers together stay
 * inside the configured share of the account's `@connections` budget. Members past their expiry are
 * closed and removed as a route's broadcast does (presence.ts broadcastToRoom).
 *
 * A record is reported failed (batchItemFailures: SQS makes it visible again after the visibility
 * timeout, the others are deleted) when a post failed for another reason than 410, when its shard
 * could not be read, or when the invocation nears its timeout before the shard is done. Before
 * handing a record back the worker records whom it did not reach (lib/deliveryProgress.ts: the
 * members left unattempted and those whose post failed), and the next attempt posts to those only;
 * a worker that stopped at its time margin also makes the record visible again at once
 * (ChangeMessageVisibility 0), so the rest of the shard goes on now rather than after the visibility
 * timeout (unless a post failed: that retry keeps the wait, as it follows a fault of `@connections`).
 * A frame may arrive twice only on a retry (docs/protocol.md, "Delivery in large rooms"): where no
 * progress was recorded or could be read (the worker was killed or ran past its timeout, a write or
 * read failed) the retry posts to the whole shard again, or to the last list recorded, and a post that
 * timed out may have arrived before it is made again. The frame's messageId (chat) or its
 * version/timestamp (edited, deleted, reaction) lets the client drop it.
 */
import type { LambdaContextLike, SqsBatchResponse, SqsEvent, SqsHandler, SqsRecord } from "../events";
import { epochSeconds, readRoomSummary, readShard } from "../lib/data";
import { createPacer, parseJob, burstSize, type DeliveryJob, type Pacer } from "../lib/deliveries";
import { clearProgress, readProgress, saveProgress } from "../lib/deliveryProgress";
import { createDeliveryQueue, type DeliveryQueue } from "../lib/deliveryQueue";
import type { Departure, Fanout } from "../lib/fanout";
import { managementFanout } from "../lib/fanout";
import { errorName } from "../lib/errors";
import type { Logger } from "../lib/logger";
import { announceDepartures } from "../lib/presence";
import { createRuntime, requireFanout, withInvocation, type Runtime } from "../lib/runtime";

/**
 * Time kept in hand before the function's timeout: a post in flight can take up to the SDK's 5 s
 * request timeout (clients.ts SDK_TIMEOUTS), and the clean-up after it a little more; at most a
 * third of the time the invocation started with (timeoutMargin), so a short timeout still delivers.
 */
export const TIMEOUT_MARGIN_MS = 6_000;

/** The margin of an invocation that started with `remainingMs` before its timeout. */
export function timeoutMargin(remainingMs: number): number {
  return Math.min(TIMEOUT_MARGIN_MS, Math.floor(remainingMs / 3));
}

/** Test hooks (a fixture builds the worker with them to fail it mid-shard); none in production. */
export interface WorkerHooks {
  /** Called before each post with the posts started so far for this record; may throw or never resolve. */
  readonly beforePost?: (started: number, record: SqsRecord) => void | Promise<void>;
  /** Builds an invocation's token bucket (createPacer by default). */
  readonly pacer?: (ratePerSecond: number, burst: number) => Pacer;
}

/**
 * What delivering one record came to: "done"; "retry" (SQS delivers it again after the visibility
 * timeout); "resume" (stopped at the time margin with its progress recorded: handed back and made
 * visible again at once).
 */
export type RecordOutcome = "done" | "retry" | "resume";

export function createHandler(): SqsHandler {
  return createWorker();
}

/** The worker with optional test hooks (createHandler is the deployed one). */
export function createWorker(hooks: WorkerHooks = {}): SqsHandler {
  const rt = createRuntime("deliver", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const fanout = requireFanout(rt);
  const rate = rt.config.deliveryPostsPerSecond / rt.config.deliveryWorkerConcurrency;
  const burst = burstSize(rate, rt.config.fanoutConcurrency);
  // The queue the records come from (DELIVERY_QUEUE_URL), to hand a stopped job back at once; kept
  // apart from the runtime, so that nothing this worker broadcasts is ever queued again.
  const queue = createDeliveryQueue(rt.config);
  return (event: SqsEvent, context?: LambdaContextLike): Promise<SqsBatchResponse> =>
    withInvocation(rt, { requestContext: { requestId: context?.awsRequestId } }, context, async (log) => {
      // One bucket per invocation, not per instance: an instance that runs several invocations at
      // once (the local runtime's one thread per function) must give each worker its own share, as
      // Lambda's one invocation per execution environment does.
      const pacer = (hooks.pacer ?? createPacer)(rate, burst);
      const batchItemFailures: { itemIdentifier: string }[] = [];
      for (const record of event.Records ?? []) {
        const recordLog = log.child({ sqsMessageId: record.messageId, receiveCount: Number(record.attributes?.ApproximateReceiveCount) });
        let outcome: RecordOutcome;
        try {
          outcome = await deliverRecord(rt, fanout, pacer, record, recordLog, context, hooks);
        } catch (err) {
          recordLog.error("delivery job failed; SQS will deliver it again", {}, err);
          outcome = "retry";
        }
        if (outcome === "resume") await returnNow(queue, record, recordLog);
        if (outcome !== "done") batchItemFailures.push({ itemIdentifier: record.messageId });
      }
      return { batchItemFailures };
    });
}

/**
 * Makes a handed-back record visible again now. Best effort: if the call fails the record comes back
 * after the visibility timeout, its progress still recorded.
 */
async function returnNow(queue: DeliveryQueue | undefined, record: SqsRecord, log: Logger): Promise<void> {
  if (!queue) return;
  try {
    await queue.returnNow(record.receiptHandle);
  } catch (err) {
    log.warn("could not make the delivery job visible again; it comes back after the visibility timeout", { error: errorName(err) });
  }
}

/**
 * Delivers one record's job: "retry" when it must come back (a post failed, or time ran short
 * without its progress recorded), "resume" when time ran short and what is left is recorded.
 */
export async function deliverRecord(
  rt: Runtime,
  fanout: Fanout,
  pacer: Pacer,
  record: SqsRecord,
  log: Logger,
  context: LambdaContextLike | undefined,
  hooks: WorkerHooks = {},
): Promise<RecordOutcome> {
  const job: DeliveryJob = parseJob(record.body);
  const jobLog = log.child({ roomId: job.roomId, shard: job.shard, broadcastId: job.id });
  const startedMs = Date.now();
  const margin = context ? timeoutMargin(context.getRemainingTimeInMillis()) : 0;
  // The job's age when its worker starts: how far delivery lags behind the room (one job per invocation).
  rt.usage.count("DeliveryJobAge", Math.max(0, startedMs - job.enqueuedAtMs));
  const { members, expired } = await readShard(rt, job.roomId, job.shard, epochSeconds(startedMs));
  // A job received before may have recorded whom it left (the first receive cannot have).
  const left = Number(record.attributes?.ApproximateReceiveCount) > 1 ? await readProgressOrAll(rt, job, startedMs, jobLog) : undefined;
  const targets = members.filter((m) => m.connectionId !== job.exclude && (left === undefined || left.has(m.connectionId)));
  const payload = JSON.stringify(job.frame);
  let started = 0;
  const result = await fanout.deliver(
    targets.map((m) => m.connectionId),
    payload,
    jobLog,
    {
      roomId: job.roomId,
      members: targets,
      stop: () => context !== undefined && context.getRemainingTimeInMillis() < margin,
      pace: async () => {
        await hooks.beforePost?.(started++, record);
        await pacer.take(1);
      },
    },
  );
  const departed: Departure[] = [...result.departed];
  const outOfTime = (result.unattempted?.length ?? 0) > 0;
  const posted = targets.length - (result.unattempted?.length ?? 0);
  const failed = result.failed.length;
  if (expired.length > 0 && !outOfTime) {
    // Past their expiry (API Gateway's 2 h, or their token's deadline: then still open): closed and
    // removed, as a route's broadcast does.
    departed.push(
      ...(await fanout.removeGone(
        expired.map((m) => m.connectionId),
        jobLog,
        { roomId: job.roomId, members: expired, close: true },
      )),
    );
  }
  await announceSmallRoomDepartures(rt, fanout, jobLog, departed);
  jobLog.info("delivery job done", {
    targets: targets.length,
    posted,
    failed,
    outOfTime,
    resumed: left !== undefined,
    ageMs: startedMs - job.enqueuedAtMs,
  });
  if (!outOfTime && failed === 0) {
    if (left !== undefined)
      await clearProgress(rt, job).catch((err: unknown) =>
        jobLog.warn("could not delete the job's progress (TTL will)", { error: errorName(err) }),
      );
    return "done";
  }
  // Whom this attempt did not reach: left unattempted, failed (a post that timed out may have arrived:
  // the one place a resumed attempt can repeat a frame), or still in their `$connect` (open by now).
  const remaining = [...(result.unattempted ?? []), ...result.failed, ...result.connecting];
  const saved = await saveProgress(rt, job, remaining, Date.now()).catch((err: unknown) => {
    jobLog.warn("could not record the job's progress; its retry posts to the whole shard", { error: errorName(err) });
    return false;
  });
  if (outOfTime) {
    jobLog.warn("delivery job stopped before its timeout; SQS will deliver it again", {
      posted,
      targets: targets.length,
      remaining: remaining.length,
      saved,
    });
    // At once only when every post this attempt made went through: a failed post is a fault of
    // `@connections`, whose retry waits for the visibility timeout (quick attempts would use up the
    // job's receives, then the dead-letter queue, within seconds of an outage).
    return saved && failed === 0 ? "resume" : "retry";
  }
  return "retry";
}

/** What an earlier attempt left (deliveryProgress.ts), or undefined (the whole shard) when it cannot be read. */
async function readProgressOrAll(rt: Runtime, job: DeliveryJob, nowMs: number, log: Logger): Promise<ReadonlySet<string> | undefined> {
  try {
    const left = await readProgress(rt, job, nowMs);
    if (left) log.info("delivery job resumed", { remaining: left.size });
    return left;
  } catch (err) {
    log.warn("could not read the job's progress; posting to the whole shard", { error: errorName(err) });
    return undefined;
  }
}

/**
 * `left` for users a clean-up took out of a room, where the room announces presence: a room of
 * more than largeRoomUsers users announces no joined/left (handlers/settings.ts), and the job's
 * room is one (one GetItem of each room's summary tells). Best effort: a failure is logged, the
 * job's delivery stands.
 */
async function announceSmallRoomDepartures(rt: Runtime, fanout: Fanout, log: Logger, departed: readonly Departure[]): Promise<void> {
  if (departed.length === 0) return;
  try {
    const small: Departure[] = [];
    for (const d of departed) {
      const summary = await readRoomSummary(rt, d.roomId);
      if (summary.users <= rt.config.largeRoomUsers) small.push(d);
    }
    await announceDepartures(rt, fanout, log, small);
  } catch (err) {
    log.error("announcing departures after a clean-up failed", { count: departed.length }, err);
  }
}
