/** Issue 16: room access from the token's `rooms` and `moderates` claims (handlers/lib/access.ts). */
import { strict as assert } from "node:assert";
import { BatchWriteCommand, GetCommand, QueryCommand } from "@aws-sdk/lib-dynamodb";
import { SignJWT } from "jose";
import { DIRECTORY_PARTITION } from "../../handlers/lib/data";
import { authorizerEvent, createHarness, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, type Harness } from "../support/handlerHarness";
import {
  accessContext,
  accessFromContext,
  canAccess,
  canModerate,
  isAccessClaimProblem,
  MAX_ACCESS_PATTERNS,
  matchesPattern,
  parseAccessClaims,
  type Access,
} from "../../handlers/lib/access";

const parsed = (payload: Record<string, unknown>): Access => {
  const a = parseAccessClaims(payload);
  if (isAccessClaimProblem(a)) throw new Error(a.problem);
  return a;
};

describe("handlers: room access from the token (access.ts)", () => {
  it("matches an exact id, a prefix ending in *, and * for every room, by string comparison only", () => {
    assert.equal(matchesPattern("ticket-123", "ticket-123"), true);
    assert.equal(matchesPattern("ticket-123", "ticket-1234"), false);
    assert.equal(matchesPattern("team-*", "team-a"), true);
    assert.equal(matchesPattern("team-*", "team-"), true);
    assert.equal(matchesPattern("team-*", "teams"), false);
    assert.equal(matchesPattern("*", "anything"), true);
    // A pattern is never a regular expression: characters that would be special in one are literal.
    assert.equal(matchesPattern("a.c", "abc"), false);
  });

  it("without the rooms claim, follows the deployment's roomAccess: open grants every room, token none", () => {
    const none = parsed({});
    assert.equal(canAccess(none, "open", "general"), true);
    assert.equal(canAccess(none, "token", "general"), false);
  });

  it("with the rooms claim, grants exactly the matching rooms whatever roomAccess says; an empty claim grants none", () => {
    const a = parsed({ rooms: ["support", "team-*"] });
    for (const mode of ["open", "token"] as const) {
      assert.equal(canAccess(a, mode, "support"), true);
      assert.equal(canAccess(a, mode, "team-blue"), true);
      assert.equal(canAccess(a, mode, "general"), false);
      assert.equal(canAccess(parsed({ rooms: [] }), mode, "general"), false);
    }
  });

  it("moderating a room implies access to it; moderation is only what moderates names", () => {
    const m = parsed({ rooms: [], moderates: ["team-*"] });
    assert.equal(canAccess(m, "token", "team-red"), true);
    assert.equal(canModerate(m, "team-red"), true);
    assert.equal(canModerate(m, "general"), false);
    assert.equal(canModerate(parsed({ rooms: ["*"] }), "general"), false);
  });

  it("refuses claims of the wrong type, too many patterns, and patterns that try to widen themselves", () => {
    const bad: unknown[] = [
      "team-*",
      { "0": "a" },
      [1],
      [null],
      [""],
      ["a*b"],
      ["*a"],
      ["**"],
      ["team-**"],
      [".."],
      ["../x"],
      ["a,b"],
      ["room with space"],
      ["tеam-*"], // Cyrillic "е": a look-alike of "team-*"
      ["ｔeam"], // a full-width letter
      ["a".repeat(65)],
      [`${"a".repeat(64)}*`],
      Array.from({ length: MAX_ACCESS_PATTERNS + 1 }, (_, i) => `r${i}`),
    ];
    for (const value of bad) {
      assert.equal(isAccessClaimProblem(parseAccessClaims({ rooms: value })), true, `rooms: ${JSON.stringify(value)}`);
      assert.equal(isAccessClaimProblem(parseAccessClaims({ moderates: value })), true, `moderates: ${JSON.stringify(value)}`);
    }
    assert.equal(isAccessClaimProblem(parseAccessClaims({ rooms: Array.from({ length: MAX_ACCESS_PATTERNS }, (_, i) => `r${i}`) })), false);
  });

  it("travels through the authorizer context and back unchanged, and fails closed on a context it did not write", () => {
    for (const a of [
      parsed({}),
      parsed({ rooms: [] }),
      parsed({ rooms: ["a", "team-*"], moderates: ["team-*"] }),
      parsed({ moderates: ["*"] }),
    ]) {
      const ctx = { principalId: "u", userId: "u", username: "u", ...accessContext(a) };
      assert.deepEqual(accessFromContext(ctx), a);
    }
    const forged = accessFromContext({ principalId: "u", userId: "u", username: "u", rooms: "a*b,ok", moderates: 7 });
    assert.deepEqual(forged, { rooms: ["ok"], moderates: [] });
  });
});

/**
 * Issue 16 through the real handlers on DynamoDB Local: the authorizer turns the claims into its
 * context (or refuses them), $connect refuses a first room not granted and stores nothing, and
 * join/chat/history answer FORBIDDEN before NOT_A_MEMBER; `rooms` lists granted rooms only.
 */
describe("handlers: room access through the routes (DynamoDB Local)", function () {
  this.timeout(120_000);
  let h: Harness;
  let closed: Harness;
  const key = new TextEncoder().encode(TEST_SECRET);
  const token = (claims: Record<string, unknown>) =>
    new SignJWT({ name: "Alice", ...claims })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("alice")
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign(key);
  /** The access context the authorizer gives a token with these claims. */
  const grant = (claims: { rooms?: string[]; moderates?: string[] }) => accessContext(parsed(claims));
  const connectionItem = (connectionId: string) =>
    h.doc.send(new GetCommand({ TableName: h.tables.connections, Key: { connectionId } })).then((r) => r.Item);
  const roomItems = async (harness: Harness, roomId: string) =>
    (
      await harness.doc.send(
        new QueryCommand({
          TableName: harness.tables.rooms,
          KeyConditionExpression: "roomId = :r",
          ExpressionAttributeValues: { ":r": roomId },
        }),
      )
    ).Items ?? [];

  before(async () => {
    h = await createHarness({ label: "access", rateLimitPerMinute: 100_000, userRateLimitPerMinute: 100_000 });
    closed = await createHarness({ label: "access-token", roomAccess: "token" });
  });
  after(async () => {
    // Reverse order: each restores the stdout the one before it wrapped.
    await closed?.stop();
    await h?.stop();
  });

  it("the authorizer passes the claims' patterns in its context beside userId, username and exp", async () => {
    const result = await h.authorizer()(authorizerEvent({ token: await token({ rooms: ["a", "team-*", "a"], moderates: ["team-*"] }) }));
    assert.equal(result.policyDocument.Statement[0].Effect, "Allow");
    assert.equal(result.context?.rooms, "a,team-*");
    assert.equal(result.context?.moderates, "team-*");
    assert.equal(result.context?.userId, "alice");
    // Without the claims, no entry: the deployment's roomAccess decides.
    const plain = await h.authorizer()(authorizerEvent({ token: await token({}) }));
    assert.deepEqual(Object.keys(plain.context ?? {}).sort(), ["exp", "userId", "username"]);
  });

  it("the authorizer refuses a correctly signed token whose claims are malformed (403), counted and logged without the token", async () => {
    const bad: Array<Record<string, unknown>> = [
      { rooms: "team-*" },
      { rooms: [7] },
      { rooms: ["a*b"] },
      { rooms: [".."] },
      { rooms: ["tеam-*"] },
      { moderates: ["*x"] },
      { rooms: Array.from({ length: MAX_ACCESS_PATTERNS + 1 }, (_, i) => `r${i}`) },
      { rooms: null },
    ];
    const before = h.reports.filter((r) => r.function === "authorizer" && r.metrics.RejectedConnects === 1).length;
    for (const claims of bad) {
      const result = await h.authorizer()(authorizerEvent({ token: await token(claims) }));
      assert.equal(result.policyDocument.Statement[0].Effect, "Deny", JSON.stringify(claims).slice(0, 80));
      assert.equal(result.context, undefined);
    }
    const after = h.reports.filter((r) => r.function === "authorizer" && r.metrics.RejectedConnects === 1).length;
    assert.equal(after - before, bad.length);
    // The harness created last captures the process's log lines (captureStdout wraps stdout).
    const logs = [...h.logs, ...closed.logs];
    assert.ok(logs.some((l) => l.includes("handshake denied") && l.includes("rooms holds an invalid pattern")));
    assert.ok(!logs.some((l) => l.includes("eyJ")), "no token in the logs");
  });

  it("$connect refuses with 403 a first room the token does not grant, storing and announcing nothing", async () => {
    const member = await h.join("acc-bob", "acc-general");
    const { result, conn } = await h.connect("alice", { roomId: "acc-general", access: grant({ rooms: ["team-*"] }) });
    assert.equal(result.statusCode, 403);
    assert.equal(await connectionItem(conn.connectionId), undefined);
    assert.deepEqual(
      (await roomItems(h, "acc-general")).filter((i) => i.connectionId === conn.connectionId || i.userId === "alice"),
      [],
    );
    assert.deepEqual(
      h.frames(member).filter((f) => f.type === "presence"),
      [],
    );
    // The same token into a room it grants is accepted.
    const ok = await h.connect("alice", { roomId: "team-a", access: grant({ rooms: ["team-*"] }) });
    assert.equal(ok.result.statusCode, 200);
  });

  it("with roomAccess token, a token without the rooms claim gets no room; one with it gets its rooms", async () => {
    const { result, conn } = await closed.connect("carol", { roomId: "general" });
    assert.equal(result.statusCode, 403);
    assert.deepEqual(await roomItems(closed, "general"), []);
    assert.equal(
      (await closed.doc.send(new GetCommand({ TableName: closed.tables.connections, Key: { connectionId: conn.connectionId } }))).Item,
      undefined,
    );
    const ok = await closed.connect("carol", { roomId: "general", access: grant({ rooms: ["general"] }) });
    assert.equal(ok.result.statusCode, 200);
    const reply = await closed.send(ok.conn, { type: "join", roomId: "elsewhere" });
    assert.equal(reply?.code, "FORBIDDEN");
    // A moderator's rooms are granted without the rooms claim.
    const mod = await closed.connect("mona", { roomId: "ops-1", access: grant({ moderates: ["ops-*"] }) });
    assert.equal(mod.result.statusCode, 200);
  });

  it("join, chat and history of a room not granted are FORBIDDEN (naming the room); granted but not joined stays NOT_A_MEMBER", async () => {
    const insider = await h.join("acc-insider", "acc-secret");
    const alice = (await h.connect("alice", { roomId: "acc-lobby", access: grant({ rooms: ["acc-lobby", "acc-team-*"] }) })).conn;
    const forbidden = (requestType: string) => ({
      type: "error",
      code: "FORBIDDEN",
      message: "you do not have access to room acc-secret",
      requestType,
      roomId: "acc-secret",
    });
    assert.deepEqual(await h.send(alice, { type: "join", roomId: "acc-secret" }), forbidden("join"));
    assert.deepEqual(await h.send(alice, { type: "chat", roomId: "acc-secret", message: "intrusion", clientMessageId: "c1" }), {
      ...forbidden("chat"),
      clientMessageId: "c1",
    });
    assert.deepEqual(await h.send(alice, { type: "history", roomId: "acc-secret" }), forbidden("history"));
    assert.equal((await h.send(alice, { type: "chat", roomId: "acc-team-x", message: "hi" }))?.code, "NOT_A_MEMBER");
    assert.equal((await h.send(alice, { type: "history", roomId: "acc-team-x" }))?.code, "NOT_A_MEMBER");
    assert.equal((await h.send(alice, { type: "join", roomId: "acc-team-x" }))?.type, "joined");
    // Nothing reached the room: no presence, no message, nothing in its history.
    assert.deepEqual(
      h.frames(insider).filter((f) => f.type === "presence" || f.type === "chat"),
      [],
    );
    assert.deepEqual((await h.send(insider, { type: "history", roomId: "acc-secret" }))?.messages, []);
    assert.deepEqual(
      (await roomItems(h, "acc-secret")).filter((i) => i.userId === "alice"),
      [],
    );
    // Private messages are not rooms: unaffected by the rooms claim.
    assert.equal((await h.send(alice, { type: "private", toUserId: "acc-insider", message: "psst" }))?.type, "delivered");
  });

  it("rooms lists only granted rooms, and paging a filtered directory larger than one read's budget ends with each granted room once", async () => {
    const expiresAt = Math.floor(Date.now() / 1000) + 3600;
    // 1,300 rooms, 7 of them granted (spread out, one after the budget's first read), so pages come
    // back with fewer rooms than asked, some with none, and still carry `next`.
    const ids = Array.from({ length: 1300 }, (_, i) => `acp-${String(i).padStart(4, "0")}`);
    const granted = ["acp-0000", "acp-0001", "acp-0500", "acp-0999", "acp-1000", "acp-1001", "acp-1299"];
    for (let i = 0; i < ids.length; i += 25) {
      await h.doc.send(
        new BatchWriteCommand({
          RequestItems: {
            [h.tables.rooms]: ids.slice(i, i + 25).map((roomId) => ({
              PutRequest: { Item: { roomId, sk: "#summary", users: 2, directory: DIRECTORY_PARTITION, expiresAt } },
            })),
          },
        }),
      );
    }
    const lister = (
      await h.connect("lister", {
        roomId: "acc-lister",
        access: grant({ rooms: ["acc-lister", ...granted.filter((r) => r !== "acp-1001")], moderates: ["acp-1001"] }),
      })
    ).conn;
    for (const limit of [500, 2]) {
      const listed: string[] = [];
      const sizes: number[] = [];
      let after: string | undefined;
      let pages = 0;
      do {
        const page = await h.send(lister, { type: "rooms", limit, ...(after ? { after } : {}) });
        assert.equal(page?.type, "rooms", JSON.stringify(page));
        const rooms = (page?.rooms as Array<{ roomId: string }>).map((r) => r.roomId);
        assert.ok(rooms.length <= limit);
        sizes.push(rooms.length);
        listed.push(...rooms);
        after = page?.next as string | undefined;
        pages += 1;
      } while (after !== undefined && pages < 40);
      assert.equal(after, undefined, `limit ${limit}: the listing ended (${pages} pages)`);
      assert.deepEqual(listed, ["acc-lister", ...granted].sort(), `limit ${limit}`);
      if (limit === 500) assert.ok(sizes.some((n) => n < 500) && pages > 1, `some page was short yet not last: ${sizes}`);
    }
    // Open access (no claim, roomAccess open) still lists every room in one page of 500.
    const open = await h.join("acc-open", "acc-open-room");
    assert.equal(((await h.send(open, { type: "rooms" }))?.rooms as unknown[]).length, 500);
  });
});
