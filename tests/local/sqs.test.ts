/**
 * The local SQS, driven only through the unchanged `@aws-sdk/client-sqs` client: the protocol, the
 * typed errors, FIFO groups and deduplication, visibility and receipt handles, redrive, limits and
 * the figures the bench reads. Time-dependent rules run on an injected clock (no waiting); long
 * polling runs on the real one.
 */
import * as assert from "node:assert/strict";
import {
  BatchEntryIdsNotDistinct,
  BatchRequestTooLong,
  ChangeMessageVisibilityBatchCommand,
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  EmptyBatchRequest,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  DeleteQueueCommand,
  ListQueuesCommand,
  QueueDeletedRecently,
  SetQueueAttributesCommand,
  InvalidBatchEntryId,
  type Message,
  MessageNotInflight,
  PurgeQueueCommand,
  PurgeQueueInProgress,
  QueueDoesNotExist,
  QueueNameExists,
  ReceiptHandleIsInvalid,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
  SQSServiceException,
  TooManyEntriesInBatchRequest,
} from "@aws-sdk/client-sqs";
import {
  DEDUPLICATION_INTERVAL_MS,
  DEFAULT_MAX_MESSAGE_BYTES,
  type LocalSqs,
  localSqsClient,
  md5OfMessageAttributes,
  startLocalSqs,
  validQueueName,
} from "../../local/sqs";

const REGION = "eu-west-1";

/** The rejection of `p`, which must reject. */
async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected the call to fail");
}

describe("local SQS", () => {
  let clock = Date.UTC(2026, 11, 6, 12, 0, 0);
  let sqs: LocalSqs;
  let client: SQSClient;
  let n = 0;

  before(async () => {
    sqs = await startLocalSqs({ region: REGION, now: () => clock });
    client = localSqsClient(sqs.endpoint, REGION, { accessKeyId: "AKIDTEST", maxAttempts: 1 });
  });

  after(async () => {
    client.destroy();
    await sqs.stop();
  });

  const advance = (ms: number) => {
    clock += ms;
  };

  async function createQueue(base: string, attributes: Record<string, string> = {}): Promise<string> {
    n += 1;
    const fifo = attributes.FifoQueue === "true";
    const out = await client.send(new CreateQueueCommand({ QueueName: `${base}-${n}${fifo ? ".fifo" : ""}`, Attributes: attributes }));
    return out.QueueUrl as string;
  }
  const fifoQueue = (attributes: Record<string, string> = {}) =>
    createQueue("fifo", { FifoQueue: "true", VisibilityTimeout: "30", ...attributes });
  const nameOf = (url: string) => url.slice(url.lastIndexOf("/") + 1);

  const receive = async (QueueUrl: string, max = 10, extra: Partial<{ VisibilityTimeout: number; WaitTimeSeconds: number }> = {}) =>
    (
      await client.send(
        new ReceiveMessageCommand({
          QueueUrl,
          MaxNumberOfMessages: max,
          MessageSystemAttributeNames: ["All"],
          MessageAttributeNames: ["All"],
          ...extra,
        }),
      )
    ).Messages ?? [];
  const bodies = (messages: readonly Message[]) => messages.map((m) => m.Body);
  const send = (QueueUrl: string, body: string, group?: string, dedup?: string) =>
    client.send(
      new SendMessageCommand({
        QueueUrl,
        MessageBody: body,
        MessageGroupId: group,
        MessageDeduplicationId: dedup ?? (group ? body : undefined),
      }),
    );

  describe("queues", () => {
    it("names a queue by URL http://127.0.0.1:<port>/000000000000/<name> and ARN arn:aws:sqs:<region>:000000000000:<name>", async () => {
      const url = await fifoQueue();
      assert.equal(url, `${sqs.endpoint}/000000000000/${nameOf(url)}`);
      assert.match(sqs.endpoint, /^http:\/\/127\.0\.0\.1:\d+$/);
      const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["QueueArn", "FifoQueue"] }));
      assert.deepEqual(attrs.Attributes, { QueueArn: `arn:aws:sqs:${REGION}:000000000000:${nameOf(url)}`, FifoQueue: "true" });
      assert.equal((await client.send(new GetQueueUrlCommand({ QueueName: nameOf(url) }))).QueueUrl, url);
    });

    it("creates the delivery queue's shape (contract 4): FIFO DLQ, high-throughput FIFO queue, SSE-SQS, redrive after 5", async () => {
      const dlq = await fifoQueue({ MessageRetentionPeriod: "1209600", SqsManagedSseEnabled: "true" });
      const attributes = {
        FifoQueue: "true",
        ContentBasedDeduplication: "false",
        DeduplicationScope: "messageGroup",
        FifoThroughputLimit: "perMessageGroupId",
        MessageRetentionPeriod: "86400",
        SqsManagedSseEnabled: "true",
        VisibilityTimeout: "180",
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: sqs.queueArn(nameOf(dlq)), maxReceiveCount: 5 }),
      };
      const url = await createQueue("chat-local-deliveries", attributes);
      const got = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }));
      for (const [k, v] of Object.entries(attributes)) assert.equal(got.Attributes?.[k as keyof typeof got.Attributes], v, k);
    });

    it("answers CreateQueue of an existing queue with its URL, and QueueNameExists when an attribute differs", async () => {
      const url = await fifoQueue();
      const again = await client.send(
        new CreateQueueCommand({ QueueName: nameOf(url), Attributes: { FifoQueue: "true", VisibilityTimeout: "30" } }),
      );
      assert.equal(again.QueueUrl, url);
      const err = await rejection(
        client.send(new CreateQueueCommand({ QueueName: nameOf(url), Attributes: { FifoQueue: "true", VisibilityTimeout: "31" } })),
      );
      assert.ok(err instanceof QueueNameExists, err.name);
    });

    it("throws QueueDoesNotExist (the SDK's class) for an unknown queue, by name and by URL", async () => {
      const byName = await rejection(client.send(new GetQueueUrlCommand({ QueueName: "nope" })));
      assert.ok(byName instanceof QueueDoesNotExist);
      assert.equal(byName.message, "The specified queue does not exist.");
      const byUrl = await rejection(send(`${sqs.endpoint}/000000000000/nope`, "x"));
      assert.ok(byUrl instanceof QueueDoesNotExist);
    });

    it("requires a FIFO queue's name to end in .fifo, and only a FIFO queue's", async () => {
      const a = await rejection(client.send(new CreateQueueCommand({ QueueName: "plain", Attributes: { FifoQueue: "true" } })));
      assert.equal(a.name, "InvalidParameterValue");
      const b = await rejection(client.send(new CreateQueueCommand({ QueueName: "looks.fifo" })));
      assert.equal(b.name, "InvalidParameterValue");
      assert.ok(validQueueName("a-b_c.fifo", true) && validQueueName("a-b_c", false) && !validQueueName("a.b", false));
    });

    it("rejects an unknown attribute with InvalidAttributeName and a bad value with InvalidAttributeValue", async () => {
      const a = await rejection(
        client.send(new CreateQueueCommand({ QueueName: "attrs", Attributes: { Colour: "blue" } as Record<string, string> })),
      );
      assert.equal(a.name, "InvalidAttributeName");
      const b = await rejection(client.send(new CreateQueueCommand({ QueueName: "attrs", Attributes: { VisibilityTimeout: "43201" } })));
      assert.equal(b.name, "InvalidAttributeValue");
    });

    it("checks a redrive policy: the target must exist and be a FIFO queue for a FIFO source", async () => {
      const standardDlq = await createQueue("dlq");
      const wrongType = await rejection(
        fifoQueue({ RedrivePolicy: JSON.stringify({ deadLetterTargetArn: sqs.queueArn(nameOf(standardDlq)), maxReceiveCount: 5 }) }),
      );
      assert.equal(wrongType.name, "InvalidParameterValue");
      assert.match(wrongType.message, /same type/);
      const missing = await rejection(
        fifoQueue({ RedrivePolicy: JSON.stringify({ deadLetterTargetArn: sqs.queueArn("nope.fifo"), maxReceiveCount: 5 }) }),
      );
      assert.match(missing.message, /does not exist/);
      const count = await rejection(
        createQueue("src", {
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: sqs.queueArn(nameOf(standardDlq)), maxReceiveCount: 0 }),
        }),
      );
      assert.equal(count.name, "InvalidParameterValue");
    });
    it("lists queues by prefix, and refuses a deleted queue's name for 60 seconds (QueueDeletedRecently)", async () => {
      const url = await createQueue("gone");
      const listed = await client.send(new ListQueuesCommand({ QueueNamePrefix: nameOf(url) }));
      assert.deepEqual(listed.QueueUrls, [url]);
      await client.send(new DeleteQueueCommand({ QueueUrl: url }));
      assert.ok((await rejection(send(url, "x"))) instanceof QueueDoesNotExist);
      const again = await rejection(client.send(new CreateQueueCommand({ QueueName: nameOf(url) })));
      assert.ok(again instanceof QueueDeletedRecently, again.name);
      advance(60_000);
      assert.equal((await client.send(new CreateQueueCommand({ QueueName: nameOf(url) }))).QueueUrl, url);
    });

    it("answers an action it does not emulate with UnsupportedOperation", async () => {
      const url = await createQueue("std");
      const err = await rejection(client.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { VisibilityTimeout: "5" } })));
      assert.equal(err.name, "UnsupportedOperation");
    });
  });

  describe("FIFO queues", () => {
    it("delivers a group's messages in the order they were sent, and blocks the group while one is in flight", async () => {
      const url = await fifoQueue();
      for (const b of ["a1", "a2", "a3"]) await send(url, b, "A");
      await send(url, "b1", "B");
      const first = await receive(url, 1);
      assert.deepEqual(bodies(first), ["a1"]);
      // a1 is in flight: A is blocked, B is not.
      assert.deepEqual(bodies(await receive(url)), ["b1"]);
      assert.deepEqual(bodies(await receive(url)), []);
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first[0].ReceiptHandle }));
      assert.deepEqual(bodies(await receive(url)), ["a2", "a3"]);
    });

    it("returns as many messages of one group as it can, then other groups, each in order", async () => {
      const url = await fifoQueue();
      for (const [b, g] of [
        ["a1", "A"],
        ["b1", "B"],
        ["a2", "A"],
        ["b2", "B"],
        ["c1", "C"],
      ])
        await send(url, b, g);
      assert.deepEqual(bodies(await receive(url, 3)), ["a1", "a2", "b1"]);
      // b2 waits behind b1 (in flight); C is free.
      assert.deepEqual(bodies(await receive(url)), ["c1"]);
    });

    it("redelivers a group's message before the next one when its visibility timeout runs out", async () => {
      const url = await fifoQueue({ VisibilityTimeout: "5" });
      await send(url, "m1", "G");
      await send(url, "m2", "G");
      assert.deepEqual(bodies(await receive(url, 1)), ["m1"]);
      advance(5_000);
      const again = await receive(url, 1);
      assert.deepEqual(bodies(again), ["m1"]);
      assert.equal(again[0].Attributes?.ApproximateReceiveCount, "2");
    });

    it("requires MessageGroupId (MissingParameter) and a deduplication id or content-based deduplication", async () => {
      const url = await fifoQueue();
      const noGroup = await rejection(
        client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x", MessageDeduplicationId: "d" })),
      );
      assert.equal(noGroup.name, "MissingParameter");
      const noDedup = await rejection(client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "x", MessageGroupId: "g" })));
      assert.equal(noDedup.name, "InvalidParameterValue");
      assert.match(noDedup.message, /ContentBasedDeduplication/);
      const delay = await rejection(
        client.send(
          new SendMessageCommand({ QueueUrl: url, MessageBody: "x", MessageGroupId: "g", MessageDeduplicationId: "d", DelaySeconds: 3 }),
        ),
      );
      assert.equal(delay.name, "InvalidParameterValue");
    });

    it("accepts a duplicate within 5 minutes with the original's MessageId and delivers it once; after 5 minutes it is a new message", async () => {
      const url = await fifoQueue();
      const first = await send(url, "hello", "G", "job-1");
      advance(DEDUPLICATION_INTERVAL_MS - 1);
      const dup = await send(url, "hello again", "G", "job-1");
      assert.equal(dup.MessageId, first.MessageId);
      assert.equal(dup.SequenceNumber, first.SequenceNumber);
      const got = await receive(url);
      assert.deepEqual(bodies(got), ["hello"]);
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: got[0].ReceiptHandle }));
      // Deleting does not end the interval: still a duplicate.
      assert.equal((await send(url, "x", "G", "job-1")).MessageId, first.MessageId);
      advance(1);
      const later = await send(url, "hello", "G", "job-1");
      assert.notEqual(later.MessageId, first.MessageId);
      assert.deepEqual(bodies(await receive(url)), ["hello"]);
    });

    it("with DeduplicationScope messageGroup, deduplicates within a group only", async () => {
      const url = await fifoQueue({ DeduplicationScope: "messageGroup", FifoThroughputLimit: "perMessageGroupId" });
      const a = await send(url, "a", "G", "same");
      const b = await send(url, "b", "H", "same");
      const c = await send(url, "c", "G", "same");
      assert.notEqual(b.MessageId, a.MessageId);
      assert.equal(c.MessageId, a.MessageId);
    });

    it("deduplicates on the body's SHA-256 with ContentBasedDeduplication", async () => {
      const url = await fifoQueue({ ContentBasedDeduplication: "true" });
      const a = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "same", MessageGroupId: "g" }));
      const b = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "same", MessageGroupId: "h" }));
      const c = await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "other", MessageGroupId: "g" }));
      assert.equal(b.MessageId, a.MessageId);
      assert.notEqual(c.MessageId, a.MessageId);
      assert.deepEqual(bodies(await receive(url)).sort(), ["other", "same"]);
    });

    it("gives every message a SequenceNumber that grows in send order", async () => {
      const url = await fifoQueue();
      const a = await send(url, "1", "G");
      const b = await send(url, "2", "H");
      assert.ok(BigInt(b.SequenceNumber as string) > BigInt(a.SequenceNumber as string));
      const got = await receive(url);
      assert.deepEqual(
        got.map((m) => m.Attributes?.SequenceNumber),
        [a.SequenceNumber, b.SequenceNumber],
      );
    });
  });

  describe("visibility and receipt handles", () => {
    it("hides a received message for the visibility timeout, then redelivers it with a new receipt handle and ApproximateReceiveCount 2", async () => {
      const url = await createQueue("vis", { VisibilityTimeout: "10" });
      await send(url, "m");
      const first = await receive(url);
      assert.equal(first[0].Attributes?.ApproximateReceiveCount, "1");
      advance(9_999);
      assert.deepEqual(await receive(url), []);
      advance(1);
      const second = await receive(url);
      assert.equal(second[0].MessageId, first[0].MessageId);
      assert.equal(second[0].Attributes?.ApproximateReceiveCount, "2");
      assert.notEqual(second[0].ReceiptHandle, first[0].ReceiptHandle);
      assert.equal(second[0].Attributes?.ApproximateFirstReceiveTimestamp, first[0].Attributes?.ApproximateFirstReceiveTimestamp);
      assert.equal(second[0].Attributes?.SentTimestamp, first[0].Attributes?.SentTimestamp);
    });

    it("takes the VisibilityTimeout of the ReceiveMessage call over the queue's", async () => {
      const url = await createQueue("vis", { VisibilityTimeout: "100" });
      await send(url, "m");
      await receive(url, 1, { VisibilityTimeout: 2 });
      advance(2_000);
      assert.equal((await receive(url))[0]?.Body, "m");
    });

    it("on a standard queue, accepts an earlier receive's handle (DeleteMessage still succeeds)", async () => {
      const url = await createQueue("std", { VisibilityTimeout: "1" });
      await send(url, "m");
      const first = await receive(url);
      advance(1_000);
      await receive(url);
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first[0].ReceiptHandle }));
      advance(1_000);
      assert.deepEqual(await receive(url), []);
    });

    it("on a FIFO queue, refuses an expired receipt handle (InvalidParameterValue) and keeps the message", async () => {
      const url = await fifoQueue({ VisibilityTimeout: "1" });
      await send(url, "m", "G");
      const first = await receive(url);
      advance(1_000);
      const err = await rejection(client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first[0].ReceiptHandle })));
      assert.equal(err.name, "InvalidParameterValue");
      assert.match(err.message, /The receipt handle has expired/);
      const again = await receive(url);
      assert.equal(again[0].MessageId, first[0].MessageId);
      // The first handle is superseded now too; the current one deletes.
      await rejection(client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first[0].ReceiptHandle })));
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again[0].ReceiptHandle }));
      advance(1_000);
      assert.deepEqual(await receive(url), []);
    });

    it("on a FIFO queue, a message received with VisibilityTimeout 0 cannot be deleted with that receive's handle", async () => {
      const url = await fifoQueue();
      await send(url, "m", "G");
      const [m] = await receive(url, 1, { VisibilityTimeout: 0 });
      const err = await rejection(client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle })));
      assert.match(err.message, /The receipt handle has expired/);
      assert.deepEqual(bodies(await receive(url)), ["m"]);
    });

    it("throws ReceiptHandleIsInvalid for a handle that is not the queue's, and succeeds for a message already deleted", async () => {
      const url = await createQueue("std");
      const other = await createQueue("std");
      await send(url, "m");
      const [m] = await receive(url);
      const bogus = await rejection(client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: "not-a-handle" })));
      assert.ok(bogus instanceof ReceiptHandleIsInvalid);
      const elsewhere = await rejection(client.send(new DeleteMessageCommand({ QueueUrl: other, ReceiptHandle: m.ReceiptHandle })));
      assert.ok(elsewhere instanceof ReceiptHandleIsInvalid);
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
      await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle }));
    });

    it("ChangeMessageVisibility 0 makes a message visible at once; on a visible message it throws MessageNotInflight", async () => {
      const url = await fifoQueue();
      await send(url, "m1", "G");
      await send(url, "m2", "G");
      const [m] = await receive(url, 1);
      await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0 }));
      const err = await rejection(
        client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 5 })),
      );
      assert.ok(err instanceof MessageNotInflight, err.name);
      assert.deepEqual(bodies(await receive(url)), ["m1", "m2"]);
    });

    it("ChangeMessageVisibility extends a message's invisibility from now, at most 12 hours after its receive", async () => {
      const url = await createQueue("std", { VisibilityTimeout: "10" });
      await send(url, "m");
      const [m] = await receive(url);
      advance(9_000);
      await client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 10 }));
      advance(9_000);
      assert.deepEqual(await receive(url), []);
      const tooLong = await rejection(
        client.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 43_200 })),
      );
      assert.equal(tooLong.name, "InvalidParameterValue");
    });

    it("reports each entry of a visibility or delete batch on its own", async () => {
      const url = await createQueue("std");
      await send(url, "m");
      const [m] = await receive(url);
      const change = await client.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: "good", ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 60 },
            { Id: "bad", ReceiptHandle: "nope", VisibilityTimeout: 60 },
          ],
        }),
      );
      assert.deepEqual(change.Successful, [{ Id: "good" }]);
      assert.equal(change.Failed?.[0].Id, "bad");
      assert.equal(change.Failed?.[0].Code, "ReceiptHandleIsInvalid");
      assert.equal(change.Failed?.[0].SenderFault, true);
      const del = await client.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: "a", ReceiptHandle: m.ReceiptHandle },
            { Id: "b", ReceiptHandle: "nope" },
          ],
        }),
      );
      assert.deepEqual(del.Successful, [{ Id: "a" }]);
      assert.deepEqual(
        del.Failed?.map((f) => f.Id),
        ["b"],
      );
    });
  });

  describe("dead-letter queue", () => {
    it("moves a message to the dead-letter queue on the receive that would pass maxReceiveCount", async () => {
      const dlq = await fifoQueue();
      const url = await fifoQueue({
        VisibilityTimeout: "1",
        RedrivePolicy: JSON.stringify({ deadLetterTargetArn: sqs.queueArn(nameOf(dlq)), maxReceiveCount: 2 }),
      });
      const sent = await send(url, "poison", "G");
      await send(url, "next", "G");
      const first = await receive(url, 1);
      advance(1_000);
      const second = await receive(url, 1);
      assert.equal(second[0].Attributes?.ApproximateReceiveCount, "2");
      advance(1_000);
      // The third receive moves "poison" and returns the group's next message.
      assert.deepEqual(bodies(await receive(url, 1)), ["next"]);
      const dead = await receive(dlq);
      assert.equal(dead.length, 1);
      assert.equal(dead[0].MessageId, sent.MessageId);
      assert.equal(dead[0].Body, "poison");
      assert.equal(dead[0].Attributes?.SentTimestamp, first[0].Attributes?.SentTimestamp);
      assert.equal(dead[0].Attributes?.DeadLetterQueueSourceArn, sqs.queueArn(nameOf(url)));
      assert.equal(dead[0].Attributes?.MessageGroupId, "G");
      // Received twice in the source, once here.
      assert.equal(dead[0].Attributes?.ApproximateReceiveCount, "3");
      assert.equal(sqs.stats(nameOf(url)).movedToDeadLetterQueue, 1);
    });

    it("keeps the enqueue time in a standard dead-letter queue and resets it in a FIFO one (retention)", async () => {
      const run = async (fifo: boolean) => {
        const dlq = fifo ? await fifoQueue({ MessageRetentionPeriod: "60" }) : await createQueue("dlq", { MessageRetentionPeriod: "60" });
        const redrive = JSON.stringify({ deadLetterTargetArn: sqs.queueArn(nameOf(dlq)), maxReceiveCount: 1 });
        const url = fifo
          ? await fifoQueue({ VisibilityTimeout: "1", RedrivePolicy: redrive })
          : await createQueue("src", { VisibilityTimeout: "1", RedrivePolicy: redrive });
        await send(url, "m", fifo ? "G" : undefined);
        await receive(url);
        advance(50_000);
        assert.deepEqual(await receive(url), []);
        assert.equal(sqs.stats(nameOf(dlq)).approximateNumberOfMessages, 1);
        assert.equal(sqs.stats(nameOf(dlq)).approximateAgeOfOldestMessageSeconds, 0);
        advance(20_000);
        return sqs.stats(nameOf(dlq)).approximateNumberOfMessages;
      };
      assert.equal(await run(false), 0);
      assert.equal(await run(true), 1);
    });

    it("with no redrive policy, redelivers a message for ever", async () => {
      const url = await createQueue("std", { VisibilityTimeout: "1" });
      await send(url, "m");
      for (let i = 1; i <= 12; i++) {
        const [m] = await receive(url);
        assert.equal(m.Attributes?.ApproximateReceiveCount, String(i));
        advance(1_000);
      }
    });
  });

  describe("limits and errors", () => {
    it("refuses a batch of more than 10 entries, none, repeated ids and malformed ids, each with its SQS error", async () => {
      const url = await createQueue("std");
      const entry = (Id: string) => ({ Id, MessageBody: "x" });
      const tooMany = await rejection(
        client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: Array.from({ length: 11 }, (_, i) => entry(`e${i}`)) })),
      );
      assert.ok(tooMany instanceof TooManyEntriesInBatchRequest);
      const none = await rejection(client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [] })));
      assert.ok(none instanceof EmptyBatchRequest);
      const repeated = await rejection(client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [entry("a"), entry("a")] })));
      assert.ok(repeated instanceof BatchEntryIdsNotDistinct);
      const malformed = await rejection(client.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: [entry("a b")] })));
      assert.ok(malformed instanceof InvalidBatchEntryId);
      const deleteTooMany = await rejection(
        client.send(
          new DeleteMessageBatchCommand({
            QueueUrl: url,
            Entries: Array.from({ length: 11 }, (_, i) => ({ Id: `d${i}`, ReceiptHandle: "x" })),
          }),
        ),
      );
      assert.ok(deleteTooMany instanceof TooManyEntriesInBatchRequest);
      assert.deepEqual(await receive(url), []);
    });

    it("refuses a batch whose messages total more than 256 KiB (BatchRequestTooLong) and stores none of it", async () => {
      const url = await createQueue("std");
      const big = "x".repeat(100 * 1024);
      const err = await rejection(
        client.send(
          new SendMessageBatchCommand({
            QueueUrl: url,
            Entries: [1, 2, 3].map((i) => ({ Id: `e${i}`, MessageBody: big })),
          }),
        ),
      );
      assert.ok(err instanceof BatchRequestTooLong);
      assert.deepEqual(await receive(url), []);
      const fits = await client.send(
        new SendMessageBatchCommand({ QueueUrl: url, Entries: [1, 2].map((i) => ({ Id: `e${i}`, MessageBody: big })) }),
      );
      assert.equal(fits.Successful?.length, 2);
    });

    it("refuses a message of more than 256 KiB with InvalidParameterValue, counting its attributes", async () => {
      const url = await createQueue("std");
      await send(url, "x".repeat(DEFAULT_MAX_MESSAGE_BYTES));
      const err = await rejection(send(url, "x".repeat(DEFAULT_MAX_MESSAGE_BYTES + 1)));
      assert.ok(err instanceof SQSServiceException);
      assert.equal(err.name, "InvalidParameterValue");
      assert.match(err.message, /Message must be shorter than 262144 bytes/);
      const withAttr = await rejection(
        client.send(
          new SendMessageCommand({
            QueueUrl: url,
            MessageBody: "x".repeat(DEFAULT_MAX_MESSAGE_BYTES - 5),
            MessageAttributes: { a: { DataType: "String", StringValue: "y" } },
          }),
        ),
      );
      assert.equal(withAttr.name, "InvalidParameterValue");
    });

    it("takes a queue's MaximumMessageSize up to 1 MiB, and at most 10 message attributes", async () => {
      const url = await createQueue("big", { MaximumMessageSize: "1048576" });
      await send(url, "x".repeat(1_048_576));
      assert.equal((await rejection(send(url, "x".repeat(1_048_577)))).name, "InvalidParameterValue");
      const attrs = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`a${i}`, { DataType: "String", StringValue: "v" }]));
      const err = await rejection(client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "m", MessageAttributes: attrs })));
      assert.equal(err.name, "InvalidParameterValue");
    });

    it("reports a batch entry that fails validation in Failed and stores the others", async () => {
      const url = await fifoQueue();
      const out = await client.send(
        new SendMessageBatchCommand({
          QueueUrl: url,
          Entries: [
            { Id: "ok1", MessageBody: "a", MessageGroupId: "G", MessageDeduplicationId: "1" },
            { Id: "nogroup", MessageBody: "b", MessageDeduplicationId: "2" },
            { Id: "ok2", MessageBody: "c", MessageGroupId: "G", MessageDeduplicationId: "3" },
            { Id: "dup", MessageBody: "d", MessageGroupId: "G", MessageDeduplicationId: "1" },
          ],
        }),
      );
      assert.deepEqual(
        out.Successful?.map((s) => s.Id),
        ["ok1", "ok2", "dup"],
      );
      assert.equal(out.Successful?.[2].MessageId, out.Successful?.[0].MessageId);
      assert.deepEqual(
        out.Failed?.map((f) => [f.Id, f.Code, f.SenderFault]),
        [["nogroup", "MissingParameter", true]],
      );
      assert.deepEqual(bodies(await receive(url)), ["a", "c"]);
    });

    it("refuses characters SQS does not allow with InvalidMessageContents", async () => {
      const url = await createQueue("std");
      const err = await rejection(send(url, "bell \u0007"));
      assert.equal(err.name, "InvalidMessageContents");
      await send(url, "tab\tnewline\n emoji \u{1F600} ok");
    });

    it("checks ReceiveMessage's MaxNumberOfMessages (1-10) and WaitTimeSeconds (0-20)", async () => {
      const url = await createQueue("std");
      const a = await rejection(client.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 11 })));
      assert.equal(a.name, "InvalidParameterValue");
      const b = await rejection(client.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 21 })));
      assert.equal(b.name, "InvalidParameterValue");
    });

    it("allows one PurgeQueue a minute (PurgeQueueInProgress) and deletes every message", async () => {
      const url = await createQueue("std");
      await send(url, "a");
      await send(url, "b");
      await client.send(new PurgeQueueCommand({ QueueUrl: url }));
      assert.deepEqual(await receive(url), []);
      const err = await rejection(client.send(new PurgeQueueCommand({ QueueUrl: url })));
      assert.ok(err instanceof PurgeQueueInProgress);
      advance(60_000);
      await client.send(new PurgeQueueCommand({ QueueUrl: url }));
    });
  });

  describe("malformed requests", () => {
    const post = async (headers: Record<string, string>, body: string) => {
      const res = await fetch(`${sqs.endpoint}/`, { method: "POST", headers, body });
      return { status: res.status, queryError: res.headers.get("x-amzn-query-error"), body: (await res.json()) as Record<string, string> };
    };
    const json = { "content-type": "application/x-amz-json-1.0" };

    it("answers a body that is not JSON with SerializationException, an unknown target with UnknownOperationException, and keeps serving", async () => {
      const notJson = await post({ ...json, "x-amz-target": "AmazonSQS.SendMessage" }, "{not json");
      assert.equal(notJson.status, 400);
      assert.equal(notJson.body.__type, "com.amazon.coral.service#SerializationException");
      const array = await post({ ...json, "x-amz-target": "AmazonSQS.SendMessage" }, "[]");
      assert.equal(array.body.__type, "com.amazon.coral.service#SerializationException");
      const noTarget = await post(json, "{}");
      assert.equal(noTarget.body.__type, "com.amazon.coral.service#UnknownOperationException");
      // The query protocol (form-encoded Action=...) is not spoken.
      const query = await post({ "content-type": "application/x-www-form-urlencoded" }, "Action=ListQueues&Version=2012-11-05");
      assert.equal(query.body.__type, "com.amazon.coral.service#UnknownOperationException");
      const url = await createQueue("after");
      await send(url, "still up");
      assert.deepEqual(bodies(await receive(url)), ["still up"]);
    });

    it("answers fields of the wrong type with InvalidParameterValue and a missing one with MissingParameter", async () => {
      const url = await createQueue("types");
      const wrongType = await post(
        { ...json, "x-amz-target": "AmazonSQS.SendMessage" },
        JSON.stringify({ QueueUrl: url, MessageBody: 42 }),
      );
      assert.equal(wrongType.status, 400);
      assert.equal(wrongType.queryError, "InvalidParameterValue;Sender");
      const missing = await post({ ...json, "x-amz-target": "AmazonSQS.SendMessage" }, JSON.stringify({ QueueUrl: url }));
      assert.equal(missing.queryError, "MissingParameter;Sender");
      assert.equal(missing.body.message, "The request must contain the parameter MessageBody.");
      const badMax = await post(
        { ...json, "x-amz-target": "AmazonSQS.ReceiveMessage" },
        JSON.stringify({ QueueUrl: url, MaxNumberOfMessages: "ten" }),
      );
      assert.equal(badMax.queryError, "InvalidParameterValue;Sender");
    });
  });

  describe("checksums and attributes", () => {
    it("computes MD5OfMessageAttributes as SQS documents it (published digests)", () => {
      assert.equal(
        md5OfMessageAttributes({ timestamp: { DataType: "Number", StringValue: "1493147359900" } }),
        "235c5c510d26fb653d073faed50ae77c",
      );
      assert.equal(
        md5OfMessageAttributes({
          ordinal: { DataType: "Number", StringValue: "1" },
          category: { DataType: "String", StringValue: "test" },
        }),
        "d21ae90c49061e927f57df5f5d72be1f",
      );
      assert.equal(
        md5OfMessageAttributes({ SellerName: { DataType: "String", StringValue: "Example Store" } }),
        "cd28f3b68aeee4b2eac9c66f2f694b58",
      );
    });

    it("round-trips a body and string, number and binary attributes through the SDK's MD5 checks", async () => {
      const url = await createQueue("std");
      const body = "h\u00e9llo \u{1F600}";
      const out = await client.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: body,
          MessageAttributes: {
            kind: { DataType: "String", StringValue: "job" },
            n: { DataType: "Number", StringValue: "42" },
            raw: { DataType: "Binary", BinaryValue: new Uint8Array([0, 1, 254, 255]) },
          },
        }),
      );
      const [m] = await receive(url);
      assert.equal(m.Body, body);
      assert.equal(m.MD5OfBody, out.MD5OfMessageBody);
      assert.equal(m.MD5OfMessageAttributes, out.MD5OfMessageAttributes);
      assert.equal(m.MessageAttributes?.kind.StringValue, "job");
      assert.deepEqual([...(m.MessageAttributes?.raw.BinaryValue ?? [])], [0, 1, 254, 255]);
      assert.equal(m.Attributes?.SenderId, "AKIDTEST");
    });

    it("returns only the attributes asked for", async () => {
      const url = await createQueue("std");
      await client.send(
        new SendMessageCommand({ QueueUrl: url, MessageBody: "m", MessageAttributes: { a: { DataType: "String", StringValue: "1" } } }),
      );
      const out = await client.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ["ApproximateReceiveCount"] }));
      const [m] = out.Messages ?? [];
      assert.deepEqual(m.Attributes, { ApproximateReceiveCount: "1" });
      assert.equal(m.MessageAttributes, undefined);
      assert.equal(m.MD5OfMessageAttributes, undefined);
    });
  });

  describe("queue figures", () => {
    it("counts visible, in-flight and delayed messages as GetQueueAttributes and stats() report them", async () => {
      const url = await createQueue("std", { VisibilityTimeout: "30" });
      await send(url, "a");
      await send(url, "b");
      await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "later", DelaySeconds: 60 }));
      await receive(url, 1);
      const attrs = await client.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["All"] }));
      assert.equal(attrs.Attributes?.ApproximateNumberOfMessages, "1");
      assert.equal(attrs.Attributes?.ApproximateNumberOfMessagesNotVisible, "1");
      assert.equal(attrs.Attributes?.ApproximateNumberOfMessagesDelayed, "1");
      assert.equal(attrs.Attributes?.VisibilityTimeout, "30");
      const s = sqs.stats(nameOf(url));
      assert.equal(s.approximateNumberOfMessages, 1);
      assert.equal(s.approximateNumberOfMessagesNotVisible, 1);
      assert.equal(s.approximateNumberOfMessagesDelayed, 1);
      assert.equal(s.sent, 3);
      assert.equal(s.received, 1);
    });

    it("reports the age of the oldest message, skipping one received three times or more", async () => {
      const url = await createQueue("std", { VisibilityTimeout: "1" });
      assert.equal(sqs.stats(nameOf(url)).approximateAgeOfOldestMessageSeconds, 0);
      await send(url, "old");
      advance(10_000);
      assert.equal(sqs.stats(nameOf(url)).approximateAgeOfOldestMessageSeconds, 10);
      await send(url, "new");
      advance(5_000);
      for (let i = 0; i < 3; i++) {
        await receive(url, 1);
        advance(1_000);
      }
      // "old" was received three times: the age is the next message's.
      assert.equal(sqs.stats(nameOf(url)).approximateAgeOfOldestMessageSeconds, 8);
    });

    it("drops messages older than MessageRetentionPeriod", async () => {
      const url = await createQueue("std", { MessageRetentionPeriod: "60" });
      await send(url, "m");
      advance(59_999);
      assert.equal(sqs.stats(nameOf(url)).approximateNumberOfMessages, 1);
      advance(1);
      assert.deepEqual(await receive(url), []);
      assert.equal(sqs.stats(nameOf(url)).expired, 1);
    });
  });
});

describe("local SQS long polling (real clock)", () => {
  let sqs: LocalSqs;
  let client: SQSClient;
  let url: string;

  before(async () => {
    sqs = await startLocalSqs();
    client = localSqsClient(sqs.endpoint, sqs.region, { accessKeyId: "AKIDTEST", maxAttempts: 1 });
  });
  beforeEach(async () => {
    url = (
      await client.send(
        new CreateQueueCommand({ QueueName: `poll-${Math.random().toString(36).slice(2)}.fifo`, Attributes: { FifoQueue: "true" } }),
      )
    ).QueueUrl as string;
  });
  after(async () => {
    client.destroy();
    await sqs.stop();
  });

  it("answers a 20-second long poll as soon as a message arrives", async function () {
    // A poll that waited out its 20 s would pass this test's own timeout: the answer must come with the message.
    this.timeout(10_000);
    const poll = client.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 20 }));
    await new Promise((r) => setTimeout(r, 50));
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "now", MessageGroupId: "g", MessageDeduplicationId: "1" }));
    assert.deepEqual(
      (await poll).Messages?.map((m) => m.Body),
      ["now"],
    );
  });

  it("answers a long poll when the group it waits on is unblocked by a delete", async function () {
    this.timeout(10_000);
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "1", MessageGroupId: "g", MessageDeduplicationId: "1" }));
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "2", MessageGroupId: "g", MessageDeduplicationId: "2" }));
    const [first] = (await client.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages ?? [];
    const poll = client.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 20 }));
    await new Promise((r) => setTimeout(r, 50));
    await client.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: first.ReceiptHandle }));
    assert.deepEqual(
      (await poll).Messages?.map((m) => m.Body),
      ["2"],
    );
  });

  it("loses nothing to an aborted long poll", async () => {
    const abort = new AbortController();
    const poll = client.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 20 }), { abortSignal: abort.signal });
    await new Promise((r) => setTimeout(r, 50));
    abort.abort();
    await assert.rejects(poll);
    await client.send(new SendMessageCommand({ QueueUrl: url, MessageBody: "kept", MessageGroupId: "g", MessageDeduplicationId: "1" }));
    const got =
      (await client.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ["ApproximateReceiveCount"] })))
        .Messages ?? [];
    assert.deepEqual(
      got.map((m) => [m.Body, m.Attributes?.ApproximateReceiveCount]),
      [["kept", "1"]],
    );
  });

  it("answers an open long poll with no messages when the emulator stops", async () => {
    const own = await startLocalSqs();
    const c = localSqsClient(own.endpoint, own.region, { maxAttempts: 1 });
    const q = (await c.send(new CreateQueueCommand({ QueueName: "q" }))).QueueUrl;
    const poll = c.send(new ReceiveMessageCommand({ QueueUrl: q, WaitTimeSeconds: 20 }));
    await new Promise((r) => setTimeout(r, 50));
    await own.stop();
    assert.equal((await poll).Messages, undefined);
    c.destroy();
  });
});
