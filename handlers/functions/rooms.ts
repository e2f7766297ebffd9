/**
 * `rooms`: one page of active rooms in room id order, from the sparse `directory` index (summary
 * items only; never a Scan). At most `limit` rooms and never more than fits one API Gateway message
 * (128 KB); `next` continues the listing (docs/protocol.md, "Pages"). Only rooms the connection's
 * token grants are listed (access.ts): a filtered page may hold fewer rooms than `limit`, even none,
 * and still carry `next` (pages.ts ROOMS_EXAMINED_PER_REQUEST).
 *
 * Issue 18: a room the user has a read position in, or this connection has joined, carries the
 * user's unread count (lib/reads.ts: the positions of the page's room id range in one Query of the
 * user's partition, then one bounded COUNT Query per such room). At most UNREAD_ROOMS_PER_PAGE of
 * them per page: the page is cut before the next one, and `next` continues from there, so every
 * listed room that should have a count has it.
 */
import type { WebSocketHandler } from "../events";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { epochSeconds } from "../lib/data";
import { MAX_CURSOR_LENGTH, UNREAD_CAP, buildSchemas, parseFrame, type Unread } from "../lib/frames";
import { UNREAD_QUERY_CONCURRENCY, UNREAD_ROOMS_PER_PAGE, countUnread, readPositionsIn } from "../lib/reads";
import { decodeRoomsCursor, encodeRoomsCursor, fitByBytes, jsonBytes, readRooms } from "../lib/pages";
import { accessFromContext, canAccess } from "../lib/access";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";
import { managementFanout, mapPool } from "../lib/fanout";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("rooms", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.rooms, requireFrame(req));
    const after = frame.after !== undefined ? decodeRoomsCursor(frame.after) : undefined;
    // Only rooms the connection's token grants are listed (issue 16); an open connection reads as before.
    const access = accessFromContext(req.event.requestContext?.authorizer);
    const filtered = access.rooms !== undefined || rt.config.roomAccess !== "open";
    const read = await readRooms(
      rt,
      frame.limit,
      after,
      epochSeconds(req.nowMs),
      filtered ? (roomId) => canAccess(access, rt.config.roomAccess, roomId) : undefined,
    );
    const { rooms } = read;
    const base = jsonBytes({ type: "rooms", rooms: [], next: "x".repeat(MAX_CURSOR_LENGTH) });
    // Sized as if every room carried the largest unread fields.
    const sized = (r: { roomId: string; members: number }) => jsonBytes({ ...r, unread: UNREAD_CAP, unreadMore: true });
    let n = Math.min(frame.limit, fitByBytes(rooms, base, MAX_WEBSOCKET_MESSAGE_BYTES, sized));
    const page = rooms.slice(0, n);
    const positions =
      page.length > 0
        ? await readPositionsIn(rt, req.connection.userId, page[0].roomId, page[page.length - 1].roomId, req.nowMs)
        : new Map();
    const joined = req.connection.rooms ?? new Set<string>();
    const counted: string[] = [];
    for (let i = 0; i < page.length; i++) {
      const roomId = page[i].roomId;
      if (!positions.has(roomId) && !joined.has(roomId)) continue;
      if (counted.length === UNREAD_ROOMS_PER_PAGE) {
        n = i;
        break;
      }
      counted.push(roomId);
    }
    const unread = new Map<string, Unread>();
    await mapPool(counted, UNREAD_QUERY_CONCURRENCY, async (roomId) => {
      unread.set(roomId, await countUnread(rt, req.connection.userId, roomId, positions.get(roomId)?.position, req.nowMs));
    });
    const last = rooms[n - 1];
    // The cursor is the last room returned when the page was cut; else, when a filtered read ran out
    // of budget, the last room it examined (the page may then hold fewer rooms, even none).
    const nextAfter = n < rooms.length && last ? last.roomId : read.scannedTo;
    return {
      type: "rooms",
      rooms: rooms.slice(0, n).map((r) => ({ ...r, ...unread.get(r.roomId) })),
      ...(nextAfter !== undefined ? { next: encodeRoomsCursor(nextAfter) } : {}),
    };
  });
}
