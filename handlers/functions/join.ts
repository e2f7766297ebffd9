/**
 * `join`: one transaction adds the room to the connection's set (at most MAX_ROOMS_PER_CONNECTION,
 * checked by its condition, so concurrent joins cannot exceed it), creates the membership and counts
 * the user's presence; the user is announced if this made them present; the reply lists the members,
 * as many as fit in JOINED_MEMBERS_BUDGET_BYTES, with the room's member count. A room the token does
 * not grant is FORBIDDEN before anything is written (access.ts). The reply also carries the user's
 * unread count in the room (issue 18: one GetItem of their read position, one bounded COUNT Query;
 * lib/reads.ts), with the position it counts from.
 */
import type { WebSocketHandler } from "../events";
import { managementFanout } from "../lib/fanout";
import { MAX_ROOMS_PER_CONNECTION } from "../lib/data";
import { chatError } from "../lib/errors";
import { buildSchemas, parseFrame } from "../lib/frames";
import { joinRoom } from "../lib/presence";
import { countUnread, readPosition } from "../lib/reads";
import { messageRoute, createRuntime, requireAccess, requireFrame } from "../lib/runtime";

/**
 * Bytes of the `members` array in a `joined` reply. API Gateway sends at most 128 KB in one message
 * (AWS-FACTS: Limits): with user ids of up to 128 characters and names of up to 64, an unbounded list
 * passes that at about 300 users. 64 KB leaves the rest of the frame far inside the limit.
 */
export const JOINED_MEMBERS_BUDGET_BYTES = 64 * 1024;

/** The longest prefix of `users` whose JSON array fits in `budget` bytes (UTF-8). */
export function membersWithin<T extends { userId: string; username: string }>(
  users: readonly T[],
  budget = JOINED_MEMBERS_BUDGET_BYTES,
): T[] {
  let bytes = 2; // []
  const out: T[] = [];
  for (const u of users) {
    const size = Buffer.byteLength(JSON.stringify({ userId: u.userId, username: u.username }), "utf8") + (out.length > 0 ? 1 : 0);
    if (bytes + size > budget) break;
    bytes += size;
    out.push(u);
  }
  return out;
}

export function createHandler(): WebSocketHandler {
  const rt = createRuntime("join", { tables: ["connections", "rooms", "messages"], management: true }, managementFanout);
  const schemas = buildSchemas(rt.config.maxMessageBytes);
  return messageRoute(rt, async (req) => {
    const { roomId } = parseFrame(schemas.join, requireFrame(req));
    requireAccess(rt, req.event, roomId);
    const { connection } = req;
    const joined = connection.rooms ?? new Set<string>();
    // Fast refusal from the connection as the rate-limit update returned it; the transaction's
    // condition is what enforces the cap when joins run concurrently.
    if (!joined.has(roomId) && joined.size >= MAX_ROOMS_PER_CONNECTION) {
      throw chatError("BAD_REQUEST", `a connection can be in at most ${MAX_ROOMS_PER_CONNECTION} rooms; leave one first`);
    }
    const room = await joinRoom(
      rt,
      req.log,
      { connectionId: connection.connectionId, userId: connection.userId, username: connection.username, expiresAt: connection.expiresAt },
      roomId,
      req.nowMs,
    );
    const members = membersWithin(room.users).map((u) => ({ userId: u.userId, username: u.username }));
    // A large room was read in part (presence.ts joinRoom): its summary holds the exact count.
    const memberCount = room.partial && room.summary ? room.summary.users : room.users.length;
    const position = await readPosition(rt, connection.userId, roomId, req.nowMs);
    const unread = await countUnread(rt, connection.userId, roomId, position?.position, req.nowMs);
    return {
      type: "joined",
      roomId,
      members,
      memberCount,
      ...(members.length < memberCount || room.partial ? { membersTruncated: true as const } : {}),
      ...unread,
      ...(position !== undefined ? { readMessageId: position.messageId } : {}),
    };
  });
}
