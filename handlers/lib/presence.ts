/**
 * Joining and leaving rooms, and presence. Each membership change is one DynamoDB transaction
 * (data.ts addMembership, removeMembership, removeMembershipOfGone) that also counts the user's
 * connections in the room on a per-(room, user) presence item; the transaction that moves that
 * count from 0 to 1 announces `joined`, the one that moves it from 1 to 0 announces `left`. Every
 * other writer, however it interleaves ($disconnect, a clean-up after a 410, a second device),
 * sees its condition fail or the count on the other side, and stays silent: each transition is
 * announced exactly once (docs/architecture.md, "Races").
 */
import {
  activeKick,
  addMembership,
  deleteConnection,
  epochSeconds,
  readRoom,
  removeMembership,
  removeMembershipOfGone,
  shardOfConnection,
  type ConnectionItem,
  type DataContext,
  type RoomView,
} from "./data";
import { randomUUID } from "node:crypto";
import type { Departure, Fanout, FanoutResult } from "./fanout";
import { DELIVERY_JOB_VERSION, type DeliveryJob } from "./deliveries";
import { isDeliveryQueueError, type DeliveryQueue } from "./deliveryQueue";
import { isLargeRoom, readAllShards, type LargeRoomView } from "./largeRooms";
import type { PresenceFrame } from "./frames";
import { chatError, internalError, kickedError } from "./errors";
import type { Logger } from "./logger";
import type { Runtime } from "./runtime";

/**
 * What posting to a room needs: its tables and a fan-out. A route function's Runtime is one; the
 * push module (push/index.ts) builds one from its own client and fan-out.
 */
export interface RoomContext extends DataContext {
  readonly fanout?: Fanout;
  /** The delivery queue (issue 17), when the function was given one: a large room's broadcasts go there. */
  readonly deliveries?: DeliveryQueue;
}

function fanoutOf(ctx: RoomContext): Fanout {
  if (!ctx.fanout) throw internalError("posting to a room needs a management client");
  return ctx.fanout;
}

export interface Member {
  readonly connectionId: string;
  readonly userId: string;
  readonly username: string;
  readonly expiresAt: number;
}

const NOTHING: FanoutResult = { delivered: [], gone: [], connecting: [], failed: [], departed: [] };

/** Rounds of `left` announcements after clean-ups: each can find more gone members (bounded, like every loop here). */
const DEPARTURE_ROUNDS = 3;

/**
 * Posts a frame to the room's live member connections, except `exclude`. Members found gone (410)
 * or past their expiry are removed (the latter closed first); a user whose last connection in the room (or in any other room
 * of the removed connections) was among them is announced `left` there, as their `$disconnect`
 * would have done (API Gateway does not guarantee one). Only the remover does it, so once.
 *
 * A large room (issue 17: more than largeRoomUsers users, read as a LargeRoomView by
 * largeRooms.ts readRoomToBroadcast) is not posted to here: one delivery job per shard goes to the
 * delivery queue (deliveries.ts) and the workers post it; the result then has `queued` (jobs sent)
 * and nothing delivered. The jobs leave out `options.caller` too: its route answers it with the
 * frame at once. `options.id` identifies the broadcast (a chat's messageId: a retry then enqueues
 * nothing twice within SQS's 5-minute deduplication interval). A send that fails after its retries
 * is a ChatError INTERNAL saying what was stored. Without a delivery queue the route reads every
 * shard and posts itself, as before.
 */
export async function broadcastToRoom(
  rt: RoomContext,
  log: Logger,
  room: RoomView | LargeRoomView,
  roomId: string,
  payload: string,
  exclude?: string,
  options: { readonly id?: string; readonly caller?: string } = {},
): Promise<RoomBroadcastResult> {
  const fanout = fanoutOf(rt);
  if (isLargeRoom(room)) {
    if (rt.deliveries) return enqueueBroadcast(rt.deliveries, log, room, roomId, payload, options.caller ?? exclude, options.id);
    room = await readAllShards(rt, roomId, room.summary.shards, epochSeconds(Date.now()));
  }
  const targets = room.members.map((m) => m.connectionId).filter((id) => id !== exclude);
  const result = targets.length > 0 ? await fanout.deliver(targets, payload, log, { roomId, members: room.members }) : NOTHING;
  const departed = [...result.departed];
  if (room.expired.length > 0) {
    // Past their expiry: API Gateway's 2 h cut, or their token's `exp` (connect.ts), in which case
    // the socket is still open and is closed here, so it hears nothing more of the room.
    departed.push(
      ...(await fanout.removeGone(
        room.expired.map((m) => m.connectionId),
        log,
        { roomId, members: room.expired, close: true },
      )),
    );
  }
  await announceDepartures(rt, fanout, log, departed);
  return result;
}

/** What a room broadcast did: the fan-out's result, or (large room) `queued` jobs and nothing posted yet. */
export interface RoomBroadcastResult extends FanoutResult {
  /** Delivery jobs sent to the queue (one per shard): the workers post the frame. */
  readonly queued?: number;
}

/** A large room's broadcast: one job per shard, sent in SendMessageBatch calls (deliveryQueue.ts). */
async function enqueueBroadcast(
  queue: DeliveryQueue,
  log: Logger,
  room: LargeRoomView,
  roomId: string,
  payload: string,
  exclude: string | undefined,
  id: string | undefined,
): Promise<RoomBroadcastResult> {
  const frame = JSON.parse(payload) as Record<string, unknown>;
  const broadcastId = id ?? randomUUID();
  const enqueuedAtMs = Date.now();
  const jobs: DeliveryJob[] = Array.from({ length: room.summary.shards }, (_, shard) => ({
    v: DELIVERY_JOB_VERSION,
    id: broadcastId,
    roomId,
    shard,
    frame,
    ...(exclude !== undefined ? { exclude } : {}),
    enqueuedAtMs,
  }));
  try {
    await queue.send(jobs, log);
  } catch (err) {
    if (!isDeliveryQueueError(err)) throw err;
    log.error("a large room's broadcast could not be queued", { roomId, broadcastId, unsent: err.unsent, jobs: jobs.length }, err);
    throw chatError(
      "INTERNAL",
      `this was stored, but its delivery to room ${roomId} could not be queued; send the same frame again (with its clientMessageId) to deliver it`,
    );
  }
  log.info("broadcast queued for the delivery workers", { roomId, broadcastId, jobs: jobs.length, users: room.summary.users });
  return { ...NOTHING, queued: jobs.length };
}

/**
 * Rooms of more than largeRoomUsers users announce no joined/left (handlers/settings.ts): at a few
 * joins a second, each would be another broadcast to every member. Their user count stays exact.
 */
function announcesNoPresence(ctx: DataContext, room: RoomView): boolean {
  return (room.summary?.users ?? room.users.length) > ctx.config.largeRoomUsers;
}

function leftFrame(roomId: string, userId: string, username: string): string {
  const frame: PresenceFrame = { type: "presence", event: "left", roomId, userId, username };
  return JSON.stringify(frame);
}

/**
 * Announces `left` for users a clean-up took out of a room (fanout.ts `departed`): reads the room
 * and posts to its members; gone members found on the way are removed in turn (at most
 * DEPARTURE_ROUNDS rounds; a departure left over after them is logged, never announced twice).
 */
export async function announceDepartures(ctx: DataContext, fanout: Fanout, log: Logger, departures: readonly Departure[]): Promise<void> {
  let pending = [...departures];
  for (let round = 0; round < DEPARTURE_ROUNDS && pending.length > 0; round++) {
    const next: Departure[] = [];
    for (const d of pending) {
      const room = await readRoom(ctx, d.roomId, epochSeconds(Date.now()), { maxUsers: ctx.config.largeRoomUsers });
      if (announcesNoPresence(ctx, room)) continue;
      const targets = room.members.map((m) => m.connectionId);
      if (targets.length === 0) continue;
      const result = await fanout.deliver(targets, leftFrame(d.roomId, d.userId, d.username), log, {
        roomId: d.roomId,
        members: room.members,
      });
      next.push(...result.departed);
    }
    pending = next;
  }
  if (pending.length > 0) log.warn("departures left unannounced after the last round", { count: pending.length });
}

/**
 * Joins a room (one transaction, data.ts addMembership), reads it and, when this join made the user
 * present, announces `joined` to the others (never to the joining connection itself: during
 * $connect it is not open yet, and a post to it returns 410). A room of more than largeRoomUsers
 * users is read only in part (shard 0 and the joiner's shard: the view is `partial`, its summary
 * gives the exact count) and announces nothing.
 *
 * A kick can overtake a join between its transaction and its read (moderation.ts kickUser: the
 * join committed before the restriction, the kick's read found it and took it out, announcing
 * `left`). The read then does not list the connection: if a restriction is in force the join is
 * answered as a kicked one (FORBIDDEN, `$connect` 403) and its `joined` is not sent, so nobody is
 * told of a member who is not there. Another reason for the absence (this connection's own leave,
 * pipelined) keeps today's answer. The extra read (1 RCU) happens only in that race.
 */
export async function joinRoom(rt: Runtime, log: Logger, member: Member, roomId: string, nowMs: number): Promise<RoomView> {
  const { firstOfUser, shard } = await addMembership(rt, { ...member, roomId, nowMs });
  // A large room is not read whole: shard 0 and the joiner's own shard (readRoom's `partial`).
  const room = await readRoom(rt, roomId, epochSeconds(nowMs), { maxUsers: rt.config.largeRoomUsers, alsoShard: shard });
  if (!room.members.some((m) => m.connectionId === member.connectionId)) {
    const kickedUntil = await activeKick(rt, roomId, member.userId, nowMs);
    if (kickedUntil !== undefined) throw kickedError(roomId, kickedUntil);
  }
  if (firstOfUser && !announcesNoPresence(rt, room)) {
    const frame: PresenceFrame = { type: "presence", event: "joined", roomId, userId: member.userId, username: member.username };
    await broadcastToRoom(rt, log, room, roomId, JSON.stringify(frame), member.connectionId);
  }
  return room;
}

/** Announces `left` in a room (none in a large room): call only after the transaction that took the user's count to 0. */
export async function announceLeft(
  rt: RoomContext,
  log: Logger,
  member: Pick<Member, "userId" | "username">,
  roomId: string,
  nowMs: number,
): Promise<void> {
  const room = await readRoom(rt, roomId, epochSeconds(nowMs), { maxUsers: rt.config.largeRoomUsers });
  if (announcesNoPresence(rt, room)) return;
  await broadcastToRoom(rt, log, room, roomId, leftFrame(roomId, member.userId, member.username));
}

/** Leaves a room (one transaction, data.ts removeMembership); announces `left` when it was the user's last connection there. */
export async function leaveRoom(
  rt: Runtime,
  log: Logger,
  connection: Pick<ConnectionItem, "connectionId" | "userId" | "username" | "rooms" | "currentRoom">,
  roomId: string,
  nowMs: number,
): Promise<void> {
  const { lastOfUser } = await removeMembership(rt, connection, roomId, nowMs);
  if (lastOfUser) await announceLeft(rt, log, connection, roomId, nowMs);
}

/**
 * Removes a connection that has gone and everything that names it: deletes its item first (ALL_OLD:
 * which rooms it was in; a join still in flight then finds it gone and fails), then each membership
 * in one transaction with its presence bookkeeping, announcing `left` where that took the user's
 * last connection out of the room. Idempotent: a second call finds no item and does nothing, and a
 * clean-up after a 410 racing it finds the member items gone and announces nothing. Used by
 * `$disconnect` and by a `$connect` that fails after storing (API Gateway then sends no
 * `$disconnect`). Returns false when there was nothing to remove. `announce: false` (a `$connect`
 * that failed before its `joined` went out) removes without announcing `left`, so nobody hears of
 * a departure whose arrival they never heard of.
 */
export async function removeConnection(
  rt: Runtime,
  log: Logger,
  connectionId: string,
  nowMs: number,
  options: { readonly announce?: boolean } = {},
): Promise<boolean> {
  const old = await deleteConnection(rt, connectionId);
  if (!old) return false;
  const member = { connectionId, userId: old.userId, username: old.username };
  await Promise.all(
    [...(old.rooms ?? [])].map(async (roomId) => {
      const { lastOfUser } = await removeMembershipOfGone(rt, roomId, { ...member, shard: shardOfConnection(old, roomId) }, nowMs);
      if (lastOfUser && options.announce !== false) await announceLeft(rt, log, old, roomId, nowMs);
    }),
  );
  return true;
}
