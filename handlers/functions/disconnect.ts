/**
 * `$disconnect`: best effort, may come twice or never (AWS-FACTS: Routing). DeleteItem with
 * ALL_OLD makes it idempotent: the second call finds nothing and does nothing; TTL covers "never".
 * Memberships are deleted in batches, then each room is re-read to announce `left` where this
 * was the user's last connection and to reconcile the room summary.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { deleteConnection, deleteMemberships } from "../lib/data";
import { announceLeftIfLast } from "../lib/presence";
import { createRuntime, withInvocation } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("disconnect", { tables: ["connections", "rooms"], management: true }, managementFanout);
  return (event, context) =>
    withInvocation(rt, event, context, async (log) => {
      const rc = event.requestContext;
      log.info("disconnect", { disconnectStatusCode: rc.disconnectStatusCode, disconnectReason: rc.disconnectReason });
      try {
        const old = await deleteConnection(rt, rc.connectionId);
        if (!old) {
          log.info("connection already removed");
          return { statusCode: 200 };
        }
        const rooms = [...(old.rooms ?? [])];
        const left = await deleteMemberships(rt, rc.connectionId, rooms);
        if (left > 0) log.warn("memberships left unprocessed (TTL will remove them)", { count: left });
        const nowMs = Date.now();
        await Promise.all(rooms.map((roomId) => announceLeftIfLast(rt, log, old, roomId, nowMs)));
        return { statusCode: 200 };
      } catch (err) {
        // API Gateway ignores $disconnect's result; TTL and read-time filtering cover what failed here.
        log.error("disconnect clean-up failed", {}, err);
        return { statusCode: 500 };
      }
    });
}
