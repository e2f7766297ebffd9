/**
 * `read`: the user's read position in a room moves forward to a message (never back), for all
 * their devices (issue 18). Access and membership as for `chat` (FORBIDDEN, then NOT_A_MEMBER).
 * The message is not looked up: a position is the user's own state. An id that is not a UUIDv7, or
 * whose time is more than READ_FUTURE_SLACK_MS ahead of the server's clock, names no message that
 * can exist (NOT_FOUND).
 *
 * One conditional UpdateItem (lib/reads.ts moveReadPosition). When it moved, `read` goes to the
 * user's other connections (byUser index), and, in a room whose read receipts are shared
 * (readReceiptRooms), to the room's other users' connections: at most once per user and room every
 * typingIntervalSeconds (signals.ts passThrottle; a throttled move is not shared, the next one is)
 * and not in rooms above typingMaxRoomUsers. The reply is the `read` frame with the position in
 * force: the new one, or the later one that refused the move (nothing is posted then).
 */
import type { WebSocketHandler } from "../events";
import { epochSeconds, liveConnectionsOfUser, messageSortKeyOf, readRoom, roomConversation, uuidV7Ms } from "../lib/data";
import { chatError } from "../lib/errors";
import { managementFanout } from "../lib/fanout";
import { buildSchemas, parseFrame, type ReadFrame } from "../lib/frames";
import { announceDepartures, broadcastToRoom } from "../lib/presence";
import { moveReadPosition, readReceiptsShared } from "../lib/reads";
import { createRuntime, messageRoute, requireAccess, requireFanout, requireFrame, requireMember, type Runtime } from "../lib/runtime";
import { passThrottle, roomUsers, signalsAllowed } from "../lib/signals";
import type { Logger } from "../lib/logger";

/** How far ahead of the server's clock a message id's time may be (clock skew between writers). */
export const READ_FUTURE_SLACK_MS = 60_000;

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("read", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.read, requireFrame(req));
    const { connection } = req;
    requireAccess(rt, req.event, frame.roomId);
    requireMember(connection, frame.roomId);
    const position = messageSortKeyOf(frame.messageId);
    const ms = uuidV7Ms(frame.messageId);
    if (position === undefined || ms === undefined || ms > req.nowMs + READ_FUTURE_SLACK_MS) {
      throw chatError("NOT_FOUND", `no message ${frame.messageId} in room ${frame.roomId}`);
    }
    const move = await moveReadPosition(rt, {
      userId: connection.userId,
      roomId: frame.roomId,
      messageId: frame.messageId,
      position,
      nowMs: req.nowMs,
    });
    const out: ReadFrame = {
      type: "read",
      roomId: frame.roomId,
      userId: connection.userId,
      username: connection.username,
      messageId: move.position.messageId,
    };
    if (!move.moved) {
      req.log.debug("read position not moved: a later one is in force", { roomId: frame.roomId });
      return out;
    }
    const payload = JSON.stringify(out);
    await toOwnDevices(rt, req.log, connection.userId, connection.connectionId, payload, req.nowMs);
    if (readReceiptsShared(rt, frame.roomId)) await shareWithRoom(rt, req.log, out, payload, req.nowMs);
    return out;
  });
}

/** The user's other live connections (byUser index) get the move, so every device's counters agree. */
async function toOwnDevices(rt: Runtime, log: Logger, userId: string, callerId: string, payload: string, nowMs: number): Promise<void> {
  const devices = (await liveConnectionsOfUser(rt, userId, epochSeconds(nowMs))).filter((id) => id !== callerId);
  if (devices.length === 0) return;
  const fanout = requireFanout(rt);
  const result = await fanout.deliver(devices, payload, log);
  await announceDepartures(rt, fanout, log, result.departed);
}

/**
 * A room whose read receipts are shared: the room's other users' connections get the move (the
 * reader's own already did), throttled and bounded as typing is (signals.ts).
 */
async function shareWithRoom(rt: Runtime, log: Logger, out: ReadFrame, payload: string, nowMs: number): Promise<void> {
  if (rt.config.typingMaxRoomUsers === 0) return;
  if (!(await passThrottle(rt, "read", out.userId, roomConversation(out.roomId), nowMs))) {
    log.debug("shared read position throttled: not shared", { roomId: out.roomId });
    return;
  }
  if (!signalsAllowed(rt, await roomUsers(rt, out.roomId))) {
    log.debug("shared read position not shared: the room is above typingMaxRoomUsers", { roomId: out.roomId });
    return;
  }
  const room = await readRoom(rt, out.roomId, epochSeconds(nowMs));
  const others = { ...room, members: room.members.filter((m) => m.userId !== out.userId) };
  await broadcastToRoom(rt, log, others, out.roomId, payload);
}
