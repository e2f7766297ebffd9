/**
 * Issue 18, read positions and unread counts, through the real handlers on DynamoDB Local and the
 * fake `@connections` server: `read` moves a user's position forward only and tells their other
 * devices; `joined` and `rooms` carry unread counts (capped, own messages and tombstones not
 * counted; at most UNREAD_ROOMS_PER_PAGE counted rooms per `rooms` page); `history` reads forward
 * (`after`, `fromRead`); rooms matching readReceiptRooms share positions, throttled and bounded.
 */
import { strict as assert } from "node:assert";
import { BatchWriteCommand, GetCommand, PutCommand } from "@aws-sdk/lib-dynamodb";
import { DIRECTORY_PARTITION, SUMMARY_SK, epochSeconds, messageSortKey, messageSortKeyOf, uuidV7 } from "../../handlers/lib/data";
import { encodeHistoryCursor } from "../../handlers/lib/pages";
import { UNREAD_CAP } from "../../handlers/lib/frames";
import { UNREAD_ROOMS_PER_PAGE, readPositionKey } from "../../handlers/lib/reads";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";

type Frame = Record<string, unknown>;

/** Users a room may have for its read positions to be shared (TYPING_MAX_ROOM_USERS below). */
const SHARE_MAX_USERS = 3;

describe("handlers: read positions and unread counts (DynamoDB Local)", function () {
  this.timeout(120_000);
  let h: Harness;
  before(async () => {
    h = await createHarness({
      label: "reads",
      rateLimitPerMinute: 100_000,
      extraEnv: { READ_RECEIPT_ROOMS: "shared-*,exact-room", TYPING_INTERVAL_SECONDS: "1", TYPING_MAX_ROOM_USERS: String(SHARE_MAX_USERS) },
    });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const ofType = (c: TestConnection, type: string) => h.frames(c).filter((f) => f.type === type);
  const code = (f: Frame | undefined) => (f?.type === "error" ? f.code : `not an error: ${JSON.stringify(f)}`);
  /** Sends a chat and returns its messageId (from the sender's copy of the broadcast). */
  const chat = async (c: TestConnection, roomId: string, message: string): Promise<string> => {
    assert.equal(await h.send(c, { type: "chat", roomId, message }), undefined);
    const copy = ofType(c, "chat").find((f) => f.message === message && f.roomId === roomId);
    assert.ok(copy, `the sender's copy of "${message}"`);
    return String(copy.messageId);
  };
  /**
   * Stores `n` messages of `userId` in a room directly (oldest first, 1 ms apart), returning their
   * ids; `expired`: sent 200 hours ago (beyond the 168-hour retention) and past their expiresAt, as
   * TTL, which deletes lazily, leaves them for a while.
   */
  const seed = async (roomId: string, userId: string, n: number, expired = false): Promise<string[]> => {
    const start = Date.now() - (expired ? 200 * 3600_000 : 10_000);
    const items = Array.from({ length: n }, (_, i) => {
      const ms = start + i;
      const messageId = uuidV7(ms);
      return {
        conversationId: `room#${roomId}`,
        sk: messageSortKey(ms, messageId),
        messageId,
        userId,
        username: userId,
        message: `m${i}`,
        sentAt: new Date(ms).toISOString(),
        expiresAt: epochSeconds(Date.now()) + (expired ? -3600 : 3600),
        roomId,
      };
    });
    for (let i = 0; i < items.length; i += 25) {
      await h.doc.send(
        new BatchWriteCommand({ RequestItems: { [h.tables.messages]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }),
      );
    }
    return items.map((m) => m.messageId);
  };
  const joinReply = async (c: TestConnection, roomId: string): Promise<Frame> => {
    const reply = await h.send(c, { type: "join", roomId });
    assert.equal(reply?.type, "joined", JSON.stringify(reply));
    return reply as Frame;
  };

  describe("read", () => {
    it("moves the position forward: the reply and the user's other devices get `read`, nobody else", async () => {
      const phone = await h.join("rd-ann", "rd-room", "Ann");
      const laptop = await h.join("rd-ann", "rd-other", "Ann");
      const bob = await h.join("rd-bob", "rd-room");
      const id = await chat(bob, "rd-room", "one");
      h.api.clearFrames();
      const reply = await h.send(phone, { type: "read", roomId: "rd-room", messageId: id });
      const expected = { type: "read", roomId: "rd-room", userId: "rd-ann", username: "Ann", messageId: id };
      assert.deepEqual(reply, expected);
      assert.deepEqual(ofType(laptop, "read"), [expected], "the other device, even one not in the room");
      assert.deepEqual(h.frames(phone), [], "the caller has the reply");
      assert.deepEqual(h.frames(bob), [], "positions of a room not in readReceiptRooms are not shared");
      const item = (await h.doc.send(new GetCommand({ TableName: h.tables.messages, Key: readPositionKey("rd-ann", "rd-room") }))).Item;
      assert.equal(item?.messageId, id);
      assert.ok(Number(item?.expiresAt) > epochSeconds(Date.now()), "expires");
    });

    it("never moves back: an older or the same message is answered with the position in force, and nothing is posted", async () => {
      const a = await h.join("rb-ann", "rb-room");
      const other = await h.join("rb-ann", "rb-room");
      const bob = await h.join("rb-bob", "rb-room");
      const older = await chat(bob, "rb-room", "older");
      const newer = await chat(bob, "rb-room", "newer");
      assert.equal((await h.send(a, { type: "read", roomId: "rb-room", messageId: newer }))?.messageId, newer);
      h.api.clearFrames();
      assert.equal((await h.send(a, { type: "read", roomId: "rb-room", messageId: older }))?.messageId, newer, "older refused");
      assert.equal((await h.send(other, { type: "read", roomId: "rb-room", messageId: newer }))?.messageId, newer, "same: no move");
      assert.deepEqual(ofType(a, "read"), []);
      assert.deepEqual(ofType(other, "read"), []);
    });

    it("refuses ids that name no possible message (NOT_FOUND), rooms not granted (FORBIDDEN) or not joined (NOT_A_MEMBER)", async () => {
      const a = await h.join("rn-ann", "rn-room");
      const v4 = "0b7a3b4e-2f6d-4c1a-9e1f-6a3f9b2c1d0e";
      assert.equal(code(await h.send(a, { type: "read", roomId: "rn-room", messageId: v4 })), "NOT_FOUND");
      const future = uuidV7(Date.now() + 5 * 60_000);
      assert.equal(code(await h.send(a, { type: "read", roomId: "rn-room", messageId: future })), "NOT_FOUND", "more than 60 s ahead");
      assert.equal(code(await h.send(a, { type: "read", roomId: "rn-elsewhere", messageId: uuidV7(Date.now()) })), "NOT_A_MEMBER");
      const { conn: limited } = await h.connect("rn-lim", { roomId: "rn-room", access: { rooms: "rn-room" } });
      const refused = await h.send(limited, { type: "read", roomId: "rn-secret", messageId: uuidV7(Date.now()) });
      assert.deepEqual([code(refused), refused?.roomId], ["FORBIDDEN", "rn-secret"]);
      assert.equal(code(await h.send(a, { type: "read", roomId: "rn-room" })), "BAD_REQUEST");
      const stored = await h.doc.send(new GetCommand({ TableName: h.tables.messages, Key: readPositionKey("rn-ann", "rn-room") }));
      assert.equal(stored.Item, undefined, "nothing written");
    });
  });

  describe("unread counts", () => {
    it("`joined` counts others' live messages after the position: own messages and tombstones are not counted", async () => {
      const bob = await h.join("uj-bob", "uj-room");
      const ann = await h.join("uj-ann", "uj-room");
      const first = await chat(bob, "uj-room", "1");
      await chat(ann, "uj-room", "mine");
      const gone = await chat(bob, "uj-room", "2");
      await chat(bob, "uj-room", "3");
      assert.equal((await h.send(bob, { type: "delete", roomId: "uj-room", messageId: gone }))?.type, undefined);
      const fresh = await h.join("uj-ann", "uj-home");
      const before = await joinReply(fresh, "uj-room");
      assert.deepEqual([before.unread, before.unreadMore, before.readMessageId], [2, undefined, undefined], "no position: from the start");
      await h.send(ann, { type: "read", roomId: "uj-room", messageId: first });
      const after = await joinReply(await h.join("uj-ann", "uj-home"), "uj-room");
      assert.deepEqual([after.unread, after.readMessageId], [1, first]);
    });

    it("caps at UNREAD_CAP with unreadMore, and counts exactly below it", async () => {
      await seed("uc-room", "uc-bob", UNREAD_CAP + 5);
      const many = await joinReply(await h.join("uc-ann", "uc-home"), "uc-room");
      assert.deepEqual([many.unread, many.unreadMore], [UNREAD_CAP, true]);
      const ids = await seed("uc-small", "uc-bob", 40);
      const a = await h.join("uc-ann", "uc-small");
      await h.send(a, { type: "read", roomId: "uc-small", messageId: ids[9] });
      const few = await joinReply(await h.join("uc-ann", "uc-home"), "uc-small");
      assert.deepEqual([few.unread, few.unreadMore, few.readMessageId], [30, undefined, ids[9]]);
    });

    it("expired messages TTL has not removed yet neither count nor use up the bounded read (unread, fromRead)", async () => {
      await seed("ux-room", "ux-bob", UNREAD_CAP + 50, true);
      const live = await seed("ux-room", "ux-bob", 3);
      const a = await h.join("ux-ann", "ux-home");
      const joined = await joinReply(a, "ux-room");
      assert.deepEqual([joined.unread, joined.unreadMore], [3, undefined]);
      const page = await h.send(a, { type: "history", roomId: "ux-room", fromRead: true, limit: 10 });
      assert.deepEqual(
        (page?.messages as Frame[]).map((m) => m.messageId),
        live,
      );
      assert.equal(page?.newer, undefined);
    });

    it("`rooms` gives counts for rooms joined or with a position, none for the others", async () => {
      const bob = await h.join("ur-bob", "ur-a");
      await h.send(bob, { type: "join", roomId: "ur-b" });
      await h.send(bob, { type: "join", roomId: "ur-c" });
      const idA = await chat(bob, "ur-a", "a1");
      await chat(bob, "ur-a", "a2");
      await chat(bob, "ur-b", "b1");
      await chat(bob, "ur-c", "c1");
      const ann = await h.join("ur-ann", "ur-a");
      await h.send(ann, { type: "read", roomId: "ur-a", messageId: idA });
      await h.send(ann, { type: "join", roomId: "ur-b" });
      await h.send(ann, { type: "leave", roomId: "ur-a" });
      const { conn: listing } = await h.connect("ur-ann", { roomId: "ur-b", access: { rooms: "ur-*" } });
      const reply = await h.send(listing, { type: "rooms" });
      const rooms = reply?.rooms as Frame[];
      assert.deepEqual(
        rooms.map((r) => [r.roomId, r.unread, r.unreadMore]),
        [
          ["ur-a", 1, undefined], // a position (not joined any more)
          ["ur-b", 1, undefined], // joined by this connection
          ["ur-c", undefined, undefined], // neither
        ],
      );
    });

    it("cuts a `rooms` page before its 51st counted room (UNREAD_ROOMS_PER_PAGE); `next` continues with it", async () => {
      const total = UNREAD_ROOMS_PER_PAGE + 5;
      const roomIds = Array.from({ length: total }, (_, i) => `cut-${String(i).padStart(3, "0")}`);
      const nowSec = epochSeconds(Date.now());
      const items = roomIds.flatMap((roomId) => [
        { roomId, sk: SUMMARY_SK, users: 1, directory: DIRECTORY_PARTITION, expiresAt: nowSec + 3600 },
      ]);
      for (let i = 0; i < items.length; i += 25) {
        await h.doc.send(
          new BatchWriteCommand({ RequestItems: { [h.tables.rooms]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }),
        );
      }
      // A position in every room (the user read them on other devices), older than the seeded messages.
      assert.equal(UNREAD_ROOMS_PER_PAGE, 50);
      for (const roomId of roomIds) {
        const ms = Date.now() - 60_000;
        const messageId = uuidV7(ms);
        await h.doc.send(
          new PutCommand({
            TableName: h.tables.messages,
            Item: {
              ...readPositionKey("cut-ann", roomId),
              position: messageSortKey(ms, messageId),
              messageId,
              expiresAt: nowSec + 3600,
            },
          }),
        );
      }
      await seed("cut-002", "cut-bob", 3);
      const { conn } = await h.connect("cut-ann", { roomId: "cut-000", access: { rooms: "cut-*" } });
      const first = await h.send(conn, { type: "rooms" });
      const page = first?.rooms as Frame[];
      assert.equal(page.length, UNREAD_ROOMS_PER_PAGE, "cut before the 51st counted room");
      assert.ok(
        page.every((r) => typeof r.unread === "number"),
        "every listed room has its count",
      );
      assert.equal(page.find((r) => r.roomId === "cut-002")?.unread, 3);
      assert.ok(typeof first?.next === "string");
      const second = await h.send(conn, { type: "rooms", after: first?.next });
      const rest = (second?.rooms as Frame[]).filter((r) => String(r.roomId).startsWith("cut-"));
      assert.deepEqual(
        rest.map((r) => r.roomId),
        roomIds.slice(UNREAD_ROOMS_PER_PAGE),
      );
      assert.ok(rest.every((r) => r.unread === 0));
    });
  });

  describe("history forward", () => {
    it("fromRead starts after the read position (from the oldest without one); after and newer continue; next pages back", async () => {
      const ids = await seed("hf-room", "hf-bob", 5);
      const a = await h.join("hf-ann", "hf-room");
      const none = await h.send(a, { type: "history", roomId: "hf-room", fromRead: true, limit: 2 });
      assert.deepEqual(
        (none?.messages as Frame[]).map((m) => m.messageId),
        ids.slice(0, 2),
        "no position: the oldest, oldest first",
      );
      assert.equal(none?.readMessageId, undefined);
      assert.equal(none?.next, undefined, "nothing before the oldest");
      await h.send(a, { type: "read", roomId: "hf-room", messageId: ids[1] });
      const page = await h.send(a, { type: "history", roomId: "hf-room", fromRead: true, limit: 2 });
      assert.deepEqual(
        (page?.messages as Frame[]).map((m) => m.messageId),
        ids.slice(2, 4),
      );
      assert.equal(page?.readMessageId, ids[1]);
      assert.ok(typeof page?.newer === "string");
      const rest = await h.send(a, { type: "history", roomId: "hf-room", after: page?.newer, limit: 2 });
      assert.deepEqual(
        (rest?.messages as Frame[]).map((m) => m.messageId),
        [ids[4]],
      );
      assert.equal(rest?.newer, undefined, "the newest reached");
      const back = await h.send(a, { type: "history", roomId: "hf-room", before: page?.next });
      assert.deepEqual(
        (back?.messages as Frame[]).map((m) => m.messageId),
        ids.slice(0, 2),
        "next pages back from the forward page",
      );
    });

    it("a forward page after the cursor of an expired message starts at the live floor (TTL may have removed that message)", async () => {
      const expired = await seed("hx-room", "hx-bob", 7, true);
      const live = await seed("hx-room", "hx-bob", 3);
      const a = await h.join("hx-ann", "hx-room");
      // A cursor from before the messages expired. Before: the page was empty with no `newer` (three
      // expired items examined), or BAD_REQUEST once TTL had removed the cursor's message.
      const after = encodeHistoryCursor("room#hx-room", messageSortKeyOf(expired[0]) as string);
      const page = await h.send(a, { type: "history", roomId: "hx-room", after, limit: 2 });
      assert.equal(page?.type, "history", JSON.stringify(page));
      assert.deepEqual(
        (page?.messages as Frame[]).map((m) => m.messageId),
        live.slice(0, 2),
      );
      const rest = await h.send(a, { type: "history", roomId: "hx-room", after: page?.newer, limit: 2 });
      assert.deepEqual(
        (rest?.messages as Frame[]).map((m) => m.messageId),
        [live[2]],
      );
    });

    it("refuses a forged `after` cursor, fromRead without a room, and two starting points", async () => {
      const a = await h.join("hb-ann", "hb-room");
      // Of a time within the retention (a cursor below the live floor names an expired message: the page starts at the floor).
      const ms = Date.now() - 1000;
      const forged = Buffer.from(JSON.stringify({ v: 1, c: "room#hb-room", sk: messageSortKey(ms, uuidV7(ms)) })).toString("base64url");
      assert.equal(code(await h.send(a, { type: "history", roomId: "hb-room", after: forged })), "BAD_REQUEST");
      assert.equal(code(await h.send(a, { type: "history", withUserId: "hb-bob", fromRead: true })), "BAD_REQUEST");
      assert.equal(code(await h.send(a, { type: "history", roomId: "hb-room", fromRead: true, after: forged })), "BAD_REQUEST");
      assert.equal(code(await h.send(a, { type: "history", roomId: "hb-room", fromRead: "yes" })), "BAD_REQUEST");
    });
  });

  describe("shared read positions (readReceiptRooms)", () => {
    it("a matching room's other users see the move, once per interval; own devices always", async () => {
      const ann = await h.join("sh-ann", "shared-room", "Ann");
      const annPhone = await h.join("sh-ann", "shared-room", "Ann");
      const bob = await h.join("sh-bob", "shared-room");
      const outsider = await h.join("sh-carl", "sh-elsewhere");
      const [m1, m2, m3] = await seed("shared-room", "sh-dan", 3);
      h.api.clearFrames();
      await h.send(ann, { type: "read", roomId: "shared-room", messageId: m1 });
      const shared = { type: "read", roomId: "shared-room", userId: "sh-ann", username: "Ann", messageId: m1 };
      assert.deepEqual(ofType(bob, "read"), [shared]);
      assert.deepEqual(ofType(annPhone, "read"), [shared], "once, not twice");
      assert.deepEqual(h.frames(ann), [], "the caller has the reply");
      assert.deepEqual(h.frames(outsider), []);
      h.api.clearFrames();
      // Within typingIntervalSeconds (1 s here): not shared, own devices still told.
      await h.send(ann, { type: "read", roomId: "shared-room", messageId: m2 });
      assert.deepEqual(ofType(bob, "read"), [], "throttled");
      assert.deepEqual(
        ofType(annPhone, "read").map((f) => f.messageId),
        [m2],
      );
      await new Promise((r) => setTimeout(r, 1100));
      h.api.clearFrames();
      await h.send(ann, { type: "read", roomId: "shared-room", messageId: m3 });
      assert.deepEqual(
        ofType(bob, "read").map((f) => f.messageId),
        [m3],
        "shared again after the interval",
      );
    });

    it("is not shared in a room above typingMaxRoomUsers, nor in rooms the setting does not name", async () => {
      const users = await Promise.all(Array.from({ length: SHARE_MAX_USERS + 1 }, (_, i) => h.join(`sb-${i}`, "shared-big")));
      const [m] = await seed("shared-big", "sb-x", 1);
      h.api.clearFrames();
      assert.equal((await h.send(users[0], { type: "read", roomId: "shared-big", messageId: m }))?.messageId, m);
      for (const u of users.slice(1)) assert.deepEqual(ofType(u, "read"), [], "above the cap");
      const x = await h.join("ns-ann", "exact-room-2");
      const y = await h.join("ns-bob", "exact-room-2");
      const [n] = await seed("exact-room-2", "ns-x", 1);
      h.api.clearFrames();
      await h.send(x, { type: "read", roomId: "exact-room-2", messageId: n });
      assert.deepEqual(ofType(y, "read"), [], "an exact pattern names that room only");
    });
  });
});
