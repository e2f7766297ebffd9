/**
 * `delete`: removes the text of a message for everyone, leaving a tombstone in history. In a room
 * (granted and joined, as for `chat`) the author or a moderator of the room (the token's
 * `moderates` claim, access.ts canModerate) may delete; in a private conversation, the author. One
 * conditional UpdateItem (messageChanges.ts deleteMessage: NOT_FOUND, FORBIDDEN), then `deleted`
 * goes to the room's connections or to every connection of both users, the caller's included (its
 * confirmation, so no body unless that post failed). Deleting a deleted message is not an error.
 * When the caller is the one who deleted it, it is a retry, and the first attempt may have stopped
 * after its write (the room read or the posts failed, the function timed out): `deleted` goes out
 * again, so no member keeps showing the text (clients ignore a `deleted` they have had). When
 * someone else deleted it, the `deleted` frame is the reply and nothing is sent to anyone else.
 */
import type { WebSocketHandler } from "../events";
import { accessFromContext, canModerate } from "../lib/access";
import { withDeliveryQueue } from "../lib/deliveryQueue";
import { managementFanout } from "../lib/fanout";
import { buildSchemas, parseFrame } from "../lib/frames";
import { announceChange, conversationOf, deleteMessage, deletedFrame } from "../lib/messageChanges";
import { createRuntime, messageRoute, requireFrame } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = withDeliveryQueue(
    createRuntime("delete", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout),
  );
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.delete, requireFrame(req));
    const { connection } = req;
    const conversationId = conversationOf(rt, req, frame);
    const moderator = frame.roomId !== undefined && canModerate(accessFromContext(req.event.requestContext?.authorizer), frame.roomId);
    const change = await deleteMessage(rt, {
      conversationId,
      messageId: frame.messageId,
      by: connection.userId,
      anyAuthor: moderator,
      nowMs: req.nowMs,
    });
    const out = deletedFrame(change.item);
    if (change.repeat && change.item.deletedBy !== connection.userId) {
      req.log.info("delete repeated: deleted already by another user; nothing written or sent", { messageId: out.messageId });
      return out;
    }
    if (change.repeat) req.log.info("delete retried: nothing written, deleted announced again", { messageId: out.messageId });
    const sent = await announceChange(rt, req.log, change.item, out, connection.connectionId, req.nowMs);
    req.log.info("message deleted", { messageId: out.messageId, moderator, delivered: sent.delivered });
    return sent.reachedCaller ? undefined : out;
  });
}
