/**
 * Rooms and presence, end to end: the real factories on DynamoDB Local, frames delivered through
 * the real ApiGatewayManagementApiClient to the fake `@connections` server.
 */
import { strict as assert } from "node:assert";
import { BatchWriteCommand, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { createHarness, messageEvent, type Harness } from "../support/handlerHarness";

describe("handlers: connect, join, leave, presence, rooms, ping, $default, $disconnect", () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "rooms" });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const presence = (frames: Array<Record<string, unknown>>) => frames.filter((f) => f.type === "presence");

  it("$connect registers the connection with a 2 h + 5 min TTL and joins the default room", async () => {
    const before = Math.floor(Date.now() / 1000);
    const conn = await h.join("alice-connect");
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: conn.connectionId } }))).Item;
    assert.ok(item);
    assert.equal(item.userId, "alice-connect");
    assert.equal(item.currentRoom, "general");
    assert.deepEqual([...(item.rooms as Set<string>)], ["general"]);
    assert.ok(item.expiresAt >= before + 7500 && item.expiresAt <= before + 7502, `expiresAt ${item.expiresAt - before}s from now`);
    const member = (
      await h.doc.send(new GetCommand({ TableName: h.tables.rooms, Key: { roomId: "general", sk: `c#${conn.connectionId}` } }))
    ).Item;
    assert.equal(member?.userId, "alice-connect");
    assert.equal(member?.expiresAt, item.expiresAt);
  });

  it("$connect with an invalid roomId rejects the handshake with 400 and stores nothing", async () => {
    const { result, conn } = await h.connect("mallory", { roomId: "bad room!" });
    assert.equal(result.statusCode, 400);
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: conn.connectionId } }))).Item;
    assert.equal(item, undefined);
  });

  it("$connect without authorizer context fails with 500 (handshake rejected)", async () => {
    const event = {
      requestContext: {
        routeKey: "$connect",
        eventType: "CONNECT" as const,
        connectionId: "no-auth-conn",
        requestId: "r1",
        connectedAt: Date.now(),
      },
      isBase64Encoded: false,
    };
    const result = await h.handler("connect")(event as never);
    assert.equal(result.statusCode, 500);
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: "no-auth-conn" } }))).Item;
    assert.equal(item, undefined);
  });

  it("two devices of one user connecting at the same moment: the user is announced, never missed", async () => {
    const watcher = await h.join("race-watch", "race-1");
    h.api.clearFrames();
    const results = await Promise.all([h.connect("racer", { roomId: "race-1" }), h.connect("racer", { roomId: "race-1" })]);
    assert.deepEqual(
      results.map((r) => r.result.statusCode),
      [200, 200],
    );
    // Usually once; twice only in the documented race (docs/architecture.md, "Races").
    const events = presence(h.frames(watcher));
    assert.ok(events.length === 1 || events.length === 2, `${events.length} joined events`);
    for (const e of events)
      assert.deepEqual(e, { type: "presence", event: "joined", roomId: "race-1", userId: "racer", username: "racer" });
  });

  it("$connect announces `joined` to the others in the room, never posting to the connecting connection", async () => {
    const a = await h.join("ann", "lobby-1", "Ann");
    const b = await h.join("bob", "lobby-1", "Bob");
    assert.deepEqual(presence(h.frames(a)), [{ type: "presence", event: "joined", roomId: "lobby-1", userId: "bob", username: "Bob" }]);
    assert.equal(h.api.calls.filter((c) => c.connectionId === b.connectionId).length, 0);
    assert.ok(h.api.isOpen(b.connectionId), "the connecting connection must not be cleaned up");
  });

  it("a user's second device joining is not announced: presence counts users, not connections", async () => {
    const a = await h.join("carol", "lobby-2");
    await h.join("dave", "lobby-2");
    h.api.clearFrames();
    await h.join("dave", "lobby-2");
    assert.deepEqual(presence(h.frames(a)), []);
    const reply = await h.send(a, { type: "join", roomId: "lobby-2" });
    assert.equal(reply?.type, "joined");
    assert.deepEqual(
      (reply?.members as Array<{ userId: string }>).map((m) => m.userId),
      ["carol", "dave"],
    );
  });

  it("a join reply stays deliverable in a room of 700 users with the longest ids and names (API Gateway's 128 KB)", async () => {
    const roomId = "crowded-3";
    const now = Date.now();
    const users = Array.from({ length: 700 }, (_, i) => ({
      userId: `u${String(i).padStart(4, "0")}-`.padEnd(128, "x"),
      username: `N${i}`.padEnd(64, "n"),
    }));
    for (let i = 0; i < users.length; i += 25) {
      const items = users.slice(i, i + 25).map((u, j) => ({
        PutRequest: {
          Item: {
            roomId,
            sk: `c#crowd${String(i + j).padStart(12, "0")}`,
            connectionId: `crowd${String(i + j).padStart(12, "0")}`,
            ...u,
            joinedAt: now - 60_000 + i + j,
            expiresAt: Math.floor(now / 1000) + 3600,
          },
        },
      }));
      await h.doc.send(new BatchWriteCommand({ RequestItems: { [h.tables.rooms]: items } }));
    }
    // Their connections are open, so the joiner's announcement reaches them (no 410 clean-up to wait for).
    for (let i = 0; i < users.length; i++) h.api.open(`crowd${String(i).padStart(12, "0")}`);
    const c = await h.join("crowd-late", "home-crowd");
    const reply = await h.send(c, { type: "join", roomId });
    assert.equal(reply?.type, "joined");
    const r = reply as { members: unknown[]; memberCount: number; membersTruncated?: boolean };
    assert.ok(Buffer.byteLength(JSON.stringify(reply), "utf8") <= 128 * 1024, `${Buffer.byteLength(JSON.stringify(reply), "utf8")} bytes`);
    assert.equal(r.memberCount, 701);
    assert.equal(r.membersTruncated, true);
    assert.ok(r.members.length > 100 && r.members.length < 701, `${r.members.length} members listed`);
  });

  it("join replies with the distinct members and announces the joiner to the room", async () => {
    const a = await h.join("erin", "home-3");
    const b = await h.join("frank", "other-3", "Frank");
    const reply = await h.send(b, { type: "join", roomId: "home-3" });
    assert.deepEqual(reply, {
      type: "joined",
      roomId: "home-3",
      members: [
        { userId: "erin", username: "erin" },
        { userId: "frank", username: "Frank" },
      ],
      memberCount: 2,
      // Issue 18: the joiner's unread messages in the room (none stored); no read position yet.
      unread: 0,
    });
    assert.deepEqual(presence(h.frames(a)), [{ type: "presence", event: "joined", roomId: "home-3", userId: "frank", username: "Frank" }]);
    assert.deepEqual(presence(h.frames(b)), [], "the joiner gets its reply, not its own presence event");
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: b.connectionId } }))).Item;
    assert.equal(item?.currentRoom, "home-3");
    assert.deepEqual([...(item?.rooms as Set<string>)].sort(), ["home-3", "other-3"]);
  });

  it("join with an invalid roomId answers BAD_REQUEST", async () => {
    const a = await h.join("gina", "g-4");
    const reply = await h.send(a, { type: "join", roomId: "no spaces" });
    assert.equal(reply?.type, "error");
    assert.equal(reply?.code, "BAD_REQUEST");
    assert.equal(reply?.requestType, "join");
  });

  it("leave announces `left` only when the user's last connection leaves", async () => {
    const watcher = await h.join("hank", "l-5");
    const i1 = await h.join("ivy", "l-5", "Ivy");
    const i2 = await h.join("ivy", "l-5", "Ivy");
    h.api.clearFrames();
    assert.deepEqual(await h.send(i1, { type: "leave", roomId: "l-5" }), { type: "left", roomId: "l-5" });
    assert.deepEqual(presence(h.frames(watcher)), [], "ivy is still there on another device");
    assert.deepEqual(await h.send(i2, { type: "leave", roomId: "l-5" }), { type: "left", roomId: "l-5" });
    assert.deepEqual(presence(h.frames(watcher)), [{ type: "presence", event: "left", roomId: "l-5", userId: "ivy", username: "Ivy" }]);
  });

  it("leave of a room not joined answers NOT_A_MEMBER", async () => {
    const a = await h.join("jack", "j-6");
    const reply = await h.send(a, { type: "leave", roomId: "elsewhere" });
    assert.equal(reply?.code, "NOT_A_MEMBER");
  });

  it("chat without roomId goes to the room joined most recently, and reaches every member, sender included", async () => {
    const a = await h.join("kim", "first-7");
    const b = await h.join("lee", "second-7");
    await h.send(a, { type: "join", roomId: "second-7" });
    h.api.clearFrames();
    const reply = await h.send(a, { type: "chat", message: "hello room" });
    assert.equal(reply, undefined, "the sender's confirmation is the broadcast");
    for (const c of [a, b]) {
      const chats = h.frames(c).filter((f) => f.type === "chat");
      assert.equal(chats.length, 1);
      assert.equal(chats[0].roomId, "second-7");
      assert.equal(chats[0].message, "hello room");
      assert.equal(chats[0].userId, "kim");
      assert.match(String(chats[0].messageId), /^[0-9a-f-]{36}$/);
    }
  });

  it("chat to a room the connection has not joined answers NOT_A_MEMBER and stores nothing", async () => {
    const a = await h.join("mia", "m-8");
    await h.join("ned", "private-8");
    const reply = await h.send(a, { type: "chat", roomId: "private-8", message: "let me in" });
    assert.equal(reply?.code, "NOT_A_MEMBER");
    const stored = await h.doc.send(
      new QueryCommand({
        TableName: h.tables.messages,
        KeyConditionExpression: "conversationId = :c",
        ExpressionAttributeValues: { ":c": "room#private-8" },
      }),
    );
    assert.equal(stored.Count, 0);
  });

  it("chat validation: empty message BAD_REQUEST, over maxMessageBytes TOO_LARGE (UTF-8 bytes), bad clientMessageId BAD_REQUEST", async () => {
    const a = await h.join("olga", "o-9");
    assert.equal((await h.send(a, { type: "chat", message: "" }))?.code, "BAD_REQUEST");
    assert.equal((await h.send(a, { type: "chat", message: 42 }))?.code, "BAD_REQUEST");
    const big = await h.send(a, { type: "chat", message: "é".repeat(2049), clientMessageId: "c-1" });
    assert.equal(big?.code, "TOO_LARGE");
    assert.equal(big?.clientMessageId, "c-1");
    assert.equal(await h.send(a, { type: "chat", message: "é".repeat(2048) }), undefined, "4096 bytes is allowed");
    assert.equal((await h.send(a, { type: "chat", message: "x", clientMessageId: "has space" }))?.code, "BAD_REQUEST");
  });

  it("extra fields are ignored and __proto__ keys pollute nothing", async () => {
    const a = await h.join("pat", "p-10");
    const reply = await h.send(
      a,
      '{"type":"chat","message":"proto","extra":1,"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
    );
    assert.equal(reply, undefined);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    const chat = h.frames(a).find((f) => f.type === "chat");
    assert.deepEqual(Object.keys(chat ?? {}).sort(), ["message", "messageId", "roomId", "sentAt", "type", "userId", "username"]);
  });

  it("rooms lists active rooms with distinct user counts from the directory index", async () => {
    const a = await h.join("quinn", "count-11");
    await h.join("quinn", "count-11");
    await h.join("rita", "count-11");
    const reply = await h.send(a, { type: "rooms" });
    const rooms = reply?.rooms as Array<{ roomId: string; members: number }>;
    assert.deepEqual(
      rooms.find((r) => r.roomId === "count-11"),
      // Issue 18: a room this connection has joined carries the user's unread count.
      { roomId: "count-11", members: 2, unread: 0 },
    );
    const call = h.reports.filter((r) => r.function === "rooms").pop();
    // One Query on the sparse index; the connections table is only touched by the rate-limit
    // updates, the connection's and the user's (each two when the frame opens a new minute window);
    // never a Scan, never member reads. Issue 18: one Query of the user's read positions, one
    // COUNT Query per room joined or read (here count-11 only).
    const calls = call?.dynamoCalls.map((c) => `${c.table}:${c.action}:${c.index ?? ""}`) ?? [];
    assert.deepEqual(
      calls.filter((c) => !c.startsWith("connections:dynamodb:UpdateItem")),
      ["rooms:dynamodb:Query:directory", "messages:dynamodb:Query:", "messages:dynamodb:Query:"],
    );
    assert.ok(calls.length <= 7);
  });

  it("a base64-encoded frame (isBase64Encoded) is decoded before routing", async () => {
    const a = await h.join("b64", "b64-1");
    const event = messageEvent(a, "ping", Buffer.from('{"type":"ping"}').toString("base64"));
    const result = await h.handler("ping")({ ...event, isBase64Encoded: true });
    assert.deepEqual(JSON.parse(String(result.body)), { type: "pong" });
  });

  it("ping answers pong and refreshes lastSeenAt", async () => {
    const a = await h.join("sam", "s-12");
    const before = Date.now();
    assert.deepEqual(await h.send(a, { type: "ping" }), { type: "pong" });
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: a.connectionId } }))).Item;
    assert.ok(Number(item?.lastSeenAt) >= before);
  });

  it("$default answers BAD_JSON for non-JSON or non-object frames and UNKNOWN_TYPE for unknown or missing types", async () => {
    const a = await h.join("tom", "t-13");
    assert.equal((await h.send(a, "not json"))?.code, "BAD_JSON");
    assert.equal((await h.send(a, "[1,2]"))?.code, "BAD_JSON");
    assert.equal((await h.send(a, "null"))?.code, "BAD_JSON");
    const unknown = await h.send(a, { type: "dance" });
    assert.equal(unknown?.code, "UNKNOWN_TYPE");
    assert.equal(unknown?.requestType, "dance");
    assert.equal((await h.send(a, { message: "no type" }))?.code, "UNKNOWN_TYPE");
  });

  it("$disconnect removes the connection and its memberships, announces `left`, and is idempotent", async () => {
    const watcher = await h.join("uma", "d-14");
    const v = await h.join("vic", "d-14", "Vic");
    await h.send(v, { type: "join", roomId: "d-14b" });
    h.api.clearFrames();
    assert.equal((await h.disconnect(v, 1001)).statusCode, 200);
    assert.deepEqual(presence(h.frames(watcher)), [{ type: "presence", event: "left", roomId: "d-14", userId: "vic", username: "Vic" }]);
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: v.connectionId } }))).Item;
    assert.equal(item, undefined);
    for (const roomId of ["d-14", "d-14b"]) {
      const m = (await h.doc.send(new GetCommand({ TableName: h.tables.rooms, Key: { roomId, sk: `c#${v.connectionId}` } }))).Item;
      assert.equal(m, undefined, `membership in ${roomId}`);
    }
    const summary = (await h.doc.send(new GetCommand({ TableName: h.tables.rooms, Key: { roomId: "d-14b", sk: "#summary" } }))).Item;
    assert.equal(summary, undefined, "an empty room's summary is deleted");
    h.api.clearFrames();
    assert.equal((await h.disconnect(v, 1001)).statusCode, 200);
    assert.deepEqual(h.frames(watcher), [], "a second $disconnect does nothing");
    const second = h.reports.filter((r) => r.function === "disconnect").pop();
    assert.deepEqual(
      second?.dynamoCalls.map((c) => c.action),
      ["dynamodb:DeleteItem"],
    );
  });

  it("a frame from a connection whose item is gone gets an error frame, not a crash", async () => {
    const w = await h.join("walt", "w-15");
    await h.disconnect(w);
    const reply = await h.send(w, { type: "ping" });
    assert.equal(reply?.type, "error");
    assert.equal(reply?.code, "NOT_CONNECTED");
  });
});
