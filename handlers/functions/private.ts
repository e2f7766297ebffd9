/**
 * `private`: store the message in the pair's conversation (`dm#<a>#<b>`), then deliver it to every
 * live connection of the recipient and to the sender's other connections (byUser index).
 * `deliveredTo` counts recipient connections reached. A retried clientMessageId stores and
 * delivers nothing and answers `delivered` with the ORIGINAL messageId and deliveredTo 0, or
 * NOT_FOUND if that message was deleted since.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { dmConversation, epochSeconds, liveConnectionsOfUser, storeMessage } from "../lib/data";
import { chatError, retriedDeleted } from "../lib/errors";
import { MAX_WEBSOCKET_MESSAGE_BYTES } from "../lib/config";
import { assertDeliverable, assertOwnSender, buildSchemas, parseFrame, type PrivateFrame } from "../lib/frames";
import { messageRoute, createRuntime, requireFrame, requireFanout } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("private", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const raw = requireFrame(req);
    assertOwnSender(raw, req.connection);
    const frame = parseFrame(schemas.private, raw);
    const { connection } = req;
    if (frame.toUserId === connection.userId) throw chatError("BAD_REQUEST", "cannot send a private message to yourself");
    assertDeliverable(
      {
        type: "private",
        fromUserId: connection.userId,
        fromUsername: connection.username,
        toUserId: frame.toUserId,
        message: frame.message,
        clientMessageId: frame.clientMessageId,
      },
      MAX_WEBSOCKET_MESSAGE_BYTES,
    );
    const nowSec = epochSeconds(req.nowMs);
    // Both users' devices are looked up while the message is stored; nothing is posted before the
    // store has succeeded.
    const [stored, recipient, mine] = await Promise.all([
      storeMessage(rt, {
        conversationId: dmConversation(connection.userId, frame.toUserId),
        userId: connection.userId,
        username: connection.username,
        message: frame.message,
        clientMessageId: frame.clientMessageId,
        toUserId: frame.toUserId,
        nowMs: req.nowMs,
      }),
      liveConnectionsOfUser(rt, frame.toUserId, nowSec),
      liveConnectionsOfUser(rt, connection.userId, nowSec),
    ]);
    const clientMessageId = frame.clientMessageId !== undefined ? { clientMessageId: frame.clientMessageId } : {};
    if (stored.duplicate && stored.item.deletedAt !== undefined) throw retriedDeleted(stored.item.messageId);
    if (stored.duplicate) {
      req.log.info("duplicate clientMessageId: original returned, nothing stored", { messageId: stored.item.messageId });
      return { type: "delivered", messageId: stored.item.messageId, ...clientMessageId, deliveredTo: 0 };
    }
    rt.usage.count("MessagesSent");
    const out: PrivateFrame = {
      type: "private",
      messageId: stored.item.messageId,
      fromUserId: connection.userId,
      fromUsername: connection.username,
      toUserId: frame.toUserId,
      message: stored.item.message,
      sentAt: stored.item.sentAt,
      ...clientMessageId,
    };
    const targets = [...recipient, ...mine.filter((id) => id !== connection.connectionId)];
    const result = targets.length > 0 ? await requireFanout(rt).deliver(targets, JSON.stringify(out), req.log) : undefined;
    const recipientSet = new Set(recipient);
    const deliveredTo = result ? result.delivered.filter((id) => recipientSet.has(id)).length : 0;
    req.log.info("private message delivered", { messageId: out.messageId, deliveredTo, targets: targets.length });
    return { type: "delivered", messageId: out.messageId, ...clientMessageId, deliveredTo };
  });
}
