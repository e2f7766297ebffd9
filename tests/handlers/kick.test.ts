/**
 * Issue 16, `kick` (handlers/functions/kick.ts, handlers/lib/moderation.ts): a moderator of the room
 * keeps a user out of it for some minutes. Through the real handlers on DynamoDB Local: who may
 * kick, what the kicked connections and the room receive, what the tables hold afterwards, that the
 * user's joins and handshakes into the room are refused until the restriction's end, and (a
 * DynamoGate ordering the requests) that a join racing a kick never leaves the user in the room.
 */
import { strict as assert } from "node:assert";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { kickKey, restrictJoins } from "../../handlers/lib/data";
import { DEFAULT_KICK_MINUTES, MAX_KICK_MINUTES } from "../../handlers/lib/frames";
import type { GateRequest } from "../support/dynamoGate";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";
import { snapshot, violations } from "../support/invariants";

describe("handlers: kick (issue 16)", function () {
  this.timeout(120_000);
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "kick", gate: true });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const gate = () => {
    if (!h.gate) throw new Error("harness built without a gate");
    return h.gate;
  };
  /** A moderator of every `kick-*` room (the authorizer's context for `moderates: ["kick-*"]`). */
  const moderator = async (userId: string, roomId: string): Promise<TestConnection> => {
    const { result, conn } = await h.connect(userId, { roomId, access: { moderates: "kick-*" } });
    assert.equal(result.statusCode, 200);
    return conn;
  };
  const restriction = async (roomId: string, userId: string) =>
    (
      await h.doc.send(
        new GetCommand({ TableName: h.tables.connections, Key: { connectionId: kickKey(roomId, userId) }, ConsistentRead: true }),
      )
    ).Item;
  /** Time passes: the restriction's end moves into the past (what the clock would do in `minutes`). */
  const expire = (roomId: string, userId: string) =>
    h.doc.send(
      new UpdateCommand({
        TableName: h.tables.connections,
        Key: { connectionId: kickKey(roomId, userId) },
        UpdateExpression: "SET #until = :past",
        ExpressionAttributeNames: { "#until": "until" },
        ExpressionAttributeValues: { ":past": Date.now() - 1 },
      }),
    );
  const memberOf = async (roomId: string, userId: string) => {
    const members = (await snapshot(h.doc, h.tables)).members.get(roomId);
    return [...(members ?? new Map<string, string>()).entries()].filter(([, u]) => u === userId).map(([id]) => id);
  };
  const consistent = async (prefix: string) => assert.deepEqual(violations(await snapshot(h.doc, h.tables), prefix), []);
  const presence = (conn: TestConnection, event: string, userId: string, roomId: string) =>
    h.frames(conn).filter((f) => f.type === "presence" && f.event === event && f.userId === userId && f.roomId === roomId).length;
  const counted = async (conn: TestConnection, roomId: string) =>
    ((await h.send(conn, { type: "rooms" }))?.rooms as Array<{ roomId: string; members: number }>).find((r) => r.roomId === roomId)
      ?.members;

  it("a moderator kicks a user with two connections: both are told `kicked` and removed, the room hears one `left`, counts exact", async () => {
    const mod = await moderator("kick-mod", "kick-1");
    const watcher = await h.join("kick-watch", "kick-1");
    // Two devices: the first connected into kick-1 and moved on to kick-1-other (its current room);
    // the second connected into kick-1-other and then joined kick-1 (its current room).
    const phone = await h.join("kick-bob", "kick-1", "Bob");
    assert.equal((await h.send(phone, { type: "join", roomId: "kick-1-other" }))?.type, "joined");
    const laptop = await h.join("kick-bob", "kick-1-other", "Bob");
    assert.equal((await h.send(laptop, { type: "join", roomId: "kick-1" }))?.type, "joined");
    assert.equal(await counted(watcher, "kick-1"), 3);
    h.api.clearFrames();

    const before = Date.now();
    const reply = await h.send(mod, { type: "kick", roomId: "kick-1", userId: "kick-bob" });
    const until = Date.parse(String(reply?.until));
    assert.deepEqual(reply, { type: "userKicked", roomId: "kick-1", userId: "kick-bob", until: reply?.until, connections: 2 });
    assert.ok(until >= before + DEFAULT_KICK_MINUTES * 60_000 && until <= Date.now() + DEFAULT_KICK_MINUTES * 60_000, String(reply?.until));
    for (const device of [phone, laptop]) {
      assert.deepEqual(
        h.frames(device).filter((f) => f.type === "kicked"),
        [{ type: "kicked", roomId: "kick-1", by: "kick-mod", until: reply?.until }],
      );
    }
    assert.deepEqual(await memberOf("kick-1", "kick-bob"), []);
    assert.equal(presence(watcher, "left", "kick-bob", "kick-1"), 1, "one `left` for the user, not one per connection");
    assert.equal(presence(mod, "left", "kick-bob", "kick-1"), 1);
    assert.equal(await counted(watcher, "kick-1"), 2);
    await consistent("kick-1");
    // The restriction item: until (ms), TTL at until, who kicked; no userId (the byUser index never lists it).
    const item = await restriction("kick-1", "kick-bob");
    assert.deepEqual(item, { connectionId: "kick#kick-1#kick-bob", until, by: "kick-mod", expiresAt: Math.ceil(until / 1000) });
    // The devices stay in their other room; the laptop's current room moved there, as a leave moves it.
    assert.equal(await h.send(laptop, { type: "chat", message: "still here" }), undefined);
    assert.equal(h.frames(laptop).filter((f) => f.type === "chat" && f.roomId === "kick-1-other").length, 1);
    assert.equal(h.frames(watcher).filter((f) => f.type === "chat").length, 0, "kick-1 no longer hears the kicked user");
    assert.equal((await h.send(phone, { type: "chat", roomId: "kick-1", message: "let me in" }))?.code, "NOT_A_MEMBER");
  });

  it("the kicked user's join is FORBIDDEN (naming the room and until when) before the end, and accepted after it", async () => {
    const mod = await moderator("kick-mod2", "kick-2");
    const bob = await h.join("kick-bob2", "kick-2");
    const reply = await h.send(mod, { type: "kick", roomId: "kick-2", userId: "kick-bob2", minutes: 1 });
    assert.equal(reply?.connections, 1);
    h.api.clearFrames();
    const refused = await h.send(bob, { type: "join", roomId: "kick-2" });
    assert.deepEqual(refused, {
      type: "error",
      code: "FORBIDDEN",
      message: `you were removed from room kick-2 by a moderator; you can join it again from ${reply?.until}`,
      requestType: "join",
      roomId: "kick-2",
    });
    assert.deepEqual(await memberOf("kick-2", "kick-bob2"), []);
    assert.equal(presence(mod, "joined", "kick-bob2", "kick-2"), 0);
    // Other rooms are not affected.
    assert.equal((await h.send(bob, { type: "join", roomId: "kick-2b" }))?.type, "joined");
    await expire("kick-2", "kick-bob2");
    assert.equal((await h.send(bob, { type: "join", roomId: "kick-2" }))?.type, "joined");
    assert.equal(presence(mod, "joined", "kick-bob2", "kick-2"), 1);
    await consistent("kick-2");
  });

  it("a handshake into the room is refused with 403 while the restriction lasts, storing and announcing nothing", async () => {
    const mod = await moderator("kick-mod3", "kick-3");
    await h.send(mod, { type: "kick", roomId: "kick-3", userId: "kick-bob3" });
    h.api.clearFrames();
    const { result, conn } = await h.connect("kick-bob3", { roomId: "kick-3" });
    assert.equal(result.statusCode, 403);
    const s = await snapshot(h.doc, h.tables);
    assert.equal(s.connections.has(conn.connectionId), false, "no connection item");
    assert.deepEqual(await memberOf("kick-3", "kick-bob3"), []);
    assert.deepEqual(h.frames(mod), [], "nothing announced");
    // Into another room the same user connects as usual; after the end, into this one too.
    assert.equal((await h.connect("kick-bob3", { roomId: "kick-3b" })).result.statusCode, 200);
    await expire("kick-3", "kick-bob3");
    assert.equal((await h.connect("kick-bob3", { roomId: "kick-3" })).result.statusCode, 200);
    assert.equal(presence(mod, "joined", "kick-bob3", "kick-3"), 1);
    await consistent("kick-3");
  });

  it("refuses a user who does not moderate the room (FORBIDDEN), a moderator of other rooms (FORBIDDEN) and a self-kick (BAD_REQUEST)", async () => {
    const bob = await h.join("kick-bob4", "kick-4");
    const plain = await h.join("kick-plain", "kick-4");
    const elsewhere = (await h.connect("kick-other-mod", { roomId: "kick-4", access: { moderates: "team-*" } })).conn;
    const mod = await moderator("kick-mod4", "kick-4");
    const forbidden = {
      type: "error",
      code: "FORBIDDEN",
      message: "you do not moderate room kick-4",
      requestType: "kick",
      roomId: "kick-4",
    };
    assert.deepEqual(await h.send(plain, { type: "kick", roomId: "kick-4", userId: "kick-bob4" }), forbidden);
    assert.deepEqual(await h.send(elsewhere, { type: "kick", roomId: "kick-4", userId: "kick-bob4" }), forbidden);
    assert.deepEqual(await h.send(mod, { type: "kick", roomId: "kick-4", userId: "kick-mod4" }), {
      type: "error",
      code: "BAD_REQUEST",
      message: "userId: you cannot kick yourself",
      requestType: "kick",
    });
    for (const minutes of [0, MAX_KICK_MINUTES + 1, 1.5, "5"]) {
      assert.equal(
        (await h.send(mod, { type: "kick", roomId: "kick-4", userId: "kick-bob4", minutes }))?.code,
        "BAD_REQUEST",
        String(minutes),
      );
    }
    assert.equal((await h.send(mod, { type: "kick", roomId: "kick 4", userId: "kick-bob4" }))?.code, "BAD_REQUEST");
    // Nothing happened: bob is still in the room, no restriction was written, nobody was told anything.
    assert.equal((await memberOf("kick-4", "kick-bob4")).length, 1);
    assert.equal(await restriction("kick-4", "kick-bob4"), undefined);
    assert.equal(await restriction("kick-4", "kick-mod4"), undefined);
    assert.deepEqual(
      h.frames(bob).filter((f) => f.type === "kicked" || (f.type === "presence" && f.event === "left")),
      [],
    );
  });

  it("kicking a user who is not in the room records the restriction; kicking again is harmless and never shortens it", async () => {
    const mod = await moderator("kick-mod5", "kick-5");
    const first = await h.send(mod, { type: "kick", roomId: "kick-5", userId: "kick-absent", minutes: 60 });
    assert.equal(first?.type, "userKicked");
    assert.equal(first?.connections, 0);
    assert.equal((await restriction("kick-5", "kick-absent"))?.until, Date.parse(String(first?.until)));
    // A shorter kick later keeps the longer restriction in force, and says so.
    const second = await h.send(mod, { type: "kick", roomId: "kick-5", userId: "kick-absent", minutes: 5 });
    assert.deepEqual(second, { ...first, until: first?.until });
    assert.equal(h.frames(mod).filter((f) => f.type === "presence").length, 0);
    const { result } = await h.connect("kick-absent", { roomId: "kick-5" });
    assert.equal(result.statusCode, 403);
    // A longer one extends it.
    const third = await h.send(mod, { type: "kick", roomId: "kick-5", userId: "kick-absent", minutes: 120 });
    assert.ok(Date.parse(String(third?.until)) > Date.parse(String(first?.until)) + 59 * 60_000);
  });

  it("a kick repeated while the user is out removes and announces nothing more", async () => {
    const mod = await moderator("kick-mod6", "kick-6");
    const bob = await h.join("kick-bob6", "kick-6");
    assert.equal((await h.send(mod, { type: "kick", roomId: "kick-6", userId: "kick-bob6" }))?.connections, 1);
    assert.equal((await h.send(mod, { type: "kick", roomId: "kick-6", userId: "kick-bob6" }))?.connections, 0);
    assert.equal(h.frames(bob).filter((f) => f.type === "kicked").length, 1);
    assert.equal(presence(mod, "left", "kick-bob6", "kick-6"), 1);
    await consistent("kick-6");
  });

  /** The join transaction of `userId` into `roomId` (it carries the ConditionCheck of that user's restriction). */
  const joinTransaction = (roomId: string, userId: string) => (r: GateRequest) =>
    r.operation === "TransactWriteItems" && r.body.includes(`"${kickKey(roomId, userId)}"`);

  it("a join that reaches DynamoDB after the kick's restriction fails its condition: FORBIDDEN, never a member", async () => {
    const mod = await moderator("kick-mod7", "kick-7");
    const bob = await h.join("kick-bob7", "kick-7");
    const other = await h.join("kick-bob7", "kick-7-home");
    h.api.clearFrames();
    const held = gate().hold(joinTransaction("kick-7", "kick-bob7"));
    const join = h.send(other, { type: "join", roomId: "kick-7" });
    await held.arrived;
    const kick = await h.send(mod, { type: "kick", roomId: "kick-7", userId: "kick-bob7" });
    assert.equal(kick?.connections, 1);
    held.release();
    const reply = await join;
    assert.equal(reply?.code, "FORBIDDEN", JSON.stringify(reply));
    assert.equal(reply?.roomId, "kick-7");
    assert.deepEqual(await memberOf("kick-7", "kick-bob7"), []);
    assert.equal(h.frames(bob).filter((f) => f.type === "kicked").length, 1);
    assert.equal(presence(mod, "left", "kick-bob7", "kick-7"), 1);
    assert.equal(presence(mod, "joined", "kick-bob7", "kick-7"), 0);
    await consistent("kick-7");
  });

  it("a join that commits before the kick's restriction is seen by the kick's consistent read and removed", async () => {
    const mod = await moderator("kick-mod8", "kick-8");
    const bob = await h.join("kick-bob8", "kick-8-home");
    // The kick is parked just before it writes the restriction; the join runs to its end meanwhile.
    const held = gate().hold((r) => r.operation === "PutItem" && r.body.includes(`"${kickKey("kick-8", "kick-bob8")}"`));
    const kick = h.send(mod, { type: "kick", roomId: "kick-8", userId: "kick-bob8" });
    await held.arrived;
    assert.equal((await h.send(bob, { type: "join", roomId: "kick-8" }))?.type, "joined");
    held.release();
    assert.equal((await kick)?.connections, 1);
    assert.deepEqual(await memberOf("kick-8", "kick-bob8"), []);
    assert.equal(h.frames(bob).filter((f) => f.type === "kicked" && f.roomId === "kick-8").length, 1);
    assert.equal(presence(mod, "joined", "kick-bob8", "kick-8"), 1);
    assert.equal(presence(mod, "left", "kick-bob8", "kick-8"), 1);
    assert.equal((await h.send(bob, { type: "join", roomId: "kick-8" }))?.code, "FORBIDDEN");
    await consistent("kick-8");
  });

  it("a join overtaken by a kick between its transaction and its room read answers FORBIDDEN and announces no `joined`", async () => {
    const mod = await moderator("kick-mod9", "kick-9");
    const bob = await h.join("kick-bob9", "kick-9-home");
    h.api.clearFrames();
    // The join's transaction commits; its room read is parked while the kick runs to its end.
    const held = gate().hold((r) => r.operation === "Query" && r.body.includes('"kick-9"'), 1);
    const join = h.send(bob, { type: "join", roomId: "kick-9" });
    await held.arrived;
    assert.equal((await h.send(mod, { type: "kick", roomId: "kick-9", userId: "kick-bob9" }))?.connections, 1);
    held.release();
    const reply = await join;
    // Before: the join answered `joined` and its `joined` reached the room after the kick's `left`,
    // so the room showed a member who was not there.
    assert.equal(reply?.code, "FORBIDDEN", JSON.stringify(reply));
    assert.equal(reply?.roomId, "kick-9");
    assert.equal(presence(mod, "joined", "kick-bob9", "kick-9"), 0);
    assert.deepEqual(await memberOf("kick-9", "kick-bob9"), []);
    await consistent("kick-9");
  });

  it("a removal that fails does not stop the kick telling the connections it did remove; the retry finishes with one `left`", async () => {
    const mod = await moderator("kick-mod10", "kick-10");
    const phone = await h.join("kick-bob10", "kick-10");
    const laptop = await h.join("kick-bob10", "kick-10");
    h.api.clearFrames();
    // The laptop's leave transaction fails (every SDK attempt); the phone's goes through.
    const restore = gate().fail((r) => r.operation === "TransactWriteItems" && r.body.includes(`"c#${laptop.connectionId}"`));
    assert.equal((await h.send(mod, { type: "kick", roomId: "kick-10", userId: "kick-bob10" }))?.code, "INTERNAL");
    restore();
    // Before: the failure ended the kick, so the phone, out of the room, was never told.
    assert.equal(h.frames(phone).filter((f) => f.type === "kicked").length, 1);
    assert.equal(h.frames(laptop).filter((f) => f.type === "kicked").length, 0);
    assert.deepEqual(await memberOf("kick-10", "kick-bob10"), [laptop.connectionId]);
    assert.equal(presence(mod, "left", "kick-bob10", "kick-10"), 0, "the user is still present through the laptop");
    assert.equal((await h.send(mod, { type: "kick", roomId: "kick-10", userId: "kick-bob10" }))?.connections, 1);
    assert.equal(h.frames(laptop).filter((f) => f.type === "kicked").length, 1);
    assert.equal(presence(mod, "left", "kick-bob10", "kick-10"), 1);
    await consistent("kick-10");
  });

  it("writing the restriction retries DynamoDB's TransactionConflictException (a join transaction holding the item)", async () => {
    // DynamoDB Local never reports the conflict: a client that reports it twice, then succeeds.
    const sent: string[] = [];
    const doc = {
      send: async (command: { constructor: { name: string } }) => {
        sent.push(command.constructor.name);
        if (sent.length <= 2)
          throw Object.assign(new Error("Transaction is ongoing for the item"), { name: "TransactionConflictException" });
        return {};
      },
    };
    const ctx = { config: { tables: h.tables, functionName: "kick" }, doc } as unknown as Parameters<typeof restrictJoins>[0];
    // Before: the first conflict was thrown, and the kick answered INTERNAL without its restriction.
    assert.equal(await restrictJoins(ctx, "kick-11", "kick-bob11", 1234, "kick-mod11"), 1234);
    assert.deepEqual(sent, ["PutCommand", "PutCommand", "PutCommand"]);
  });
});
