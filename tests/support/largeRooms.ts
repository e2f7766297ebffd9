/**
 * Support for issue 17's end-to-end tests on the local runtime (tests/handlers/largeRooms.test.ts,
 * tests/long/largeRoomFaults.long.ts): a room of more users than largeRoomUsers is delivered by
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
import { startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "../../local/runtime";
import { localDynamoClient } from "../../local/tables";
import { recordedDynamo, uniquePrefix } from "./globalFixtures";
import { connect, eventually, type TestClient } from "../local/wsClient";

export const ROOM = "big";
export const SHARDS = 3;
export const PER_SHARD = 4;
/** A faulty `deliver` worker (tests/handlers/fixtures/faultyDeliver.ts). */
export const fixture = (name: string) => path.join(__dirname, "..", "handlers", "fixtures", `deliver-${name}.ts`);

export interface Member {
  readonly client: TestClient;
  readonly connectionId: string;
  readonly userId: string;
  readonly shard: number;
}

export async function runtime(label: string, options: LocalRuntimeOptions = {}): Promise<LocalRuntime> {
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

export async function open(rt: LocalRuntime, userId: string, roomId: string): Promise<{ client: TestClient; connectionId: string }> {
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
export async function largeRoom(rt: LocalRuntime): Promise<{ sender: Member; members: Member[] }> {
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
export async function drained(rt: LocalRuntime): Promise<void> {
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
export function copies(m: Member, type: string, messageId: string): number {
  return m.client.frames.filter((f) => f.json?.type === type && f.json?.messageId === messageId).length;
}

export async function everyoneGets(members: readonly Member[], type: string, messageId: string, timeoutMs = 60_000): Promise<void> {
  await Promise.all(
    members.map((m) =>
      m.client.next((f) => f.json?.type === type && f.json?.messageId === messageId, timeoutMs, `${type} ${messageId} at ${m.userId}`),
    ),
  );
}

export async function closeAll(rt: LocalRuntime | undefined, members: readonly Member[]): Promise<void> {
  await Promise.all(members.map((m) => m.client.close().catch(() => undefined)));
  await rt?.stop();
}

/**
 * One chat under a fault; every member ends with it, at most `attempts` times (the documented
 * duplicate: a retry after a worker died posts to the whole shard again).
 */
export async function survives(
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
