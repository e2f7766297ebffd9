/**
 * `leave`: one transaction removes the room from the connection's set, deletes the membership and
 * uncounts the user's presence; `left` is announced when that took the user's last connection out.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { buildSchemas, parseFrame } from "../lib/frames";
import { leaveRoom } from "../lib/presence";
import { messageRoute, createRuntime, requireFrame, requireMember } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("leave", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const { roomId } = parseFrame(schemas.leave, requireFrame(req));
    const { connection } = req;
    // Fast refusal; the transaction's condition decides when frames run concurrently.
    requireMember(connection, roomId);
    await leaveRoom(rt, req.log, connection, roomId, req.nowMs);
    return { type: "left", roomId };
  });
}
