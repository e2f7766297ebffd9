/**
 * Issue 16, message changes: `edit` (the author) and `delete` (the author, or a moderator of the
 * room) of room and private messages, through the real handlers on DynamoDB Local and the fake
 * `@connections` server: who may change what, what each participant receives, what history returns
 * afterwards (edited text with editedAt, tombstones), idempotent repeats, and the refusals.
 */
import { strict as assert } from "node:assert";
import { GetCommand, PutCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { messageSortKey, messageSortKeyOf, uuidV7 } from "../../handlers/lib/data";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";

type Frame = Record<string, unknown>;

describe("handlers: edit and delete of room and private messages (DynamoDB Local)", function () {
  this.timeout(120_000);
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "changes", maxMessageBytes: 1024, gate: true });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const ofType = (c: TestConnection, type: string) => h.frames(c).filter((f) => f.type === type);
  /** Sends a chat and returns its messageId, read from the sender's copy of the broadcast. */
  const chat = async (c: TestConnection, roomId: string, message: string, clientMessageId?: string): Promise<string> => {
    assert.equal(await h.send(c, { type: "chat", roomId, message, ...(clientMessageId ? { clientMessageId } : {}) }), undefined);
    const copy = ofType(c, "chat").find((f) => f.message === message && f.roomId === roomId);
    assert.ok(copy, `the sender's copy of "${message}"`);
    return String(copy.messageId);
  };
  const privateTo = async (c: TestConnection, toUserId: string, message: string, clientMessageId?: string): Promise<string> => {
    const reply = await h.send(c, { type: "private", toUserId, message, ...(clientMessageId ? { clientMessageId } : {}) });
    assert.equal(reply?.type, "delivered");
    return String(reply?.messageId);
  };
  const history = async (c: TestConnection, where: { roomId: string } | { withUserId: string }): Promise<Frame[]> => {
    const page = await h.send(c, { type: "history", ...where });
    assert.equal(page?.type, "history", JSON.stringify(page));
    return page?.messages as Frame[];
  };
  const stored = async (conversationId: string, messageId: string) =>
    (
      await h.doc.send(
        new GetCommand({ TableName: h.tables.messages, Key: { conversationId, sk: messageSortKeyOf(messageId) }, ConsistentRead: true }),
      )
    ).Item;
  const code = (f: Frame | undefined) => (f?.type === "error" ? f.code : `not an error: ${JSON.stringify(f)}`);

  it("stores every new message under a UUIDv7 id whose time is its sort key", async () => {
    const a = await h.join("v7-a", "v7-room");
    const before = Date.now();
    const id = await chat(a, "v7-room", "hello");
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const item = await stored("room#v7-room", id);
    assert.equal(item?.message, "hello");
    assert.equal(item?.sk, messageSortKey(Date.parse(String(item?.sentAt)), id), "the key holds the id's own time");
    assert.ok(Date.parse(String(item?.sentAt)) >= before);
  });

  it("the author edits a room message: every member receives `edited`, history shows the new text with editedAt", async () => {
    const a = await h.join("ed-a", "ed-room", "Ann");
    const b = await h.join("ed-b", "ed-room");
    const outsider = await h.join("ed-c", "ed-other");
    const id = await chat(a, "ed-room", "helo");
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "edit", roomId: "ed-room", messageId: id, message: "hello" }), undefined, "confirmed by its copy");
    const [edited] = ofType(b, "edited");
    assert.deepEqual(
      { ...edited, editedAt: "t" },
      { type: "edited", messageId: id, message: "hello", editedAt: "t", userId: "ed-a", roomId: "ed-room" },
    );
    assert.ok(Date.parse(String(edited.editedAt)) > 0);
    assert.deepEqual(ofType(a, "edited"), [edited], "the author's copy is its confirmation");
    assert.deepEqual(h.frames(outsider), []);
    const [entry] = await history(b, { roomId: "ed-room" });
    assert.deepEqual(
      { message: entry.message, editedAt: entry.editedAt, messageId: entry.messageId, username: entry.username },
      { message: "hello", editedAt: edited.editedAt, messageId: id, username: "Ann" },
    );
  });

  it("the author edits a private message: every device of both users receives `edited`, both histories show it", async () => {
    const a1 = await h.join("pe-a", "pe-1");
    const a2 = await h.join("pe-a", "pe-2");
    const b1 = await h.join("pe-b", "pe-3");
    const b2 = await h.join("pe-b", "pe-4");
    const bystander = await h.join("pe-c", "pe-1");
    const id = await privateTo(a1, "pe-b", "psst");
    h.api.clearFrames();
    assert.equal(await h.send(a1, { type: "edit", withUserId: "pe-b", messageId: id, message: "psst!" }), undefined);
    for (const c of [a1, a2, b1, b2]) {
      const got = ofType(c, "edited");
      assert.equal(got.length, 1, c.connectionId);
      assert.deepEqual(
        { ...got[0], editedAt: "t" },
        { type: "edited", messageId: id, message: "psst!", editedAt: "t", userId: "pe-a", fromUserId: "pe-a", toUserId: "pe-b" },
      );
    }
    assert.deepEqual(h.frames(bystander), []);
    const fromB = await history(b2, { withUserId: "pe-a" });
    assert.deepEqual(await history(a2, { withUserId: "pe-b" }), fromB);
    assert.equal(fromB[0].message, "psst!");
    assert.equal(typeof fromB[0].editedAt, "string");
  });

  it("an edit repeated with the same text writes nothing and announces the same `edited` again (a retry)", async () => {
    const a = await h.join("re-a", "re-room");
    const b = await h.join("re-b", "re-room");
    const id = await chat(a, "re-room", "v1");
    await h.send(a, { type: "edit", roomId: "re-room", messageId: id, message: "v2" });
    const [first] = ofType(b, "edited");
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "edit", roomId: "re-room", messageId: id, message: "v2" }), undefined);
    assert.deepEqual(ofType(b, "edited"), [first], "the same frame, the first editedAt, once more");
    assert.deepEqual(ofType(a, "edited"), [first], "the caller's copy is its confirmation");
    assert.equal((await stored("room#re-room", id))?.editedAt, first.editedAt, "nothing written");
    // Another text is another edit.
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "edit", roomId: "re-room", messageId: id, message: "v3" }), undefined);
    assert.equal(ofType(b, "edited")[0].message, "v3");
  });

  it("an edit or delete whose fan-out failed after its write is announced by its retry: members that missed it are told", async () => {
    const a = await h.join("rf-a", "rf-room");
    const b = await h.join("rf-b", "rf-room");
    const id = await chat(a, "rf-room", "lost");
    h.api.clearFrames();
    // The room read after the write fails (every SDK attempt): the caller is answered INTERNAL.
    const roomRead = (r: { operation: string; body: string }) => r.operation === "Query" && r.body.includes('"rf-room"');
    let restore = h.gate!.fail(roomRead);
    assert.equal(code(await h.send(a, { type: "edit", roomId: "rf-room", messageId: id, message: "found" })), "INTERNAL");
    restore();
    assert.equal((await stored("room#rf-room", id))?.message, "found", "the write happened");
    assert.deepEqual(ofType(b, "edited"), [], "nobody was told");
    assert.equal(await h.send(a, { type: "edit", roomId: "rf-room", messageId: id, message: "found" }), undefined);
    assert.equal(ofType(b, "edited")[0]?.message, "found", "the retry tells the room (before: nothing was sent)");
    h.api.clearFrames();
    restore = h.gate!.fail(roomRead);
    assert.equal(code(await h.send(a, { type: "delete", roomId: "rf-room", messageId: id })), "INTERNAL");
    restore();
    assert.deepEqual(ofType(b, "deleted"), [], "nobody was told");
    assert.equal(await h.send(a, { type: "delete", roomId: "rf-room", messageId: id }), undefined);
    assert.equal(ofType(b, "deleted").length, 1, "the retry tells the room (before: nothing was sent)");
  });

  it("only the author may edit: FORBIDDEN (with the room) for anyone else, a moderator included, and in a private conversation", async () => {
    const a = await h.join("fe-a", "fe-room");
    const { conn: mod } = await h.connect("fe-mod", { roomId: "fe-room", access: { moderates: "fe-*" } });
    const b = await h.join("fe-b", "fe-room");
    const id = await chat(a, "fe-room", "mine");
    h.api.clearFrames();
    for (const c of [b, mod]) {
      const reply = await h.send(c, { type: "edit", roomId: "fe-room", messageId: id, message: "theirs" });
      assert.equal(code(reply), "FORBIDDEN");
      assert.equal(reply?.roomId, "fe-room");
      assert.equal(reply?.requestType, "edit");
    }
    const dm = await privateTo(a, "fe-b", "private");
    const reply = await h.send(b, { type: "edit", withUserId: "fe-a", messageId: dm, message: "changed" });
    assert.equal(code(reply), "FORBIDDEN");
    assert.equal(reply?.roomId, undefined);
    assert.deepEqual(ofType(a, "edited"), []);
    assert.equal((await stored("room#fe-room", id))?.message, "mine");
    assert.equal((await stored("dm#fe-a#fe-b", dm))?.message, "private");
  });

  it("edit is NOT_FOUND for an unknown id, an id that is not a UUIDv7, a message of another conversation, and an expired one", async () => {
    const a = await h.join("nf-a", "nf-room");
    await h.send(a, { type: "join", roomId: "nf-other" });
    const elsewhere = await chat(a, "nf-other", "over there");
    const dm = await privateTo(a, "nf-b", "private");
    const expired = await chat(a, "nf-room", "old");
    await h.doc.send(
      new UpdateCommand({
        TableName: h.tables.messages,
        Key: { conversationId: "room#nf-room", sk: messageSortKeyOf(expired) },
        UpdateExpression: "SET expiresAt = :past",
        ExpressionAttributeValues: { ":past": Math.floor(Date.now() / 1000) - 1 },
      }),
    );
    for (const messageId of [uuidV7(Date.now()), "3f1c2a9e-1111-4bbb-8ccc-0123456789ab", "not-a-uuid", elsewhere, dm, expired]) {
      const reply = await h.send(a, { type: "edit", roomId: "nf-room", messageId, message: "x" });
      assert.equal(code(reply), "NOT_FOUND", messageId);
      assert.equal(reply?.requestType, "edit");
    }
    assert.equal(code(await h.send(a, { type: "edit", withUserId: "nf-b", messageId: elsewhere, message: "x" })), "NOT_FOUND");
  });

  it("a deleted message cannot be edited (NOT_FOUND) and a backend's notice cannot be edited (FORBIDDEN)", async () => {
    const a = await h.join("system", "dn-room"); // a user whose id happens to be "system"
    const id = await chat(a, "dn-room", "soon gone");
    assert.equal(await h.send(a, { type: "delete", roomId: "dn-room", messageId: id }), undefined);
    assert.equal(code(await h.send(a, { type: "edit", roomId: "dn-room", messageId: id, message: "back" })), "NOT_FOUND");
    const notice = await putSystemNotice("dn-room");
    assert.equal(code(await h.send(a, { type: "edit", roomId: "dn-room", messageId: notice, message: "mine now" })), "FORBIDDEN");
    assert.equal(code(await h.send(a, { type: "delete", roomId: "dn-room", messageId: notice })), "FORBIDDEN");
  });

  /** A backend's room notice as push/index.ts stores it (kind "system", data), without the push module. */
  async function putSystemNotice(roomId: string): Promise<string> {
    const nowMs = Date.now();
    const messageId = uuidV7(nowMs);
    await h.doc.send(
      new PutCommand({
        TableName: h.tables.messages,
        Item: {
          conversationId: `room#${roomId}`,
          sk: messageSortKey(nowMs, messageId),
          messageId,
          userId: "system",
          username: "System",
          message: "maintenance tonight",
          sentAt: new Date(nowMs).toISOString(),
          expiresAt: Math.floor(nowMs / 1000) + 3600,
          roomId,
          kind: "system",
          data: '{"severity":"info"}',
        },
      }),
    );
    return messageId;
  }

  it("the author deletes a room message: every member receives `deleted`, history keeps a tombstone, the text is gone from the table", async () => {
    const a = await h.join("dl-a", "dl-room", "Ann");
    const b = await h.join("dl-b", "dl-room");
    const id = await chat(a, "dl-room", "regret", "dl-c1");
    await h.send(a, { type: "edit", roomId: "dl-room", messageId: id, message: "regret, edited" });
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "delete", roomId: "dl-room", messageId: id }), undefined);
    const [deleted] = ofType(b, "deleted");
    assert.deepEqual({ ...deleted, deletedAt: "t" }, { type: "deleted", messageId: id, by: "dl-a", deletedAt: "t", roomId: "dl-room" });
    assert.deepEqual(ofType(a, "deleted"), [deleted]);
    const [entry] = await history(b, { roomId: "dl-room" });
    assert.deepEqual(
      { ...entry, sentAt: "s" },
      {
        messageId: id,
        userId: "dl-a",
        username: "Ann",
        message: "",
        sentAt: "s",
        clientMessageId: "dl-c1",
        deleted: true,
        deletedAt: deleted.deletedAt,
        deletedBy: "dl-a",
      },
    );
    const item = await stored("room#dl-room", id);
    assert.equal(item?.message, "");
    assert.equal(item?.editedAt, undefined);
    assert.ok(!JSON.stringify(item).includes("regret"), "no copy of the text is left in the item");
  });

  it("the author deletes a private message: gone for both users, every device of both told", async () => {
    const a1 = await h.join("pd-a", "pd-1");
    const a2 = await h.join("pd-a", "pd-2");
    const b = await h.join("pd-b", "pd-3");
    const id = await privateTo(a1, "pd-b", "oops");
    h.api.clearFrames();
    assert.equal(await h.send(a1, { type: "delete", withUserId: "pd-b", messageId: id }), undefined);
    for (const c of [a1, a2, b]) {
      const got = ofType(c, "deleted");
      assert.equal(got.length, 1, c.connectionId);
      assert.deepEqual(
        { ...got[0], deletedAt: "t" },
        { type: "deleted", messageId: id, by: "pd-a", deletedAt: "t", fromUserId: "pd-a", toUserId: "pd-b" },
      );
    }
    for (const [c, withUserId] of [
      [a2, "pd-b"],
      [b, "pd-a"],
    ] as const) {
      const [entry] = await history(c, { withUserId });
      assert.equal(entry.message, "");
      assert.equal(entry.deleted, true);
      assert.equal(entry.deletedBy, "pd-a");
    }
    // The recipient cannot delete the sender's message.
    const other = await privateTo(a1, "pd-b", "stays");
    assert.equal(code(await h.send(b, { type: "delete", withUserId: "pd-a", messageId: other })), "FORBIDDEN");
  });

  it("a moderator of the room (token claim moderates) deletes anyone's message and a backend's notice; `by` names the moderator", async () => {
    const a = await h.join("md-a", "mod-lobby");
    const { conn: mod, result } = await h.connect("md-mod", { roomId: "mod-lobby", access: { moderates: "mod-*" } });
    assert.equal(result.statusCode, 200);
    const id = await chat(a, "mod-lobby", "spam");
    const notice = await putSystemNotice("mod-lobby");
    h.api.clearFrames();
    assert.equal(await h.send(mod, { type: "delete", roomId: "mod-lobby", messageId: id }), undefined);
    assert.deepEqual(
      ofType(a, "deleted").map((f) => [f.messageId, f.by]),
      [[id, "md-mod"]],
    );
    assert.equal(await h.send(mod, { type: "delete", roomId: "mod-lobby", messageId: notice }), undefined);
    const entries = await history(a, { roomId: "mod-lobby" });
    assert.deepEqual(
      entries.map((e) => [e.messageId, e.message, e.deletedBy, e.data, e.kind]),
      [
        [id, "", "md-mod", undefined, undefined],
        [notice, "", "md-mod", undefined, "system"],
      ],
    );
  });

  it("a delete by neither the author nor a moderator of that room is FORBIDDEN, and nothing is sent", async () => {
    const a = await h.join("fd-a", "fd-room");
    const b = await h.join("fd-b", "fd-room");
    const { conn: elsewhereMod } = await h.connect("fd-mod", { roomId: "fd-room", access: { rooms: "fd-room", moderates: "other-*" } });
    const id = await chat(a, "fd-room", "keep");
    h.api.clearFrames();
    for (const c of [b, elsewhereMod]) {
      const reply = await h.send(c, { type: "delete", roomId: "fd-room", messageId: id });
      assert.equal(code(reply), "FORBIDDEN");
      assert.equal(reply?.roomId, "fd-room");
    }
    assert.deepEqual(ofType(a, "deleted"), []);
    assert.equal((await stored("room#fd-room", id))?.message, "keep");
  });

  it("edit and delete in a room the token does not grant are FORBIDDEN, in one not joined NOT_A_MEMBER", async () => {
    const a = await h.join("ac-a", "ac-room");
    const id = await chat(a, "ac-room", "hi");
    const { conn: limited } = await h.connect("ac-a", { roomId: "ac-mine", access: { rooms: "ac-mine" } });
    for (const frame of [
      { type: "edit", roomId: "ac-room", messageId: id, message: "x" },
      { type: "delete", roomId: "ac-room", messageId: id },
    ]) {
      const refused = await h.send(limited, frame);
      assert.equal(code(refused), "FORBIDDEN", frame.type);
      assert.equal(refused?.roomId, "ac-room");
    }
    const notJoined = await h.join("ac-a", "ac-else");
    for (const frame of [
      { type: "edit", roomId: "ac-room", messageId: id, message: "x" },
      { type: "delete", roomId: "ac-room", messageId: id },
    ]) {
      assert.equal(code(await h.send(notJoined, frame)), "NOT_A_MEMBER", frame.type);
    }
    assert.equal((await stored("room#ac-room", id))?.message, "hi");
  });

  it("a retried delete is not an error: announced again by the one who deleted, the reply alone for anyone else", async () => {
    const a = await h.join("rd-a", "rd-room");
    const b = await h.join("rd-b", "rd-room");
    const { conn: m } = await h.connect("rd-m", { roomId: "rd-room", access: { moderates: "rd-*" } });
    const id = await chat(a, "rd-room", "twice");
    await h.send(a, { type: "delete", roomId: "rd-room", messageId: id });
    const [first] = ofType(b, "deleted");
    h.api.clearFrames();
    // The author's retry: the same frame (the first by and deletedAt) to the room again.
    assert.equal(await h.send(a, { type: "delete", roomId: "rd-room", messageId: id }), undefined);
    assert.deepEqual(ofType(b, "deleted"), [first]);
    assert.deepEqual(ofType(a, "deleted"), [first]);
    h.api.clearFrames();
    // A moderator deleting what the author deleted: the frame is the reply, nobody else is told.
    assert.deepEqual(await h.send(m, { type: "delete", roomId: "rd-room", messageId: id }), first);
    assert.deepEqual(h.frames(b), []);
    assert.deepEqual(h.frames(a), []);
    const dm = await privateTo(a, "rd-b", "twice too");
    await h.send(a, { type: "delete", withUserId: "rd-b", messageId: dm });
    const [dmFirst] = ofType(b, "deleted").filter((f) => f.messageId === dm);
    h.api.clearFrames();
    assert.equal(await h.send(a, { type: "delete", withUserId: "rd-b", messageId: dm }), undefined);
    assert.deepEqual(ofType(b, "deleted"), [dmFirst], "both users' devices told again");
  });

  it("when the caller's own copy cannot be posted, the frame is the route's reply", async () => {
    const a = await h.join("cp-a", "cp-room");
    const b = await h.join("cp-b", "cp-room");
    const id = await chat(a, "cp-room", "a");
    h.api.clearFrames();
    h.api.fail(a.connectionId, 1, 500);
    const reply = await h.send(a, { type: "edit", roomId: "cp-room", messageId: id, message: "b" });
    assert.deepEqual(reply, ofType(b, "edited")[0]);
    h.api.fail(a.connectionId, 1, 500);
    const deleted = await h.send(a, { type: "delete", roomId: "cp-room", messageId: id });
    assert.deepEqual(deleted, ofType(b, "deleted")[0]);
  });

  it("a retried chat or private (same clientMessageId) returns the edited text, or NOT_FOUND once deleted, and is not stored again", async () => {
    const a = await h.join("ri-a", "ri-room");
    const b = await h.join("ri-b", "ri-room");
    const id = await chat(a, "ri-room", "first", "ri-1");
    await h.send(a, { type: "edit", roomId: "ri-room", messageId: id, message: "first, edited" });
    h.api.clearFrames();
    const retry = await h.send(a, { type: "chat", roomId: "ri-room", message: "first", clientMessageId: "ri-1" });
    assert.deepEqual([retry?.type, retry?.messageId, retry?.message], ["chat", id, "first, edited"]);
    await h.send(a, { type: "delete", roomId: "ri-room", messageId: id });
    h.api.clearFrames();
    const afterDelete = await h.send(a, { type: "chat", roomId: "ri-room", message: "first", clientMessageId: "ri-1" });
    assert.equal(code(afterDelete), "NOT_FOUND");
    assert.equal(afterDelete?.clientMessageId, "ri-1");
    assert.ok(!JSON.stringify(afterDelete).includes("first"), "the text is not recovered");
    assert.deepEqual(h.frames(b), [], "nothing sent again");
    const dm = await privateTo(a, "ri-b", "dm", "ri-2");
    await h.send(a, { type: "delete", withUserId: "ri-b", messageId: dm });
    assert.equal(code(await h.send(a, { type: "private", toUserId: "ri-b", message: "dm", clientMessageId: "ri-2" })), "NOT_FOUND");
    assert.equal((await history(a, { roomId: "ri-room" })).length, 1);
    assert.equal((await history(a, { withUserId: "ri-b" })).length, 1);
  });

  it("an edit over maxMessageBytes is TOO_LARGE, and malformed edit and delete frames are BAD_REQUEST; nothing changes", async () => {
    const a = await h.join("bd-a", "bd-room");
    const id = await chat(a, "bd-room", "original");
    h.api.clearFrames();
    const tooLarge = await h.send(a, { type: "edit", roomId: "bd-room", messageId: id, message: "é".repeat(513) });
    assert.equal(code(tooLarge), "TOO_LARGE");
    const bad: Frame[] = [
      { type: "edit", roomId: "bd-room", message: "x" },
      { type: "edit", roomId: "bd-room", messageId: id },
      { type: "edit", roomId: "bd-room", messageId: id, message: "" },
      { type: "edit", roomId: "bd-room", messageId: id, message: "a\ud800" },
      { type: "edit", roomId: "bd-room", messageId: 42, message: "x" },
      { type: "edit", roomId: "bd-room", messageId: "a".repeat(65), message: "x" },
      { type: "edit", roomId: "bd-room", messageId: "id with spaces", message: "x" },
      { type: "edit", messageId: id, message: "x" },
      { type: "edit", roomId: "bd-room", withUserId: "bd-b", messageId: id, message: "x" },
      { type: "edit", roomId: "bd#room", messageId: id, message: "x" },
      { type: "edit", withUserId: "bd-a", messageId: id, message: "x" },
      { type: "edit", roomId: "bd-room", messageId: id, message: "x", userId: "someone-else" },
      { type: "delete", roomId: "bd-room" },
      { type: "delete", messageId: id },
      { type: "delete", roomId: "bd-room", withUserId: "bd-b", messageId: id },
      { type: "delete", roomId: "bd-room", messageId: null },
      { type: "delete", withUserId: "bd-a", messageId: id },
      { type: "delete", withUserId: "bad#user", messageId: id },
    ];
    for (const frame of bad) assert.equal(code(await h.send(a, frame)), "BAD_REQUEST", JSON.stringify(frame));
    assert.deepEqual(h.frames(a), []);
    const item = await stored("room#bd-room", id);
    assert.equal(item?.message, "original");
    assert.equal(item?.editedAt, undefined);
  });
});
