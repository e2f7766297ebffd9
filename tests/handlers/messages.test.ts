/**
 * Messages: private delivery to every device, history paging, idempotent retries and TTL
 * filtering, against DynamoDB Local and the fake `@connections` server.
 */
import { strict as assert } from "node:assert";
import { PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";

describe("handlers: private messages, history, idempotency, TTL filtering", () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "messages" });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const stored = async (conversationId: string) =>
    (
      await h.doc.send(
        new QueryCommand({
          TableName: h.tables.messages,
          KeyConditionExpression: "conversationId = :c",
          ExpressionAttributeValues: { ":c": conversationId },
        }),
      )
    ).Items ?? [];
  const ofType = (c: TestConnection, type: string) => h.frames(c).filter((f) => f.type === type);

  it("private reaches every device of the recipient and the sender's other devices; deliveredTo counts recipient connections", async () => {
    const a1 = await h.join("pa", "pm-1", "Pa");
    const a2 = await h.join("pa", "pm-1", "Pa");
    const b1 = await h.join("pb", "pm-2");
    const b2 = await h.join("pb", "pm-3");
    const bystander = await h.join("pc", "pm-1");
    const reply = await h.send(a1, { type: "private", toUserId: "pb", message: "psst", clientMessageId: "m1" });
    assert.equal(reply?.type, "delivered");
    assert.equal(reply?.deliveredTo, 2);
    assert.equal(reply?.clientMessageId, "m1");
    for (const c of [b1, b2, a2]) {
      const got = ofType(c, "private");
      assert.equal(got.length, 1, `device ${c.connectionId}`);
      assert.deepEqual(
        { ...got[0], sentAt: undefined },
        {
          type: "private",
          messageId: reply?.messageId,
          fromUserId: "pa",
          fromUsername: "Pa",
          toUserId: "pb",
          message: "psst",
          clientMessageId: "m1",
          sentAt: undefined,
        },
      );
    }
    assert.deepEqual(ofType(a1, "private"), [], "the sending connection gets `delivered`, not a copy");
    assert.deepEqual(ofType(bystander, "private"), []);
    assert.equal((await stored("dm#pa#pb")).length, 1);
  });

  it("private to oneself is BAD_REQUEST; to a user with no connection it is stored and deliveredTo is 0", async () => {
    const a = await h.join("qa", "q-1");
    assert.equal((await h.send(a, { type: "private", toUserId: "qa", message: "me" }))?.code, "BAD_REQUEST");
    assert.equal((await h.send(a, { type: "private", toUserId: "bad#id", message: "x" }))?.code, "BAD_REQUEST");
    const reply = await h.send(a, { type: "private", toUserId: "offline-user", message: "later" });
    assert.equal(reply?.deliveredTo, 0);
    assert.equal((await stored("dm#offline-user#qa")).length, 1);
  });

  it("a chat retry with the same clientMessageId stores one message and returns the original to the sender only", async () => {
    const a = await h.join("ra", "idem-1");
    const b = await h.join("rb", "idem-1");
    assert.equal(await h.send(a, { type: "chat", message: "once", clientMessageId: "cm-1" }), undefined);
    const first = ofType(b, "chat")[0];
    h.api.clearFrames();
    const retry = await h.send(a, { type: "chat", message: "once", clientMessageId: "cm-1" });
    assert.deepEqual(retry, first, "the retry gets the original frame back");
    assert.deepEqual(ofType(b, "chat"), [], "nothing is broadcast again");
    assert.deepEqual(ofType(a, "chat"), []);
    assert.equal((await stored("room#idem-1")).length, 1);
    // Another user may use the same clientMessageId independently.
    assert.equal(await h.send(b, { type: "chat", message: "mine", clientMessageId: "cm-1" }), undefined);
    assert.equal((await stored("room#idem-1")).length, 2);
  });

  it("a private retry with the same clientMessageId stores nothing new and answers with the original messageId", async () => {
    const a = await h.join("sa", "s-1");
    const b = await h.join("sb", "s-2");
    const first = await h.send(a, { type: "private", toUserId: "sb", message: "hi", clientMessageId: "pm-7" });
    h.api.clearFrames();
    const retry = await h.send(a, { type: "private", toUserId: "sb", message: "hi", clientMessageId: "pm-7" });
    assert.deepEqual(retry, { type: "delivered", messageId: first?.messageId, clientMessageId: "pm-7", deliveredTo: 0 });
    assert.deepEqual(ofType(b, "private"), []);
    assert.equal((await stored("dm#sa#sb")).length, 1);
  });

  it("a clientMessageId identifies one message of one sender in one conversation: reused elsewhere, it is another message", async () => {
    const a = await h.join("xa", "xconv-1");
    const b = await h.join("xb", "xconv-1");
    await h.send(a, { type: "join", roomId: "xconv-2" });
    await h.send(b, { type: "join", roomId: "xconv-2" });
    const dm = await h.send(a, { type: "private", toUserId: "xb", message: "private text", clientMessageId: "same-id" });
    assert.equal(dm?.type, "delivered");
    h.api.clearFrames();
    // The same id in a room: a new room message, broadcast with its own text (issue 14, item 5).
    assert.equal(await h.send(a, { type: "chat", roomId: "xconv-1", message: "room text", clientMessageId: "same-id" }), undefined);
    const inRoom = ofType(b, "chat");
    assert.deepEqual(
      inRoom.map((f) => [f.roomId, f.message]),
      [["xconv-1", "room text"]],
    );
    assert.notEqual(inRoom[0].messageId, dm?.messageId);
    // And in a second room: another message again.
    assert.equal(await h.send(a, { type: "chat", roomId: "xconv-2", message: "second room", clientMessageId: "same-id" }), undefined);
    assert.deepEqual(
      ofType(b, "chat").map((f) => [f.roomId, f.message]),
      [
        ["xconv-1", "room text"],
        ["xconv-2", "second room"],
      ],
    );
    assert.deepEqual(
      (await stored("room#xconv-1")).map((m) => m.message),
      ["room text"],
    );
    assert.deepEqual(
      (await stored("room#xconv-2")).map((m) => m.message),
      ["second room"],
    );
    // Within one conversation the id still deduplicates: the retry gets the original back.
    const retry = await h.send(a, { type: "chat", roomId: "xconv-1", message: "room text", clientMessageId: "same-id" });
    assert.equal(retry?.messageId, inRoom[0].messageId);
    assert.equal((await stored("room#xconv-1")).length, 1);
  });

  it("an expired idempotency record (over 24 h, not yet deleted by TTL) no longer blocks the clientMessageId", async () => {
    const a = await h.join("ia", "idem-exp");
    await h.doc.send(
      new PutCommand({
        TableName: h.tables.messages,
        // The record's key names sender, conversation and id (data.ts idempotencyKey).
        Item: {
          conversationId: "idem#ia#room#idem-exp#old-1",
          sk: "idem",
          messageId: "m-old",
          sentAt: new Date(0).toISOString(),
          target: "room#idem-exp",
          messageSk: "0000000000000#m-old",
          expiresAt: Math.floor(Date.now() / 1000) - 1,
        },
      }),
    );
    assert.equal(await h.send(a, { type: "chat", message: "new again", clientMessageId: "old-1" }), undefined);
    const chats = ofType(a, "chat");
    assert.equal(chats.length, 1);
    assert.notEqual(chats[0].messageId, "m-old");
    assert.equal((await stored("room#idem-exp")).length, 1);
  });

  it("history pages a room newest-first in pages returned oldest..newest, with a cursor while more remain", async () => {
    const a = await h.join("ta", "hist-1");
    for (let i = 1; i <= 5; i++) {
      assert.equal(await h.send(a, { type: "chat", message: `m${i}` }), undefined);
      await new Promise((r) => setTimeout(r, 2));
    }
    const p1 = await h.send(a, { type: "history", roomId: "hist-1", limit: 2 });
    assert.deepEqual(
      (p1?.messages as Array<{ message: string }>).map((m) => m.message),
      ["m4", "m5"],
    );
    assert.equal(p1?.roomId, "hist-1");
    assert.equal(typeof p1?.next, "string");
    const p2 = await h.send(a, { type: "history", roomId: "hist-1", limit: 2, before: p1?.next });
    assert.deepEqual(
      (p2?.messages as Array<{ message: string }>).map((m) => m.message),
      ["m2", "m3"],
    );
    const p3 = await h.send(a, { type: "history", roomId: "hist-1", limit: 2, before: p2?.next });
    assert.deepEqual(
      (p3?.messages as Array<{ message: string }>).map((m) => m.message),
      ["m1"],
    );
    assert.equal(p3?.next, undefined);
    const all = await h.send(a, { type: "history", roomId: "hist-1" });
    assert.equal((all?.messages as unknown[]).length, 5);
    assert.equal(all?.next, undefined, "exactly the remaining messages: no cursor to an empty page");
    const entry = (all?.messages as Array<Record<string, unknown>>)[0];
    assert.deepEqual(Object.keys(entry).sort(), ["message", "messageId", "sentAt", "userId", "username"]);
  });

  it("history of a private conversation is readable from both sides", async () => {
    const a = await h.join("ua", "u-1");
    const b = await h.join("ub", "u-2");
    await h.send(a, { type: "private", toUserId: "ub", message: "one" });
    await h.send(b, { type: "private", toUserId: "ua", message: "two" });
    const fromA = await h.send(a, { type: "history", withUserId: "ub" });
    const fromB = await h.send(b, { type: "history", withUserId: "ua" });
    assert.deepEqual(
      (fromA?.messages as Array<{ message: string }>).map((m) => m.message),
      ["one", "two"],
    );
    assert.deepEqual(fromB?.messages, fromA?.messages);
    assert.equal(fromA?.withUserId, "ub");
    assert.equal((fromA?.messages as Array<{ toUserId: string }>)[0].toUserId, "ub");
  });

  it("history rejects bad requests: non-member room, both or neither target, bad limit, bad cursor, oneself", async () => {
    const a = await h.join("va", "v-1");
    await h.join("vb", "v-secret");
    assert.equal((await h.send(a, { type: "history", roomId: "v-secret" }))?.code, "NOT_A_MEMBER");
    assert.equal((await h.send(a, { type: "history", roomId: "v-1", withUserId: "vb" }))?.code, "BAD_REQUEST");
    assert.equal((await h.send(a, { type: "history" }))?.code, "BAD_REQUEST");
    assert.equal((await h.send(a, { type: "history", roomId: "v-1", limit: 0 }))?.code, "BAD_REQUEST");
    assert.equal((await h.send(a, { type: "history", roomId: "v-1", limit: 101 }))?.code, "BAD_REQUEST");
    assert.equal((await h.send(a, { type: "history", roomId: "v-1", limit: 2.5 }))?.code, "BAD_REQUEST");
    for (const before of [
      "not-base64!",
      Buffer.from('{"sk":"x"}').toString("base64url"),
      Buffer.from("[1]").toString("base64url"),
      "e30",
    ]) {
      assert.equal((await h.send(a, { type: "history", roomId: "v-1", before }))?.code, "BAD_REQUEST", before);
    }
    assert.equal((await h.send(a, { type: "history", withUserId: "va" }))?.code, "BAD_REQUEST");
  });

  it("TTL: expired messages are not returned by history", async () => {
    const a = await h.join("wa", "ttl-1");
    const past = Math.floor(Date.now() / 1000) - 60;
    await h.doc.send(
      new PutCommand({
        TableName: h.tables.messages,
        Item: {
          conversationId: "room#ttl-1",
          sk: "0000000000001#old",
          messageId: "old",
          userId: "wa",
          username: "wa",
          message: "expired",
          sentAt: new Date(1).toISOString(),
          expiresAt: past,
        },
      }),
    );
    await h.send(a, { type: "chat", message: "fresh" });
    const page = await h.send(a, { type: "history", roomId: "ttl-1" });
    assert.deepEqual(
      (page?.messages as Array<{ message: string }>).map((m) => m.message),
      ["fresh"],
    );
  });

  it("TTL: expired memberships are neither delivered to, counted, nor listed as members", async () => {
    const a = await h.join("xa", "ttl-2");
    const ghost = await h.join("xghost", "ttl-2");
    const past = Math.floor(Date.now() / 1000) - 1;
    await h.doc.send(
      new UpdateCommand({
        TableName: h.tables.rooms,
        Key: { roomId: "ttl-2", sk: `c#${ghost.connectionId}` },
        UpdateExpression: "SET expiresAt = :p",
        ExpressionAttributeValues: { ":p": past },
      }),
    );
    h.api.clearFrames();
    await h.send(a, { type: "chat", message: "anyone?" });
    assert.deepEqual(ofType(ghost, "chat"), [], "an expired membership is not delivered to");
    assert.equal(ofType(a, "chat").length, 1);
    const joined = await h.send(a, { type: "join", roomId: "ttl-2" });
    assert.deepEqual(joined?.members, [{ userId: "xa", username: "xa" }]);
    const rooms = (await h.send(a, { type: "rooms" }))?.rooms as Array<{ roomId: string; members: number }>;
    assert.deepEqual(
      rooms.find((r) => r.roomId === "ttl-2"),
      { roomId: "ttl-2", members: 1, unread: 0 },
    );
  });

  it("TTL: a room whose summary has expired (abandoned, not yet deleted by TTL) is not listed", async () => {
    const a = await h.join("za", "ttl-4-live");
    await h.join("zb", "ttl-4-gone");
    await h.doc.send(
      new UpdateCommand({
        TableName: h.tables.rooms,
        Key: { roomId: "ttl-4-gone", sk: "#summary" },
        UpdateExpression: "SET expiresAt = :p",
        ExpressionAttributeValues: { ":p": Math.floor(Date.now() / 1000) - 1 },
      }),
    );
    const rooms = ((await h.send(a, { type: "rooms" }))?.rooms as Array<{ roomId: string }>).map((r) => r.roomId);
    assert.ok(rooms.includes("ttl-4-live"));
    assert.ok(!rooms.includes("ttl-4-gone"));
  });

  it("TTL: frames from a connection whose item has expired are refused (reconnect)", async () => {
    const a = await h.join("exp-self", "ttl-5");
    await h.doc.send(
      new UpdateCommand({
        TableName: h.tables.connections,
        Key: { connectionId: a.connectionId },
        UpdateExpression: "SET expiresAt = :p",
        ExpressionAttributeValues: { ":p": Math.floor(Date.now() / 1000) - 1 },
      }),
    );
    const reply = await h.send(a, { type: "chat", message: "from the past" });
    assert.equal(reply?.code, "NOT_CONNECTED");
    assert.equal((await stored("room#ttl-5")).length, 0);
  });

  it("TTL: an expired connection of the recipient is not delivered to", async () => {
    const a = await h.join("ya", "ttl-3");
    const stale = await h.join("yb", "ttl-3b");
    const live = await h.join("yb", "ttl-3b");
    await h.doc.send(
      new UpdateCommand({
        TableName: h.tables.connections,
        Key: { connectionId: stale.connectionId },
        UpdateExpression: "SET expiresAt = :p",
        ExpressionAttributeValues: { ":p": Math.floor(Date.now() / 1000) - 1 },
      }),
    );
    const reply = await h.send(a, { type: "private", toUserId: "yb", message: "hey" });
    assert.equal(reply?.deliveredTo, 1);
    assert.deepEqual(ofType(stale, "private"), []);
    assert.equal(ofType(live, "private").length, 1);
  });
});
