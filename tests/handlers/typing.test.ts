/**
 * Issue 18, typing indicators: the `typing` route through the real handler on DynamoDB Local and the
 * fake `@connections` server (who receives it, the throttle, the room-size bound, the access rules,
 * the rate limit), and handlers/lib/signals.ts on its own (passThrottle, roomUsers, signalsAllowed).
 * Time is injected (the handler's clock, passThrottle's nowMs): no test waits for an interval.
 */
import { strict as assert } from "node:assert";
import { GetCommand } from "@aws-sdk/lib-dynamodb";
import type { WebSocketHandler } from "../../handlers/events";
import { createHandler as createTyping } from "../../handlers/functions/typing";
import type { HandlerConfig } from "../../handlers/lib/config";
import type { DataContext } from "../../handlers/lib/data";
import { passThrottle, roomUsers, signalThrottleKey, signalsAllowed } from "../../handlers/lib/signals";
import { createHarness, messageEvent, withEnv, type Harness, type TestConnection } from "../support/handlerHarness";

type Frame = Record<string, unknown>;

/** The room size bound of this suite's harness: rooms of 3 users get typing, rooms of 4 do not. */
const MAX_ROOM_USERS = 3;

describe("handlers: typing (DynamoDB Local)", function () {
  this.timeout(120_000);
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "typing", extraEnv: { TYPING_MAX_ROOM_USERS: String(MAX_ROOM_USERS) } });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const typingFrames = (c: TestConnection) => h.frames(c).filter((f) => f.type === "typing");
  const code = (f: Frame | undefined) => (f?.type === "error" ? f.code : `not an error: ${JSON.stringify(f)}`);
  /** A typing handler of its own (a cold start with these variables over the suite's), on the given clock. */
  const typingHandler = (env: Record<string, string> = {}, now?: () => number): WebSocketHandler =>
    withEnv({ ...h.envFor("typing"), ...env, AWS_REGION: "us-east-1" }, () => createTyping(now ? { now } : {}));
  const sendWith = async (handler: WebSocketHandler, c: TestConnection, frame: unknown): Promise<Frame | undefined> => {
    const r = await handler(messageEvent(c, "typing", JSON.stringify(frame)));
    assert.equal(r.statusCode, 200);
    return r.body === undefined ? undefined : (JSON.parse(r.body) as Frame);
  };
  const throttleItem = (userId: string, conversationId: string) =>
    h.doc
      .send(
        new GetCommand({
          TableName: h.tables.connections,
          Key: { connectionId: signalThrottleKey("typing", userId, conversationId) },
          ConsistentRead: true,
        }),
      )
      .then((r) => r.Item);

  it("goes to the room's other users, not to any connection of the typer; nothing is replied or stored", async () => {
    const a1 = await h.join("ty-a", "ty-room", "Ann");
    const a2 = await h.join("ty-a", "ty-room", "Ann");
    const b = await h.join("ty-b", "ty-room");
    const c = await h.join("ty-c", "ty-room");
    const outsider = await h.join("ty-d", "ty-elsewhere");
    h.api.clearFrames();
    assert.equal(await h.send(a1, { type: "typing", roomId: "ty-room" }), undefined, "no reply on success");
    const expected = { type: "typing", roomId: "ty-room", userId: "ty-a", username: "Ann" };
    assert.deepEqual(typingFrames(b), [expected]);
    assert.deepEqual(typingFrames(c), [expected], `a room of ${MAX_ROOM_USERS} users (the bound) gets it`);
    assert.deepEqual(h.frames(a1), [], "not to the typing connection");
    assert.deepEqual(h.frames(a2), [], "nor to the typer's other devices");
    assert.deepEqual(h.frames(outsider), []);
    const page = await h.send(b, { type: "history", roomId: "ty-room" });
    assert.deepEqual(page?.messages, [], "ephemeral: nothing stored in history");
  });

  it("is absorbed within typingIntervalSeconds of the last one (no post, no error) and passes again after it", async () => {
    let clock = Date.now();
    const typing = typingHandler({}, () => clock);
    const a = await h.join("th-a", "th-room");
    const b = await h.join("th-b", "th-room");
    await h.send(b, { type: "join", roomId: "th-room-2" });
    await h.send(a, { type: "join", roomId: "th-room-2" });
    h.api.clearFrames();
    assert.equal(await sendWith(typing, a, { type: "typing", roomId: "th-room" }), undefined);
    assert.equal(typingFrames(b).length, 1);
    clock += 2_999; // the default interval is 3 s
    assert.equal(await sendWith(typing, a, { type: "typing", roomId: "th-room" }), undefined, "absorbed: no error");
    assert.equal(typingFrames(b).length, 1, "absorbed: no post");
    // The throttle is per user and conversation: another room, another user pass at once.
    assert.equal(await sendWith(typing, a, { type: "typing", roomId: "th-room-2" }), undefined);
    assert.deepEqual(
      typingFrames(b).map((f) => f.roomId),
      ["th-room", "th-room-2"],
    );
    assert.equal(await sendWith(typing, b, { type: "typing", roomId: "th-room" }), undefined);
    assert.deepEqual(
      typingFrames(a).map((f) => `${f.userId} ${f.roomId}`),
      ["th-b th-room"],
    );
    clock += 1; // 3 s after the first
    assert.equal(await sendWith(typing, a, { type: "typing", roomId: "th-room" }), undefined);
    assert.deepEqual(
      typingFrames(b).map((f) => f.roomId),
      ["th-room", "th-room-2", "th-room"],
      "passes again once the interval is over",
    );
  });

  it("a room above typingMaxRoomUsers gets nothing, and typingMaxRoomUsers 0 turns room typing off without a read or write", async () => {
    const big = [];
    for (let i = 0; i <= MAX_ROOM_USERS; i++) big.push(await h.join(`cap-${i}`, "cap-room"));
    h.api.clearFrames();
    assert.equal(await h.send(big[0], { type: "typing", roomId: "cap-room" }), undefined, "absorbed: no error");
    for (const c of big) assert.deepEqual(h.frames(c), [], `${MAX_ROOM_USERS + 1} users: nobody is told`);

    const a = await h.join("off-a", "off-room");
    const b = await h.join("off-b", "off-room");
    h.api.clearFrames();
    const off = typingHandler({ TYPING_MAX_ROOM_USERS: "0" });
    const before = h.reports.length;
    assert.equal(await sendWith(off, a, { type: "typing", roomId: "off-room" }), undefined);
    assert.deepEqual(h.frames(b), []);
    const calls = h.reports.slice(before).flatMap((r) => r.dynamoCalls.map((c) => `${c.table} ${c.action}`));
    // The rate limit's UpdateItems only (connection and user budget; one more when a window opens).
    assert.deepEqual(new Set(calls), new Set(["connections dynamodb:UpdateItem"]), "no room read");
    assert.equal(await throttleItem("off-a", "room#off-room"), undefined, "no throttle write");
    // A private conversation is no room: typingMaxRoomUsers does not bound it.
    assert.equal(await sendWith(off, a, { type: "typing", withUserId: "off-b" }), undefined);
    assert.deepEqual(typingFrames(b), [{ type: "typing", toUserId: "off-b", userId: "off-a", username: "off-a" }]);
  });

  it("in a private conversation, goes to every device of the other user and to none of the typer's", async () => {
    const a1 = await h.join("pt-a", "pt-1", "Ann");
    const a2 = await h.join("pt-a", "pt-2", "Ann");
    const b1 = await h.join("pt-b", "pt-3");
    const b2 = await h.join("pt-b", "pt-4");
    const bystander = await h.join("pt-c", "pt-1");
    h.api.clearFrames();
    assert.equal(await h.send(a1, { type: "typing", withUserId: "pt-b" }), undefined);
    const expected = { type: "typing", toUserId: "pt-b", userId: "pt-a", username: "Ann" };
    assert.deepEqual(typingFrames(b1), [expected]);
    assert.deepEqual(typingFrames(b2), [expected]);
    for (const c of [a1, a2, bystander]) assert.deepEqual(h.frames(c), [], c.connectionId);
    // To a user with no connection: nothing to post, nothing answered.
    assert.equal(await h.send(a1, { type: "typing", withUserId: "pt-nobody" }), undefined);
  });

  it("a gone member found by the fan-out is removed as by `chat`: the room is told it left", async () => {
    const a = await h.join("gm-a", "gm-room");
    const b = await h.join("gm-b", "gm-room");
    const gone = await h.join("gm-c", "gm-room");
    await h.vanish(gone);
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "typing", roomId: "gm-room" }), undefined);
    assert.equal(typingFrames(b).length, 1);
    const left = h.frames(b).filter((f) => f.type === "presence" && f.event === "left");
    assert.deepEqual(
      left.map((f) => f.userId),
      ["gm-c"],
    );
    assert.equal(await roomUsers({ doc: h.doc, config: signalConfig(h) }, "gm-room"), 2, "the summary no longer counts it");
  });

  it("is refused as `chat` is: FORBIDDEN (with roomId), NOT_A_MEMBER, oneself, no or both targets, another sender; nothing written", async () => {
    const { conn: a } = await h.connect("rf-a", { roomId: "rf-team-1", access: { rooms: "rf-team-*" } });
    const forbidden = await h.send(a, { type: "typing", roomId: "rf-secret" });
    assert.deepEqual(
      { code: forbidden?.code, roomId: forbidden?.roomId, requestType: forbidden?.requestType },
      { code: "FORBIDDEN", roomId: "rf-secret", requestType: "typing" },
    );
    assert.equal(code(await h.send(a, { type: "typing", roomId: "rf-team-2" })), "NOT_A_MEMBER");
    assert.equal(code(await h.send(a, { type: "typing", withUserId: "rf-a" })), "BAD_REQUEST");
    assert.equal(code(await h.send(a, { type: "typing" })), "BAD_REQUEST");
    assert.equal(code(await h.send(a, { type: "typing", roomId: "rf-team-1", withUserId: "rf-b" })), "BAD_REQUEST");
    assert.equal(code(await h.send(a, { type: "typing", roomId: "rf-team-1", userId: "rf-b" })), "BAD_REQUEST");
    for (const conversation of ["room#rf-secret", "room#rf-team-2", "room#rf-team-1"])
      assert.equal(await throttleItem("rf-a", conversation), undefined, conversation);
  });

  it("counts towards the rate limit like every frame", async () => {
    const typing = typingHandler({ RATE_LIMIT_PER_MINUTE: "2" });
    const a = await h.join("rl-a", "rl-room");
    await h.join("rl-b", "rl-room");
    assert.equal(await sendWith(typing, a, { type: "typing", roomId: "rl-room" }), undefined);
    assert.equal(await sendWith(typing, a, { type: "typing", roomId: "rl-room" }), undefined, "absorbed by the throttle");
    const limited = await sendWith(typing, a, { type: "typing", roomId: "rl-room" });
    assert.deepEqual({ code: limited?.code, requestType: limited?.requestType }, { code: "RATE_LIMITED", requestType: "typing" });
  });

  describe("signals.ts", () => {
    const ctx = (): DataContext => ({ doc: h.doc, config: signalConfig(h) });

    it("passThrottle: passes, absorbs within the interval, passes again after it; per kind, user and conversation", async () => {
      const t0 = 1_800_000_000_000;
      assert.equal(await passThrottle(ctx(), "typing", "sg-a", "room#sg", t0), true);
      assert.equal(await passThrottle(ctx(), "typing", "sg-a", "room#sg", t0 + 1), false);
      assert.equal(await passThrottle(ctx(), "typing", "sg-a", "room#sg", t0 + 2_999), false);
      assert.equal(await passThrottle(ctx(), "read", "sg-a", "room#sg", t0 + 1), true, "another kind");
      assert.equal(await passThrottle(ctx(), "typing", "sg-b", "room#sg", t0 + 1), true, "another user");
      assert.equal(await passThrottle(ctx(), "typing", "sg-a", "room#sg-2", t0 + 1), true, "another conversation");
      assert.equal(await passThrottle(ctx(), "typing", "sg-a", "room#sg", t0 + 3_000), true, "the interval is over");
      assert.equal(await passThrottle(ctx(), "typing", "sg-a", "room#sg", t0 + 3_001), false, "a new interval began");
      const item = (
        await h.doc.send(
          new GetCommand({ TableName: h.tables.connections, Key: { connectionId: signalThrottleKey("typing", "sg-a", "room#sg") } }),
        )
      ).Item;
      assert.equal(item?.at, t0 + 3_000);
      assert.equal(item?.userId, undefined, "no userId: the byUser index never sees it");
      assert.ok(Number(item?.expiresAt) > (t0 + 3_000) / 1000, "expires (TTL) after its interval");
    });

    it("roomUsers: the room's distinct users from its summary; 0 without one", async () => {
      await h.join("ru-a", "ru-room");
      await h.join("ru-a", "ru-room");
      await h.join("ru-b", "ru-room");
      assert.equal(await roomUsers(ctx(), "ru-room"), 2);
      assert.equal(await roomUsers(ctx(), "ru-never-used"), 0);
    });

    it("signalsAllowed: up to typingMaxRoomUsers users; none with 0", () => {
      const cap = (typingMaxRoomUsers: number) => ({ config: { ...signalConfig(h), typingMaxRoomUsers } });
      assert.equal(signalsAllowed(cap(3), 3), true);
      assert.equal(signalsAllowed(cap(3), 4), false);
      assert.equal(signalsAllowed(cap(0), 0), false);
      assert.equal(signalsAllowed(cap(0), 1), false);
    });
  });
});

/** The configuration signals.ts reads (tables, the interval, the bound), with the stack's defaults. */
function signalConfig(h: Harness): HandlerConfig {
  return {
    functionName: "signals-test",
    tables: h.tables,
    typingIntervalSeconds: 3,
    typingMaxRoomUsers: MAX_ROOM_USERS,
  } as Partial<HandlerConfig> as HandlerConfig;
}
