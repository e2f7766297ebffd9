/**
 * Moderation operations shared by the route functions and the push module (push/index.ts), so a
 * moderator's frame and a backend run the same code. Plain functions only (closure serialization).
 *
 * kick: keep a user out of a room for some minutes and take every connection of theirs out of it.
 *  1. Write the restriction (data.ts restrictJoins) FIRST: from then on every join transaction of
 *     that user into the room fails its ConditionCheck (FORBIDDEN), `$connect` included.
 *  2. Then read the room's members with a strongly consistent Query: a join that committed before
 *     step 1 is in it, so nothing can slip in between (docs/architecture.md, "Races").
 *  3. Remove each of the user's member connections through the leave path (data.ts
 *     removeMembership: its connection item's `rooms` set, member item and presence count change in
 *     one transaction), post `kicked` to the removed connections, and announce `left` once, from the
 *     removal that took the user's presence count to 0 (presence.ts).
 */
import { epochSeconds, readConnections, readRoom, removeMembership, removeMembershipOfGone, restrictJoins, type MemberItem } from "./data";
import { internalError, isChatError } from "./errors";
import type { KickedFrame } from "./frames";
import type { Logger } from "./logger";
import { announceDepartures, announceLeft, type RoomContext } from "./presence";

export interface KickInput {
  readonly roomId: string;
  readonly userId: string;
  /** Who kicks: the moderator's userId, or SYSTEM_USER_ID (frames.ts) for a backend. */
  readonly by: string;
  /** How long the user stays out (frames.ts: 1..MAX_KICK_MINUTES). */
  readonly minutes: number;
  readonly nowMs: number;
}

export interface KickOutcome {
  /** The end of the restriction in force (epoch ms): a kick never shortens an earlier, longer one. */
  readonly until: number;
  /** The user's connections this kick took out of the room (posted `kicked`, when still live). */
  readonly removed: readonly string[];
}

/**
 * Kicks `userId` out of `roomId` (steps above). Idempotent: a second kick finds no member left,
 * removes and announces nothing, and keeps the longer restriction. Kicking a user who is not in the
 * room still records the restriction.
 */
export async function kickUser(ctx: RoomContext, log: Logger, k: KickInput): Promise<KickOutcome> {
  const fanout = ctx.fanout;
  if (!fanout) throw internalError("kick posts to the kicked connections and the room: it needs a management client");
  const until = await restrictJoins(ctx, k.roomId, k.userId, k.nowMs + k.minutes * 60_000, k.by);
  const room = await readRoom(ctx, k.roomId, epochSeconds(k.nowMs));
  // Expired members too: they would be closed and removed by the next broadcast; kicked, they go now.
  const mine = [...room.members, ...room.expired].filter((m) => m.userId === k.userId);
  if (mine.length === 0) return { until, removed: [] };
  // Each connection as it is now (its rooms and current room), as leave has it from its own frame.
  const items = await readConnections(ctx, [...new Set(mine.map((m) => m.connectionId))]);
  const removed: string[] = [];
  let announce: { userId: string; username: string } | undefined;
  // One at a time: the removals move the same presence item, and concurrent ones would only
  // conflict and retry (data.ts runMembershipTransaction). A removal that fails does not stop the
  // others, nor the posts and the `left` of what was removed (a retried kick finds those gone and
  // could never announce them): the first failure is thrown after them.
  let failure: unknown;
  for (const m of mine) {
    try {
      const out = await removeKicked(ctx, m, items.get(m.connectionId), k.nowMs);
      if (!out.removed) continue;
      removed.push(m.connectionId);
      if (out.lastOfUser) announce = { userId: m.userId, username: m.username };
    } catch (err) {
      log.error("kick: removing a connection from the room failed", { roomId: k.roomId, connectionId: m.connectionId }, err);
      failure ??= err;
    }
  }
  const live = new Set(room.members.map((m) => m.connectionId));
  const notify = removed.filter((id) => live.has(id));
  if (notify.length > 0) {
    const frame: KickedFrame = { type: "kicked", roomId: k.roomId, by: k.by, until: new Date(until).toISOString() };
    const result = await fanout.deliver(notify, JSON.stringify(frame), log);
    // A kicked connection found gone (410) is cleaned up like any other, with its other rooms.
    await announceDepartures(ctx, fanout, log, result.departed);
  }
  if (announce) await announceLeft(ctx, log, announce, k.roomId, k.nowMs);
  log.info("user kicked", { roomId: k.roomId, kickedUserId: k.userId, by: k.by, until, removed: removed.length });
  if (failure !== undefined) throw failure;
  return { until, removed };
}

/**
 * Takes one member connection out of the room: the leave transaction when its connection item
 * exists (the item read a moment ago gives its rooms and current room; missing, they are unknown and
 * only the current room is left as it is), the `$disconnect` one when the item is gone (whoever of
 * the kick and the `$disconnect` deletes the member item does the bookkeeping, once). A connection
 * that no longer lists the room (its own leave won) was not removed by the kick.
 */
async function removeKicked(
  ctx: RoomContext,
  m: MemberItem,
  item: { readonly rooms?: Set<string>; readonly currentRoom?: string } | undefined,
  nowMs: number,
): Promise<{ removed: boolean; lastOfUser: boolean }> {
  const connection = {
    connectionId: m.connectionId,
    userId: m.userId,
    username: m.username,
    ...(item?.rooms !== undefined ? { rooms: item.rooms } : {}),
    ...(item?.currentRoom !== undefined ? { currentRoom: item.currentRoom } : {}),
  };
  try {
    const { lastOfUser } = await removeMembership(ctx, connection, m.roomId, nowMs);
    return { removed: true, lastOfUser };
  } catch (err) {
    if (!isChatError(err)) throw err;
    if (err.code === "NOT_A_MEMBER") return { removed: false, lastOfUser: false };
    if (err.code !== "NOT_CONNECTED") throw err;
  }
  return removeMembershipOfGone(ctx, m.roomId, m, nowMs);
}
