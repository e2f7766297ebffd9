/**
 * Push from a backend (push/index.ts, scripts/push.ts) against the local runtime: real handlers,
 * DynamoDB Local, real `ws` clients. The pusher is given the runtime's outputs exactly as a backend
 * would be given the stack's.
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { uuidV7 } from "../../handlers/lib/data";
import { createUsageScope, emptyUsage } from "../../handlers/lib/usage";
import { startLocalRuntime, type LocalRuntime } from "../../local/runtime";
import { localDynamoClient } from "../../local/tables";
import { PUSH_MANAGEMENT_METHODS, PUSH_TABLE_ACCESS, PushError, createPusher, type Pusher } from "../../push";
import { USAGE, main, parsePushArgs, pusherOptionsFrom } from "../../scripts/push";
import { recordedDynamo, uniquePrefix } from "../support/globalFixtures";
import { connect, eventually, handshakeStatus, type TestClient } from "../local/wsClient";

const ROOT = path.resolve(__dirname, "..", "..");

async function userUrl(rt: LocalRuntime, userId: string, username: string, roomId: string): Promise<string> {
  const token = await rt.mintToken(userId, username);
  return `${rt.endpoint}?${new URLSearchParams({ token, roomId, username })}`;
}

async function user(rt: LocalRuntime, userId: string, username: string, roomId: string): Promise<TestClient> {
  return connect(await userUrl(rt, userId, username, roomId));
}

/** Runs `npm run push`'s script as a process; resolves with its exit code and output. */
function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        "--disable-warning=NodeVersionSupportWarning",
        "-r",
        "ts-node/register/transpile-only",
        path.join(ROOT, "scripts", "push.ts"),
        ...args,
      ],
      { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 45_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe("push: system frames from a backend, against the local runtime", function () {
  this.timeout(90_000);
  let rt: LocalRuntime;
  let doc: DynamoDBDocumentClient;
  let pusher: Pusher;
  const usage = createUsageScope();
  const opened: TestClient[] = [];
  const track = (c: TestClient) => {
    opened.push(c);
    return c;
  };

  before(async () => {
    const dynamo = await recordedDynamo(); // recorded: tests/infra/iamSimulation.ts
    rt = await startLocalRuntime({
      dynamodbEndpoint: dynamo.endpoint,
      tablePrefix: uniquePrefix("push"),
      quiet: true,
      settings: { rateLimitPerMinute: 1000, maxMessageBytes: 2048 },
    });
    doc = DynamoDBDocumentClient.from(localDynamoClient(rt.dynamodbEndpoint));
    // Exactly what a backend is given: the outputs (the local ones also name DynamoDB Local).
    pusher = createPusher({ ...pusherOptionsFrom(rt.outputs()), maxMessageBytes: 2048, usage, logger: silent });
  });
  after(async () => {
    await Promise.all(opened.map((c) => c.close().catch(() => undefined)));
    pusher?.close();
    doc?.destroy();
    await rt?.stop();
  });

  it("delivers a user push to every connection of that user, and to nobody else", async () => {
    const phone = track(await user(rt, "pu-alice", "Alice", "pu-a"));
    const laptop = track(await user(rt, "pu-alice", "Alice", "pu-b"));
    const other = track(await user(rt, "pu-bob", "Bob", "pu-a"));

    const result = await pusher.toUser("pu-alice", { message: "your order shipped", data: { orderId: "o-42", items: [1, 2] } });

    assert.deepEqual(
      {
        targets: result.targets,
        delivered: result.delivered,
        gone: result.gone,
        failed: result.failed,
        connecting: result.connecting,
        stored: result.stored,
      },
      { targets: 2, delivered: 2, gone: 0, failed: 0, connecting: 0, stored: false },
    );
    for (const c of [phone, laptop]) {
      const f = await c.nextOf("system");
      assert.deepEqual(f, {
        type: "system",
        from: "system",
        toUserId: "pu-alice",
        message: "your order shipped",
        data: { orderId: "o-42", items: [1, 2] },
        messageId: result.messageId,
        sentAt: result.sentAt,
      });
    }
    await other.expectNone((f) => f.json?.type === "system", 300);
  });

  it("stores a room push in the room's history, then delivers it to every member", async () => {
    const carol = track(await user(rt, "pu-carol", "Carol", "pu-room"));
    const dan = track(await user(rt, "pu-dan", "Dan", "pu-room"));
    await carol.nextOf("presence");

    const result = await pusher.toRoom("pu-room", { message: "maintenance at 22:00", data: { severity: "info" } });

    assert.equal(result.stored, true);
    assert.equal(result.delivered, 2);
    for (const c of [carol, dan]) {
      const f = await c.nextOf("system");
      assert.equal(f.roomId, "pu-room");
      assert.equal(f.messageId, result.messageId);
      assert.deepEqual(f.data, { severity: "info" });
    }
    const history = await dan.request({ type: "history", roomId: "pu-room" }, "history");
    const messages = history.messages as Array<Record<string, unknown>>;
    assert.deepEqual(messages[messages.length - 1], {
      messageId: result.messageId,
      userId: "system",
      username: "System",
      message: "maintenance at 22:00",
      sentAt: result.sentAt,
      kind: "system",
      data: { severity: "info" },
    });
  });

  it('never lets a user pass for the system: sub "system" is refused (403), a chat frame\'s kind and data are dropped', async () => {
    // "system" names a backend in by/deletedBy/from: the authorizer refuses it as a user id.
    await assert.rejects(user(rt, "system", "System", "pu-forge"), /403/);
    const mallory = track(await user(rt, "pu-mallory", "System", "pu-forge"));
    mallory.send({ type: "chat", message: "I am the system", kind: "system", data: { admin: true }, from: "system" });
    const echoed = await mallory.nextOf("chat");
    assert.equal(echoed.kind, undefined);
    const history = await mallory.request({ type: "history", roomId: "pu-forge" }, "history");
    const [item] = history.messages as Array<Record<string, unknown>>;
    assert.equal(item.message, "I am the system");
    assert.equal(item.userId, "pu-mallory");
    assert.equal(item.kind, undefined, "only a push is stored with kind system");
    assert.equal(item.data, undefined);
  });

  it("stores a room push even when nobody is in the room", async () => {
    const result = await pusher.toRoom("pu-empty", "nobody here yet");
    assert.deepEqual([result.stored, result.targets, result.delivered], [true, 0, 0]);
    const late = track(await user(rt, "pu-erin", "Erin", "pu-empty"));
    const history = await late.request({ type: "history", roomId: "pu-empty" }, "history");
    assert.deepEqual(
      (history.messages as Array<Record<string, unknown>>).map((m) => [m.messageId, m.kind, m.message]),
      [[result.messageId, "system", "nobody here yet"]],
    );
  });

  it("removes a stale connection (items left behind by a socket that is gone) found by a room push", async () => {
    const frank = track(await user(rt, "pu-frank", "Frank", "pu-stale"));
    const ghost = "pu-ghost-connection";
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.connections,
        Item: {
          connectionId: ghost,
          userId: "pu-ghost",
          username: "Ghost",
          connectedAt: Date.now(),
          expiresAt,
          rooms: new Set(["pu-stale", "pu-other"]),
        },
      }),
    );
    for (const roomId of ["pu-stale", "pu-other"]) {
      await doc.send(
        new PutCommand({
          TableName: rt.tableNames.rooms,
          Item: { roomId, sk: `c#${ghost}`, connectionId: ghost, userId: "pu-ghost", username: "Ghost", joinedAt: Date.now(), expiresAt },
        }),
      );
    }

    const result = await pusher.toRoom("pu-stale", "hello room");

    assert.deepEqual([result.targets, result.delivered, result.gone, result.failed], [2, 1, 1, 0]);
    await frank.nextOf("system");
    const item = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: ghost }, ConsistentRead: true }),
    );
    assert.equal(item.Item, undefined, "the connection item is deleted");
    for (const roomId of ["pu-stale", "pu-other"]) {
      const m = await doc.send(new GetCommand({ TableName: rt.tableNames.rooms, Key: { roomId, sk: `c#${ghost}` }, ConsistentRead: true }));
      assert.equal(m.Item, undefined, `the membership in ${roomId} is deleted`);
    }
  });

  it("closes and removes a member whose token has expired, found by a room push, and announces it left once", async () => {
    const watcher = track(await user(rt, "pu-exp-watch", "Watcher", "pu-exp"));
    const late = track(await user(rt, "pu-exp-late", "Late", "pu-exp"));
    await watcher.next((f) => f.json?.type === "presence" && f.json.userId === "pu-exp-late", 10_000, "Late's arrival");
    // Its token's deadline passes: its items expire with it (connect.ts). Aged here instead of waited for.
    const past = Math.floor(Date.now() / 1000) - 60;
    const members = await doc.send(
      new QueryCommand({
        TableName: rt.tableNames.rooms,
        KeyConditionExpression: "roomId = :r",
        ExpressionAttributeValues: { ":r": "pu-exp" },
        ConsistentRead: true,
      }),
    );
    const member = (members.Items ?? []).find((i) => i.userId === "pu-exp-late" && String(i.sk).startsWith("c#"));
    assert.ok(member, "Late is a member");
    const age = { UpdateExpression: "SET expiresAt = :t", ExpressionAttributeValues: { ":t": past } };
    await doc.send(new UpdateCommand({ TableName: rt.tableNames.rooms, Key: { roomId: "pu-exp", sk: member.sk }, ...age }));
    await doc.send(new UpdateCommand({ TableName: rt.tableNames.connections, Key: { connectionId: member.connectionId }, ...age }));

    const result = await pusher.toRoom("pu-exp", "after the expiry");

    assert.deepEqual([result.targets, result.delivered], [1, 1], "posted to the watcher only");
    assert.equal((await late.waitClosed(10_000)).code, 1000, "closed through @connections DELETE");
    assert.equal(late.frames.filter((f) => f.json?.type === "system").length, 0, "the push did not reach it");
    await watcher.nextOf("system");
    await watcher.next(
      (f) => f.json?.type === "presence" && f.json.event === "left" && f.json.userId === "pu-exp-late",
      10_000,
      "Late's left",
    );
    const item = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: member.connectionId }, ConsistentRead: true }),
    );
    assert.equal(item.Item, undefined, "its connection item is deleted");
    await pusher.toRoom("pu-exp", "again");
    await watcher.nextOf("system");
    await watcher.expectNone((f) => f.json?.type === "presence" && f.json.event === "left", 300);
  });

  it("removes a user's stale device found by a user push, and still reaches the live one", async () => {
    const live = track(await user(rt, "pu-gina", "Gina", "pu-g"));
    const ghost = "pu-gina-old-phone";
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.connections,
        Item: {
          connectionId: ghost,
          userId: "pu-gina",
          username: "Gina",
          connectedAt: Date.now(),
          expiresAt: Math.floor(Date.now() / 1000) + 3600,
        },
      }),
    );

    const result = await pusher.toUser("pu-gina", "ping from billing");

    assert.deepEqual([result.targets, result.delivered, result.gone], [2, 1, 1]);
    await live.nextOf("system");
    const item = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: ghost }, ConsistentRead: true }),
    );
    assert.equal(item.Item, undefined);
  });

  it("keeps a connection whose handshake is still running (410 before $connect finished), and says so", async () => {
    const handshaking = "pu-hank-handshaking";
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.connections,
        Item: {
          connectionId: handshaking,
          userId: "pu-hank",
          username: "Hank",
          connectedAt: Date.now(),
          connecting: true,
          expiresAt: Math.floor(Date.now() / 1000) + 3600,
        },
      }),
    );

    const result = await pusher.toUser("pu-hank", "welcome");

    assert.deepEqual([result.targets, result.delivered, result.gone, result.connecting], [1, 0, 0, 1]);
    const item = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: handshaking }, ConsistentRead: true }),
    );
    assert.ok(item.Item, "not removed");
    await doc.send(new DeleteCommand({ TableName: rt.tableNames.connections, Key: { connectionId: handshaking } }));
  });

  it("answers a user with no connection with zero deliveries, not an error", async () => {
    const result = await pusher.toUser("pu-nobody", "hello?");
    assert.deepEqual([result.targets, result.delivered, result.stored], [0, 0, false]);
  });

  it("rejects bad input with a typed PushError before touching anything", async () => {
    const code = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
      } catch (err) {
        assert.ok(err instanceof PushError, `a PushError, got ${String(err)}`);
        return err.code;
      }
      throw new Error("expected a PushError");
    };
    assert.equal(await code(pusher.toRoom("no spaces allowed", "x")), "BAD_REQUEST");
    assert.equal(await code(pusher.toRoom("r".repeat(65), "x")), "BAD_REQUEST");
    assert.equal(await code(pusher.toUser("a#b", "x")), "BAD_REQUEST");
    assert.equal(await code(pusher.toUser("pu-alice", "")), "BAD_REQUEST");
    assert.equal(await code(pusher.toRoom("pu-room", "half a pair: \ud800")), "BAD_REQUEST"); // no UTF-8 encoding
    assert.equal(await code(pusher.toUser("pu-alice", { message: "x", data: [1] as unknown as Record<string, unknown> })), "BAD_REQUEST");
    assert.equal(
      await code(pusher.toUser("pu-alice", { message: "x", data: new Date() as unknown as Record<string, unknown> })),
      "BAD_REQUEST",
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.equal(await code(pusher.toUser("pu-alice", { message: "x", data: cyclic })), "BAD_REQUEST");
    assert.equal(await code(pusher.toRoom("pu-room", "é".repeat(1025))), "TOO_LARGE"); // 2050 bytes > 2048
    assert.equal(await code(pusher.toRoom("pu-room", { message: "x", data: { blob: "y".repeat(2048) } })), "TOO_LARGE");
    assert.throws(
      () => createPusher({ ...pusherOptionsFrom(rt.outputs()), roomsTable: "" }),
      (e: unknown) => e instanceof PushError && e.code === "BAD_OPTIONS",
    );
    assert.throws(
      () => createPusher({ ...pusherOptionsFrom(rt.outputs()), managementEndpoint: "ftp://x" }),
      (e: unknown) => e instanceof PushError && e.code === "BAD_OPTIONS",
    );
    assert.throws(
      () => createPusher({ ...pusherOptionsFrom(rt.outputs()), maxMessageBytes: 0 }),
      (e: unknown) => e instanceof PushError && e.code === "BAD_OPTIONS",
    );
  });

  it("turns a DynamoDB failure into UNAVAILABLE naming the step and the AWS error", async () => {
    const wrong = createPusher({ ...pusherOptionsFrom(rt.outputs()), messagesTable: "no-such-table", logger: silent });
    try {
      await assert.rejects(wrong.toRoom("pu-room", "x"), (e: unknown) => {
        assert.ok(e instanceof PushError);
        assert.equal(e.code, "UNAVAILABLE");
        assert.match(e.message, /ResourceNotFoundException/);
        return true;
      });
    } finally {
      wrong.close();
    }
  });

  /** The user's connection items, through the byUser index (what disconnect and ban read), once the index has them. */
  const devicesOf = async (userId: string) =>
    (
      await doc.send(
        new QueryCommand({
          TableName: rt.tableNames.connections,
          IndexName: "byUser",
          KeyConditionExpression: "userId = :u",
          ExpressionAttributeValues: { ":u": userId },
        }),
      )
    ).Items ?? [];
  const leftOf = (c: TestClient, userId: string, roomId: string) =>
    c.next(
      (f) => f.json?.type === "presence" && f.json.event === "left" && f.json.userId === userId && f.json.roomId === roomId,
      10_000,
      `${userId}'s left`,
    );

  it("disconnects a user: every device closed with 1000, their $disconnect removes their data and announces left; they may connect again", async () => {
    const watcher = track(await user(rt, "pu-dc-watch", "Watcher", "pu-dc"));
    const phone = track(await user(rt, "pu-dc-ann", "Ann", "pu-dc"));
    const laptop = track(await user(rt, "pu-dc-ann", "Ann", "pu-dc-2"));
    await watcher.next((f) => f.json?.type === "presence" && f.json.userId === "pu-dc-ann", 10_000, "Ann's arrival");

    const result = await pusher.disconnectUser("pu-dc-ann");

    assert.deepEqual(result, { userId: "pu-dc-ann", targets: 2, closed: 2, gone: 0, failed: 0 });
    for (const c of [phone, laptop]) assert.equal((await c.waitClosed(10_000)).code, 1000, "closed through @connections DELETE");
    await leftOf(watcher, "pu-dc-ann", "pu-dc");
    await eventually(async () => ((await devicesOf("pu-dc-ann")).length === 0 ? true : undefined), 10_000, "Ann's items removed");
    const members = await doc.send(
      new QueryCommand({
        TableName: rt.tableNames.rooms,
        KeyConditionExpression: "roomId = :r",
        ExpressionAttributeValues: { ":r": "pu-dc" },
        ConsistentRead: true,
      }),
    );
    assert.deepEqual(
      (members.Items ?? []).filter((i) => i.userId === "pu-dc-ann"),
      [],
      "no membership left",
    );
    // Not a ban: the same user connects again at once.
    track(await user(rt, "pu-dc-ann", "Ann", "pu-dc"));
  });

  it("bans a user: open connections on two devices close, a new handshake gets 403 and nobody hears of it; after unban a handshake succeeds", async () => {
    const watcher = track(await user(rt, "pu-ban-watch", "Watcher", "pu-ban"));
    const phone = track(await user(rt, "pu-ban-eve", "Eve", "pu-ban"));
    const laptop = track(await user(rt, "pu-ban-eve", "Eve", "pu-ban"));
    await watcher.next((f) => f.json?.type === "presence" && f.json.userId === "pu-ban-eve", 10_000, "Eve's arrival");
    const until = new Date(Date.now() + 10 * 60_000);

    const result = await pusher.banUser("pu-ban-eve", until);

    assert.deepEqual(result, { userId: "pu-ban-eve", until: until.toISOString(), targets: 2, closed: 2, gone: 0, failed: 0 });
    for (const c of [phone, laptop]) assert.equal((await c.waitClosed(10_000)).code, 1000);
    await leftOf(watcher, "pu-ban-eve", "pu-ban");
    assert.equal(await handshakeStatus(await userUrl(rt, "pu-ban-eve", "Eve", "pu-ban")), 403);
    await watcher.expectNone((f) => f.json?.type === "presence" && f.json.event === "joined" && f.json.userId === "pu-ban-eve", 300);
    await eventually(async () => ((await devicesOf("pu-ban-eve")).length === 0 ? true : undefined), 10_000, "Eve's items removed");

    assert.deepEqual(await pusher.unbanUser("pu-ban-eve"), { userId: "pu-ban-eve", lifted: true });
    assert.deepEqual(await pusher.unbanUser("pu-ban-eve"), { userId: "pu-ban-eve", lifted: false }, "nothing left to lift");
    track(await user(rt, "pu-ban-eve", "Eve", "pu-ban"));
    await watcher.next(
      (f) => f.json?.type === "presence" && f.json.event === "joined" && f.json.userId === "pu-ban-eve",
      10_000,
      "Eve back",
    );
  });

  it("disconnect and ban remove a stale device (items whose socket is gone) instead of failing on it", async () => {
    const ghost = "pu-ban-ghost-connection";
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.connections,
        Item: {
          connectionId: ghost,
          userId: "pu-ban-ghost",
          username: "G",
          connectedAt: 1,
          expiresAt: Math.floor(Date.now() / 1000) + 3600,
        },
      }),
    );
    assert.deepEqual(await pusher.disconnectUser("pu-ban-ghost"), { userId: "pu-ban-ghost", targets: 1, closed: 0, gone: 1, failed: 0 });
    const item = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: ghost }, ConsistentRead: true }),
    );
    assert.equal(item.Item, undefined, "removed as a broadcast removes a stale connection");
  });

  it("rejects an invalid user id and a ban's end that is not a future Date at most 366 days ahead with BAD_REQUEST, touching nothing", async () => {
    const code = (p: Promise<unknown>) =>
      p.then(
        () => "resolved",
        (err: unknown) => (err instanceof PushError ? err.code : String(err)),
      );
    const day = 86_400_000;
    assert.equal(await code(pusher.disconnectUser("a#b")), "BAD_REQUEST");
    assert.equal(await code(pusher.unbanUser("")), "BAD_REQUEST");
    assert.equal(await code(pusher.banUser("a b", new Date(Date.now() + day))), "BAD_REQUEST");
    assert.equal(await code(pusher.banUser("pu-x", new Date(Date.now() - 1000))), "BAD_REQUEST");
    assert.equal(await code(pusher.banUser("pu-x", new Date(Date.now() + 367 * day))), "BAD_REQUEST");
    assert.equal(await code(pusher.banUser("pu-x", new Date(Number.NaN))), "BAD_REQUEST");
    assert.equal(await code(pusher.banUser("pu-x", "2030-01-01T00:00:00Z" as unknown as Date)), "BAD_REQUEST");
    const ban = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: "ban#pu-x" }, ConsistentRead: true }),
    );
    assert.equal(ban.Item, undefined);
  });

  /** The code of a PushError a call rejects with ("resolved" if it does not). */
  const codeOf = (p: Promise<unknown>) =>
    p.then(
      () => "resolved",
      (err: unknown) => (err instanceof PushError ? err.code : String(err)),
    );

  it("deletes a room message as system: every member receives deleted by system, history keeps a tombstone; a repeat is a result, not an error", async () => {
    const author = track(await user(rt, "pu-del-amy", "Amy", "pu-del"));
    const reader = track(await user(rt, "pu-del-ben", "Ben", "pu-del"));
    await author.next((f) => f.json?.type === "presence" && f.json.userId === "pu-del-ben", 10_000, "Ben's arrival");
    author.send({ type: "chat", message: "spam spam spam", clientMessageId: "c-spam" });
    const messageId = String((await reader.nextOf("chat")).messageId);

    const result = await pusher.deleteMessage({ roomId: "pu-del" }, messageId);

    assert.equal(result.by, "system");
    assert.equal(result.alreadyDeleted, false);
    assert.deepEqual([result.messageId, result.targets, result.delivered, result.gone, result.failed], [messageId, 2, 2, 0, 0]);
    for (const c of [author, reader]) {
      assert.deepEqual(await c.nextOf("deleted"), {
        type: "deleted",
        roomId: "pu-del",
        messageId,
        by: "system",
        deletedAt: result.deletedAt,
      });
    }
    const history = await reader.request({ type: "history", roomId: "pu-del" }, "history");
    const tombstone = (history.messages as Array<Record<string, unknown>>).find((m) => m.messageId === messageId);
    assert.deepEqual(
      [tombstone?.message, tombstone?.deleted, tombstone?.deletedBy, tombstone?.deletedAt, tombstone?.userId],
      ["", true, "system", result.deletedAt, "pu-del-amy"],
    );
    assert.ok(!JSON.stringify(history).includes("spam spam"), "nobody can read the text");

    // A backend's retry of its own delete (the first may have failed after its write): nothing
    // written, the same `deleted` (the first by and deletedAt) announced again.
    const again = await pusher.deleteMessage({ roomId: "pu-del" }, messageId);
    assert.deepEqual(again, { ...result, alreadyDeleted: true }, "the first delete's by and deletedAt, to the same members");
    assert.deepEqual(await reader.nextOf("deleted"), {
      type: "deleted",
      roomId: "pu-del",
      messageId,
      by: "system",
      deletedAt: result.deletedAt,
    });
  });

  it("deletes a private message as system: every device of both users receives deleted", async () => {
    const sender = track(await user(rt, "pu-dm-cat", "Cat", "pu-dm"));
    const phone = track(await user(rt, "pu-dm-dov", "Dov", "pu-dm-x"));
    const laptop = track(await user(rt, "pu-dm-dov", "Dov", "pu-dm-y"));
    const delivered = await sender.request({ type: "private", toUserId: "pu-dm-dov", message: "psst" }, "delivered");
    const messageId = String(delivered.messageId);
    await Promise.all([phone.nextOf("private"), laptop.nextOf("private")]);

    // Either order names the conversation.
    const result = await pusher.deleteMessage({ between: ["pu-dm-dov", "pu-dm-cat"] }, messageId);

    assert.deepEqual([result.by, result.alreadyDeleted, result.targets, result.delivered], ["system", false, 3, 3]);
    for (const c of [sender, phone, laptop]) {
      assert.deepEqual(await c.nextOf("deleted"), {
        type: "deleted",
        fromUserId: "pu-dm-cat",
        toUserId: "pu-dm-dov",
        messageId,
        by: "system",
        deletedAt: result.deletedAt,
      });
    }
    const again = await pusher.deleteMessage({ between: ["pu-dm-cat", "pu-dm-dov"] }, messageId);
    assert.deepEqual([again.alreadyDeleted, again.deletedAt, again.targets], [true, result.deletedAt, 3]);
  });

  it("answers a message that is not in that conversation with NOT_FOUND, and bad targets, ids and minutes with BAD_REQUEST", async () => {
    const notice = await pusher.toRoom("pu-nf", "a notice");
    assert.equal(await codeOf(pusher.deleteMessage({ roomId: "pu-nf" }, uuidV7(Date.now()))), "NOT_FOUND", "unknown id");
    assert.equal(await codeOf(pusher.deleteMessage({ roomId: "pu-nf-other" }, notice.messageId)), "NOT_FOUND", "another room's");
    assert.equal(await codeOf(pusher.deleteMessage({ between: ["pu-a", "pu-b"] }, notice.messageId)), "NOT_FOUND", "a room's, as private");
    assert.equal(await codeOf(pusher.deleteMessage({ roomId: "pu-nf" }, randomUUID())), "NOT_FOUND", "not a UUIDv7");
    await assert.rejects(
      pusher.deleteMessage({ roomId: "pu-nf" }, uuidV7(Date.now())),
      /^PushError: no message \S+ in room pu-nf \(unknown, past its retention, or not a UUIDv7 id\)$/,
    );
    // A backend may delete its own notice too.
    assert.equal((await pusher.deleteMessage({ roomId: "pu-nf" }, notice.messageId)).alreadyDeleted, false);

    const bad = [
      pusher.deleteMessage({ roomId: "pu-nf" }, "not an id"),
      pusher.deleteMessage({ roomId: "pu-nf" }, "x".repeat(65)),
      pusher.deleteMessage({ roomId: "bad room" }, notice.messageId),
      pusher.deleteMessage({ roomId: "pu-nf", between: ["a", "b"] } as never, notice.messageId),
      pusher.deleteMessage({} as never, notice.messageId),
      pusher.deleteMessage({ between: ["pu-a", "pu-a"] }, notice.messageId),
      pusher.deleteMessage({ between: ["pu-a"] } as never, notice.messageId),
      pusher.deleteMessage({ between: ["pu-a", "a#b"] }, notice.messageId),
      pusher.kick("bad room", "pu-a"),
      pusher.kick("pu-nf", "a#b"),
      pusher.kick("pu-nf", "pu-a", 0),
      pusher.kick("pu-nf", "pu-a", 10_081),
      pusher.kick("pu-nf", "pu-a", 1.5),
      pusher.kick("pu-nf", "pu-a", "5" as unknown as number),
    ];
    assert.deepEqual(
      await Promise.all(bad.map(codeOf)),
      bad.map(() => "BAD_REQUEST"),
    );
    const restriction = await doc.send(
      new GetCommand({ TableName: rt.tableNames.connections, Key: { connectionId: "kick#pu-nf#pu-a" }, ConsistentRead: true }),
    );
    assert.equal(restriction.Item, undefined, "a refused kick wrote nothing");
  });

  it("kicks a user from a room as system: each of their connections receives kicked, the room hears left once, and their rejoin is FORBIDDEN", async () => {
    const watcher = track(await user(rt, "pu-kick-watch", "Watcher", "pu-kick"));
    const phone = track(await user(rt, "pu-kick-kim", "Kim", "pu-kick"));
    const laptop = track(await user(rt, "pu-kick-kim", "Kim", "pu-kick"));
    await watcher.next((f) => f.json?.type === "presence" && f.json.userId === "pu-kick-kim", 10_000, "Kim's arrival");
    const before = Date.now();

    const result = await pusher.kick("pu-kick", "pu-kick-kim", 5);

    assert.deepEqual([result.roomId, result.userId, result.removed], ["pu-kick", "pu-kick-kim", 2]);
    const until = Date.parse(result.until);
    assert.ok(until >= before + 5 * 60_000 && until <= Date.now() + 5 * 60_000, result.until);
    for (const c of [phone, laptop]) {
      assert.deepEqual(await c.nextOf("kicked"), { type: "kicked", roomId: "pu-kick", by: "system", until: result.until });
    }
    await leftOf(watcher, "pu-kick-kim", "pu-kick");
    await watcher.expectNone((f) => f.json?.type === "presence" && f.json.event === "left", 300);
    const refused = await phone.request({ type: "join", roomId: "pu-kick" }, "error");
    assert.deepEqual([refused.code, refused.roomId], ["FORBIDDEN", "pu-kick"]);
    assert.equal(phone.ws.readyState, phone.ws.OPEN, "kicked, not disconnected");
    // A second kick finds nobody left and keeps the restriction (the longer one: never shortened).
    assert.deepEqual(await pusher.kick("pu-kick", "pu-kick-kim", 1), { ...result, removed: 0 });
  });

  it("makes exactly the DynamoDB calls push/access.ts declares (the IAM policy's source), and uses all of them", async () => {
    // A room push with a stale member (summary reconcile + clean-up) and a user push.
    track(await user(rt, "pu-iam", "Iam", "pu-iam"));
    const ghost = "pu-iam-ghost";
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.connections,
        Item: { connectionId: ghost, userId: "pu-iam", username: "I", connectedAt: 1, expiresAt, rooms: new Set(["pu-iam"]) },
      }),
    );
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.rooms,
        Item: { roomId: "pu-iam", sk: `c#${ghost}`, connectionId: ghost, userId: "pu-iam-2", username: "I2", joinedAt: 1, expiresAt },
      }),
    );
    // A summary that disagrees with the members, so the read reconciles it (UpdateItem), and a
    // summary of a room with no member left, so the read deletes it (DeleteItem).
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.rooms,
        Item: { roomId: "pu-iam", sk: "#summary", users: 9, directory: "rooms", expiresAt },
      }),
    );
    await doc.send(
      new PutCommand({
        TableName: rt.tableNames.rooms,
        Item: { roomId: "pu-iam-empty", sk: "#summary", users: 1, directory: "rooms", expiresAt },
      }),
    );
    const record = emptyUsage();
    await usage.run(record, async () => {
      const notice = await pusher.toRoom("pu-iam", "audit");
      await pusher.toRoom("pu-iam-empty", "audit");
      await pusher.toUser("pu-iam", "audit");
      // Moderation (issue 16): the ban item's PutItem and DeleteItem, the byUser Query.
      await pusher.banUser("pu-iam-banned", new Date(Date.now() + 60_000));
      await pusher.unbanUser("pu-iam-banned");
      await pusher.disconnectUser("pu-iam-banned");
      // A delete's UpdateItem on messages; a kick's restriction PutItem, BatchGetItem of the kicked
      // connection and its leave transaction (connections UpdateItem, rooms DeleteItem and UpdateItem).
      await pusher.deleteMessage({ roomId: "pu-iam" }, notice.messageId);
      await pusher.kick("pu-iam", "pu-iam", 1);
    });
    await doc.send(new DeleteCommand({ TableName: rt.tableNames.rooms, Key: { roomId: "pu-iam", sk: "#summary" } }));

    const declared = new Set<string>();
    for (const a of PUSH_TABLE_ACCESS) {
      for (const action of a.actions) declared.add(`${a.table} ${action}`);
      for (const [index, actions] of Object.entries(a.indexes ?? {}))
        for (const action of actions) declared.add(`${a.table} ${action} @${index}`);
    }
    const observed = new Set(record.dynamoCalls.map((c) => `${c.table} ${c.action}${c.index ? ` @${c.index}` : ""}`));
    assert.deepEqual([...observed].sort(), [...declared].sort());
    // POST to deliver (notices, deleted, kicked, left), DELETE to close a member past its token's
    // expiry and a disconnected or banned user's connections (exercised by the tests above).
    assert.deepEqual(PUSH_MANAGEMENT_METHODS, ["POST", "DELETE"]);
    assert.ok(record.metrics.ManagementCalls >= 3, "posts went through the fan-out");
  });

  it("npm run push's delete and kick through main (scripts/push.ts, in process): results printed, a repeated delete exits 0, NOT_FOUND 1, bad minutes 2", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "push-main-"));
    const outputs = path.join(dir, "outputs.json");
    fs.writeFileSync(outputs, JSON.stringify(rt.outputs()));
    const cli = async (argv: string[]) => {
      const text = { out: "", err: "" };
      const code = await main(argv, { write: (t: string) => (text.out += t) }, { write: (t: string) => (text.err += t) });
      return { code, ...text };
    };
    try {
      const member = track(await user(rt, "pu-cli-kim", "Kim", "pu-cli-mod"));
      member.send({ type: "chat", message: "remove me" });
      const messageId = String((await member.nextOf("chat")).messageId);

      const del = await cli(["--outputs", outputs, "delete", "pu-cli-mod", messageId]);

      assert.deepEqual(del, {
        code: 0,
        out: `deleted message ${messageId} in room pu-cli-mod (by system); 1 connection(s): delivered 1, gone 0 (removed), failed 0\n`,
        err: "",
      });
      assert.equal((await member.nextOf("deleted")).by, "system");
      const again = await cli(["delete", "pu-cli-mod", messageId, "--outputs", outputs]);
      assert.equal(again.code, 0);
      assert.match(
        again.out,
        new RegExp(`^message ${messageId} in room pu-cli-mod was already deleted \\(by system at .*\\): nothing sent\n$`),
      );
      const kick = await cli(["kick", "pu-cli-mod", "pu-cli-kim", "--minutes", "2", "--outputs", outputs, "--json"]);
      assert.equal(kick.code, 0, kick.err);
      const result = JSON.parse(kick.out) as Record<string, unknown>;
      assert.deepEqual([result.roomId, result.userId, result.removed], ["pu-cli-mod", "pu-cli-kim", 1]);
      assert.deepEqual(await member.nextOf("kicked"), { type: "kicked", roomId: "pu-cli-mod", by: "system", until: result.until });
      const missing = await cli(["delete", "--between", "pu-a,pu-b", messageId, "--outputs", outputs]);
      assert.equal(missing.code, 1);
      assert.match(missing.err, /^push: NOT_FOUND: no message \S+ in the conversation of pu-a and pu-b/);
      const badMinutes = await cli(["kick", "pu-cli-mod", "pu-cli-kim", "--minutes", "0", "--outputs", outputs]);
      assert.equal(badMinutes.code, 2);
      assert.match(badMinutes.err, /^push: --minutes must be an integer from 1 to 10080/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  describe("npm run push (scripts/push.ts) as a process", () => {
    let dir: string;
    before(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "push-cli-"));
    });
    after(() => fs.rmSync(dir, { recursive: true, force: true }));

    it("pushes to a room from an outputs file and exits 0", async () => {
      const listener = track(await user(rt, "pu-cli", "Cli", "pu-cli"));
      const outputs = path.join(dir, "outputs.json");
      fs.writeFileSync(outputs, JSON.stringify({ ...rt.outputs(), maxMessageBytes: 2048 }));

      const run = await runCli(["--outputs", outputs, "--room", "pu-cli", "--data", '{"ticket":7}', "--json", "deploy", "finished"]);

      assert.equal(run.code, 0, run.stderr);
      const result = JSON.parse(run.stdout) as Record<string, unknown>;
      assert.deepEqual([result.delivered, result.stored], [1, true]);
      const f = await listener.nextOf("system");
      assert.deepEqual([f.message, f.data, f.messageId], ["deploy finished", { ticket: 7 }, result.messageId]);
    });

    it("bans with --minutes and unbans from the command line: a refused handshake between, exit 0", async () => {
      const outputs = path.join(dir, "outputs.json");
      fs.writeFileSync(outputs, JSON.stringify(rt.outputs()));
      const device = track(await user(rt, "pu-cli-ban", "Cli", "pu-cli-ban"));

      const ban = await runCli(["--outputs", outputs, "ban", "pu-cli-ban", "--minutes", "5", "--json"]);

      assert.equal(ban.code, 0, ban.stderr);
      const result = JSON.parse(ban.stdout) as Record<string, unknown>;
      assert.deepEqual([result.userId, result.targets, result.closed], ["pu-cli-ban", 1, 1]);
      assert.ok(Math.abs(Date.parse(String(result.until)) - (Date.now() + 5 * 60_000)) < 60_000, String(result.until));
      assert.equal((await device.waitClosed(10_000)).code, 1000);
      assert.equal(await handshakeStatus(await userUrl(rt, "pu-cli-ban", "Cli", "pu-cli-ban")), 403);
      const unban = await runCli(["unban", "pu-cli-ban", "--outputs", outputs]);
      assert.equal(unban.code, 0, unban.stderr);
      assert.match(unban.stdout, /^unbanned user pu-cli-ban/);
      track(await user(rt, "pu-cli-ban", "Cli", "pu-cli-ban"));
    });

    it("exits 2 on bad usage and on an invalid id, 1 when the outputs cannot be read or the Pulumi CLI is absent", async () => {
      const outputs = path.join(dir, "outputs.json");
      fs.writeFileSync(outputs, JSON.stringify(rt.outputs()));
      const noTarget = await runCli(["--outputs", outputs, "hello"]);
      assert.equal(noTarget.code, 2);
      assert.match(noTarget.stderr, /exactly one of --user <userId> or --room <roomId>/);
      const badId = await runCli(["--outputs", outputs, "--room", "bad room", "hi"]);
      assert.equal(badId.code, 2);
      assert.match(badId.stderr, /BAD_REQUEST: roomId "bad room" is invalid/);
      const badBan = await runCli(["ban", "pu-x", "--until", "yesterday", "--outputs", outputs]);
      assert.equal(badBan.code, 2);
      assert.match(badBan.stderr, /--until must be an ISO 8601 time/);
      const badUser = await runCli(["disconnect", "a#b", "--outputs", outputs]);
      assert.equal(badUser.code, 2);
      assert.match(badUser.stderr, /BAD_REQUEST: userId "a#b" is invalid/);
      const missing = await runCli(["--outputs", path.join(dir, "nope.json"), "--user", "x", "hi"]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /cannot read .*nope\.json/);
      // A PATH without pulumi: the CLI explains how to produce an outputs file instead.
      const noPulumi = await runCli(["--stack", "dev", "--user", "x", "hi"], { ...process.env, PATH: path.dirname(process.execPath) });
      assert.equal(noPulumi.code, 1);
      assert.match(noPulumi.stderr, /Pulumi CLI is not installed.*--outputs outputs\.json/);
    });
  });
});

describe("push: the module's boundary", function () {
  this.timeout(60_000);
  it("loads without any @pulumi package (a backend needs only the AWS SDK)", async () => {
    const probe =
      "require('./push'); const p = Object.keys(require.cache).filter((k) => k.includes('@pulumi')); process.stdout.write(JSON.stringify(p));";
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", "-e", probe], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "ignore"],
      });
      let text = "";
      child.stdout.on("data", (d: Buffer) => (text += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => (code === 0 ? resolve(text) : reject(new Error(`probe exited ${code}`))));
    });
    assert.deepEqual(JSON.parse(out), []);
  });
});

describe("push: command-line parsing (scripts/push.ts)", () => {
  it("parses a user push with data and a multi-word message", () => {
    assert.deepEqual(parsePushArgs(["--user", "alice", "--data", '{"a":1}', "hello", "there"]), {
      command: "send",
      target: { kind: "user", id: "alice" },
      message: "hello there",
      data: { a: 1 },
      json: false,
    });
  });
  it("refuses both targets, data that is not an object, and unknown options; --help returns undefined", () => {
    assert.throws(() => parsePushArgs(["--user", "a", "--room", "b", "x"]), /exactly one/);
    assert.throws(() => parsePushArgs(["--room", "b", "--data", "[1]", "x"]), /JSON object/);
    assert.throws(() => parsePushArgs(["--room", "b", "--data", "{", "x"]), /not JSON/);
    assert.throws(() => parsePushArgs(["--room", "b", "--nope", "x"]), /unknown option --nope/);
    assert.throws(() => parsePushArgs(["--room", "b"]), /message is missing/);
    assert.equal(parsePushArgs(["--help"]), undefined);
    assert.match(USAGE, /--outputs <file>/);
  });
  it("reads the stack outputs' names, and rejects outputs of another stack", () => {
    const o = pusherOptionsFrom({
      connectionsTable: "p-connections",
      roomsTable: "p-rooms",
      messagesTable: "p-messages",
      managementEndpoint: "https://abc.execute-api.eu-west-1.amazonaws.com/prod",
      maxMessageBytes: 16384,
    });
    assert.deepEqual(o, {
      connectionsTable: "p-connections",
      roomsTable: "p-rooms",
      messagesTable: "p-messages",
      managementEndpoint: "https://abc.execute-api.eu-west-1.amazonaws.com/prod",
      maxMessageBytes: 16384,
    });
    assert.throws(() => pusherOptionsFrom({ endpoint: "wss://x" }), /no "connectionsTable"/);
  });
});

/** A logger that writes nothing (the pusher logs clean-ups; the test reads results instead). */
const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silent,
};
