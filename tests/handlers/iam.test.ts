/**
 * routes.ts is the single source of each function's IAM policy (infra/policies.ts derives it).
 * This test drives every function through its paths (including stale clean-up after a 410,
 * idempotent retries, summary deletion) and checks, from the usage middleware's record of each
 * DynamoDB call, that every (table, action, index) a function performs is declared for it, and
 * that nothing declared goes unused.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { FUNCTIONS, type FunctionName } from "../../handlers/routes";
import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { MEMBER_PREFIX } from "../../handlers/lib/data";
import { encodeJob } from "../../handlers/lib/deliveries";
import { createHarness, sqsEvent, type Harness, type TestConnection } from "../support/handlerHarness";

describe("handlers: routes.ts declares exactly the DynamoDB access each function performs", () => {
  it("every route function can close its caller's connection: POST and DELETE on @connections, and its management client built", () => {
    // runtime.ts messageRoute closes a connection past its token's expiry only through the
    // function's fan-out; a route without one would answer TOKEN_EXPIRED and leave the socket open.
    for (const spec of FUNCTIONS) {
      if (spec.routeKey === undefined) continue;
      assert.deepEqual([...spec.manageConnections].sort(), ["DELETE", "POST"], spec.name);
      const src = fs.readFileSync(path.join(__dirname, "..", "..", "handlers", "functions", `${spec.name}.ts`), "utf8");
      assert.match(src, /management:\s*true\s*\},\s*managementFanout\)/, `${spec.name} builds its management client`);
    }
  });

  let h: Harness;
  before(async () => {
    // Room iam-a shares read positions (issue 18): `read` then reads its summary and members.
    h = await createHarness({ label: "iam", extraEnv: { READ_RECEIPT_ROOMS: "iam-a" } });
  });
  after(async () => {
    await h?.stop();
  });

  it("every call is declared, and every declaration is exercised", async () => {
    // A stale member (closed on the gateway, still in DynamoDB) in every room the scenario posts to.
    const stale = async (roomId: string) => {
      const c = await h.join(`stale-${roomId}`, roomId);
      await h.vanish(c);
      return c;
    };
    await stale("iam-a");
    const a = await h.join("iam-alice", "iam-a"); // connect: presence to a stale member -> clean-up
    await stale("iam-a");
    await h.send(a, { type: "chat", message: "hello" }); // chat: broadcast + clean-up
    await h.send(a, { type: "chat", message: "retry", clientMessageId: "k1" });
    await h.send(a, { type: "chat", message: "retry", clientMessageId: "k1" }); // idempotent: GetItem
    await stale("iam-b");
    await h.send(a, { type: "join", roomId: "iam-b" }); // join: presence + clean-up
    await stale("iam-b");
    await h.send(a, { type: "join", roomId: "iam-c" });
    await h.send(a, { type: "leave", roomId: "iam-c" }); // leave: last user, summary deleted
    const bob = await h.join("iam-bob", "iam-b");
    await stale("iam-b");
    await h.send(bob, { type: "leave", roomId: "iam-b" }); // leave: `left` to a stale member -> clean-up
    const gone = await h.join("iam-carol", "iam-d");
    await h.vanish(gone);
    await h.send(a, { type: "private", toUserId: "iam-carol", message: "psst", clientMessageId: "p1" }); // private: clean-up
    // deliver (issue 17): a job for a shard holding a stale member -> clean-up, and the room's
    // summary read before its `left` is announced (a small room announces it).
    await h.join("iam-erin", "iam-e");
    await stale("iam-e");
    const job = {
      v: 1 as const,
      id: "iamjob",
      roomId: "iam-e",
      shard: 0,
      frame: { type: "system", message: "hi" },
      enqueuedAtMs: Date.now(),
    };
    assert.deepEqual(await h.deliver()(sqsEvent(encodeJob(job))), { batchItemFailures: [] });
    await h.send(a, { type: "private", toUserId: "iam-carol", message: "psst", clientMessageId: "p1" });
    await h.send(a, { type: "rooms" });
    await h.send(a, { type: "history", roomId: "iam-a" });
    await h.send(a, { type: "history", withUserId: "iam-carol" });
    await h.send(a, { type: "ping" });
    // edit, delete: a room change meets a stale member (clean-up); a private change reaches both
    // users' devices through the byUser index.
    const ownMessage = (text: string) => String(h.frames(a).find((f) => f.type === "chat" && f.message === text)?.messageId);
    await h.send(a, { type: "chat", roomId: "iam-a", message: "to change" });
    await stale("iam-a");
    await h.send(a, { type: "edit", roomId: "iam-a", messageId: ownMessage("to change"), message: "changed" });
    await stale("iam-a");
    await h.send(a, { type: "delete", roomId: "iam-a", messageId: ownMessage("to change") });
    const dm = String((await h.send(a, { type: "private", toUserId: "iam-carol", message: "to change" }))?.messageId);
    await h.send(a, { type: "edit", withUserId: "iam-carol", messageId: dm, message: "changed" });
    await h.send(a, { type: "delete", withUserId: "iam-carol", messageId: dm });
    // typing (issue 18): the throttle UpdateItem, the summary GetItem, the room read meeting a stale
    // member (clean-up); in private, the byUser Query finding a gone device (clean-up).
    await stale("iam-a");
    h.api.clearFrames();
    await h.send(a, { type: "typing", roomId: "iam-a" });
    assert.ok(
      h.api.calls.some((c) => c.status === 410),
      "the typing fan-out met the stale member",
    );
    const typedTo = await h.join("iam-gina", "iam-g");
    await h.vanish(typedTo);
    await h.send(a, { type: "typing", withUserId: "iam-gina" });
    // react (issue 18): a room reaction meets a stale member (clean-up), its removal drops the
    // emoji at 0 (the follow-up UpdateItem); a private reaction reaches both users through byUser;
    // history reads the caller's reactions of the page (`me`: a Query of the reaction partition).
    await h.send(a, { type: "chat", roomId: "iam-a", message: "to react to" });
    await stale("iam-a");
    await h.send(a, { type: "react", roomId: "iam-a", messageId: ownMessage("to react to"), emoji: "👍" });
    await stale("iam-a");
    await h.send(a, { type: "react", roomId: "iam-a", messageId: ownMessage("to react to"), emoji: "👍", remove: true });
    const dmReacted = String((await h.send(a, { type: "private", toUserId: "iam-carol", message: "to react to" }))?.messageId);
    await h.send(a, { type: "react", withUserId: "iam-carol", messageId: dmReacted, emoji: "🎉" });
    await h.send(a, { type: "history", withUserId: "iam-carol" });
    // read (issue 18): the position UpdateItem, the user's other devices (byUser), and in a shared
    // room the summary GetItem and the room read meeting a stale member (clean-up); history fromRead
    // reads the position (GetItem); join and rooms read positions and count unread (messages Query).
    await stale("iam-a");
    assert.equal((await h.send(a, { type: "read", roomId: "iam-a", messageId: ownMessage("to react to") }))?.type, "read");
    await h.send(a, { type: "history", roomId: "iam-a", fromRead: true });
    await h.send(a, "not json");
    const d = await h.join("iam-dan", "iam-e");
    await stale("iam-e");
    const e2 = await h.join("iam-dan", "iam-f");
    await h.disconnect(d); // disconnect: `left` to a stale member -> clean-up
    await h.disconnect(e2); // disconnect: last user, summary deleted
    // kick (issue 16): the restriction PutItem, the room read, the kicked connection's item
    // (BatchGetItem), the leave transaction, `kicked`, and `left` meeting a stale member -> clean-up.
    const mod = (await h.connect("iam-mod", { roomId: "iam-k", access: { moderates: "iam-*" } })).conn;
    const victim = await h.join("iam-victim", "iam-k");
    await stale("iam-k");
    assert.equal((await h.send(mod, { type: "kick", roomId: "iam-k", userId: "iam-victim" }))?.connections, 1);
    // The join transaction's ConditionCheck of the restriction: join FORBIDDEN, $connect 403.
    assert.equal((await h.send(victim, { type: "join", roomId: "iam-k" }))?.code, "FORBIDDEN");
    assert.equal((await h.connect("iam-victim", { roomId: "iam-k" })).result.statusCode, 403);

    // Connections past their token's expiry (issue 14, item 11): every route function closes one.
    // A handshake whose token is already past its deadline is refused and stores nothing.
    const expiredAt = Math.floor(Date.now() / 1000) - 60;
    const refused = await h.connect("iam-exp-late", { roomId: "iam-x", exp: expiredAt });
    assert.equal(refused.result.statusCode, 401);
    // Opened with a live token, then (as time passes) its items expire with it: aged here.
    const expired = async (userId: string, roomId: string): Promise<TestConnection> => {
      const { result, conn } = await h.connect(userId, { roomId, exp: expiredAt + 3600 });
      assert.equal(result.statusCode, 200);
      await h.doc.send(
        new UpdateCommand({
          TableName: h.tables.connections,
          Key: { connectionId: conn.connectionId },
          UpdateExpression: "SET expiresAt = :t",
          ExpressionAttributeValues: { ":t": expiredAt },
        }),
      );
      await h.doc.send(
        new UpdateCommand({
          TableName: h.tables.rooms,
          Key: { roomId, sk: `${MEMBER_PREFIX}${conn.connectionId}` },
          UpdateExpression: "SET expiresAt = :t",
          ExpressionAttributeValues: { ":t": expiredAt },
        }),
      );
      return { ...conn, exp: expiredAt };
    };
    await expired("iam-exp-0", "iam-x");
    await h.join("iam-erin", "iam-x"); // connect: `joined` meets an expired member -> DELETE
    const frank = await h.join("iam-frank", "iam-y");
    await expired("iam-exp-1", "iam-y");
    await h.disconnect(frank); // disconnect: `left` meets an expired member -> DELETE
    const frames: Array<[string, unknown]> = [
      ["chat", { type: "chat", message: "late" }],
      ["join", { type: "join", roomId: "iam-y" }],
      ["leave", { type: "leave", roomId: "iam-z" }],
      ["private", { type: "private", toUserId: "iam-alice", message: "late" }],
      ["rooms", { type: "rooms" }],
      ["history", { type: "history", roomId: "iam-z" }],
      ["ping", { type: "ping" }],
      ["kick", { type: "kick", roomId: "iam-z", userId: "iam-alice" }],
      ["edit", { type: "edit", roomId: "iam-z", messageId: "m", message: "late" }],
      ["delete", { type: "delete", roomId: "iam-z", messageId: "m" }],
      ["typing", { type: "typing", roomId: "iam-z" }],
      ["react", { type: "react", roomId: "iam-z", messageId: "m", emoji: "👍" }],
      ["read", { type: "read", roomId: "iam-z", messageId: "m" }],
      ["default", "not json"],
    ];
    for (const [route, frame] of frames) {
      const late = await expired(`iam-exp-${route}`, "iam-z");
      h.api.clearFrames();
      assert.equal(await h.send(late, frame), undefined, `${route}: answered through @connections, not as the route's reply`);
      // The TOKEN_EXPIRED answer is posted, then the connection closed (the fake forgets a closed
      // connection's frames; tests/clients/tokenExpiry.test.ts reads the answer end to end).
      const calls = h.api.calls.filter((c) => c.connectionId === late.connectionId).map((c) => `${c.method} ${c.status}`);
      assert.deepEqual(calls, ["POST 200", "DELETE 204"], route);
    }

    const observed = new Map<FunctionName, Set<string>>();
    for (const r of h.reports) {
      const set = observed.get(r.function as FunctionName) ?? new Set<string>();
      for (const c of r.dynamoCalls) set.add(`${c.table} ${c.action}${c.index ? ` @${c.index}` : ""}`);
      observed.set(r.function as FunctionName, set);
    }
    const undeclared: string[] = [];
    const unused: string[] = [];
    for (const spec of FUNCTIONS) {
      // What the policy grants, resource by resource: "<table> <action>" on the table's own ARN,
      // "<table> <action> @<index>" on an index ARN (a Query on an index is authorized there only).
      const declared = new Set<string>();
      for (const t of spec.tables) {
        for (const action of t.actions) declared.add(`${t.table} ${action}`);
        for (const [ix, actions] of Object.entries(t.indexes ?? {}))
          for (const action of actions) declared.add(`${t.table} ${action} @${ix}`);
      }
      const seen = observed.get(spec.name) ?? new Set<string>();
      for (const call of seen) if (!declared.has(call)) undeclared.push(`${spec.name}: ${call}`);
      for (const d of declared) if (!seen.has(d)) unused.push(`${spec.name}: ${d}`);
    }
    assert.deepEqual(undeclared, [], "calls missing from routes.ts (the deployed function would get AccessDenied)");
    assert.deepEqual(unused.sort(), [], "declared but never exercised");
  });
});
