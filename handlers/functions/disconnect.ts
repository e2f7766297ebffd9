/**
 * `$disconnect`: best effort, may come twice or never (AWS-FACTS: Routing). DeleteItem with
 * ALL_OLD makes it idempotent: the second call finds nothing and does nothing; TTL covers "never".
 * Deleting the connection item first stops every join still in flight (their transactions are
 * conditional on it). Then each membership of the returned `rooms` set is removed in one
 * transaction with its presence bookkeeping; where that took the user's last connection out of the
 * room, `left` is announced. A clean-up after a 410 racing this one finds the member item gone and
 * announces nothing, and the other way round.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { removeConnection } from "../lib/presence";
import { createRuntime, withInvocation } from "../lib/runtime";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("disconnect", { tables: ["connections", "rooms"], management: true }, managementFanout);
  return (event, context) =>
    withInvocation(rt, event, context, async (log) => {
      const rc = event.requestContext;
      log.info("disconnect", { disconnectStatusCode: rc.disconnectStatusCode, disconnectReason: rc.disconnectReason });
      try {
        if (!(await removeConnection(rt, log, rc.connectionId, Date.now()))) log.info("connection already removed");
        return { statusCode: 200 };
      } catch (err) {
        // API Gateway ignores $disconnect's result; TTL and read-time filtering cover what failed here.
        log.error("disconnect clean-up failed", {}, err);
        return { statusCode: 500 };
      }
    });
}
