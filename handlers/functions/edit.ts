/**
 * `edit`: the author replaces the text of one of their messages, in a room (granted and joined, as
 * for `chat`) or in a private conversation. One conditional UpdateItem (messageChanges.ts
 * editMessage: NOT_FOUND, FORBIDDEN), then `edited` goes to the room's connections or to every
 * connection of both users, the sender's included: its copy is the confirmation, so the route
 * returns no body unless that post failed. An edit to the text the message already has (a retry)
 * writes nothing and announces `edited` again (the first attempt may have stopped after its write:
 * the room read or the posts failed, the function timed out), with the first `editedAt`; clients
 * ignore an `edited` they have had.
 */
import type { WebSocketHandler } from "../events";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { withDeliveryQueue } from "../lib/deliveryQueue";
import { managementFanout } from "../lib/fanout";
import { assertDeliverable, assertOwnSender, buildSchemas, parseFrame } from "../lib/frames";
import { announceChange, conversationOf, editMessage, editedFrame } from "../lib/messageChanges";
import { createRuntime, messageRoute, requireFrame } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = withDeliveryQueue(createRuntime("edit", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout));
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const raw = requireFrame(req);
    assertOwnSender(raw, req.connection);
    const frame = parseFrame(schemas.edit, raw);
    const { connection } = req;
    const conversationId = conversationOf(rt, req, frame);
    // The new text must fit the `edited` frame and the history entry that returns it, as a chat's
    // text must fit its frame (frames.ts assertDeliverable adds the id and a timestamp).
    assertDeliverable(
      {
        type: "edited",
        ...(frame.roomId !== undefined ? { roomId: frame.roomId } : { fromUserId: connection.userId, toUserId: frame.withUserId }),
        userId: connection.userId,
        username: connection.username,
        message: frame.message,
        editedAt: "2000-01-01T00:00:00.000Z",
      },
      MAX_WEBSOCKET_MESSAGE_BYTES,
    );
    const change = await editMessage(rt, {
      conversationId,
      messageId: frame.messageId,
      userId: connection.userId,
      message: frame.message,
      nowMs: req.nowMs,
    });
    const out = editedFrame(change.item);
    if (change.repeat)
      req.log.info("edit retried: the text is unchanged; nothing written, edited announced again", { messageId: out.messageId });
    const sent = await announceChange(rt, req.log, change.item, out, connection.connectionId, req.nowMs);
    req.log.info("message edited", { messageId: out.messageId, delivered: sent.delivered });
    // The caller's confirmation is its copy of the fan-out; if that post failed, the frame is the reply.
    return sent.reachedCaller ? undefined : out;
  });
}
