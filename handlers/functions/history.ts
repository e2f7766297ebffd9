/** `history`: one page of a room's (members only) or a private conversation's messages, oldest..newest. */
import type { WebSocketHandler } from "../events";
import { decodeCursor, dmConversation, epochSeconds, queryHistory, roomConversation, storedData } from "../lib/data";
import { chatError } from "../lib/errors";
import { buildSchemas, parseFrame, type HistoryEntry } from "../lib/frames";
import { messageRoute, createRuntime, requireFrame, requireMember } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("history", { tables: ["connections", "messages"], management: false });
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.history, requireFrame(req));
    const { connection } = req;
    let conversationId: string;
    if (frame.roomId !== undefined) {
      requireMember(connection, frame.roomId);
      conversationId = roomConversation(frame.roomId);
    } else {
      const other = frame.withUserId as string;
      if (other === connection.userId) throw chatError("BAD_REQUEST", "withUserId must be another user");
      conversationId = dmConversation(connection.userId, other);
    }
    const before = frame.before !== undefined ? decodeCursor(frame.before) : undefined;
    const page = await queryHistory(rt, conversationId, frame.limit, before, epochSeconds(req.nowMs));
    const messages: HistoryEntry[] = page.messages.map((m) => ({
      messageId: m.messageId,
      userId: m.userId,
      username: m.username,
      message: m.message,
      sentAt: m.sentAt,
      ...(m.toUserId !== undefined ? { toUserId: m.toUserId } : {}),
      ...(m.clientMessageId !== undefined ? { clientMessageId: m.clientMessageId } : {}),
      // A backend's push (push/index.ts) is returned with kind "system" and its data (docs/protocol.md).
      ...(m.kind !== undefined ? { kind: m.kind } : {}),
      ...(m.data !== undefined ? { data: storedData(m) } : {}),
    }));
    return {
      type: "history",
      ...(frame.roomId !== undefined ? { roomId: frame.roomId } : { withUserId: frame.withUserId }),
      messages,
      ...(page.next !== undefined ? { next: page.next } : {}),
    };
  });
}
