/**
 * `kick`: a moderator of the room (the token's `moderates` claim, access.ts) keeps a user out of it
 * for `minutes` (default 10, at most a week): every connection of that user leaves the room and is
 * told `kicked`, the room hears `left` once, and the user's joins (and handshakes into it) are
 * FORBIDDEN until then (moderation.ts kickUser). The moderator need not be in the room. The reply
 * is `userKicked`, with the restriction's end and how many connections were removed.
 */
import type { WebSocketHandler } from "../events";
import { accessFromContext, canModerate } from "../lib/access";
import { managementFanout } from "../lib/fanout";
import { chatError, notModeratorError } from "../lib/errors";
import { buildSchemas, parseFrame, type UserKickedFrame } from "../lib/frames";
import { kickUser } from "../lib/moderation";
import { messageRoute, createRuntime, requireFrame } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("kick", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req): Promise<UserKickedFrame> => {
    const { roomId, userId, minutes } = parseFrame(schemas.kick, requireFrame(req));
    // Moderating a room implies access to it (access.ts): one check covers both.
    if (!canModerate(accessFromContext(req.event.requestContext?.authorizer), roomId)) throw notModeratorError(roomId);
    if (userId === req.connection.userId) throw chatError("BAD_REQUEST", "userId: you cannot kick yourself");
    const { until, removed } = await kickUser(rt, req.log, { roomId, userId, by: req.connection.userId, minutes, nowMs: req.nowMs });
    return { type: "userKicked", roomId, userId, until: new Date(until).toISOString(), connections: removed.length };
  });
}
