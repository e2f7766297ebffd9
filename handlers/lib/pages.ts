/**
 * Paged reads whose replies must fit one API Gateway message (128 KB, AWS-FACTS: Limits; a larger
 * post or route response is refused with PayloadTooLargeException): a conversation's history and
 * the room directory. Each page is cut by count AND by the bytes of its frame, and carries an
 * opaque `next` cursor (docs/protocol.md).
 *
 * History cursors are bound to their conversation: base64url of `{"v":1,"c":<conversationId>,"sk":<sort key>}`.
 * One is accepted only if it names the request's conversation, its sort key has exactly the format
 * the server writes (13-digit ms, `#`, a lowercase UUID), and that message exists: the page's own
 * Query starts AT the cursor (`sk <= :sk`, newest first), so its first item must be the cursor's
 * message; no extra read and no key to manage (a MAC would need one per stack). A forward (`after`)
 * cursor below the live floor is the exception (history.ts): its message has expired and TTL may
 * have removed it, so the page starts at the floor without the check.
 */
import { QueryCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";
import { ROOM_DIRECTORY_INDEX } from "../tables";
import { DIRECTORY_PARTITION, tableName, type DataContext, type MessageItem } from "./data";
import { chatError } from "./errors";
import { MAX_CURSOR_LENGTH, ROOM_ID_PATTERN, utf8Bytes } from "./frames";

/** The sort key format storeMessage writes: messageSortKey(ms, uuidV7(ms)); ids of older (v4) messages have the same form. */
const MESSAGE_SK_PATTERN = /^\d{13}#[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Cursor format version: a later format can be told apart, and an old cursor refused cleanly. */
const CURSOR_VERSION = 1;

function badCursor(why: string): Error {
  return chatError("BAD_REQUEST", `invalid history cursor: ${why}; use the next value of a previous history reply`);
}

function decodeJson(cursor: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor) || cursor.length > MAX_CURSOR_LENGTH) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
    return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

export function encodeHistoryCursor(conversationId: string, sk: string): string {
  return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, c: conversationId, sk }), "utf8").toString("base64url");
}

/** The sort key of a history cursor for this conversation; BAD_REQUEST for anything else (existence is checked by the Query). */
export function decodeHistoryCursor(cursor: string, conversationId: string): string {
  const o = decodeJson(cursor);
  if (!o || o.v !== CURSOR_VERSION) throw badCursor("not a cursor this server issued");
  if (o.c !== conversationId) throw badCursor("it belongs to another conversation");
  if (typeof o.sk !== "string" || !MESSAGE_SK_PATTERN.test(o.sk)) throw badCursor("not a cursor this server issued");
  return o.sk;
}

export function encodeRoomsCursor(afterRoomId: string): string {
  return Buffer.from(JSON.stringify({ v: CURSOR_VERSION, after: afterRoomId }), "utf8").toString("base64url");
}

/** The room id a `rooms` cursor continues after; BAD_REQUEST for anything else. */
export function decodeRoomsCursor(cursor: string): string {
  const o = decodeJson(cursor);
  if (!o || o.v !== CURSOR_VERSION || typeof o.after !== "string" || !ROOM_ID_PATTERN.test(o.after)) {
    throw chatError("BAD_REQUEST", "invalid rooms cursor: use the next value of a previous rooms reply");
  }
  return o.after;
}

/**
 * Takes items (newest first for history, directory order for rooms) while the frame stays within
 * `budgetBytes`: `baseBytes` is the frame without items (with the longest cursor it could carry),
 * each item adds its JSON and a comma. At least one item is always taken: every stored message fits
 * one frame with room to spare (frames.ts assertDeliverable), and a room entry is tiny.
 */
export function fitByBytes<T>(items: readonly T[], baseBytes: number, budgetBytes: number, size: (item: T) => number): number {
  let used = baseBytes;
  let n = 0;
  for (const item of items) {
    const add = size(item) + (n > 0 ? 1 : 0);
    if (n > 0 && used + add > budgetBytes) break;
    used += add;
    n += 1;
  }
  return n;
}

/** The JSON size of one value in UTF-8 bytes. */
export function jsonBytes(value: unknown): number {
  return utf8Bytes(JSON.stringify(value));
}

/**
 * Up to `limit + 1` live messages of a conversation, newest first, from the cursor's message
 * (excluded) or from the newest. `more` is true when older messages may exist beyond them. A
 * cursor whose message does not exist (forged, or its message expired and was deleted) is BAD_REQUEST.
 * One Query, one page (no paginateQuery: a history page is never read past `limit + 1` items);
 * DynamoDB stops a page at 1 MB, which `more` accounts for (LastEvaluatedKey).
 */
export async function readHistory(
  ctx: DataContext,
  conversationId: string,
  limit: number,
  beforeSk: string | undefined,
  nowSec: number,
): Promise<{ items: MessageItem[]; more: boolean }> {
  const out = await ctx.doc.send(
    new QueryCommand({
      TableName: tableName(ctx, "messages"),
      KeyConditionExpression: beforeSk !== undefined ? "conversationId = :c AND sk <= :sk" : "conversationId = :c",
      ExpressionAttributeValues: { ":c": conversationId, ...(beforeSk !== undefined ? { ":sk": beforeSk } : {}) },
      ScanIndexForward: false,
      // The cursor's own message comes first and is dropped; one more than the page tells whether more remain.
      Limit: limit + 1 + (beforeSk !== undefined ? 1 : 0),
    }),
  );
  let items = (out.Items ?? []) as MessageItem[];
  if (beforeSk !== undefined) {
    if (items[0]?.sk !== beforeSk) throw badCursor("it names no message of this conversation (forged, or the message has expired)");
    items = items.slice(1);
  }
  const live: MessageItem[] = [];
  let expired = false;
  for (const item of items) {
    // Expiry follows send time, so the first expired item ends the history.
    if (Number(item.expiresAt) <= nowSec) {
      expired = true;
      break;
    }
    live.push(item);
  }
  return { items: live, more: !expired && (live.length > limit || out.LastEvaluatedKey !== undefined) };
}

/**
 * Up to `limit + 1` live messages of a conversation, OLDEST first, after a starting point (issue 18):
 * after the cursor's message (`afterCursorSk`: the Query starts AT it, so a cursor whose message does
 * not exist is BAD_REQUEST, as for readHistory), or after a read position (`afterSk`, which need not
 * name an existing message), or from the oldest (neither). Expired messages (the oldest ones: expiry
 * follows send time) are skipped. `more` is true when newer messages may exist beyond them; then
 * `lastSk`, the last item examined (live or expired), is where the next page can continue when
 * every live item is returned: a read of only expired items returns none, and must still move on.
 * One Query.
 */
export async function readHistoryForward(
  ctx: DataContext,
  conversationId: string,
  limit: number,
  start: { readonly afterCursorSk?: string; readonly afterSk?: string },
  nowSec: number,
): Promise<{ items: MessageItem[]; more: boolean; lastSk?: string }> {
  const cursor = start.afterCursorSk;
  const from = cursor ?? start.afterSk;
  const out = await ctx.doc.send(
    new QueryCommand({
      TableName: tableName(ctx, "messages"),
      KeyConditionExpression:
        cursor !== undefined
          ? "conversationId = :c AND sk >= :sk"
          : from !== undefined
            ? "conversationId = :c AND sk > :sk"
            : "conversationId = :c",
      ExpressionAttributeValues: { ":c": conversationId, ...(from !== undefined ? { ":sk": from } : {}) },
      ScanIndexForward: true,
      // The cursor's own message comes first and is dropped; one more than the page tells whether more remain.
      Limit: limit + 1 + (cursor !== undefined ? 1 : 0),
    }),
  );
  let items = (out.Items ?? []) as MessageItem[];
  if (cursor !== undefined) {
    if (items[0]?.sk !== cursor) throw badCursor("it names no message of this conversation (forged, or the message has expired)");
    items = items.slice(1);
  }
  const live = items.filter((item) => Number(item.expiresAt) > nowSec);
  const last = items[items.length - 1];
  return { items: live, more: items.length > limit || out.LastEvaluatedKey !== undefined, ...(last ? { lastSk: last.sk } : {}) };
}

/**
 * Where the `newer` cursor of a forward page that keeps the first `kept` of `page.items` points:
 * after the newest message returned, or, when every live one read is returned, after the last item
 * the read examined (a read that met only expired items returns none but must still move on).
 */
export function forwardNewerSk(
  page: { readonly items: readonly MessageItem[]; readonly lastSk?: string },
  kept: number,
): string | undefined {
  return kept < page.items.length ? page.items[kept - 1]?.sk : page.lastSk;
}

/**
 * Directory items one filtered `rooms` request examines at most (issue 16): a user granted few of
 * many rooms would otherwise have one request read the whole directory. Summary items are about
 * 100 bytes, so this is at most about 100 KB of index reads (DynamoDB pages at 1 MB).
 */
export const ROOMS_EXAMINED_PER_REQUEST = 1000;

/** One directory read: the rooms found, and where a cut-short scan stopped. */
export interface RoomsRead {
  /** Up to `limit + 1` rooms, in room id order (one more than the page tells that more remain). */
  readonly rooms: Array<{ roomId: string; members: number }>;
  /**
   * Set when the examination budget ran out before `limit + 1` rooms were found and the directory
   * goes on: the last room id examined, from which the next page continues. Strictly after the
   * request's `after`, so following it always moves forward and the listing ends.
   */
  readonly scannedTo?: string;
}

/**
 * Up to `limit + 1` active rooms in room id order after `afterRoomId`, from the sparse `directory`
 * index (summary items only, never members). A summary whose longest-lived member has expired (an
 * abandoned room) or that counts nobody is skipped, and so is a room `include` refuses (the
 * connection's access, access.ts: filtered after the Query, which cannot express the patterns).
 * Reads pages of `limit + 1` until enough rooms, leaving paginateQuery early then (it would
 * otherwise read the whole directory); with `include`, at most ROOMS_EXAMINED_PER_REQUEST items,
 * reporting where it stopped (`scannedTo`).
 */
export async function readRooms(
  ctx: DataContext,
  limit: number,
  afterRoomId: string | undefined,
  nowSec: number,
  include?: (roomId: string) => boolean,
): Promise<RoomsRead> {
  const rooms: Array<{ roomId: string; members: number }> = [];
  const pages = paginateQuery(
    { client: ctx.doc, pageSize: include ? Math.max(limit + 1, Math.min(ROOMS_EXAMINED_PER_REQUEST, 4 * (limit + 1))) : limit + 1 },
    {
      TableName: tableName(ctx, "rooms"),
      IndexName: ROOM_DIRECTORY_INDEX,
      KeyConditionExpression: afterRoomId !== undefined ? "directory = :d AND roomId > :after" : "directory = :d",
      ExpressionAttributeValues: { ":d": DIRECTORY_PARTITION, ...(afterRoomId !== undefined ? { ":after": afterRoomId } : {}) },
    },
  );
  let examined = 0;
  for await (const out of pages) {
    const items = out.Items ?? [];
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      const roomId = String(item.roomId);
      examined += 1;
      const n = Number(item.users ?? 0);
      // Tables created before expiresAt was projected lack it: treat as live.
      const expired = item.expiresAt !== undefined && Number(item.expiresAt) <= nowSec;
      if (n > 0 && !expired && (include === undefined || include(roomId))) rooms.push({ roomId, members: n });
      if (rooms.length > limit) return { rooms };
      if (include !== undefined && examined >= ROOMS_EXAMINED_PER_REQUEST) {
        // Out of budget: continue after this item next time, unless it was the directory's last.
        const last = i === items.length - 1 && out.LastEvaluatedKey === undefined;
        return last ? { rooms } : { rooms, scannedTo: roomId };
      }
    }
  }
  return { rooms };
}
