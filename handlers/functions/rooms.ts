/**
 * `rooms`: one page of active rooms in room id order, from the sparse `directory` index (summary
 * items only; never a Scan). At most `limit` rooms and never more than fits one API Gateway message
 * (128 KB); `next` continues the listing (docs/protocol.md, "Pages"). Only rooms the connection's
 * token grants are listed (access.ts): a filtered page may hold fewer rooms than `limit`, even none,
 * and still carry `next` (pages.ts ROOMS_EXAMINED_PER_REQUEST).
 */
import type { WebSocketHandler } from "../events";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { epochSeconds } from "../lib/data";
import { MAX_CURSOR_LENGTH, buildSchemas, parseFrame } from "../lib/frames";
import { decodeRoomsCursor, encodeRoomsCursor, fitByBytes, jsonBytes, readRooms } from "../lib/pages";
import { accessFromContext, canAccess } from "../lib/access";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";
import { managementFanout } from "../lib/fanout";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("rooms", { tables: ["connections", "rooms"], management: true }, managementFanout);
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
    const n = Math.min(frame.limit, fitByBytes(rooms, base, MAX_WEBSOCKET_MESSAGE_BYTES, jsonBytes));
    const last = rooms[n - 1];
    // The cursor is the last room returned when the page was cut; else, when a filtered read ran out
    // of budget, the last room it examined (the page may then hold fewer rooms, even none).
    const nextAfter = n < rooms.length && last ? last.roomId : read.scannedTo;
    return { type: "rooms", rooms: rooms.slice(0, n), ...(nextAfter !== undefined ? { next: encodeRoomsCursor(nextAfter) } : {}) };
  });
}
