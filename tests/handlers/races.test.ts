/**
 * Issue 14, items 1-4: membership and presence under races. API Gateway runs a connection's frames
 * concurrently and `$disconnect` can arrive while they run; a DynamoGate in front of DynamoDB
 * Local parks one handler's request at the step that matters while another handler runs, so each
 * race is reproduced deterministically. After the frames are answered, the tables must agree with
 * themselves (tests/support/invariants.ts) and each presence transition must be announced once.
 */
import { strict as assert } from "node:assert";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";
import type { GateRequest } from "../support/dynamoGate";
import type { WebSocketResult } from "../../handlers/events";
import { OPEN_SETTLE_MS } from "../../handlers/lib/data";
import { snapshot, violations } from "../support/invariants";

describe("races: membership and presence stay consistent (issue 14)", () => {
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "races", gate: true });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const gate = () => {
    if (!h.gate) throw new Error("harness built without a gate");
    return h.gate;
  };
  const consistent = async (roomPrefix: string) => assert.deepEqual(violations(await snapshot(h.doc, h.tables), roomPrefix), []);
  const presence = (conn: TestConnection, event: string, userId: string, roomId: string) =>
    h.frames(conn).filter((f) => f.type === "presence" && f.event === event && f.userId === userId && f.roomId === roomId).length;
  /** A write that creates or deletes the `c#<id>` membership item of `roomId` (whatever the code's shape). */
  const membershipWrite = (conn: TestConnection, roomId: string, kind: "create" | "delete") => (r: GateRequest) =>
    r.body.includes(`"c#${conn.connectionId}"`) &&
    r.body.includes(`"${roomId}"`) &&
    (kind === "delete"
      ? r.operation === "DeleteItem" || (r.operation === "TransactWriteItems" && r.body.includes('"Delete"'))
      : r.operation === "UpdateItem" ||
        r.operation === "PutItem" ||
        (r.operation === "TransactWriteItems" && !r.body.includes('"Delete"')));

  it("a 410 explained by a handshake is posted again even when the clean-up's read answers after the settle window (a loaded instance)", async () => {
    const sender = await h.join("late-a", "late-1");
    // $connect has just returned: API Gateway completes the handshake only afterwards, so posts get 410.
    const late = await h.join("late-b", "late-1");
    h.api.close(late.connectionId);
    h.api.clearFrames();
    // Park the clean-up's read of the 410'd connection's item (BatchGetItem) past OPEN_SETTLE_MS.
    const held = gate().hold((r) => r.operation === "BatchGetItem" && r.body.includes(late.connectionId));
    const chat = h.send(sender, { type: "chat", message: "while you were opening" });
    await held.arrived;
    h.api.open(late.connectionId); // the handshake completes
    await new Promise((r) => setTimeout(r, OPEN_SETTLE_MS + 300));
    held.release();
    assert.equal(await chat, undefined);
    assert.equal(h.frames(late).filter((f) => f.type === "chat").length, 1, "delivered on the second post");
    assert.equal(h.frames(sender).filter((f) => f.type === "presence" && f.event === "left").length, 0, "nobody announced left");
    await consistent("late-1");
    assert.ok((await snapshot(h.doc, h.tables)).connections.has(late.connectionId), "the opening connection was not deleted as stale");
  });

  it("a leave overtaken by a join of the same room leaves the connection either in the room or out of it, never half", async () => {
    const c = await h.join("half-1", "half-a");
    const held = gate().hold(membershipWrite(c, "half-a", "delete"));
    const leave = h.send(c, { type: "leave", roomId: "half-a" });
    await held.arrived;
    const join = await h.send(c, { type: "join", roomId: "half-a" });
    held.release();
    const left = await leave;
    assert.equal(join?.type, "joined");
    assert.deepEqual(left, { type: "left", roomId: "half-a" });
    await consistent("half-a");
  });

  it("a join overtaken by a leave of the same room leaves the connection either in the room or out of it, never half", async () => {
    const c = await h.join("half-2", "half-b-home");
    const held = gate().hold(membershipWrite(c, "half-b", "create"));
    const join = h.send(c, { type: "join", roomId: "half-b" });
    await held.arrived;
    await h.send(c, { type: "leave", roomId: "half-b" });
    held.release();
    assert.equal((await join)?.type, "joined");
    await consistent("half-b");
    // Whatever the outcome, the connection's own chat agrees with what it receives.
    const s = await snapshot(h.doc, h.tables);
    const member = s.members.get("half-b")?.has(c.connectionId) ?? false;
    h.api.clearFrames();
    const reply = await h.send(c, { type: "chat", roomId: "half-b", message: "am I in?" });
    const received = h.frames(c).filter((f) => f.type === "chat" && f.roomId === "half-b").length;
    if (member) assert.deepEqual([reply, received], [undefined, 1]);
    else assert.deepEqual([reply?.code, received], ["NOT_A_MEMBER", 0]);
  });

  it("joins in flight when $disconnect runs leave no ghost members and no counted empty room", async () => {
    const watcher = await h.join("ghost-watch", "ghost-0");
    const c = await h.join("ghost-user", "ghost-home");
    const rooms = Array.from({ length: 10 }, (_, i) => `ghost-${i}`);
    const held = gate().hold(
      (r) => r.body.includes(`"c#${c.connectionId}"`) && /UpdateItem|PutItem|TransactWriteItems/.test(r.operation),
      rooms.length,
    );
    const joins = rooms.map((roomId) => h.send(c, { type: "join", roomId }));
    await held.arrived;
    assert.equal((await h.disconnect(c)).statusCode, 200);
    held.release();
    for (const reply of await Promise.all(joins))
      assert.ok(reply?.type === "joined" || reply?.code === "NOT_CONNECTED", JSON.stringify(reply));
    await consistent("ghost-");
    const s = await snapshot(h.doc, h.tables);
    for (const roomId of [...rooms, "ghost-home"]) {
      assert.equal(s.members.get(roomId)?.has(c.connectionId) ?? false, false, `still a member of ${roomId}`);
    }
    const listed = await h.send(watcher, { type: "rooms" });
    const counted = (listed?.rooms as Array<{ roomId: string; members: number }>).filter((r) => r.roomId.startsWith("ghost-"));
    assert.deepEqual(
      counted.map((r) => ({ roomId: r.roomId, members: r.members })),
      [{ roomId: "ghost-0", members: 1 }],
    );
    // The watcher saw the user arrive and leave ghost-0 as many times as it did: never left twice.
    assert.ok(presence(watcher, "left", "ghost-user", "ghost-0") <= presence(watcher, "joined", "ghost-user", "ghost-0"));
  });

  it("40 joins sent at once to a connection in 21 rooms never put it in more than 50", async () => {
    const c = await h.join("cap-user", "cap-home");
    for (let i = 0; i < 20; i++) assert.equal((await h.send(c, { type: "join", roomId: `cap-pre-${i}` }))?.type, "joined");
    // 40 at once: the functions' SDK client opens at most 50 sockets, so all of them can be parked.
    const rooms = Array.from({ length: 40 }, (_, i) => `cap-${i}`);
    // Every join has read the connection (21 rooms) before any adds its room.
    const held = gate().hold(
      (r) => /UpdateItem|TransactWriteItems/.test(r.operation) && r.body.includes("ADD #rooms") && r.body.includes(c.connectionId),
      rooms.length,
    );
    const joins = rooms.map((roomId) => h.send(c, { type: "join", roomId }));
    await held.arrived;
    held.release();
    const replies = await Promise.all(joins);
    const accepted = replies.filter((r) => r?.type === "joined").length;
    const refused = replies.filter((r) => r?.code === "BAD_REQUEST").length;
    assert.deepEqual([accepted, refused], [29, 11]);
    await consistent("cap-");
    const s = await snapshot(h.doc, h.tables);
    assert.equal(s.connections.get(c.connectionId)?.rooms.size, 50);
  });

  it("a connection that vanished is announced `left` once, however many broadcasts find it gone while $disconnect runs", async () => {
    const watcher = await h.join("dup-watch", "dup-room");
    const senders = [await h.join("dup-s1", "dup-room"), await h.join("dup-s2", "dup-room"), await h.join("dup-s3", "dup-room")];
    const u = await h.join("dup-user", "dup-room");
    await h.vanish(u);
    h.api.clearFrames();
    // The three chats read the room (u still a member) before anything cleans it up.
    const held = gate().hold(
      (r) => r.operation === "Query" && r.body.includes(h.tables.rooms) && r.body.includes('"dup-room"') && !r.body.includes("IndexName"),
      3,
      { response: true },
    );
    const chats = senders.map((s, i) => h.send(s, { type: "chat", roomId: "dup-room", message: `hello ${i}` }));
    await held.arrived;
    assert.equal((await h.disconnect(u)).statusCode, 200);
    held.release();
    await Promise.all(chats);
    assert.equal(presence(watcher, "left", "dup-user", "dup-room"), 1);
    await consistent("dup-room");
  });

  it("stale clean-up finishing before $disconnect: still one `left`", async () => {
    const watcher = await h.join("dup2-watch", "dup2-room");
    const senders = [await h.join("dup2-s1", "dup2-room"), await h.join("dup2-s2", "dup2-room")];
    const u = await h.join("dup2-user", "dup2-room");
    await h.vanish(u);
    h.api.clearFrames();
    const held = gate().hold(
      (r) => r.operation === "Query" && r.body.includes(h.tables.rooms) && r.body.includes('"dup2-room"') && !r.body.includes("IndexName"),
      2,
      { response: true },
    );
    const chats = senders.map((s, i) => h.send(s, { type: "chat", roomId: "dup2-room", message: `hi ${i}` }));
    await held.arrived;
    held.release();
    await Promise.all(chats);
    assert.equal((await h.disconnect(u)).statusCode, 200);
    assert.equal(presence(watcher, "left", "dup2-user", "dup2-room"), 1);
    await consistent("dup2-");
  });

  it("a $connect that fails after joining its room leaves nothing behind: no connection, no member, `left` after `joined`", async () => {
    // API Gateway sends no $disconnect for a handshake its $connect refused (500), so whatever
    // $connect stored and announced before failing must be undone by $connect itself.
    const watcher = await h.join("cf-watch", "cf-room");
    h.api.clearFrames();
    const connectionId = "cfFailingConn0=";
    const restore = gate().fail(
      (r) => r.operation === "UpdateItem" && r.body.includes("REMOVE connecting") && r.body.includes(connectionId),
    );
    let result: WebSocketResult;
    try {
      ({ result } = await h.connect("cf-user", { roomId: "cf-room", connectionId }));
    } finally {
      restore();
    }
    assert.equal(result.statusCode, 500);
    const s = await snapshot(h.doc, h.tables);
    assert.equal(s.connections.has(connectionId), false, "the connection item is gone");
    assert.equal(s.members.get("cf-room")?.has(connectionId) ?? false, false, "no member item is left in the room");
    assert.equal(presence(watcher, "joined", "cf-user", "cf-room"), 1, "`joined` went out before the last write failed");
    assert.equal(presence(watcher, "left", "cf-user", "cf-room"), 1, "and is followed by its `left`");
    const rooms = await h.send(watcher, { type: "rooms" });
    const listed = (rooms?.rooms as Array<{ roomId: string; members: number }>).find((r) => r.roomId === "cf-room");
    assert.equal(listed?.members, 1, "the room counts the watcher only");
    await consistent("cf-");
  });

  it("a $connect whose join committed but whose `joined` never went out is removed without a `left` (nobody hears of it)", async () => {
    const watcher = await h.join("cf2-watch", "cf2-room");
    h.api.clearFrames();
    const connectionId = "cfFailingConn2=";
    // The room read after the join transaction (joinRoom's, before `joined` is posted) fails all of
    // the SDK's 3 attempts; later reads (the clean-up's) go through.
    const restore = gate().fail((r) => r.operation === "Query" && r.body.includes('"cf2-room"'), 3);
    let result: WebSocketResult;
    try {
      ({ result } = await h.connect("cf2-user", { roomId: "cf2-room", connectionId }));
    } finally {
      restore();
    }
    assert.equal(result.statusCode, 500);
    const s = await snapshot(h.doc, h.tables);
    assert.equal(s.connections.has(connectionId), false, "the connection item is gone");
    assert.equal(s.members.get("cf2-room")?.has(connectionId) ?? false, false, "no member item is left in the room");
    assert.equal(presence(watcher, "joined", "cf2-user", "cf2-room"), 0, "`joined` never went out");
    assert.equal(presence(watcher, "left", "cf2-user", "cf2-room"), 0, "so no `left` either");
    await consistent("cf2-");
  });

  it("two devices of one user joining at once: `joined` announced exactly once; leaving at once: `left` exactly once", async () => {
    const watcher = await h.join("pair-watch", "pair-room");
    const d1 = await h.join("pair-user", "pair-home");
    const d2 = await h.join("pair-user", "pair-home");
    h.api.clearFrames();
    const heldJoin = gate().hold(
      (r) => r.body.includes('"pair-room"') && /UpdateItem|PutItem|TransactWriteItems/.test(r.operation) && r.body.includes('"c#'),
      2,
    );
    const joins = [d1, d2].map((d) => h.send(d, { type: "join", roomId: "pair-room" }));
    await heldJoin.arrived;
    heldJoin.release();
    await Promise.all(joins);
    assert.equal(presence(watcher, "joined", "pair-user", "pair-room"), 1);
    const heldLeave = gate().hold(
      (r) => r.body.includes('"pair-room"') && /DeleteItem|TransactWriteItems/.test(r.operation) && r.body.includes('"c#'),
      2,
    );
    const leaves = [d1, d2].map((d) => h.send(d, { type: "leave", roomId: "pair-room" }));
    await heldLeave.arrived;
    heldLeave.release();
    await Promise.all(leaves);
    assert.equal(presence(watcher, "left", "pair-user", "pair-room"), 1);
    await consistent("pair-");
  });
});
