/**
 * `react` (issue 18): the caller adds (or, with `remove`, takes back) a reaction with one emoji to a
 * message, in a room (granted and joined, as for `chat`) or in a private conversation. One
 * transaction and one consistent read (reactions.ts react: NOT_FOUND, BAD_REQUEST beyond
 * MAX_REACTION_EMOJI emoji), then `reaction` with the count in force goes to everyone who can see
 * the message, the caller included: its copy is the confirmation, so the route returns no body
 * unless that post failed. A repeat (reacting again with the same emoji, removing a reaction the
 * caller does not have) writes nothing and announces the frame again with the current count: the
 * first attempt may have stopped after its write; clients apply the count, which is the same.
 */
import type { WebSocketHandler } from "../events";
import { withDeliveryQueue } from "../lib/deliveryQueue";
import { managementFanout } from "../lib/fanout";
import { buildSchemas, parseFrame } from "../lib/frames";
import { announceChange, conversationOf } from "../lib/messageChanges";
import { react, reactionFrame } from "../lib/reactions";
import { createRuntime, messageRoute, requireFrame } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = withDeliveryQueue(
    createRuntime("react", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout),
  );
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const frame = parseFrame(schemas.react, requireFrame(req));
    const { connection } = req;
    const conversationId = conversationOf(rt, req, frame);
    const remove = frame.remove === true;
    const result = await react(rt, {
      conversationId,
      messageId: frame.messageId,
      userId: connection.userId,
      emoji: frame.emoji,
      remove,
      nowMs: req.nowMs,
      log: req.log,
    });
    const out = reactionFrame(result, connection.userId, frame.emoji, remove);
    if (result.repeat) req.log.info("reaction repeated: nothing written, announced again", { messageId: out.messageId, remove });
    const sent = await announceChange(rt, req.log, result.item, out, connection.connectionId, req.nowMs);
    req.log.info(remove ? "reaction removed" : "reaction added", { messageId: out.messageId, count: out.count, delivered: sent.delivered });
    return sent.reachedCaller ? undefined : out;
  });
}
