/** `leave`: remove the membership; announce `left` when it was the user's last connection in the room. */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { removeRoomFromConnection } from "../lib/data";
import { buildSchemas, parseFrame } from "../lib/frames";
import { leaveRoom } from "../lib/presence";
import { messageRoute, createRuntime, requireFrame, requireMember } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("leave", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const { roomId } = parseFrame(schemas.leave, requireFrame(req));
    const { connection } = req;
    requireMember(connection, roomId);
    await removeRoomFromConnection(rt, connection, roomId);
    await leaveRoom(rt, req.log, connection, roomId, req.nowMs);
    return { type: "left", roomId };
  });
}
