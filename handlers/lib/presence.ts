/**
 * Joining and leaving rooms, with presence derived from one strongly consistent Query of the room
 * partition (data.readRoom), never from counters:
 *  - `joined` is announced only if the joining connection is the user's earliest live connection in
 *    the room by (joinedAt, connectionId): a second device joining stays silent. Two devices joining
 *    at the same moment are always announced at least once (whichever reads the room last sees both
 *    and agrees on the order); twice if the later writer carries the earlier timestamp and the
 *    earlier writer read the room before the later write (documented in docs/architecture.md).
 *  - `left` is announced only if, after the delete, the user has no live connection left in the room.
 *    Two devices of one user leaving at the same moment can both see the other gone and both
 *    announce `left`: a harmless duplicate, documented in docs/architecture.md.
 */
import { compareMembers, deleteMembership, readRoom, upsertMembership, epochSeconds, type RoomView } from "./data";
import type { FanoutResult } from "./fanout";
import type { PresenceFrame } from "./frames";
import type { Logger } from "./logger";
import { requireFanout, type Runtime } from "./runtime";

export interface Member {
  readonly connectionId: string;
  readonly userId: string;
  readonly username: string;
  readonly expiresAt: number;
}

const NOTHING: FanoutResult = { delivered: [], gone: [], connecting: [], failed: [] };

/**
 * Posts a frame to the room's live member connections, except `exclude`. Members found gone (410)
 * are removed by the fan-out; a user whose last connection in the room was among them is announced
 * `left`, as their `$disconnect` would have done (API Gateway does not guarantee one).
 */
export async function broadcastToRoom(
  rt: Runtime,
  log: Logger,
  room: RoomView,
  roomId: string,
  payload: string,
  exclude?: string,
): Promise<FanoutResult> {
  const targets = room.members.map((m) => m.connectionId).filter((id) => id !== exclude);
  if (targets.length === 0) return NOTHING;
  const result = await requireFanout(rt).deliver(targets, payload, log, { roomId });
  if (result.gone.length > 0) await announceVanished(rt, log, room.members, result.gone, roomId, exclude);
  return result;
}

function leftFrame(roomId: string, userId: string, username: string): string {
  const frame: PresenceFrame = { type: "presence", event: "left", roomId, userId, username };
  return JSON.stringify(frame);
}

/** Rounds of `left` announcements: each can find more vanished members (bounded, like every loop here). */
const VANISHED_ROUNDS = 3;

async function announceVanished(
  rt: Runtime,
  log: Logger,
  members: readonly Member[],
  gone: readonly string[],
  roomId: string,
  exclude: string | undefined,
): Promise<void> {
  const initiallyGone = new Set(gone);
  let live = members.filter((m) => !initiallyGone.has(m.connectionId));
  let vanished = members.filter((m) => initiallyGone.has(m.connectionId));
  for (let round = 0; round < VANISHED_ROUNDS && vanished.length > 0; round++) {
    const users = new Map<string, string>();
    for (const m of vanished) if (!live.some((l) => l.userId === m.userId)) users.set(m.userId, m.username);
    const newlyGone = new Set<string>();
    for (const [userId, username] of users) {
      const targets = live.map((l) => l.connectionId).filter((id) => id !== exclude && !newlyGone.has(id));
      if (targets.length === 0) break;
      const result = await requireFanout(rt).deliver(targets, leftFrame(roomId, userId, username), log, { roomId });
      for (const id of result.gone) newlyGone.add(id);
    }
    vanished = live.filter((l) => newlyGone.has(l.connectionId));
    live = live.filter((l) => !newlyGone.has(l.connectionId));
  }
}

/**
 * Adds the membership, reads the room and announces `joined` to the others (never to the joining
 * connection itself: during $connect it is not open yet, and a post to it returns 410).
 */
export async function joinRoom(rt: Runtime, log: Logger, member: Member, roomId: string, nowMs: number): Promise<RoomView> {
  // joinedAt is taken right before the write, to keep timestamp order close to write order (see Races).
  const { created } = await upsertMembership(rt, { ...member, roomId, nowMs: Math.max(nowMs, Date.now()) });
  const room = await readRoom(rt, roomId, epochSeconds(nowMs));
  const mine = room.members.filter((m) => m.userId === member.userId).sort(compareMembers);
  if (created && mine[0]?.connectionId === member.connectionId) {
    const frame: PresenceFrame = { type: "presence", event: "joined", roomId, userId: member.userId, username: member.username };
    await broadcastToRoom(rt, log, room, roomId, JSON.stringify(frame), member.connectionId);
  }
  return room;
}

/** Announces `left` if the user has no live connection left in the room (call after the delete). */
export async function announceLeftIfLast(
  rt: Runtime,
  log: Logger,
  member: Pick<Member, "userId" | "username">,
  roomId: string,
  nowMs: number,
): Promise<RoomView> {
  const room = await readRoom(rt, roomId, epochSeconds(nowMs));
  if (!room.members.some((m) => m.userId === member.userId)) {
    await broadcastToRoom(rt, log, room, roomId, leftFrame(roomId, member.userId, member.username));
  }
  return room;
}

/** Removes one membership and announces `left` when it was the user's last connection in the room. */
export async function leaveRoom(
  rt: Runtime,
  log: Logger,
  member: Pick<Member, "connectionId" | "userId" | "username">,
  roomId: string,
  nowMs: number,
): Promise<void> {
  const existed = await deleteMembership(rt, roomId, member.connectionId);
  if (existed) await announceLeftIfLast(rt, log, member, roomId, nowMs);
}
