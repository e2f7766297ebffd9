/**
 * `typing` (issue 18): the user is typing in a room (granted and joined, as for `chat`) or to another
 * user. Ephemeral: nothing is stored, and the route never replies on success (errors are answered,
 * as on every two-way route). What bounds its cost (handlers/lib/signals.ts):
 *
 * - at most one fan-out per user and conversation every typingIntervalSeconds (passThrottle: one
 *   conditional UpdateItem); a frame within the interval is absorbed: no post, no error;
 * - in a room, none at all when the room's summary counts more than typingMaxRoomUsers users (or
 *   that setting is 0), so a keystroke in a 10,000-member room is never 10,000 posts.
 *
 * A passed frame goes to the room's member connections except the typing user's own (read and
 * cleaned up as `chat` does: gone and expired members are removed), or to the other user's live
 * connections (byUser index) in a private conversation, never to the sender's.
 */
import type { WebSocketHandler } from "../events";
import { epochSeconds, liveConnectionsOfUser, readRoom } from "../lib/data";
import { managementFanout } from "../lib/fanout";
import { assertOwnSender, buildSchemas, parseFrame, type TypingFrame } from "../lib/frames";
import { conversationOf } from "../lib/messageChanges";
import { broadcastToRoom } from "../lib/presence";
import { createRuntime, messageRoute, requireFanout, requireFrame } from "../lib/runtime";
import { passThrottle, roomUsers, signalsAllowed } from "../lib/signals";

/** What a test may replace: the clock (the throttle's interval is judged on it). */
export interface TypingDeps {
  readonly now?: () => number;
}

export function createHandler(deps: TypingDeps = {}): WebSocketHandler {
  const rt = createRuntime("typing", { tables: ["connections", "rooms"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(
    rt,
    async (req) => {
      const raw = requireFrame(req);
      assertOwnSender(raw, req.connection);
      const frame = parseFrame(schemas.typing, raw);
      const { connection, log } = req;
      // Access rules exactly as `chat` (FORBIDDEN, then NOT_A_MEMBER) or a private conversation (oneself: BAD_REQUEST).
      const conversationId = conversationOf(rt, req, frame);
      const { roomId } = frame;
      // typingMaxRoomUsers 0: no room gets typing, so nothing is read or written for it.
      if (roomId !== undefined && !signalsAllowed(rt, 0)) {
        log.debug("typing absorbed: typing is off in rooms (typingMaxRoomUsers 0)", { roomId });
        return undefined;
      }
      if (!(await passThrottle(rt, "typing", connection.userId, conversationId, req.nowMs))) {
        log.debug("typing absorbed: within the interval of the last one", { conversationId });
        return undefined;
      }
      const nowSec = epochSeconds(req.nowMs);
      if (roomId !== undefined) {
        const users = await roomUsers(rt, roomId);
        if (!signalsAllowed(rt, users)) {
          log.debug("typing absorbed: the room is above typingMaxRoomUsers", { roomId, users });
          return undefined;
        }
        const out: TypingFrame = { type: "typing", roomId, userId: connection.userId, username: connection.username };
        const room = await readRoom(rt, roomId, nowSec);
        // Not to any connection of the typing user (their other devices know they are typing).
        const others = { ...room, members: room.members.filter((m) => m.userId !== connection.userId) };
        const result = await broadcastToRoom(rt, log, others, roomId, JSON.stringify(out));
        log.debug("typing delivered", { roomId, delivered: result.delivered.length, gone: result.gone.length });
        return undefined;
      }
      const toUserId = String(frame.withUserId);
      const out: TypingFrame = { type: "typing", toUserId, userId: connection.userId, username: connection.username };
      const targets = await liveConnectionsOfUser(rt, toUserId, nowSec);
      const result = targets.length > 0 ? await requireFanout(rt).deliver(targets, JSON.stringify(out), log) : undefined;
      log.debug("typing delivered", { toUserId, delivered: result?.delivered.length ?? 0 });
      return undefined;
    },
    deps.now,
  );
}
