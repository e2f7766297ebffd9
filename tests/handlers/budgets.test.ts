/**
 * Issue 14, item 10: per-user budgets beside the per-connection rate limit. A user's frames over
 * all their connections count against userRateLimitPerMinute; their handshakes against
 * userConnectsPerMinute, and one over it is refused at `$connect` (non-2xx: API Gateway rejects the
 * handshake) with nothing stored or announced.
 */
import { strict as assert } from "node:assert";
import { GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { spendUserFrame, type DataContext } from "../../handlers/lib/data";
import { createHarness, type Harness } from "../support/handlerHarness";

async function awayFromMinuteBoundary(): Promise<void> {
  // Budgets use fixed one-minute windows: keep a burst inside one window.
  const left = 60_000 - (Date.now() % 60_000);
  if (left < 8_000) await new Promise((r) => setTimeout(r, left + 50));
}

describe("per-user budgets: frames and handshakes (issue 14)", () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "budgets", rateLimitPerMinute: 10, userRateLimitPerMinute: 25, userConnectsPerMinute: 3 });
  });
  after(async () => {
    await h?.stop();
  });

  it("five connections of one user share the user's frame budget; each keeps its own limit too", async () => {
    await awayFromMinuteBoundary();
    const conns = [];
    for (let i = 0; i < 3; i++) conns.push(await h.join("budget-frames", "bf-room"));
    const replies = await Promise.all(conns.flatMap((c) => Array.from({ length: 10 }, () => h.send(c, { type: "ping" }))));
    const pongs = replies.filter((r) => r?.type === "pong").length;
    const limited = replies.filter((r) => r?.code === "RATE_LIMITED");
    assert.deepEqual([pongs, limited.length], [25, 5], "30 frames from 3 connections at 10 each, 25 for the user");
    assert.ok(
      limited.every((r) => r?.requestType === "ping"),
      "every refused frame is answered, typed",
    );
    // Another user is not affected; the per-connection limit still holds for one connection.
    const other = await h.join("budget-other", "bf-room");
    const mine = await Promise.all(Array.from({ length: 12 }, () => h.send(other, { type: "ping" })));
    assert.deepEqual([mine.filter((r) => r?.type === "pong").length, mine.filter((r) => r?.code === "RATE_LIMITED").length], [10, 2]);
  });

  it("a frame whose clock reading is from the minute before the window another frame opened is counted, not refused", async () => {
    const ctx = { config: { tables: h.tables, functionName: "ping", rateLimitPerMinute: 10, userRateLimitPerMinute: 25 }, doc: h.doc };
    const minute = (Math.floor(Date.now() / 60_000) + 5) * 60_000;
    // A later frame opens the next minute; one read its clock just before that minute began and
    // reaches DynamoDB after it (a slow invocation across the boundary). Before: RATE_LIMITED.
    await spendUserFrame(ctx as unknown as DataContext, "budget-late", minute + 10);
    await spendUserFrame(ctx as unknown as DataContext, "budget-late", minute - 10);
    const item = await h.doc.send(
      new GetCommand({ TableName: h.tables.connections, Key: { connectionId: "u#budget-late" }, ConsistentRead: true }),
    );
    assert.deepEqual([item.Item?.frameWindow, item.Item?.frameCount], [minute / 60_000, 2], "both counted in the open minute");
  });

  it("a handshake over the user's budget is refused at $connect (429), storing and announcing nothing", async () => {
    await awayFromMinuteBoundary();
    const watcher = await h.join("budget-watch", "bh-room");
    h.api.clearFrames();
    for (let i = 0; i < 3; i++) {
      const { result, conn } = await h.connect("budget-churn", { roomId: "bh-room" });
      assert.equal(result.statusCode, 200);
      await h.disconnect(conn);
    }
    const { result, conn } = await h.connect("budget-churn", { roomId: "bh-room" });
    assert.equal(result.statusCode, 429);
    const item = (await h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId: conn.connectionId } }))).Item;
    assert.equal(item, undefined, "no connection item");
    const members = await h.doc.send(
      new QueryCommand({
        TableName: h.tables.rooms,
        KeyConditionExpression: "roomId = :r",
        ExpressionAttributeValues: { ":r": "bh-room" },
        ConsistentRead: true,
      }),
    );
    assert.deepEqual(
      (members.Items ?? []).filter((m) => String(m.sk).startsWith("c#")).map((m) => m.userId),
      ["budget-watch"],
      "no membership",
    );
    const events = h
      .frames(watcher)
      .filter((f) => f.type === "presence" && f.userId === "budget-churn")
      .map((f) => f.event);
    assert.deepEqual(events, ["joined", "left", "joined", "left", "joined", "left"], "three visits announced, the refused one not");
    // Other users still connect.
    assert.equal((await h.connect("budget-someone", { roomId: "bh-room" })).result.statusCode, 200);
  });
});
