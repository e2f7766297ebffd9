/**
 * Reading a room to broadcast to it (issue 17): a small room's members, as readRoom gives them, or,
 * for a room of more than `largeRoomUsers` users, only its summary: such a room is delivered by the
 * workers, one job per shard (handlers/lib/deliveries.ts), and the route must not read its members.
 *
 * No extra read for a small room: the room partition's Query returns the `#summary` item first
 * (its sort key sorts before every `c#<connectionId>`: `#` is 0x23, `c` 0x63), so the broadcast's
 * one Query learns the room's size from its first item, and stops after its first page when the
 * room is large. That first page is bounded (BROADCAST_FIRST_PAGE_ITEMS), so a large room costs its
 * producer a few read units per broadcast, not a shard's worth.
 *
 * Module scope holds only plain constants and function declarations (closure serialization).
 */
import { QueryCommand, type QueryCommandOutput } from "@aws-sdk/lib-dynamodb";
import {
  distinctUsers,
  MEMBER_PREFIX,
  readShard,
  SUMMARY_SK,
  tableName,
  type DataContext,
  type MemberItem,
  type RoomSummary,
  type RoomView,
} from "./data";

/**
 * Items in the first page of a broadcast's room Query: the summary and up to 127 members. A room of
 * fewer connections is read in one request, as before; a larger small room pays at most one more
 * request's rounding (4 KB) for it; a large room reads no more than this before its jobs are sent.
 */
export const BROADCAST_FIRST_PAGE_ITEMS = 128;

/** A room too large for its route to post to: its summary only (users, shards). */
export interface LargeRoomView {
  readonly large: true;
  readonly summary: RoomSummary;
}

export function isLargeRoom(room: RoomView | LargeRoomView): room is LargeRoomView {
  return (room as Partial<LargeRoomView>).large === true;
}

/**
 * The room as a broadcast needs it: LargeRoomView when its summary counts more than `largeRoomUsers`
 * users, else every live member (all of its shards: a small room may have more than one when
 * roomShardSize is small) and those past their expiry apart, as readRoom returns them.
 */
export async function readRoomToBroadcast(
  ctx: DataContext,
  roomId: string,
  nowSec: number,
  largeRoomUsers: number,
): Promise<RoomView | LargeRoomView> {
  const table = tableName(ctx, "rooms");
  const pageSize = ctx.config.roomQueryPageSize;
  const members: MemberItem[] = [];
  const expired: MemberItem[] = [];
  let summary: RoomSummary | undefined;
  let startKey: Record<string, unknown> | undefined;
  for (let page = 0; ; page++) {
    const limit = page === 0 ? Math.min(pageSize ?? BROADCAST_FIRST_PAGE_ITEMS, BROADCAST_FIRST_PAGE_ITEMS) : pageSize;
    const out: QueryCommandOutput = await ctx.doc.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "roomId = :r",
        ExpressionAttributeValues: { ":r": roomId },
        ConsistentRead: true,
        ...(limit !== undefined ? { Limit: limit } : {}),
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    for (const item of out.Items ?? []) {
      if (item.sk === SUMMARY_SK) {
        const shards = Number(item.shards ?? 1);
        summary = { users: Math.max(0, Number(item.users ?? 0)), shards: Number.isInteger(shards) && shards >= 1 ? shards : 1 };
      } else if (String(item.sk).startsWith(MEMBER_PREFIX)) (Number(item.expiresAt) > nowSec ? members : expired).push(item as MemberItem);
    }
    if (page === 0 && summary !== undefined && summary.users > largeRoomUsers) return { large: true, summary };
    startKey = out.LastEvaluatedKey;
    if (!startKey) break;
  }
  for (let shard = 1; shard < (summary?.shards ?? 1); shard++) {
    const part = await readShard(ctx, roomId, shard, nowSec);
    members.push(...part.members);
    expired.push(...part.expired);
  }
  return { members, users: distinctUsers(members), expired };
}

/** Every shard of a room, read one after the other: a large room's broadcast when no delivery queue is configured. */
export async function readAllShards(ctx: DataContext, roomId: string, shards: number, nowSec: number): Promise<RoomView> {
  const members: MemberItem[] = [];
  const expired: MemberItem[] = [];
  for (let shard = 0; shard < shards; shard++) {
    const part = await readShard(ctx, roomId, shard, nowSec);
    members.push(...part.members);
    expired.push(...part.expired);
  }
  return { members, users: distinctUsers(members), expired };
}
