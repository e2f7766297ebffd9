/** `join`: add the membership, announce the user if this is their first connection in the room, reply with the members. */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { addRoomToConnection } from "../lib/data";
import { chatError } from "../lib/errors";
import { buildSchemas, parseFrame } from "../lib/frames";
import { joinRoom } from "../lib/presence";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";

/**
 * Rooms one connection may be in at once. $disconnect and stale clean-up touch every joined room
 * (one membership delete and one room Query each), so the set is bounded.
 */
export const MAX_ROOMS_PER_CONNECTION = 50;

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("join", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const { roomId } = parseFrame(schemas.join, requireFrame(req));
    const { connection } = req;
    const joined = connection.rooms ?? new Set<string>();
    if (!joined.has(roomId) && joined.size >= MAX_ROOMS_PER_CONNECTION) {
      throw chatError("BAD_REQUEST", `a connection can be in at most ${MAX_ROOMS_PER_CONNECTION} rooms; leave one first`);
    }
    // Connection first (conditional on its existence), then the membership: a failure in between
    // leaves a room in the set without membership, which the next join repairs; never the reverse.
    await addRoomToConnection(rt, connection.connectionId, roomId);
    const room = await joinRoom(
      rt,
      req.log,
      { connectionId: connection.connectionId, userId: connection.userId, username: connection.username, expiresAt: connection.expiresAt },
      roomId,
      req.nowMs,
    );
    return { type: "joined", roomId, members: room.users };
  });
}
