/**
 * The delivery queue's client (issue 17). The producers' side: a route that broadcasts to a room of
 * more than `largeRoomUsers` users sends one job per shard (handlers/lib/deliveries.ts) with
 * SendMessageBatch instead of posting. The worker's side: `returnNow` (ChangeMessageVisibility) for
 * a job the `deliver` worker stopped at its time margin. The SQS client is built once per cold start by the
 * function's factory (closure serialization: ../../shared/STYLE.md), and only when the function was
 * given a queue URL (handlers/env.ts functionEnvironment: DELIVERY_QUEUE_URL).
 *
 * SendMessageBatch can succeed for some entries and fail for others (its `Failed` list): those are
 * sent again with backoff, with the same MessageDeduplicationId, so a job that did arrive is not
 * enqueued twice (FIFO deduplication, 5 minutes). A sender fault (an entry SQS refuses as invalid)
 * is not retried. What is still unsent after the last attempt is thrown as a DeliveryQueueError.
 */
import { ChangeMessageVisibilityCommand, SendMessageBatchCommand, SQSClient } from "@aws-sdk/client-sqs";
import { configurationError, ENV } from "../env";
import { localCredentials, SDK_TIMEOUTS, traced } from "./clients";
import type { HandlerConfig } from "./config";
import { backoffDelay, sleep as defaultSleep } from "./data";
import { batchJobs, encodeJob, jobDeduplicationId, jobGroupId, type DeliveryJob } from "./deliveries";
import { errorName, namedError } from "./errors";
import type { Logger } from "./logger";

/** Sends delivery jobs; resolves once every job is in the queue. */
export interface DeliveryQueue {
  readonly url: string;
  send(jobs: readonly DeliveryJob[], log: Logger): Promise<void>;
  /**
   * Makes a received job visible again at once (ChangeMessageVisibility to 0) instead of after the
   * queue's visibility timeout: the worker that stopped at its time margin, having recorded what it
   * left (deliveryProgress.ts), lets the next attempt start now. Only `deliver` calls it.
   */
  returnNow(receiptHandle: string): Promise<void>;
}

/** The part of SQSClient the sender uses (tests pass a small fake). */
export interface SqsSender {
  send(command: SendMessageBatchCommand): Promise<{
    Successful?: Array<{ Id?: string }>;
    Failed?: Array<{ Id?: string; SenderFault?: boolean; Code?: string; Message?: string }>;
  }>;
}

export interface DeliveryQueueError extends Error {
  readonly name: "DeliveryQueueError";
  /** Jobs not in the queue after the last attempt. */
  readonly unsent: number;
}

export function isDeliveryQueueError(err: unknown): err is DeliveryQueueError {
  return err instanceof Error && err.name === "DeliveryQueueError";
}

/** Attempts of one batch's entries (the SDK also retries each call itself: maxAttempts 3). */
export const SEND_ATTEMPTS = 4;

/**
 * Sends the jobs in SendMessageBatch calls (deliveries.ts batchJobs), retrying failed entries with
 * backoff; throws DeliveryQueueError naming how many were left unsent.
 */
export async function sendJobs(
  sqs: SqsSender,
  url: string,
  jobs: readonly DeliveryJob[],
  log: Logger,
  options: { readonly attempts?: number; readonly backoffBaseMs?: number; readonly sleep?: (ms: number) => Promise<void> } = {},
): Promise<void> {
  const attempts = options.attempts ?? SEND_ATTEMPTS;
  const sleep = options.sleep ?? defaultSleep;
  let unsent = 0;
  let lastError: string | undefined;
  for (const batch of batchJobs(jobs)) {
    let pending = batch.map((job, i) => ({ id: String(i), job }));
    for (let attempt = 0; pending.length > 0 && attempt < attempts; attempt++) {
      if (attempt > 0) await sleep(backoffDelay(attempt - 1, options.backoffBaseMs ?? 50));
      try {
        const out = await sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: pending.map(({ id, job }) => ({
              Id: id,
              MessageBody: encodeJob(job),
              MessageGroupId: jobGroupId(job.roomId, job.shard),
              MessageDeduplicationId: jobDeduplicationId(job),
            })),
          }),
        );
        const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
        const refused = [...failed.values()].filter((f) => f.SenderFault === true);
        if (refused.length > 0) {
          // SQS refused the entries themselves (too large, bad group id): sending again cannot help.
          log.error("delivery jobs refused by the queue", { count: refused.length, code: refused[0].Code, reason: refused[0].Message });
          unsent += refused.length;
          lastError = refused[0].Code;
        }
        pending = pending.filter(({ id }) => failed.has(id) && failed.get(id)?.SenderFault !== true);
        if (pending.length > 0) lastError = failed.get(pending[0].id)?.Code;
      } catch (err) {
        lastError = errorName(err);
        log.warn("sending delivery jobs failed; retrying", { attempt, count: pending.length, error: lastError });
      }
    }
    unsent += pending.length;
  }
  if (unsent > 0) {
    throw namedError("DeliveryQueueError", `${unsent} of ${jobs.length} delivery jobs could not be queued (${lastError ?? "unknown"})`, {
      unsent,
    }) as DeliveryQueueError;
  }
}

/** The queue a function was given (DELIVERY_QUEUE_URL), if any, and the local SQS endpoint (SQS_ENDPOINT). */
export function readDeliveryQueueConfig(env: NodeJS.ProcessEnv): { readonly url?: string; readonly endpoint?: string } {
  const url = env[ENV.deliveryQueueUrl]?.trim() || undefined;
  const endpoint = env[ENV.sqsEndpoint]?.trim() || undefined;
  for (const [name, value] of [
    [ENV.deliveryQueueUrl, url],
    [ENV.sqsEndpoint, endpoint],
  ] as const) {
    if (value === undefined) continue;
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw configurationError(`environment variable ${name} is not a URL: "${value}"`);
    }
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
      throw configurationError(`environment variable ${name} must be an http(s) URL, got "${value}"`);
  }
  return { ...(url ? { url } : {}), ...(endpoint ? { endpoint } : {}) };
}

/**
 * The function's delivery queue, or undefined when it was given none (every broadcast is then
 * posted by the route, as before issue 17). Call from a factory: the SQS client is built here.
 */
export function createDeliveryQueue(config: HandlerConfig, env: NodeJS.ProcessEnv = process.env): DeliveryQueue | undefined {
  const { url, endpoint } = readDeliveryQueueConfig(env);
  if (url === undefined) return undefined;
  const credentials = localCredentials(config);
  const sqs = traced(
    config,
    new SQSClient({
      region: config.region,
      maxAttempts: 3,
      requestHandler: { ...SDK_TIMEOUTS },
      // Locally the emulator's URL; on AWS the regional endpoint the SDK resolves (the queue URL's host).
      ...(endpoint ? { endpoint } : {}),
      ...(credentials ? { credentials } : {}),
    }),
  );
  return {
    url,
    send: (jobs, log) => sendJobs(sqs, url, jobs, log),
    returnNow: async (receiptHandle) => {
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: receiptHandle, VisibilityTimeout: 0 }));
    },
  };
}

/** A function's runtime with its delivery queue, if it was given one (the producers' factories call this). */
export function withDeliveryQueue<R extends { readonly config: HandlerConfig }>(
  rt: R,
  env: NodeJS.ProcessEnv = process.env,
): R & { readonly deliveries?: DeliveryQueue } {
  const deliveries = createDeliveryQueue(rt.config, env);
  return deliveries ? { ...rt, deliveries } : rt;
}
