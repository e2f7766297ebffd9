/**
 * What Lambda's SQS event source mapping does, as the Lambda Developer Guide documents it ("Using
 * Lambda with Amazon SQS", "Handling errors for an SQS event source in Lambda"): pollers long-poll the
 * queue with the unchanged SDK client, invoke the function with batches of up to `batchSize` records
 * in Lambda's event shape, delete what succeeded, and leave the rest to the queue: a failed batch
 * becomes visible again when its visibility timeout runs out, and the queue's redrive policy moves
 * a message received maxReceiveCount times to the dead-letter queue. `maximumConcurrency` caps the
 * concurrent invocations. docs/local.md, "The delivery queue, locally", says where it differs.
 */
import { DeleteMessageBatchCommand, type Message, ReceiveMessageCommand } from "@aws-sdk/client-sqs";
import type { SqsEvent, SqsMessageAttribute, SqsRecord } from "../handlers/events";
import type { Logger } from "./logger";
import { localSqsClient } from "./sqs";

/** Lambda's limits for an SQS event source mapping (CreateEventSourceMapping API reference). */
export const MAX_SQS_BATCH_SIZE = 10;
export const MIN_MAXIMUM_CONCURRENCY = 2;
export const MAX_MAXIMUM_CONCURRENCY = 1000;
/** Lambda starts an SQS mapping with five concurrent batches (AWS-FACTS "Scaling facts for large fan-out"). */
export const DEFAULT_POLLERS = 5;
/** The pollers long-poll with the longest wait SQS allows. */
const POLL_WAIT_SECONDS = 20;

/**
 * The function: typically `(event: SqsEvent) => Promise<SqsBatchResponse | void>`. Typed `unknown`
 * because Lambda takes whatever the function returns and the mapping checks it (recordsToRetry).
 */
export type SqsHandler = (event: SqsEvent) => Promise<unknown>;

export interface EventSourceMappingOptions {
  /** The queue's URL and ARN (the ARN goes into every record's eventSourceARN). */
  readonly queueUrl: string;
  readonly queueArn: string;
  readonly region: string;
  /** The local SQS endpoint (LocalSqs.endpoint). */
  readonly endpoint: string;
  readonly handler: SqsHandler;
  /** 1-10 (default 10): larger batches need a batching window, which the local mapping does not have. */
  readonly batchSize?: number;
  /** ScalingConfig.MaximumConcurrency, 2-1000; unset, the local mapping runs DEFAULT_POLLERS batches at once. */
  readonly maximumConcurrency?: number;
  readonly functionResponseTypes?: readonly "ReportBatchItemFailures"[];
  /** The function's timeout: an invocation still running after it is abandoned and counts as failed. */
  readonly functionTimeoutMs?: number;
  /** Long-poll wait (default 20 s, as Lambda's pollers); lower only to make stop() quicker in a test. */
  readonly waitTimeSeconds?: number;
  readonly logger?: Logger;
}

export interface EventSourceMappingStats {
  invocations: number;
  /** Invocations that threw, returned an invalid partial response, or timed out: their whole batch stays. */
  failedInvocations: number;
  timeouts: number;
  /** Records deleted after their invocation succeeded. */
  recordsDeleted: number;
  /** Records reported in batchItemFailures (left for a retry). */
  recordsReportedFailed: number;
  /** The most invocations ever running at once. */
  maxConcurrentInvocations: number;
  receiveErrors: number;
  deleteErrors: number;
}

export interface EventSourceMapping {
  readonly stats: Readonly<EventSourceMappingStats>;
  /** Stops polling (an open long poll is aborted), waits for the running invocations and their deletes. */
  stop(): Promise<void>;
}

/** The records of a batch the queue should keep (retry); `undefined` when the whole batch failed. */
export function recordsToRetry(
  records: readonly SqsRecord[],
  response: unknown,
  reportBatchItemFailures: boolean,
): ReadonlySet<string> | undefined {
  if (!reportBatchItemFailures) return new Set();
  // A complete success: no response, or an empty or null batchItemFailures list.
  if (response === undefined || response === null) return new Set();
  if (typeof response !== "object" || Array.isArray(response)) return undefined;
  const list = (response as { batchItemFailures?: unknown }).batchItemFailures;
  if (list === undefined || list === null) return new Set();
  if (!Array.isArray(list)) return undefined;
  const ids = new Set(records.map((r) => r.messageId));
  const retry = new Set<string>();
  for (const item of list) {
    // An empty or null itemIdentifier, a wrong key name, or an id not in the batch fails the whole batch.
    const id = typeof item === "object" && item !== null ? (item as { itemIdentifier?: unknown }).itemIdentifier : undefined;
    if (typeof id !== "string" || id === "" || !ids.has(id)) return undefined;
    retry.add(id);
  }
  return retry;
}

/** One SQS message as a Lambda SQS record. */
export function toRecord(m: Message, queueArn: string, region: string): SqsRecord {
  const a = m.Attributes ?? {};
  const messageAttributes: Record<string, SqsMessageAttribute> = {};
  for (const [name, v] of Object.entries(m.MessageAttributes ?? {})) {
    messageAttributes[name] = {
      dataType: v.DataType ?? "String",
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
      ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString("base64") } : {}),
      stringListValues: [],
      binaryListValues: [],
    };
  }
  const optional = (key: "MessageGroupId" | "MessageDeduplicationId" | "SequenceNumber" | "AWSTraceHeader" | "DeadLetterQueueSourceArn") =>
    a[key] !== undefined ? { [key]: a[key] } : {};
  return {
    messageId: m.MessageId ?? "",
    receiptHandle: m.ReceiptHandle ?? "",
    body: m.Body ?? "",
    attributes: {
      ApproximateReceiveCount: a.ApproximateReceiveCount ?? "1",
      SentTimestamp: a.SentTimestamp ?? "",
      SenderId: a.SenderId ?? "",
      ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? "",
      ...optional("SequenceNumber"),
      ...optional("MessageGroupId"),
      ...optional("MessageDeduplicationId"),
      ...optional("AWSTraceHeader"),
      ...optional("DeadLetterQueueSourceArn"),
    },
    messageAttributes,
    md5OfBody: m.MD5OfBody ?? "",
    ...(m.MD5OfMessageAttributes !== undefined ? { md5OfMessageAttributes: m.MD5OfMessageAttributes } : {}),
    eventSource: "aws:sqs",
    eventSourceARN: queueArn,
    awsRegion: region,
  };
}

function checkOptions(o: EventSourceMappingOptions): void {
  const batchSize = o.batchSize ?? MAX_SQS_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_SQS_BATCH_SIZE) {
    throw new RangeError(`batchSize must be an integer from 1 to ${MAX_SQS_BATCH_SIZE} (got ${batchSize})`);
  }
  const mc = o.maximumConcurrency;
  if (mc !== undefined && (!Number.isInteger(mc) || mc < MIN_MAXIMUM_CONCURRENCY || mc > MAX_MAXIMUM_CONCURRENCY)) {
    throw new RangeError(`maximumConcurrency must be an integer from ${MIN_MAXIMUM_CONCURRENCY} to ${MAX_MAXIMUM_CONCURRENCY} (got ${mc})`);
  }
  if (o.functionTimeoutMs !== undefined && !(o.functionTimeoutMs > 0)) {
    throw new RangeError(`functionTimeoutMs must be positive (got ${o.functionTimeoutMs})`);
  }
  const wait = o.waitTimeSeconds ?? POLL_WAIT_SECONDS;
  if (!Number.isInteger(wait) || wait < 0 || wait > POLL_WAIT_SECONDS) {
    throw new RangeError(`waitTimeSeconds must be an integer from 0 to ${POLL_WAIT_SECONDS} (got ${wait})`);
  }
}

/** Starts the mapping's pollers; the queue must exist. */
export function startEventSourceMapping(options: EventSourceMappingOptions): EventSourceMapping {
  checkOptions(options);
  const batchSize = options.batchSize ?? MAX_SQS_BATCH_SIZE;
  const pollers = options.maximumConcurrency ?? DEFAULT_POLLERS;
  const report = options.functionResponseTypes?.includes("ReportBatchItemFailures") ?? false;
  const wait = options.waitTimeSeconds ?? POLL_WAIT_SECONDS;
  const log = options.logger ?? (() => undefined);
  // The service poller retries on its own loop, not through the SDK's.
  const client = localSqsClient(options.endpoint, options.region, { accessKeyId: "AKIDLOCALEVENTSOURCE", maxAttempts: 1 });
  const stats: EventSourceMappingStats = {
    invocations: 0,
    failedInvocations: 0,
    timeouts: 0,
    recordsDeleted: 0,
    recordsReportedFailed: 0,
    maxConcurrentInvocations: 0,
    receiveErrors: 0,
    deleteErrors: 0,
  };
  const abort = new AbortController();
  let running = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      abort.signal.addEventListener(
        "abort",
        () => {
          clearTimeout(t);
          resolve();
        },
        { once: true },
      );
    });

  /** Runs the handler; resolves with its response, or rejects with its error or the timeout. */
  const invoke = (event: SqsEvent): Promise<unknown> => {
    const call = Promise.resolve().then(() => options.handler(event));
    const timeoutMs = options.functionTimeoutMs;
    if (timeoutMs === undefined) return call;
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        stats.timeouts += 1;
        reject(new Error(`Task timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`));
      }, timeoutMs);
      call.then(
        (v) => {
          clearTimeout(t);
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          reject(e);
        },
      );
    });
  };

  const deleteRecords = async (records: readonly SqsRecord[]) => {
    for (let i = 0; i < records.length; i += MAX_SQS_BATCH_SIZE) {
      const chunk = records.slice(i, i + MAX_SQS_BATCH_SIZE);
      try {
        const out = await client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: options.queueUrl,
            Entries: chunk.map((r, k) => ({ Id: String(k), ReceiptHandle: r.receiptHandle })),
          }),
        );
        stats.recordsDeleted += out.Successful?.length ?? 0;
        for (const f of out.Failed ?? []) {
          // The record stays and comes back after its visibility timeout: a duplicate, as in AWS.
          stats.deleteErrors += 1;
          log({ level: "warn", source: "runtime", message: `event source mapping: delete failed (${f.Code}): ${f.Message}` });
        }
      } catch (err) {
        stats.deleteErrors += chunk.length;
        log({ level: "warn", source: "runtime", message: `event source mapping: DeleteMessageBatch failed: ${(err as Error).message}` });
      }
    }
  };

  const processBatch = async (messages: readonly Message[]) => {
    const records = messages.map((m) => toRecord(m, options.queueArn, options.region));
    running += 1;
    stats.invocations += 1;
    stats.maxConcurrentInvocations = Math.max(stats.maxConcurrentInvocations, running);
    let response: unknown;
    let ok = true;
    try {
      response = await invoke({ Records: records });
    } catch (err) {
      ok = false;
      log({ level: "warn", source: "runtime", message: `event source mapping: invocation failed: ${(err as Error)?.message ?? err}` });
    } finally {
      running -= 1;
    }
    const retry = ok ? recordsToRetry(records, response, report) : undefined;
    if (retry === undefined) {
      // The whole batch failed: every record becomes visible again after its visibility timeout.
      stats.failedInvocations += 1;
      return;
    }
    stats.recordsReportedFailed += retry.size;
    await deleteRecords(records.filter((r) => !retry.has(r.messageId)));
  };

  const poll = async () => {
    let backoffMs = 100;
    while (!abort.signal.aborted) {
      let messages: Message[];
      try {
        const out = await client.send(
          new ReceiveMessageCommand({
            QueueUrl: options.queueUrl,
            MaxNumberOfMessages: batchSize,
            WaitTimeSeconds: wait,
            MessageSystemAttributeNames: ["All"],
            MessageAttributeNames: ["All"],
          }),
          { abortSignal: abort.signal },
        );
        messages = out.Messages ?? [];
        backoffMs = 100;
      } catch (err) {
        if (abort.signal.aborted) break;
        stats.receiveErrors += 1;
        log({ level: "warn", source: "runtime", message: `event source mapping: ReceiveMessage failed: ${(err as Error).message}` });
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 5_000);
        continue;
      }
      if (messages.length > 0) await processBatch(messages);
      else if (wait === 0) await sleep(50);
    }
  };

  const loops = Array.from({ length: pollers }, () => poll());
  let stopping: Promise<void> | undefined;
  return {
    stats,
    stop: () => {
      stopping ??= (async () => {
        abort.abort();
        await Promise.allSettled(loops);
        client.destroy();
      })();
      return stopping;
    },
  };
}
