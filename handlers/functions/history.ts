/**
 * `history`: one page of a room's (members only) or a private conversation's messages, oldest..newest,
 * edited ones with `editedAt`, deleted ones as tombstones (historyEntry), live ones with their
 * reactions (`me` from one bounded Query of the caller's reaction items, reactions.ts myReactions).
 * A page holds at most `limit` messages and never more than fits one API Gateway message (128 KB):
 * the route response of a larger one would be refused (docs/protocol.md, "Pages").
 *
 * Backward (the default, or `before` a cursor): the newest messages that fit, `next` continues
 * with older ones. Forward (issue 18: `after` a cursor, or `fromRead`: after the caller's read
 * position in the room, from the oldest when there is none): the oldest messages after that point
 * that fit, `newer` continues with newer ones, and `next` (the page's oldest message) pages back.
 */
import type { WebSocketHandler } from "../events";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { dmConversation, epochSeconds, roomConversation, storedData, type MessageItem } from "../lib/data";
import { chatError } from "../lib/errors";
import { MAX_CURSOR_LENGTH, buildSchemas, parseFrame, type HistoryEntry } from "../lib/frames";
import {
  decodeHistoryCursor,
  encodeHistoryCursor,
  fitByBytes,
  forwardNewerSk,
  jsonBytes,
  readHistory,
  readHistoryForward,
} from "../lib/pages";
import { forwardStart, liveFloorSk, readPosition } from "../lib/reads";
import { messageRoute, createRuntime, requireAccess, requireFrame, requireMember } from "../lib/runtime";
import { managementFanout } from "../lib/fanout";
import { hasReactions, myReactions, reactionsOf, reactionsVersionOf } from "../lib/reactions";

/**
 * A stored message as `history` returns it. An edited one carries `editedAt`; a deleted one is a
 * tombstone (messageChanges.ts deleteMessage): `message` "", `deleted: true`, `deletedAt`,
 * `deletedBy`, and neither `data` nor `editedAt` nor `reactions`, so nothing of what it said can be
 * read. A live one with reactions carries `reactions` (`me` where `mine`, the caller's reaction
 * keys `<sk>#<emoji>`, holds it), and one that ever had a reaction `reactionsVersion`, the version
 * of those counts (reactions.ts REACTION_VERSION_ATTRIBUTE), which `reaction` frames are compared to.
 */
export function historyEntry(m: MessageItem, mine: ReadonlySet<string> = new Set()): HistoryEntry {
  const deleted = m.deletedAt !== undefined;
  const reactions = reactionsOf(m, mine);
  const reactionsVersion = reactionsVersionOf(m);
  return {
    messageId: m.messageId,
    userId: m.userId,
    username: m.username,
    message: deleted ? "" : m.message,
    sentAt: m.sentAt,
    ...(m.toUserId !== undefined ? { toUserId: m.toUserId } : {}),
    ...(m.clientMessageId !== undefined ? { clientMessageId: m.clientMessageId } : {}),
    // A backend's push (push/index.ts) is returned with kind "system" and its data (docs/protocol.md).
    ...(m.kind !== undefined ? { kind: m.kind } : {}),
    ...(m.data !== undefined && !deleted ? { data: storedData(m) } : {}),
    ...(m.editedAt !== undefined && !deleted ? { editedAt: m.editedAt } : {}),
    ...(deleted ? { deleted: true as const, deletedAt: m.deletedAt, deletedBy: m.deletedBy ?? "" } : {}),
    ...(reactions.length > 0 ? { reactions } : {}),
    ...(reactionsVersion !== undefined ? { reactionsVersion } : {}),
  };
}

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("history", { tables: ["connections", "messages"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.history, requireFrame(req));
    const { connection } = req;
    let conversationId: string;
    if (frame.roomId !== undefined) {
      // A room the token does not grant is FORBIDDEN; private conversations are not rooms (access.ts).
      requireAccess(rt, req.event, frame.roomId);
      requireMember(connection, frame.roomId);
      conversationId = roomConversation(frame.roomId);
    } else {
      const other = frame.withUserId as string;
      if (other === connection.userId) throw chatError("BAD_REQUEST", "withUserId must be another user");
      conversationId = dmConversation(connection.userId, other);
    }
    const where = frame.roomId !== undefined ? { roomId: frame.roomId } : { withUserId: frame.withUserId };
    if (frame.after !== undefined || frame.fromRead === true) {
      // Forward. fromRead needs a roomId (the schema says so): read positions are kept for rooms only.
      const position = frame.fromRead === true ? await readPosition(rt, connection.userId, frame.roomId as string, req.nowMs) : undefined;
      const afterCursorSk = frame.after !== undefined ? decodeHistoryCursor(frame.after, conversationId) : undefined;
      // A cursor below the live floor names a message that has expired (TTL may have removed it
      // already, and the items after it may all be expired): the page starts at the floor instead.
      const floor = liveFloorSk(rt, req.nowMs);
      const expiredCursor = afterCursorSk !== undefined && afterCursorSk <= floor;
      const page = await readHistoryForward(
        rt,
        conversationId,
        frame.limit,
        // fromRead without a position starts at the live floor, not at expired items TTL has not removed yet.
        expiredCursor
          ? { afterSk: floor }
          : { afterCursorSk, afterSk: frame.fromRead === true ? forwardStart(rt, position?.position, req.nowMs) : undefined },
        epochSeconds(req.nowMs),
      );
      // The caller's own reactions (`me`), as for a backward page (items are oldest first here).
      const first = page.items[0];
      const last = page.items[page.items.length - 1];
      const mine =
        first && last && hasReactions(page.items)
          ? await myReactions(rt, connection.userId, conversationId, first.sk, last.sk)
          : new Set<string>();
      const entries = page.items.map((m) => historyEntry(m, mine));
      const readMessageId = position !== undefined ? { readMessageId: position.messageId } : {};
      // Oldest first: the page keeps the oldest messages after the starting point that fit.
      const cursorSpace = "x".repeat(MAX_CURSOR_LENGTH);
      const base = jsonBytes({ type: "history", ...where, messages: [], next: cursorSpace, newer: cursorSpace, ...readMessageId });
      const n = Math.min(frame.limit, fitByBytes(entries, base, MAX_WEBSOCKET_MESSAGE_BYTES, jsonBytes));
      const more = n < entries.length || page.more;
      const oldest = page.items[0];
      const newerSk = forwardNewerSk(page, n);
      // Older messages exist before a page that starts after a message (the cursor's, the position's).
      const started = afterCursorSk !== undefined || position !== undefined;
      return {
        type: "history",
        ...where,
        messages: entries.slice(0, n),
        ...(started && oldest ? { next: encodeHistoryCursor(conversationId, oldest.sk) } : {}),
        ...(more && newerSk !== undefined ? { newer: encodeHistoryCursor(conversationId, newerSk) } : {}),
        ...readMessageId,
      };
    }
    const beforeSk = frame.before !== undefined ? decodeHistoryCursor(frame.before, conversationId) : undefined;
    const page = await readHistory(rt, conversationId, frame.limit, beforeSk, epochSeconds(req.nowMs));
    // The caller's own reactions (`me`): read only when a message of the page has any, over the
    // page's range of sort keys (items are newest first).
    const newest = page.items[0];
    const oldestRead = page.items[page.items.length - 1];
    const mine =
      newest && oldestRead && hasReactions(page.items)
        ? await myReactions(rt, connection.userId, conversationId, oldestRead.sk, newest.sk)
        : new Set<string>();
    // Reactions are part of each entry, so the byte budget below counts them.
    const entries = page.items.map((m) => historyEntry(m, mine));
    // Newest first: the page keeps the newest messages that fit by count and by bytes.
    const base = jsonBytes({ type: "history", ...where, messages: [], next: "x".repeat(MAX_CURSOR_LENGTH) });
    const n = Math.min(frame.limit, fitByBytes(entries, base, MAX_WEBSOCKET_MESSAGE_BYTES, jsonBytes));
    const kept = entries.slice(0, n);
    const more = n < entries.length || page.more;
    // The cursor is the oldest message returned: the next page starts just before it.
    const oldest = page.items[n - 1];
    return {
      type: "history",
      ...where,
      messages: kept.reverse(),
      ...(more && oldest ? { next: encodeHistoryCursor(conversationId, oldest.sk) } : {}),
    };
  });
}
