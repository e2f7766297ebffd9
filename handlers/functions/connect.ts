/**
 * `$connect`: register the connection (TTL = connect time + 2 h + margin, API Gateway's maximum
 * connection duration, or the token's `exp` + leeway if that comes first), join the `roomId` query parameter's room (default `general`) and announce
 * the user to the others. The item carries `connecting` until the last step, so that concurrent
 * handshakes into one room do not delete each other as stale (see data.ts CONNECT_GRACE_MS). A non-2xx result rejects the handshake (AWS-FACTS: Routing): 400 for an
 * invalid roomId, 403 when the token does not grant that room (access.ts; nothing stored), the user is banned (bans.ts: checked after the connection item is written, which is then deleted; nothing joined or announced)
 * or the user is kicked from that room (the join transaction's check, moderation.ts; the connection item is removed again, nothing announced), 401 when the token's deadline (`exp` + 5 s) passed while the handshake ran, 429 when the user has used their handshake budget for this minute
 * (userConnectsPerMinute: one conditional UpdateItem before anything is stored, so a refused
 * handshake stores and announces nothing), 500 for anything else. Nothing is posted to the
 * connecting connection: it does not exist yet and a post to it returns 410. A failure after the
 * connection item was written undoes everything stored and announced so far (presence.ts
 * removeConnection), because API Gateway sends no `$disconnect` for a refused handshake.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { CONNECTION_LIFETIME_SECONDS, deleteConnection, epochSeconds, markConnected, putConnection, spendUserHandshake } from "../lib/data";
import { activeBan } from "../lib/bans";
import { accessFromContext, canAccess } from "../lib/access";
import { isChatError } from "../lib/errors";
import { ROOM_ID_PATTERN, USER_ID_PATTERN } from "../lib/frames";
import { joinRoom, removeConnection } from "../lib/presence";
import { createRuntime, tokenDeadline, withInvocation } from "../lib/runtime";

export const DEFAULT_ROOM = "general";

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("connect", { tables: ["connections", "rooms"], management: true }, managementFanout);
  return (event, context) =>
    withInvocation(rt, event, context, async (log) => {
      const rc = event.requestContext;
      const roomId = event.queryStringParameters?.roomId ?? DEFAULT_ROOM;
      if (!ROOM_ID_PATTERN.test(roomId)) {
        rt.usage.count("ClientErrors");
        log.info("handshake rejected: invalid roomId");
        return { statusCode: 400 };
      }
      const userId = rc.authorizer?.userId;
      if (typeof userId !== "string" || !USER_ID_PATTERN.test(userId)) {
        // Only reachable if the authorizer is not attached: a deployment error, not the client's.
        log.error("no valid authorizer context on $connect: is the authorizer attached?");
        return { statusCode: 500 };
      }
      if (!canAccess(accessFromContext(rc.authorizer), rt.config.roomAccess, roomId)) {
        // The token does not grant the first room (issue 16): refused before anything is stored or
        // spent. The authorizer cannot decide it: roomAccess reaches the data functions only.
        rt.usage.count("ClientErrors");
        log.info("handshake rejected: the token does not grant the room", { userId, roomId });
        return { statusCode: 403 };
      }
      const username = typeof rc.authorizer?.username === "string" && rc.authorizer.username !== "" ? rc.authorizer.username : userId;
      let stored = false;
      // Whether joinRoom ran to its end (its `joined`, if any, went out): only then is `left` due.
      let announced = false;
      try {
        const nowMs = Date.now();
        const deadline = tokenDeadline(rc.authorizer);
        if (deadline !== undefined && epochSeconds(nowMs) >= deadline) {
          // The authorizer accepted the token just before its deadline and it passed meanwhile:
          // refuse as the authorizer would now, storing nothing.
          rt.usage.count("ClientErrors");
          log.info("handshake rejected: the token expired while the handshake ran", { userId });
          return { statusCode: 401 };
        }
        if (!(await spendUserHandshake(rt, userId, nowMs))) {
          rt.usage.count("RateLimited");
          log.info("handshake rejected: per-user handshake budget reached", { userId });
          return { statusCode: 429 };
        }
        const connectedAt = rc.connectedAt ?? nowMs;
        // The connection does not outlive its token: its items (and so its memberships) expire at
        // the token's deadline, and a fan-out meeting it afterwards closes it (presence.ts).
        const lifetimeEnd = epochSeconds(connectedAt) + CONNECTION_LIFETIME_SECONDS;
        const expiresAt = deadline === undefined ? lifetimeEnd : Math.min(lifetimeEnd, deadline);
        await putConnection(rt, {
          connectionId: rc.connectionId,
          userId,
          username,
          connectedAt,
          expiresAt,
          // No rooms yet: joinRoom's transaction adds the first one with its membership.
          // Open the rate-limit window now, so the first frame costs one UpdateItem, not two.
          rateWindow: Math.floor(nowMs / 60_000),
          rateCount: 0,
          lastSeenAt: nowMs,
          connecting: true,
        });
        stored = true;
        // A ban (handlers/lib/bans.ts) is checked AFTER the connection item is written, strongly
        // consistently: a ban written before this read refuses the handshake, and one written after
        // it finds this item when it closes the user's connections (docs/architecture.md, "Races").
        const bannedUntil = await activeBan(rt, userId, nowMs);
        if (bannedUntil !== undefined) {
          await deleteConnection(rt, rc.connectionId);
          stored = false;
          rt.usage.count("ClientErrors");
          log.info("handshake rejected: the user is banned", { userId, until: new Date(bannedUntil).toISOString() });
          return { statusCode: 403 };
        }
        await joinRoom(rt, log.child({ userId }), { connectionId: rc.connectionId, userId, username, expiresAt }, roomId, nowMs);
        announced = true;
        // One more write per connect (1 WCU) buys correctness: until now another member's broadcast
        // that got 410 for this connection spared it (fanout.ts); OPEN_SETTLE_MS after this, a 410
        // means it is gone.
        await markConnected(rt, rc.connectionId, Date.now());
        log.info("connected", { userId, roomId });
        return { statusCode: 200 };
      } catch (err) {
        // Kicked from the room (the join transaction's restriction check: moderation.ts): refused
        // as a room the token does not grant is, with 403; the join stored nothing, and the
        // connection item goes below without a word to anyone (no `joined` went out).
        const kicked = isChatError(err) && err.code === "FORBIDDEN";
        if (kicked) {
          rt.usage.count("ClientErrors");
          log.info("handshake rejected: kicked from the room", { userId, roomId, reason: err.message });
        } else log.error("connect failed", { userId }, err);
        // The handshake is refused and no $disconnect will come: remove the connection item, its
        // memberships and presence, announcing `left` where `joined` went out. If this fails too
        // (an outage), read-time filtering and the TTL of every item cover it.
        if (stored) {
          await removeConnection(rt, log.child({ userId }), rc.connectionId, Date.now(), { announce: announced }).catch(
            (cleanupErr: unknown) => log.error("clean-up after a failed connect failed", { userId }, cleanupErr),
          );
        }
        return { statusCode: kicked ? 403 : 500 };
      }
    });
}
