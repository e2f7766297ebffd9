/**
 * Issue 17, end to end on the local runtime: a room of more users than largeRoomUsers is delivered by
 * the `deliver` workers through the delivery queue (the local SQS, FIFO, its dead-letter queue and
 * the event source mapping), with real WebSocket clients. Members sit in several shards (their items
 * written into the shard partitions, as sharded joins place them). Each case ends when every member
 * has the frame and the queue is empty; duplicates are allowed only where docs/protocol.md says
 * ("Delivery in large rooms": a retried shard is posted again). No timed assertion: bounded waits.
 */
import * as assert from "node:assert/strict";
import { DynamoDBDocumentClient, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import * as path from "node:path";
import { CONNECTION_LIFETIME_SECONDS, MEMBER_PREFIX, SUMMARY_SK, memberPartition } from "../../handlers/lib/data";
import { DELIVERY_MAX_RECEIVE_COUNT, startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "../../local/runtime";
import { localDynamoClient } from "../../local/tables";
import { recordedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, type TestClient } from "../local/wsClient";

const ROOM = "big";
const SHARDS = 3;
const PER_SHARD = 4;
const fixture = (name: string) => path.join(__dirname, "fixtures", `deliver-${name}.ts`);

interface Member {
  readonly client: TestClient;
  readonly connectionId: string;
  readonly userId: string;
  readonly shard: number;
}

async function runtime(label: string, options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
  const dynamo = await recordedDynamo();
  return startLocalRuntime({
    dynamodbEndpoint: dynamo.endpoint,
    tablePrefix: uniquePrefix(label),
    quiet: true,
    // largeRoomUsers 3: the room below is large. fanoutConcurrency 1: a worker posts one member per
    // slice, so a fault "after 2 posts" lands mid-shard.
    settings: { rateLimitPerMinute: 1000, largeRoomUsers: 3, roomShardSize: 2, fanoutConcurrency: 1, deliveryPostsPerSecond: 1000 },
    functionTimeoutMs: { deliver: 4000 },
    // Cold starts before the first job, not inside its visibility timeout.
    warm: true,
    // A failed job comes back after 12 s instead of 6 x 4 s (the stack's factor): still longer than
    // the worker's timeout plus a new instance's cold start on a busy machine, so a job is never
    // held by two workers at once (a shorter one let a third copy through).
    deliveryVisibilityTimeoutSeconds: 12,
    ...options,
  });
}

async function open(rt: LocalRuntime, userId: string, roomId: string): Promise<{ client: TestClient; connectionId: string }> {
  const before = rt.connectionIds();
  const token = await rt.mintToken(userId, userId);
  const client = await connect(`${rt.endpoint}?${new URLSearchParams({ roomId, token })}`);
  const connectionId = await eventually(() => rt.connectionIds().find((id) => !before.includes(id)), 10_000, "the new connection id");
  return { client, connectionId };
}

/**
 * The sender joins the room through `$connect`; the others connect to rooms of their own and their
 * member items are written into shards 0..SHARDS-1 of the room, PER_SHARD each, with the summary's
 * users and shards.
 */
async function largeRoom(rt: LocalRuntime): Promise<{ sender: Member; members: Member[] }> {
  const doc = DynamoDBDocumentClient.from(localDynamoClient(rt.dynamodbEndpoint));
  try {
    const s = await open(rt, "sender", ROOM);
    const sender: Member = { ...s, userId: "sender", shard: 0 };
    const members: Member[] = [];
    for (let shard = 0; shard < SHARDS; shard++) {
      for (let i = 0; i < PER_SHARD; i++) {
        const userId = `m${shard}-${i}`;
        const c = await open(rt, userId, `home-${userId}`);
        const nowMs = Date.now();
        await doc.send(
          new PutCommand({
            TableName: rt.tableNames.rooms,
            Item: {
              roomId: memberPartition(ROOM, shard),
              sk: MEMBER_PREFIX + c.connectionId,
              connectionId: c.connectionId,
              userId,
              username: userId,
              joinedAt: nowMs,
              expiresAt: Math.floor(nowMs / 1000) + CONNECTION_LIFETIME_SECONDS,
            },
          }),
        );
        members.push({ ...c, userId, shard });
      }
    }
    await doc.send(
      new UpdateCommand({
        TableName: rt.tableNames.rooms,
        Key: { roomId: ROOM, sk: SUMMARY_SK },
        UpdateExpression: "ADD #users :n SET shards = :s",
        ExpressionAttributeNames: { "#users": "users" },
        ExpressionAttributeValues: { ":n": members.length, ":s": SHARDS },
      }),
    );
    return { sender, members };
  } finally {
    doc.destroy();
  }
}

/** Waits (bounded) until the delivery queue holds nothing, visible or in flight. */
async function drained(rt: LocalRuntime): Promise<void> {
  await eventually(
    () => {
      const q = rt.stats.deliveryQueue().queue;
      return q.approximateNumberOfMessages + q.approximateNumberOfMessagesNotVisible + q.approximateNumberOfMessagesDelayed === 0
        ? true
        : undefined;
    },
    60_000,
    "the delivery queue to drain",
  );
}

/** Frames of `type` with this messageId each member got, once the queue has drained (those already taken by nextOf not counted). */
function copies(m: Member, type: string, messageId: string): number {
  return m.client.frames.filter((f) => f.json?.type === type && f.json?.messageId === messageId).length;
}

async function everyoneGets(members: readonly Member[], type: string, messageId: string, timeoutMs = 60_000): Promise<void> {
  await Promise.all(
    members.map((m) =>
      m.client.next((f) => f.json?.type === type && f.json?.messageId === messageId, timeoutMs, `${type} ${messageId} at ${m.userId}`),
    ),
  );
}

async function closeAll(rt: LocalRuntime | undefined, members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.client.close().catch(() => undefined)));
  await rt?.stop();
}

describe("large rooms: delivery through the queue (local runtime, real sockets)", function () {
  this.timeout(180_000);

  describe("without faults", () => {
    let rt: LocalRuntime;
    let sender: Member;
    let members: Member[];
    before(async () => {
      rt = await runtime("large");
      ({ sender, members } = await largeRoom(rt));
    });
    after(async () => closeAll(rt, [sender, ...members]));

    it("chat reaches every member exactly once; the sender's route answers with the frame", async () => {
      const reply = await sender.client.request({ type: "chat", roomId: ROOM, message: "hello crowd", clientMessageId: "lr-1" }, "chat");
      assert.equal(reply.message, "hello crowd");
      const messageId = String(reply.messageId);
      await everyoneGets(members, "chat", messageId);
      await drained(rt);
      for (const m of members) assert.equal(copies(m, "chat", messageId), 0, `${m.userId}: once`);
      assert.equal(copies(sender, "chat", messageId), 0, "the sender had its answer, not a second copy");
      assert.equal(rt.stats.deliveryQueue().deadLetter.approximateNumberOfMessages, 0);
      assert.equal(rt.stats.deliveryQueue().queue.sent, SHARDS, "one job per shard");
    });

    it("one sender's messages reach every member in the order they were sent", async () => {
      const ids: string[] = [];
      for (let i = 0; i < 3; i++) {
        const reply = await sender.client.request({ type: "chat", roomId: ROOM, message: `n${i}` }, "chat");
        ids.push(String(reply.messageId));
      }
      for (const m of members) {
        const got: string[] = [];
        for (let i = 0; i < 3; i++) got.push(String((await m.client.nextOf("chat", 60_000)).messageId));
        assert.deepEqual(got, ids, m.userId);
      }
      await drained(rt);
    });

    it("edit, react and delete reach every member exactly once", async () => {
      const chat = await sender.client.request({ type: "chat", roomId: ROOM, message: "to change" }, "chat");
      const messageId = String(chat.messageId);
      await everyoneGets(members, "chat", messageId);
      for (const [frame, type] of [
        [{ type: "edit", roomId: ROOM, messageId, message: "changed" }, "edited"],
        [{ type: "react", roomId: ROOM, messageId, emoji: "🎉" }, "reaction"],
        [{ type: "delete", roomId: ROOM, messageId }, "deleted"],
      ] as const) {
        const reply = await sender.client.request(frame, type);
        assert.equal(reply.messageId, messageId);
        await everyoneGets(members, type, messageId);
        await drained(rt);
        for (const m of members) assert.equal(copies(m, type, messageId), 0, `${type} ${m.userId}: once`);
      }
    });
  });

  /**
   * One chat under a fault; every member ends with it, at most `attempts` times (the documented
   * retry of a shard posts to the whole shard again).
   */
  async function survives(
    label: string,
    attempts: number,
    options: LocalRuntimeOptions,
    check?: (rt: LocalRuntime) => void,
  ): Promise<void> {
    const rt = await runtime(label, options);
    let all: Member[] = [];
    try {
      const { sender, members } = await largeRoom(rt);
      all = [sender, ...members];
      const reply = await sender.client.request({ type: "chat", roomId: ROOM, message: `under ${label}` }, "chat");
      const messageId = String(reply.messageId);
      await everyoneGets(members, "chat", messageId, 120_000);
      await drained(rt);
      for (const m of members) assert.ok(copies(m, "chat", messageId) <= attempts - 1, `${m.userId}: at most ${attempts} copies`);
      assert.equal(rt.stats.deliveryQueue().deadLetter.approximateNumberOfMessages, 0, "nothing in the dead-letter queue");
      check?.(rt);
    } finally {
      await closeAll(rt, all);
    }
  }

  /**
   * The four faults run at once, each in its own runtime (its own queue, workers and tables): most
   * of a case is waiting for a visibility timeout, so together they take the longest one's time.
   * Each case's assertions are its own `it` below.
   */
  describe("under faults (four runtimes at once)", () => {
    let throttled = 0;
    const cases: Record<string, () => Promise<void>> = {
      kill: () =>
        survives("kill", 2, { functionOverrides: { deliver: fixture("crash") } }, (rt) => {
          assert.ok(rt.stats.functions.deliver.crashes >= 1, "a worker instance died");
          assert.ok(rt.stats.deliveryQueue().mapping.failedInvocations >= 1);
        }),
      twice: () =>
        survives("twice", 3, { functionOverrides: { deliver: fixture("throw") } }, (rt) => {
          assert.ok(rt.stats.deliveryQueue().mapping.recordsReportedFailed >= 2 * SHARDS, "every shard was reported failed twice");
        }),
      hang: () =>
        survives("hang", 2, { functionOverrides: { deliver: fixture("hang") } }, (rt) => {
          assert.ok(rt.stats.functions.deliver.timeouts >= 1);
        }),
      throttle: () =>
        survives(
          "throttle",
          DELIVERY_MAX_RECEIVE_COUNT,
          {
            // The first 40 posts answer LimitExceededException: more than the fan-out's own retries, so
            // some shards are also handed back to the queue.
            managementFault: (call) => (call.method === "POST" && throttled++ < 40 ? "LimitExceededException" : undefined),
          },
          () => assert.ok(throttled >= 40),
        ),
    };
    const running = new Map<string, Promise<void>>();
    before(() => {
      for (const [label, run] of Object.entries(cases)) {
        const p = run();
        p.catch(() => undefined); // reported by its own `it`
        running.set(label, p);
      }
    });
    after(async () => {
      await Promise.allSettled(running.values());
    });

    it("a worker killed mid-shard: the job comes back and every member gets the message", () => running.get("kill"));

    it("a shard that fails twice is delivered by its third attempt", () => running.get("twice"));

    it("a worker that runs past its timeout: the job comes back and every member gets the message", () => running.get("hang"));

    it("a throttled @connections (429 for a while): retried with backoff, then by the queue; every member gets the message", () =>
      running.get("throttle"));
  });
});
