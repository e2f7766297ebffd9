/**
 * `join`: one transaction adds the room to the connection's set (at most MAX_ROOMS_PER_CONNECTION,
 * checked by its condition, so concurrent joins cannot exceed it), creates the membership and counts
 * the user's presence; the user is announced if this made them present; the reply lists the members.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { MAX_ROOMS_PER_CONNECTION } from "../lib/data";
import { chatError } from "../lib/errors";
import { buildSchemas, parseFrame } from "../lib/frames";
import { joinRoom } from "../lib/presence";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("join", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const { roomId } = parseFrame(schemas.join, requireFrame(req));
    const { connection } = req;
    const joined = connection.rooms ?? new Set<string>();
    // Fast refusal from the connection as the rate-limit update returned it; the transaction's
    // condition is what enforces the cap when joins run concurrently.
    if (!joined.has(roomId) && joined.size >= MAX_ROOMS_PER_CONNECTION) {
      throw chatError("BAD_REQUEST", `a connection can be in at most ${MAX_ROOMS_PER_CONNECTION} rooms; leave one first`);
    }
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
