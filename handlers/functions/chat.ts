/**
 * `chat`: store the message in the room's conversation, then deliver it to every live connection
 * of the room, the sender's included (the sender's confirmation is the broadcast itself, so the
 * route returns no body, unless the post to the sender failed: then the frame is the reply). A
 * retried clientMessageId stores and broadcasts nothing: the sender alone gets the ORIGINAL chat
 * frame back as the reply, with the message's current text if it was edited since, or NOT_FOUND if
 * it was deleted (its text cannot be read any more, and it is not sent again).
 */
import type { WebSocketHandler } from "../events";
import { withDeliveryQueue } from "../lib/deliveryQueue";
import { managementFanout } from "../lib/fanout";
import { epochSeconds, roomConversation, storeMessage, type MessageItem } from "../lib/data";
import { isLargeRoom, readRoomToBroadcast } from "../lib/largeRooms";
import { chatError, retriedDeleted } from "../lib/errors";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { assertDeliverable, assertOwnSender, buildSchemas, parseFrame, type ChatFrame } from "../lib/frames";
import { broadcastToRoom } from "../lib/presence";
import { messageRoute, createRuntime, requireAccess, requireFrame, requireMember } from "../lib/runtime";

export function chatFrame(roomId: string, m: MessageItem): ChatFrame {
  return {
    type: "chat",
    roomId,
    messageId: m.messageId,
    userId: m.userId,
    username: m.username,
    message: m.message,
    sentAt: m.sentAt,
    ...(m.clientMessageId !== undefined ? { clientMessageId: m.clientMessageId } : {}),
  };
}

export function createHandler(): WebSocketHandler {
  const rt = withDeliveryQueue(createRuntime("chat", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout));
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const raw = requireFrame(req);
    assertOwnSender(raw, req.connection);
    const frame = parseFrame(schemas.chat, raw);
    const { connection } = req;
    const roomId = frame.roomId ?? connection.currentRoom;
    if (roomId === undefined) throw chatError("BAD_REQUEST", "no roomId given and this connection has not joined a room");
    requireAccess(rt, req.event, roomId);
    requireMember(connection, roomId);
    assertDeliverable(
      {
        type: "chat",
        roomId,
        userId: connection.userId,
        username: connection.username,
        message: frame.message,
        clientMessageId: frame.clientMessageId,
      },
      MAX_WEBSOCKET_MESSAGE_BYTES,
    );
    // The room is read while the message is stored (one round trip less); nothing is posted before
    // the store has succeeded, so whatever anyone receives is in history.
    const [stored, room] = await Promise.all([
      storeMessage(rt, {
        conversationId: roomConversation(roomId),
        userId: connection.userId,
        username: connection.username,
        message: frame.message,
        clientMessageId: frame.clientMessageId,
        roomId,
        nowMs: req.nowMs,
      }),
      readRoomToBroadcast(rt, roomId, epochSeconds(req.nowMs), rt.config.largeRoomUsers),
    ]);
    if (stored.duplicate && stored.item.deletedAt !== undefined) throw retriedDeleted(stored.item.messageId);
    const out = chatFrame(stored.item.roomId ?? roomId, stored.item);
    if (stored.duplicate) {
      req.log.info("duplicate clientMessageId: original returned, nothing stored", { messageId: out.messageId });
      // A large room's first attempt may have stored the message and failed to queue its delivery
      // (INTERNAL): the jobs are sent again under the same deduplication ids, so SQS drops any that
      // did arrive within its 5-minute interval (docs/protocol.md, "Delivery in large rooms").
      if (isLargeRoom(room) && rt.deliveries) {
        await broadcastToRoom(rt, req.log, room, roomId, JSON.stringify(out), undefined, {
          id: out.messageId,
          caller: connection.connectionId,
        });
      }
      return out;
    }
    rt.usage.count("MessagesSent");
    const result = await broadcastToRoom(rt, req.log, room, roomId, JSON.stringify(out), undefined, {
      id: out.messageId,
      caller: connection.connectionId,
    });
    req.log.info("message delivered", {
      messageId: out.messageId,
      roomId,
      delivered: result.delivered.length,
      gone: result.gone.length,
      failed: result.failed.length,
      ...(result.queued !== undefined ? { queued: result.queued } : {}),
    });
    // The sender's confirmation is its copy of the broadcast; if that one post failed (not 410: the
    // connection is there), answer with the frame instead, so every frame gets an answer.
    // A large room's broadcast was queued (issue 17): the workers leave the sender out, and the route
    // answers it now with the frame instead of waiting for the posts.
    if (result.failed.includes(connection.connectionId) || result.queued !== undefined) return out;
    return undefined;
  });
}
