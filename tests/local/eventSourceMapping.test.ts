/**
 * The local SQS event source mapping against the local SQS, through the unchanged SDK client: Lambda's
 * SQS event shape, deletes of what succeeded, ReportBatchItemFailures, whole-batch failures and
 * timeouts, maximumConcurrency, FIFO group serialization and the dead-letter queue. Visibility
 * timeouts are 1 s, so a retry costs about a second; nothing asserts a duration.
 */
import * as assert from "node:assert/strict";
import { CreateQueueCommand, DeleteQueueCommand, SendMessageBatchCommand, SendMessageCommand, type SQSClient } from "@aws-sdk/client-sqs";
import type { SqsBatchResponse, SqsEvent, SqsRecord } from "../../handlers/events";
import {
  type EventSourceMapping,
  type EventSourceMappingOptions,
  recordsToRetry,
  startEventSourceMapping,
} from "../../local/eventSourceMapping";
import { type LocalSqs, localSqsClient, md5Hex, startLocalSqs } from "../../local/sqs";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until `cond()` holds, checking every 20 ms, for at most `limitMs` (then fails). */
async function until(cond: () => boolean, what: string | (() => string), limitMs = 15_000): Promise<void> {
  for (let waited = 0; !cond(); waited += 20) {
    if (waited >= limitMs) assert.fail(`timed out waiting for ${typeof what === "string" ? what : what()}`);
    await sleep(20);
  }
}

describe("local SQS event source mapping", function () {
  this.timeout(30_000);
  let sqs: LocalSqs;
  let client: SQSClient;
  let mapping: EventSourceMapping | undefined;
  let n = 0;

  before(async () => {
    sqs = await startLocalSqs({ region: "eu-west-1" });
    client = localSqsClient(sqs.endpoint, sqs.region, { accessKeyId: "AKIDTEST", maxAttempts: 1 });
  });
  afterEach(async () => {
    await mapping?.stop();
    mapping = undefined;
  });
  after(async () => {
    client.destroy();
    await sqs.stop();
  });

  async function queue(fifo: boolean, attributes: Record<string, string> = {}): Promise<{ url: string; name: string; arn: string }> {
    n += 1;
    const name = `esm-${n}${fifo ? ".fifo" : ""}`;
    const out = await client.send(
      new CreateQueueCommand({
        QueueName: name,
        Attributes: { VisibilityTimeout: "1", ...(fifo ? { FifoQueue: "true" } : {}), ...attributes },
      }),
    );
    return { url: out.QueueUrl as string, name, arn: sqs.queueArn(name) };
  }

  async function sendAll(url: string, bodies: readonly string[], group?: (body: string) => string): Promise<void> {
    for (let i = 0; i < bodies.length; i += 10) {
      const chunk = bodies.slice(i, i + 10);
      const out = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: chunk.map((b, k) => ({
            Id: `e${k}`,
            MessageBody: b,
            ...(group ? { MessageGroupId: group(b), MessageDeduplicationId: b } : {}),
          })),
        }),
      );
      assert.equal(out.Failed?.length ?? 0, 0);
    }
  }

  const map = (
    q: { url: string; arn: string },
    handler: EventSourceMappingOptions["handler"],
    options: Partial<EventSourceMappingOptions> = {},
  ) => {
    mapping = startEventSourceMapping({
      queueUrl: q.url,
      queueArn: q.arn,
      region: sqs.region,
      endpoint: sqs.endpoint,
      handler,
      waitTimeSeconds: 1,
      ...options,
    });
    return mapping;
  };
  const empty = (name: string) => {
    const s = sqs.stats(name);
    return s.approximateNumberOfMessages + s.approximateNumberOfMessagesNotVisible + s.approximateNumberOfMessagesDelayed === 0;
  };

  it("invokes the handler with Lambda's SQS event shape and deletes what it processed", async () => {
    const q = await queue(true);
    await client.send(
      new SendMessageCommand({
        QueueUrl: q.url,
        MessageBody: '{"job":1}',
        MessageGroupId: "room.0",
        MessageDeduplicationId: "b1.0",
        MessageAttributes: {
          kind: { DataType: "String", StringValue: "delivery" },
          raw: { DataType: "Binary", BinaryValue: new Uint8Array([1, 2, 3]) },
        },
      }),
    );
    const seen: SqsRecord[] = [];
    const m = map(q, async (event) => {
      seen.push(...event.Records);
    });
    await until(() => seen.length === 1 && empty(q.name), "the record to be processed and deleted");
    const r = seen[0];
    assert.equal(r.body, '{"job":1}');
    assert.equal(r.md5OfBody, md5Hex('{"job":1}'));
    assert.equal(r.eventSource, "aws:sqs");
    assert.equal(r.eventSourceARN, q.arn);
    assert.equal(r.awsRegion, "eu-west-1");
    assert.match(r.messageId, /^[0-9a-f-]{36}$/);
    assert.ok(r.receiptHandle.length > 0);
    assert.equal(r.attributes.ApproximateReceiveCount, "1");
    assert.equal(r.attributes.MessageGroupId, "room.0");
    assert.equal(r.attributes.MessageDeduplicationId, "b1.0");
    assert.match(r.attributes.SequenceNumber ?? "", /^\d{20}$/);
    assert.match(r.attributes.SentTimestamp, /^\d{13}$/);
    assert.match(r.attributes.ApproximateFirstReceiveTimestamp, /^\d{13}$/);
    assert.equal(r.attributes.SenderId, "AKIDTEST");
    assert.deepEqual(r.messageAttributes, {
      kind: { dataType: "String", stringValue: "delivery", stringListValues: [], binaryListValues: [] },
      raw: { dataType: "Binary", binaryValue: Buffer.from([1, 2, 3]).toString("base64"), stringListValues: [], binaryListValues: [] },
    });
    assert.equal(typeof r.md5OfMessageAttributes, "string");
    await m.stop();
    assert.equal(m.stats.recordsDeleted, 1);
    assert.equal(m.stats.failedInvocations, 0);
  });

  it("with ReportBatchItemFailures, deletes the records that succeeded and retries only the reported ones", async () => {
    const q = await queue(false);
    await sendAll(q.url, ["a", "b", "c", "d"]);
    const calls: string[][] = [];
    let failedOnce = false;
    const m = map(
      q,
      async (event): Promise<SqsBatchResponse> => {
        calls.push(event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
        const c = event.Records.find((r) => r.body === "c");
        if (c && !failedOnce) {
          failedOnce = true;
          return { batchItemFailures: [{ itemIdentifier: c.messageId }] };
        }
        return { batchItemFailures: [] };
      },
      { batchSize: 10, maximumConcurrency: 2, functionResponseTypes: ["ReportBatchItemFailures"] },
    );
    await until(() => empty(q.name), "every record to be deleted");
    await m.stop();
    const all = calls.flat();
    for (const b of ["a", "b", "d"])
      assert.deepEqual(
        all.filter((x) => x.startsWith(`${b}#`)),
        [`${b}#1`],
        b,
      );
    assert.deepEqual(
      all.filter((x) => x.startsWith("c#")),
      ["c#1", "c#2"],
    );
    assert.equal(m.stats.recordsReportedFailed, 1);
  });

  it("without ReportBatchItemFailures, ignores a returned failure list and deletes the whole batch", async () => {
    const q = await queue(false);
    await sendAll(q.url, ["a", "b"]);
    let calls = 0;
    const m = map(q, async (event) => {
      calls += 1;
      return { batchItemFailures: event.Records.map((r) => ({ itemIdentifier: r.messageId })) };
    });
    await until(() => empty(q.name), "the batch to be deleted");
    await sleep(1_200);
    await m.stop();
    assert.equal(calls, 1);
    assert.equal(m.stats.recordsDeleted, 2);
  });

  it("retries the whole batch when the handler throws", async () => {
    const q = await queue(false);
    await sendAll(q.url, ["a", "b", "c"]);
    const seen: string[] = [];
    let thrown = false;
    const m = map(
      q,
      async (event) => {
        seen.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
        if (!thrown) {
          thrown = true;
          throw new Error("worker crashed");
        }
      },
      { batchSize: 10, maximumConcurrency: 2, functionResponseTypes: ["ReportBatchItemFailures"] },
    );
    await until(() => empty(q.name), "the retried batch to be deleted");
    await m.stop();
    // The failed batch came back whole: every record was seen with receive count 2.
    for (const b of ["a", "b", "c"]) assert.ok(seen.includes(`${b}#2`), `${b} retried: ${seen}`);
    assert.equal(m.stats.failedInvocations, 1);
  });

  it("fails the whole batch on an itemIdentifier that is not in it, empty, or missing", () => {
    const records = [{ messageId: "m1" }, { messageId: "m2" }] as SqsRecord[];
    assert.deepEqual([...(recordsToRetry(records, { batchItemFailures: [{ itemIdentifier: "m2" }] }, true) ?? [])], ["m2"]);
    assert.equal(recordsToRetry(records, { batchItemFailures: [{ itemIdentifier: "m3" }] }, true), undefined);
    assert.equal(recordsToRetry(records, { batchItemFailures: [{ itemIdentifier: "" }] }, true), undefined);
    assert.equal(recordsToRetry(records, { batchItemFailures: [{ itemIdentifier: null }] }, true), undefined);
    assert.equal(recordsToRetry(records, { batchItemFailures: [{ id: "m1" }] }, true), undefined);
    assert.equal(recordsToRetry(records, { batchItemFailures: "m1" }, true), undefined);
    assert.equal(recordsToRetry(records, "nonsense", true), undefined);
    // Complete successes: nothing, null, an empty or null list.
    for (const ok of [undefined, null, {}, { batchItemFailures: [] }, { batchItemFailures: null }]) {
      assert.equal(recordsToRetry(records, ok, true)?.size, 0, JSON.stringify(ok));
    }
  });

  it("retries the whole batch when the handler reports an unknown itemIdentifier", async () => {
    const q = await queue(false);
    await sendAll(q.url, ["a", "b"]);
    const seen: string[] = [];
    const m = map(
      q,
      async (event) => {
        seen.push(...event.Records.map((r) => `${r.body}#${r.attributes.ApproximateReceiveCount}`));
        return seen.length <= 2 ? { batchItemFailures: [{ itemIdentifier: "not-a-message-id" }] } : undefined;
      },
      { batchSize: 10, maximumConcurrency: 2, functionResponseTypes: ["ReportBatchItemFailures"] },
    );
    await until(() => empty(q.name), "the retried batch to be deleted");
    await m.stop();
    assert.ok(seen.includes("a#2") && seen.includes("b#2"), String(seen));
  });

  it("treats an invocation that outlives the function timeout as failed: its batch comes back", async () => {
    const q = await queue(false);
    await sendAll(q.url, ["slow"]);
    const counts: string[] = [];
    const m = map(
      q,
      async (event) => {
        const count = event.Records[0].attributes.ApproximateReceiveCount;
        counts.push(count);
        if (count === "1") await sleep(600);
      },
      { batchSize: 1, maximumConcurrency: 2, functionTimeoutMs: 200 },
    );
    await until(() => empty(q.name), "the retried record to be deleted");
    await m.stop();
    assert.deepEqual(counts.slice(0, 2), ["1", "2"]);
    assert.equal(m.stats.timeouts, 1);
    assert.equal(m.stats.failedInvocations, 1);
  });

  it("redelivers a FIFO record whose invocation outlives the visibility timeout: two run at once and the late delete fails (why AWS asks for 6x the function timeout)", async () => {
    const q = await queue(true, { VisibilityTimeout: "2" });
    await sendAll(q.url, ["long"], () => "G");
    const counts: string[] = [];
    let running = 0;
    let overlap = false;
    const m = map(
      q,
      async (event) => {
        const count = event.Records[0].attributes.ApproximateReceiveCount;
        counts.push(count);
        running += 1;
        overlap ||= running > 1;
        // The first outlives the 2 s visibility timeout; the second is still running when the first ends.
        await sleep(count === "1" ? 3_000 : 1_500);
        running -= 1;
      },
      { batchSize: 1, maximumConcurrency: 2 },
    );
    await until(
      () => counts.length === 2 && empty(q.name) && running === 0,
      () => `both deliveries: ${JSON.stringify([counts, m.stats, sqs.stats(q.name)])}`,
    );
    await m.stop();
    assert.deepEqual(counts, ["1", "2"]);
    assert.equal(overlap, true);
    assert.equal(m.stats.deleteErrors, 1);
    assert.equal(m.stats.recordsDeleted, 1);
  });

  it("never runs more than maximumConcurrency invocations at once", async () => {
    const q = await queue(false);
    const bodies = Array.from({ length: 40 }, (_, i) => `m${i}`);
    await sendAll(q.url, bodies);
    let inFlight = 0;
    let most = 0;
    const done = new Set<string>();
    const m = map(
      q,
      async (event) => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await sleep(15);
        for (const r of event.Records) done.add(r.body);
        inFlight -= 1;
      },
      { batchSize: 1, maximumConcurrency: 3 },
    );
    await until(() => done.size === 40 && empty(q.name), "all 40 records");
    await m.stop();
    assert.ok(most <= 3, `at most 3 at once, saw ${most}`);
    assert.ok(most >= 2, `the cap is used: saw ${most}`);
    assert.equal(m.stats.maxConcurrentInvocations, most);
  });

  it("without maximumConcurrency, runs at most 5 batches at once (Lambda's starting concurrency)", async () => {
    const q = await queue(false);
    await sendAll(
      q.url,
      Array.from({ length: 30 }, (_, i) => `m${i}`),
    );
    let inFlight = 0;
    let most = 0;
    let done = 0;
    const m = map(
      q,
      async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await sleep(15);
        inFlight -= 1;
        done += 1;
      },
      { batchSize: 1 },
    );
    await until(() => done === 30 && empty(q.name), "all 30 records");
    await m.stop();
    assert.ok(most <= 5 && most >= 2, `saw ${most}`);
  });

  it("on a FIFO queue, runs a group's batches one at a time and in order, and groups in parallel", async () => {
    const q = await queue(true);
    const bodies = ["A", "B", "C"].flatMap((g) => Array.from({ length: 6 }, (_, i) => `${g}${i}`));
    // Interleave the groups in the send order.
    bodies.sort((x, y) => Number(x.slice(1)) - Number(y.slice(1)));
    await sendAll(q.url, bodies, (b) => b[0]);
    const running = new Map<string, number>();
    const order = new Map<string, string[]>();
    let overlapSameGroup = false;
    let mostGroups = 0;
    const m = map(
      q,
      async (event) => {
        const groups = [...new Set(event.Records.map((r) => r.attributes.MessageGroupId as string))];
        for (const g of groups) {
          if ((running.get(g) ?? 0) > 0) overlapSameGroup = true;
          running.set(g, (running.get(g) ?? 0) + 1);
        }
        mostGroups = Math.max(mostGroups, [...running.values()].filter((v) => v > 0).length);
        await sleep(10);
        for (const r of event.Records) order.set(r.body[0], [...(order.get(r.body[0]) ?? []), r.body]);
        for (const g of groups) running.set(g, (running.get(g) ?? 1) - 1);
      },
      { batchSize: 2, maximumConcurrency: 3 },
    );
    await until(() => [...order.values()].flat().length === 18 && empty(q.name), "all 18 records");
    await m.stop();
    assert.equal(overlapSameGroup, false);
    for (const g of ["A", "B", "C"]) {
      assert.deepEqual(
        order.get(g),
        Array.from({ length: 6 }, (_, i) => `${g}${i}`),
      );
    }
    assert.ok(mostGroups >= 2, `groups ran in parallel: ${mostGroups}`);
  });

  it("moves a record that keeps failing to the dead-letter queue after maxReceiveCount receives, and the group goes on", async () => {
    const dlq = await queue(true);
    const q = await queue(true, { RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlq.arn, maxReceiveCount: 2 }) });
    await sendAll(q.url, ["poison", "fine"], () => "G");
    const attempts: string[] = [];
    const m = map(
      q,
      async (event: SqsEvent) => {
        const failures: { itemIdentifier: string }[] = [];
        let failed = false;
        for (const r of event.Records) {
          attempts.push(`${r.body}#${r.attributes.ApproximateReceiveCount}`);
          // FIFO: after the first failure, report it and everything after it (Lambda Developer Guide).
          if (failed || r.body === "poison") {
            failed = true;
            failures.push({ itemIdentifier: r.messageId });
          }
        }
        return { batchItemFailures: failures };
      },
      // Batch size 1 (as the deliver function's mapping): "fine" is not received while "poison" blocks the group.
      { batchSize: 1, maximumConcurrency: 2, functionResponseTypes: ["ReportBatchItemFailures"] },
    );
    await until(() => empty(q.name) && sqs.stats(dlq.name).approximateNumberOfMessages === 1, "poison in the DLQ and fine delivered");
    await m.stop();
    assert.deepEqual(
      attempts.filter((a) => a.startsWith("poison")),
      ["poison#1", "poison#2"],
    );
    assert.equal(attempts[attempts.length - 1], "fine#1");
    assert.equal(sqs.stats(q.name).movedToDeadLetterQueue, 1);
  });

  it("keeps polling, with back-off, when the queue is gone, and still stops cleanly", async () => {
    const q = await queue(false);
    let calls = 0;
    const m = map(
      q,
      async () => {
        calls += 1;
      },
      { maximumConcurrency: 2 },
    );
    await client.send(new DeleteQueueCommand({ QueueUrl: q.url }));
    await until(() => m.stats.receiveErrors >= 4, "receive errors to be counted");
    await m.stop();
    assert.equal(calls, 0);
  });

  it("refuses options outside Lambda's ranges", () => {
    const base = { queueUrl: "u", queueArn: "a", region: "r", endpoint: "http://127.0.0.1:1", handler: async () => undefined };
    assert.throws(() => startEventSourceMapping({ ...base, batchSize: 11 }), RangeError);
    assert.throws(() => startEventSourceMapping({ ...base, batchSize: 0 }), RangeError);
    assert.throws(() => startEventSourceMapping({ ...base, maximumConcurrency: 1 }), RangeError);
    assert.throws(() => startEventSourceMapping({ ...base, maximumConcurrency: 1001 }), RangeError);
  });

  it("stops promptly while its pollers are in a 20-second long poll", async () => {
    const q = await queue(false);
    const m = map(q, async () => undefined, { waitTimeSeconds: 20, maximumConcurrency: 4 });
    await sleep(100);
    // A stop that waited out the polls would pass this test's timeout.
    await m.stop();
    await sendAll(q.url, ["after"]);
    assert.equal(sqs.stats(q.name).approximateNumberOfMessages, 1);
  }).timeout(10_000);
});
