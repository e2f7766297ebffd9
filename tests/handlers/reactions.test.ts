/**
 * Issue 18, reactions: `react` on room and private messages through the real handlers on DynamoDB
 * Local and the fake `@connections` server: counts across users, idempotent repeats, the bound on
 * distinct emoji, the refusals (NOT_FOUND, BAD_REQUEST emoji, access rules), who receives the
 * `reaction` frame, and what history returns (counts, `me`, tombstones without reactions).
 */
import { strict as assert } from "node:assert";
import { GetCommand, UpdateCommand } from "@aws-sdk/lib-dynamodb";
import { messageSortKeyOf, uuidV7 } from "../../handlers/lib/data";
import { MAX_REACTION_EMOJI } from "../../handlers/lib/frames";
import { editMessage } from "../../handlers/lib/messageChanges";
import { react as reactTo, reactionPartition } from "../../handlers/lib/reactions";
import type { Logger } from "../../handlers/lib/logger";
import { createHarness, type Harness, type TestConnection } from "../support/handlerHarness";

type Frame = Record<string, unknown>;

/** 21 distinct RGI emoji (the 21st is one too many for one message). */
const EMOJI = ["👍", "❤️", "😂", "😮", "😢", "🙏", "🎉", "🔥", "👀", "✅", "💯", "🚀", "😀", "😁", "😃", "😄", "😅", "😆", "😉", "😊", "😋"];

describe("handlers: reactions to room and private messages (DynamoDB Local)", function () {
  this.timeout(120_000);
  let h: Harness;
  before(async () => {
    h = await createHarness({ label: "reactions", rateLimitPerMinute: 100_000, userRateLimitPerMinute: 100_000 });
  });
  after(async () => {
    await h?.stop();
  });
  beforeEach(() => h.api.clearFrames());

  const ofType = (c: TestConnection, type: string) => h.frames(c).filter((f) => f.type === type);
  const code = (f: Frame | undefined) => (f?.type === "error" ? f.code : `not an error: ${JSON.stringify(f)}`);
  const chat = async (c: TestConnection, roomId: string, message: string): Promise<string> => {
    assert.equal(await h.send(c, { type: "chat", roomId, message }), undefined);
    const copy = ofType(c, "chat").find((f) => f.message === message && f.roomId === roomId);
    assert.ok(copy, `the sender's copy of "${message}"`);
    return String(copy.messageId);
  };
  const privateTo = async (c: TestConnection, toUserId: string, message: string): Promise<string> => {
    const reply = await h.send(c, { type: "private", toUserId, message });
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
  /** Sends a reaction that must be confirmed by the caller's own copy (no reply) and returns that copy. */
  const react = async (c: TestConnection, frame: Frame): Promise<Frame> => {
    h.api.clearFrames();
    const reply = await h.send(c, { type: "react", ...frame });
    assert.equal(reply, undefined, `confirmed by its copy: ${JSON.stringify(reply)}`);
    const copies = ofType(c, "reaction");
    assert.equal(copies.length, 1, JSON.stringify(h.frames(c)));
    return copies[0];
  };

  it("reactions in a room: every member receives the count across users, the caller's copy is its confirmation", async () => {
    const a = await h.join("rr-a", "rr-room");
    const b = await h.join("rr-b", "rr-room");
    const outsider = await h.join("rr-c", "rr-other");
    const id = await chat(a, "rr-room", "react to me");
    const first = await react(b, { roomId: "rr-room", messageId: id, emoji: "👍" });
    assert.deepEqual(first, { type: "reaction", messageId: id, emoji: "👍", userId: "rr-b", count: 1, version: 1, roomId: "rr-room" });
    assert.deepEqual(ofType(a, "reaction"), [first]);
    const second = await react(a, { roomId: "rr-room", messageId: id, emoji: "👍" });
    assert.deepEqual(second, { ...first, userId: "rr-a", count: 2, version: 2 });
    assert.deepEqual(ofType(b, "reaction"), [second]);
    assert.deepEqual(h.frames(outsider), []);
    const item = await stored("room#rr-room", id);
    assert.equal(item?.["r:👍"], 2);
    assert.deepEqual([...(item?.reactionEmoji as Set<string>)], ["👍"]);
    assert.equal(item?.message, "react to me", "the message itself is unchanged");
  });

  it("a repeated add or remove writes nothing and announces the count in force again; the last removal drops the emoji", async () => {
    const a = await h.join("rp-a", "rp-room");
    const b = await h.join("rp-b", "rp-room");
    const id = await chat(a, "rp-room", "twice");
    await react(a, { roomId: "rp-room", messageId: id, emoji: "🎉" });
    await react(b, { roomId: "rp-room", messageId: id, emoji: "🎉" });
    const again = await react(a, { roomId: "rp-room", messageId: id, emoji: "🎉" });
    assert.equal(again.count, 2, "one reaction per user, emoji and message");
    assert.deepEqual(ofType(b, "reaction"), [again], "announced again");
    assert.equal((await stored("room#rp-room", id))?.["r:🎉"], 2, "nothing written");
    const removed = await react(a, { roomId: "rp-room", messageId: id, emoji: "🎉", remove: true });
    assert.deepEqual(removed, {
      type: "reaction",
      messageId: id,
      emoji: "🎉",
      userId: "rp-a",
      count: 1,
      version: 3,
      removed: true,
      roomId: "rp-room",
    });
    const removedAgain = await react(a, { roomId: "rp-room", messageId: id, emoji: "🎉", remove: true });
    assert.deepEqual(removedAgain, removed, "a repeated removal: the same frame");
    assert.equal((await stored("room#rp-room", id))?.["r:🎉"], 1);
    const last = await react(b, { roomId: "rp-room", messageId: id, emoji: "🎉", remove: true });
    assert.equal(last.count, 0);
    const item = await stored("room#rp-room", id);
    assert.equal(item?.["r:🎉"], undefined, "the counter is removed at 0");
    assert.equal(item?.reactionEmoji, undefined, "and the emoji with it (the set's last one: the attribute goes)");
    const [entry] = await history(a, { roomId: "rp-room" });
    assert.equal(entry.reactions, undefined);
    assert.equal(entry.reactionsVersion, 4, "the version of the counts (none left): 2 adds and 2 removals, repeats not counted");
    const readded = await react(b, { roomId: "rp-room", messageId: id, emoji: "🎉" });
    assert.equal(readded.count, 1, "added again after its removal");
  });

  it(`a message carries at most ${MAX_REACTION_EMOJI} different emoji: the 21st is BAD_REQUEST, the counted ones still accepted`, async () => {
    const a = await h.join("mx-a", "mx-room");
    const b = await h.join("mx-b", "mx-room");
    const id = await chat(a, "mx-room", "popular");
    for (const emoji of EMOJI.slice(0, MAX_REACTION_EMOJI)) await react(a, { roomId: "mx-room", messageId: id, emoji });
    h.api.clearFrames();
    const refused = await h.send(b, { type: "react", roomId: "mx-room", messageId: id, emoji: EMOJI[MAX_REACTION_EMOJI] });
    assert.equal(code(refused), "BAD_REQUEST");
    assert.match(String(refused?.message), /at most 20 different reactions/);
    assert.deepEqual(h.frames(a), [], "nothing announced");
    assert.equal((await stored("room#mx-room", id))?.[`r:${EMOJI[MAX_REACTION_EMOJI]}`], undefined);
    assert.equal((await react(b, { roomId: "mx-room", messageId: id, emoji: EMOJI[0] })).count, 2, "a counted emoji is accepted");
    // Taking one emoji off entirely makes room for another.
    await react(a, { roomId: "mx-room", messageId: id, emoji: EMOJI[5], remove: true });
    assert.equal((await react(b, { roomId: "mx-room", messageId: id, emoji: EMOJI[MAX_REACTION_EMOJI] })).count, 1);
  });

  it("NOT_FOUND for an unknown id, an id that is not a UUIDv7, another conversation's message, an expired or a deleted one", async () => {
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
    const deleted = await chat(a, "nf-room", "gone");
    await react(a, { roomId: "nf-room", messageId: deleted, emoji: "👀" });
    assert.equal(await h.send(a, { type: "delete", roomId: "nf-room", messageId: deleted }), undefined);
    h.api.clearFrames();
    for (const messageId of [uuidV7(Date.now()), "3f1c2a9e-1111-4bbb-8ccc-0123456789ab", "not-a-uuid", elsewhere, dm, expired, deleted]) {
      for (const remove of [false, true]) {
        const reply = await h.send(a, { type: "react", roomId: "nf-room", messageId, emoji: "👀", remove });
        assert.equal(code(reply), "NOT_FOUND", `${messageId} remove=${remove}`);
        assert.equal(reply?.requestType, "react");
      }
    }
    assert.equal(code(await h.send(a, { type: "react", withUserId: "nf-b", messageId: elsewhere, emoji: "👀" })), "NOT_FOUND");
    assert.deepEqual(ofType(a, "reaction"), [], "nothing announced");
    // Nothing stored for the refused ones: the caller's reaction partition holds only the reaction made before the delete.
    const mine = await h.doc.send(
      new GetCommand({
        TableName: h.tables.messages,
        Key: { conversationId: reactionPartition("nf-a", "room#nf-room"), sk: `${messageSortKeyOf(expired)}#👀` },
      }),
    );
    assert.equal(mine.Item, undefined);
    assert.equal((await stored("room#nf-room", expired))?.reactionEmoji, undefined);
  });

  it("the emoji must be exactly one RGI emoji: text, two emoji, © without VS16 and others are BAD_REQUEST; sequences are accepted", async () => {
    const a = await h.join("em-a", "em-room");
    const id = await chat(a, "em-room", "emoji");
    h.api.clearFrames();
    const refused: unknown[] = ["hi", "👍👍", "©", "", "a", "1", " 👍", "👍 ", "\u200d", "x".repeat(17), "👍".repeat(9), 42, null, ["👍"]];
    for (const emoji of refused) {
      const reply = await h.send(a, { type: "react", roomId: "em-room", messageId: id, emoji });
      assert.equal(code(reply), "BAD_REQUEST", JSON.stringify(emoji));
    }
    for (const frame of [
      { type: "react", roomId: "em-room", messageId: id },
      { type: "react", roomId: "em-room", emoji: "👍" },
      { type: "react", messageId: id, emoji: "👍" },
      { type: "react", roomId: "em-room", withUserId: "em-b", messageId: id, emoji: "👍" },
      { type: "react", roomId: "em-room", messageId: id, emoji: "👍", remove: "yes" },
      { type: "react", roomId: "em-room", messageId: "id with spaces", emoji: "👍" },
    ]) {
      assert.equal(code(await h.send(a, frame)), "BAD_REQUEST", JSON.stringify(frame));
    }
    assert.deepEqual(h.frames(a), []);
    assert.equal((await stored("room#em-room", id))?.reactionEmoji, undefined, "nothing counted");
    // Accepted: © with VS16, a skin tone modifier sequence, a ZWJ family, a keycap, a flag, England's tag sequence (14 code units).
    for (const emoji of ["©️", "👍🏽", "👨‍👩‍👧", "1️⃣", "🇫🇷", "🏴󠁧󠁢󠁥󠁮󠁧󠁿"]) {
      assert.equal((await react(a, { roomId: "em-room", messageId: id, emoji })).count, 1, emoji);
    }
  });

  it("reactions to a private message reach every device of both users, and both histories show them", async () => {
    const a1 = await h.join("pr-a", "pr-1");
    const a2 = await h.join("pr-a", "pr-2");
    const b = await h.join("pr-b", "pr-3");
    const bystander = await h.join("pr-c", "pr-1");
    const id = await privateTo(a1, "pr-b", "psst");
    const frame = await react(b, { withUserId: "pr-a", messageId: id, emoji: "😂" });
    assert.deepEqual(frame, {
      type: "reaction",
      messageId: id,
      emoji: "😂",
      userId: "pr-b",
      count: 1,
      version: 1,
      fromUserId: "pr-a",
      toUserId: "pr-b",
    });
    for (const c of [a1, a2]) assert.deepEqual(ofType(c, "reaction"), [frame], c.connectionId);
    assert.deepEqual(h.frames(bystander), []);
    assert.deepEqual((await history(b, { withUserId: "pr-a" }))[0].reactions, [{ emoji: "😂", count: 1, me: true }]);
    assert.deepEqual((await history(a2, { withUserId: "pr-b" }))[0].reactions, [{ emoji: "😂", count: 1 }]);
  });

  it("history: counts most frequent first (then by emoji), `me` for the caller's own, none on tombstones or messages without any", async () => {
    const a = await h.join("hi-a", "hi-room");
    const b = await h.join("hi-b", "hi-room");
    const c = await h.join("hi-c", "hi-room");
    const plain = await chat(a, "hi-room", "no reactions");
    const liked = await chat(a, "hi-room", "liked");
    const other = await chat(b, "hi-room", "also liked");
    const doomed = await chat(a, "hi-room", "doomed");
    for (const [who, messageId, emoji] of [
      [a, liked, "🔥"],
      [b, liked, "👍"],
      [c, liked, "👍"],
      [c, liked, "❤️"],
      [b, other, "🔥"],
      [a, doomed, "👍"],
    ] as const) {
      await react(who, { roomId: "hi-room", messageId, emoji });
    }
    assert.equal(await h.send(a, { type: "delete", roomId: "hi-room", messageId: doomed }), undefined);
    const view = async (who: TestConnection) =>
      Object.fromEntries((await history(who, { roomId: "hi-room" })).map((m) => [m.message === "" ? "tombstone" : m.message, m.reactions]));
    // "❤️" (U+2764 U+FE0F) sorts before "🔥" (a surrogate pair) in UTF-16 code units.
    assert.deepEqual(await view(a), {
      "no reactions": undefined,
      liked: [
        { emoji: "👍", count: 2 },
        { emoji: "❤️", count: 1 },
        { emoji: "🔥", count: 1, me: true },
      ],
      "also liked": [{ emoji: "🔥", count: 1 }],
      tombstone: undefined,
    });
    assert.deepEqual(await view(c), {
      "no reactions": undefined,
      liked: [
        { emoji: "👍", count: 2, me: true },
        { emoji: "❤️", count: 1, me: true },
        { emoji: "🔥", count: 1 },
      ],
      "also liked": [{ emoji: "🔥", count: 1 }],
      tombstone: undefined,
    });
    // A page holding only part of the reacted messages: `me` still right at both ends of its range.
    const page = await h.send(b, { type: "history", roomId: "hi-room", limit: 2 });
    assert.deepEqual(
      (page?.messages as Frame[]).map((m) => [m.messageId, m.reactions]),
      [
        [other, [{ emoji: "🔥", count: 1, me: true }]],
        [doomed, undefined],
      ],
    );
    assert.ok(plain);
  });

  it("react in a room the token does not grant is FORBIDDEN (naming it), in one not joined NOT_A_MEMBER, with oneself BAD_REQUEST", async () => {
    const a = await h.join("ac-a", "ac-room");
    const id = await chat(a, "ac-room", "hi");
    const { conn: limited } = await h.connect("ac-b", { roomId: "ac-mine", access: { rooms: "ac-mine" } });
    h.api.clearFrames();
    const refused = await h.send(limited, { type: "react", roomId: "ac-room", messageId: id, emoji: "👍" });
    assert.equal(code(refused), "FORBIDDEN");
    assert.equal(refused?.roomId, "ac-room");
    const notJoined = await h.join("ac-b", "ac-else");
    assert.equal(code(await h.send(notJoined, { type: "react", roomId: "ac-room", messageId: id, emoji: "👍" })), "NOT_A_MEMBER");
    const dm = await privateTo(a, "ac-b", "dm");
    assert.equal(code(await h.send(a, { type: "react", withUserId: "ac-a", messageId: dm, emoji: "👍" })), "BAD_REQUEST");
    // A private message is reachable only from the conversation of its two users.
    const eve = await h.join("ac-e", "ac-else");
    assert.equal(code(await h.send(eve, { type: "react", withUserId: "ac-a", messageId: dm, emoji: "👍" })), "NOT_FOUND");
    assert.deepEqual(ofType(a, "reaction"), []);
    assert.equal((await stored("room#ac-room", id))?.reactionEmoji, undefined);
  });

  it("when the caller's own copy cannot be posted, the frame is the route's reply", async () => {
    const a = await h.join("cp-a", "cp-room");
    const b = await h.join("cp-b", "cp-room");
    const id = await chat(a, "cp-room", "a");
    h.api.clearFrames();
    h.api.fail(a.connectionId, 1, 500);
    const reply = await h.send(a, { type: "react", roomId: "cp-room", messageId: id, emoji: "👍" });
    assert.deepEqual(reply, ofType(b, "reaction")[0]);
    assert.equal(reply?.count, 1);
  });

  it("concurrent reactions of many users to one message are all counted", async () => {
    const users = await Promise.all(Array.from({ length: 8 }, (_, i) => h.join(`cc-${i}`, "cc-room")));
    const id = await chat(users[0], "cc-room", "everyone at once");
    h.api.clearFrames();
    const replies = await Promise.all(users.map((u) => h.send(u, { type: "react", roomId: "cc-room", messageId: id, emoji: "🚀" })));
    assert.deepEqual(
      replies.filter((r) => r !== undefined),
      [],
    );
    assert.equal((await stored("room#cc-room", id))?.["r:🚀"], users.length);
    const counts = ofType(users[0], "reaction")
      .map((f) => Number(f.count))
      .sort((x, y) => x - y);
    assert.equal(counts[counts.length - 1], users.length, "the last announced count is the total");
    // Frames may arrive in any order; each carries the reaction version read with its count (adds
    // only, from none: equal), so a client keeping the highest version keeps the total.
    for (const f of ofType(users[0], "reaction")) assert.equal(f.version, f.count, JSON.stringify(f));
    const newest = ofType(users[0], "reaction").reduce((x, y) => (Number(y.version) > Number(x.version) ? y : x));
    assert.equal(newest.count, users.length);
    assert.equal((await history(users[0], { roomId: "cc-room" }))[0].reactionsVersion, users.length);
  });

  // DynamoDB Local never reports transaction conflicts: clients that report them, then succeed.
  describe("conflicts between reactions and other writes to the message (as DynamoDB reports them)", () => {
    const context = (send: (command: { constructor: { name: string } }) => Promise<unknown>) =>
      ({
        config: { tables: h.tables, functionName: "react", messageRetentionHours: 1 },
        doc: { send },
      }) as unknown as Parameters<typeof reactTo>[0];
    /** A logger that keeps its warnings. */
    const capture = () => {
      const warnings: Array<{ msg: string; fields?: Record<string, unknown> }> = [];
      const log: Logger = {
        debug: () => {},
        info: () => {},
        warn: (msg, fields) => warnings.push({ msg, fields }),
        error: () => {},
        child: () => log,
      };
      return { log, warnings };
    };

    it("a reaction cancelled by TransactionConflict (another reaction to the message) is retried, not answered INTERNAL", async () => {
      const nowMs = Date.now();
      const messageId = uuidV7(nowMs);
      const sent: string[] = [];
      const ctx = context(async (command) => {
        sent.push(command.constructor.name);
        if (command.constructor.name === "TransactWriteCommand" && sent.length <= 2) {
          throw Object.assign(new Error("Transaction cancelled"), {
            name: "TransactionCanceledException",
            CancellationReasons: [{ Code: "None" }, { Code: "TransactionConflict" }],
          });
        }
        if (command.constructor.name === "GetCommand") {
          return { Item: { messageId, userId: "cf-a", roomId: "cf-room", expiresAt: nowMs / 1000 + 60, "r:👍": 3 } };
        }
        return {};
      });
      // Before: the first conflict was thrown (INTERNAL) and the reaction lost.
      const r = await reactTo(ctx, {
        conversationId: "room#cf-room",
        messageId,
        userId: "cf-b",
        emoji: "👍",
        remove: false,
        nowMs,
        log: capture().log,
      });
      assert.deepEqual([r.count, r.repeat], [3, false]);
      assert.deepEqual(sent, ["TransactWriteCommand", "TransactWriteCommand", "TransactWriteCommand", "GetCommand"]);
    });

    it("an edit meeting a reaction's transaction on the message (TransactionConflictException) writes again", async () => {
      const sent: string[] = [];
      const ctx = context(async (command) => {
        sent.push(command.constructor.name);
        if (sent.length <= 2)
          throw Object.assign(new Error("Transaction is ongoing for the item"), { name: "TransactionConflictException" });
        return { Attributes: { messageId: "m", message: "new", editedAt: "t" } };
      });
      // Before: the first conflict was thrown, and the edit answered INTERNAL.
      const change = await editMessage(ctx, {
        conversationId: "room#cf-room",
        messageId: uuidV7(Date.now()),
        userId: "cf-a",
        message: "new",
        nowMs: Date.now(),
      });
      assert.equal(change.item.message, "new");
      assert.deepEqual(sent, ["UpdateCommand", "UpdateCommand", "UpdateCommand"]);
    });
    for (const [what, failure, attempts] of [
      ["fails", () => Object.assign(new Error("Internal server error"), { name: "InternalServerError" }), 1],
      [
        "meets conflicts on every attempt",
        () => Object.assign(new Error("Transaction is ongoing"), { name: "TransactionConflictException" }),
        8,
      ],
    ] as const) {
      it(`a committed removal to 0 whose clean-up of the emoji ${what} is still answered with its count and logged (best effort)`, async () => {
        const nowMs = Date.now();
        const messageId = uuidV7(nowMs);
        const sent: string[] = [];
        const ctx = context(async (command) => {
          sent.push(command.constructor.name);
          if (command.constructor.name === "UpdateCommand") throw failure();
          if (command.constructor.name === "GetCommand") {
            return { Item: { messageId, userId: "cu-a", roomId: "cu-room", expiresAt: nowMs / 1000 + 60, "r:👍": 0 } };
          }
          return {};
        });
        const { log, warnings } = capture();
        // Before: the clean-up's error was thrown after the removal had committed, so the route
        // answered INTERNAL and announced no `reaction` frame.
        const r = await reactTo(ctx, { conversationId: "room#cu-room", messageId, userId: "cu-b", emoji: "👍", remove: true, nowMs, log });
        assert.deepEqual([r.count, r.repeat], [0, false]);
        assert.deepEqual(sent, ["TransactWriteCommand", "GetCommand", ...Array.from({ length: attempts }, () => "UpdateCommand")]);
        assert.equal(warnings.length, 1, JSON.stringify(warnings));
        assert.equal(warnings[0].fields?.messageId, messageId);
      });
    }
  });
});
