/**
 * `rooms`: one page of active rooms in room id order, from the sparse `directory` index (summary
 * items only; never a Scan). At most `limit` rooms and never more than fits one API Gateway message
 * (128 KB); `next` continues the listing (docs/protocol.md, "Pages").
 */
import type { WebSocketHandler } from "../events";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { epochSeconds } from "../lib/data";
import { MAX_CURSOR_LENGTH, buildSchemas, parseFrame } from "../lib/frames";
import { decodeRoomsCursor, encodeRoomsCursor, fitByBytes, jsonBytes, readRooms } from "../lib/pages";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";
import { managementFanout } from "../lib/fanout";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("rooms", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.rooms, requireFrame(req));
    const after = frame.after !== undefined ? decodeRoomsCursor(frame.after) : undefined;
    const rooms = await readRooms(rt, frame.limit, after, epochSeconds(req.nowMs));
    const base = jsonBytes({ type: "rooms", rooms: [], next: "x".repeat(MAX_CURSOR_LENGTH) });
    const n = Math.min(frame.limit, fitByBytes(rooms, base, MAX_WEBSOCKET_MESSAGE_BYTES, jsonBytes));
    const last = rooms[n - 1];
    return { type: "rooms", rooms: rooms.slice(0, n), ...(n < rooms.length && last ? { next: encodeRoomsCursor(last.roomId) } : {}) };
  });
}
