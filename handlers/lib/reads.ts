/**
 * Read positions and unread counts (issue 18).
 *
 * A user's read position in a room is one small item of the messages table, in the user's own
 * partition: PK `read#<userId>` (user ids contain no `#`), SK `room#<roomId>` (the room's
 * conversation id), with `position` (the sort key of the last message read: messageSortKeyOf),
 * `messageId` and `expiresAt` (now + messageRetentionHours, renewed by every move: a position
 * outlives the messages it points between by at most that). It is the user's own state, shared by
 * all their devices; the message it names is not looked up (a `read` costs one write).
 *
 * - moveReadPosition: one UpdateItem whose condition keeps the position from moving back; a refused
 *   move returns the position in force (ReturnValuesOnConditionCheckFailure ALL_OLD, no extra read).
 * - countUnread: messages of the room after the position, not by the user, not deleted, live: one
 *   Query of at most UNREAD_CAP + 1 items (Select COUNT), so counting costs a bounded read.
 * - readPositionsIn: the user's positions for a range of room ids (one Query of their partition).
 *
 * Plain functions only (closure serialization).
 */
import { GetCommand, QueryCommand, UpdateCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";
import { matchesPattern } from "./access";
import { type DataContext, epochSeconds, isConditionFailure, roomConversation, tableName } from "./data";
import { UNREAD_CAP, type Unread } from "./frames";

const READ_PARTITION_PREFIX = "read#";

/**
 * Rooms of one `rooms` page that get an unread count, at most: each costs a COUNT Query of up to
 * UNREAD_CAP + 1 messages, so a page costs a bounded read. A page is cut before the next such room.
 */
export const UNREAD_ROOMS_PER_PAGE = 50;
/** COUNT Queries of one `rooms` page in flight at once. */
export const UNREAD_QUERY_CONCURRENCY = 10;

/** The key of a user's read position in a room. */
export function readPositionKey(userId: string, roomId: string): { conversationId: string; sk: string } {
  return { conversationId: `${READ_PARTITION_PREFIX}${userId}`, sk: roomConversation(roomId) };
}

export interface ReadPosition {
  readonly roomId: string;
  /** The sort key of the last message read (data.ts messageSortKey). */
  readonly position: string;
  readonly messageId: string;
}

function positionOf(roomId: string, item: Record<string, unknown> | undefined, nowSec: number): ReadPosition | undefined {
  if (!item || typeof item.position !== "string" || typeof item.messageId !== "string") return undefined;
  // TTL deletes lazily: an expired position is no position.
  if (Number(item.expiresAt) <= nowSec) return undefined;
  return { roomId, position: item.position, messageId: item.messageId };
}

/** An attribute of an item returned with a failed condition: raw (`{ S: "x" }`) or already plain. */
function plain(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const v = value as { S?: unknown; N?: unknown };
  if (typeof v.S === "string") return v.S;
  if (typeof v.N === "string") return Number(v.N);
  return value;
}

export interface ReadMove {
  /** True when the position moved forward (or was set for the first time). */
  readonly moved: boolean;
  /** The position in force afterwards: the new one, or the one that refused the move. */
  readonly position: ReadPosition;
}

/**
 * Moves the user's read position in a room forward to the message with sort key `position`: one
 * UpdateItem, COND no position yet (or an expired one) OR the stored position is older. A move
 * to the same or an older message writes nothing (one failed condition, 1 WCU) and returns the
 * position in force.
 */
export async function moveReadPosition(
  ctx: DataContext,
  input: {
    readonly userId: string;
    readonly roomId: string;
    readonly messageId: string;
    readonly position: string;
    readonly nowMs: number;
  },
): Promise<ReadMove> {
  const nowSec = epochSeconds(input.nowMs);
  try {
    await ctx.doc.send(
      new UpdateCommand({
        TableName: tableName(ctx, "messages"),
        Key: readPositionKey(input.userId, input.roomId),
        UpdateExpression: "SET #position = :position, #messageId = :messageId, #expiresAt = :expires",
        ConditionExpression: "attribute_not_exists(#position) OR #position < :position OR #expiresAt <= :now",
        ExpressionAttributeNames: { "#position": "position", "#messageId": "messageId", "#expiresAt": "expiresAt" },
        ExpressionAttributeValues: {
          ":position": input.position,
          ":messageId": input.messageId,
          ":now": nowSec,
          ":expires": nowSec + ctx.config.messageRetentionHours * 3600,
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { moved: true, position: { roomId: input.roomId, position: input.position, messageId: input.messageId } };
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    const raw = (err as { Item?: Record<string, unknown> }).Item ?? {};
    const old = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plain(v)]));
    const inForce = positionOf(input.roomId, old, nowSec);
    // The condition failed only because a position at or after this one is in force.
    return { moved: false, position: inForce ?? { roomId: input.roomId, position: input.position, messageId: input.messageId } };
  }
}

/**
 * The user's read position in a room, undefined when there is none. Strongly consistent (1 RCU for
 * the small item): a position another device has just moved is the one counted from.
 */
export async function readPosition(ctx: DataContext, userId: string, roomId: string, nowMs: number): Promise<ReadPosition | undefined> {
  const out = await ctx.doc.send(
    new GetCommand({ TableName: tableName(ctx, "messages"), Key: readPositionKey(userId, roomId), ConsistentRead: true }),
  );
  return positionOf(roomId, out.Item, epochSeconds(nowMs));
}

/**
 * The user's read positions in the rooms whose ids lie from `firstRoomId` to `lastRoomId`: one Query
 * of the user's own partition (SK BETWEEN), which reads only the positions that exist (a few bytes
 * each), however many rooms the range holds; paginated at 1 MB like any Query.
 */
export async function readPositionsIn(
  ctx: DataContext,
  userId: string,
  firstRoomId: string,
  lastRoomId: string,
  nowMs: number,
): Promise<Map<string, ReadPosition>> {
  const out = new Map<string, ReadPosition>();
  const nowSec = epochSeconds(nowMs);
  const { conversationId } = readPositionKey(userId, firstRoomId);
  const pages = paginateQuery(
    { client: ctx.doc },
    {
      TableName: tableName(ctx, "messages"),
      KeyConditionExpression: "conversationId = :c AND sk BETWEEN :first AND :last",
      ExpressionAttributeValues: { ":c": conversationId, ":first": roomConversation(firstRoomId), ":last": roomConversation(lastRoomId) },
    },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      const roomId = String(item.sk).slice(roomConversation("").length);
      const p = positionOf(roomId, item, nowSec);
      if (p) out.set(roomId, p);
    }
  }
  return out;
}

/**
 * The user's unread messages in a room: those after `position` (all when undefined), not written
 * by the user, not deleted, not expired. One Query of at most UNREAD_CAP + 1 items from the later of
 * the position and the live floor (liveFloorSk), Select COUNT,
 * eventually consistent. DynamoDB applies Limit before the filter, so when the Query stops at its
 * Limit (LastEvaluatedKey), the count is a lower bound: `unreadMore` says "at least".
 */
export async function countUnread(
  ctx: DataContext,
  userId: string,
  roomId: string,
  position: string | undefined,
  nowMs: number,
): Promise<Required<Pick<Unread, "unread">> & Unread> {
  const out = await ctx.doc.send(
    new QueryCommand({
      TableName: tableName(ctx, "messages"),
      KeyConditionExpression: "conversationId = :c AND sk > :pos",
      FilterExpression: "#userId <> :me AND attribute_not_exists(#deletedAt) AND #expiresAt > :now",
      ExpressionAttributeNames: { "#userId": "userId", "#deletedAt": "deletedAt", "#expiresAt": "expiresAt" },
      ExpressionAttributeValues: {
        ":c": roomConversation(roomId),
        ":me": userId,
        ":now": epochSeconds(nowMs),
        ":pos": forwardStart(ctx, position, nowMs),
      },
      Select: "COUNT",
      Limit: UNREAD_CAP + 1,
    }),
  );
  const count = out.Count ?? 0;
  const more = count > UNREAD_CAP || out.LastEvaluatedKey !== undefined;
  return { unread: Math.min(count, UNREAD_CAP), ...(more ? { unreadMore: true as const } : {}) };
}

/**
 * The sort key below which every message of a conversation has expired (sent more than
 * messageRetentionHours ago): TTL deletes lazily (within days), so a busy room's partition can start
 * with thousands of expired items, which a Query with a Limit would spend its Limit on. Reads that go
 * forward from the oldest start after this bound instead (`sk > floor`; `#` sorts before every
 * character of an id, so messages of that very millisecond are included).
 */
export function liveFloorSk(ctx: Pick<DataContext, "config">, nowMs: number): string {
  const ms = Math.max(0, nowMs - ctx.config.messageRetentionHours * 3600 * 1000);
  return `${String(ms).padStart(13, "0")}#`;
}

/** The later of a read position and the live floor: where a forward read starts (exclusive). */
export function forwardStart(ctx: Pick<DataContext, "config">, position: string | undefined, nowMs: number): string {
  const floor = liveFloorSk(ctx, nowMs);
  return position !== undefined && position > floor ? position : floor;
}

/** Whether the room's members see each other's read positions (readReceiptRooms, access.ts pattern syntax). */
export function readReceiptsShared(ctx: Pick<DataContext, "config">, roomId: string): boolean {
  const list = ctx.config.readReceiptRooms;
  return list !== "" && list.split(",").some((p) => matchesPattern(p, roomId));
}
