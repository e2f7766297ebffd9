/**
 * The data layer (docs/architecture.md describes the model and the cost of each operation).
 *
 * connections  PK connectionId                      one item per open connection
 *              GSI byUser (userId, connectionId)     every device of a user (private messages)
 * rooms        PK roomId, SK "c#<connectionId>"      one item per member connection
 *              PK roomId, SK "#summary"              distinct live users; sparse GSI `directory`
 * messages     PK "room#<id>" | "dm#<a>#<b>", SK "<sentAt ms, 13 digits>#<messageId>"
 *              PK "idem#<userId>#<clientMessageId>", SK "idem"   idempotency records (24 h)
 *
 * Every item carries `expiresAt` (epoch seconds, the tables' TTL attribute). DynamoDB deletes
 * expired items lazily (days), so every read here filters them itself (AWS-FACTS: DynamoDB).
 */
import { randomUUID } from "node:crypto";
import {
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from "@aws-sdk/lib-dynamodb";
import { CONNECTIONS_BY_USER_INDEX, ROOM_DIRECTORY_INDEX, type TableName } from "../tables";
import type { HandlerConfig } from "./config";
import { chatError, errorName } from "./errors";
import { parseJsonObject } from "./json";

export interface DataContext {
  readonly doc: DynamoDBDocumentClient;
  readonly config: HandlerConfig;
}

/** API Gateway closes a connection after 2 h at most (AWS-FACTS: Limits); 5 min margin for clock skew. */
export const CONNECTION_LIFETIME_SECONDS = 2 * 3600 + 300;
/** How long a (userId, clientMessageId) pair is remembered: clients retry within seconds, 24 h is generous. */
export const IDEMPOTENCY_SECONDS = 24 * 3600;
export const SUMMARY_SK = "#summary";
export const MEMBER_PREFIX = "c#";
/** Value of the sparse `directory` index's partition key on every room summary. */
export const DIRECTORY_PARTITION = "rooms";

export interface ConnectionItem {
  readonly connectionId: string;
  readonly userId: string;
  readonly username: string;
  readonly connectedAt: number;
  readonly expiresAt: number;
  readonly rooms?: Set<string>;
  readonly currentRoom?: string;
  readonly rateWindow?: number;
  readonly rateCount?: number;
  readonly lastSeenAt?: number;
  /**
   * Set while `$connect` runs. API Gateway answers 410 for a connection whose handshake has not
   * completed (AWS-FACTS: Routing), so a post that reaches it then (another member's `joined`
   * announcement) must not get it deleted as stale. Cleared as `$connect`'s last step.
   */
  readonly connecting?: boolean;
  /** When `$connect`'s last step ran (epoch ms): the handshake completes just after it returns. */
  readonly openedAt?: number;
}

/**
 * How long a `connecting` item is spared after a 410: the authorizer and `$connect` each run for at
 * most the 29-second integration timeout (AWS-FACTS: Limits). An item older than that whose
 * `$connect` never cleared the flag belongs to a handshake that failed: it is cleaned like any other.
 */
export const CONNECT_GRACE_MS = 60_000;

/**
 * How long after `$connect`'s last step a 410 is still not final: API Gateway completes the
 * handshake only after the function has returned, so a post in between is refused; the fan-out
 * posts again once this long after it (fanout.ts) before it calls the connection stale.
 */
export const OPEN_SETTLE_MS = 1_000;

export interface MemberItem {
  readonly roomId: string;
  readonly sk: string;
  readonly connectionId: string;
  readonly userId: string;
  readonly username: string;
  readonly joinedAt: number;
  readonly expiresAt: number;
}

export interface RoomView {
  /** Live member connections (expired items filtered out). */
  readonly members: readonly MemberItem[];
  /** Distinct live users, in first-joined order. */
  readonly users: ReadonlyArray<{ readonly userId: string; readonly username: string }>;
}

export interface MessageItem {
  readonly conversationId: string;
  readonly sk: string;
  readonly messageId: string;
  readonly userId: string;
  readonly username: string;
  readonly message: string;
  readonly sentAt: string;
  readonly expiresAt: number;
  readonly clientMessageId?: string;
  readonly roomId?: string;
  readonly toUserId?: string;
  /** "system" on a message pushed by a backend (push/index.ts); absent on users' messages. */
  readonly kind?: "system";
  /**
   * A system message's `data`, as the JSON text it was given: stored as a string, not a map, so
   * that any JSON number survives (the document client refuses to read back numbers beyond
   * JavaScript's safe precision) and the item's size is exactly what was checked.
   */
  readonly data?: string;
}

export function tableName(ctx: DataContext, t: TableName): string {
  const name = ctx.config.tables[t];
  if (!name) throw new Error(`table ${t} is not configured for ${ctx.config.functionName}`);
  return name;
}

export function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

export function isConditionFailure(err: unknown): boolean {
  return errorName(err) === "ConditionalCheckFailedException";
}

export function roomConversation(roomId: string): string {
  return `room#${roomId}`;
}

/** One partition per pair of users, whoever writes first: ids sorted, so a->b and b->a share it. */
export function dmConversation(a: string, b: string): string {
  const [x, y] = [a, b].sort();
  return `dm#${x}#${y}`;
}

export function messageSortKey(sentAtMs: number, messageId: string): string {
  return `${String(sentAtMs).padStart(13, "0")}#${messageId}`;
}

/** Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
export function backoffDelay(attempt: number, baseMs: number, capMs = 2000): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.floor(ceiling / 2 + Math.random() * (ceiling / 2));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Deletes keys with BatchWriteItem, at most 25 requests per call (AWS-FACTS: DynamoDB), retrying
 * UnprocessedItems with backoff. Returns how many requests were still unprocessed after 8 attempts
 * (TTL removes those items eventually).
 */
export async function batchDelete(
  doc: DynamoDBDocumentClient,
  requests: ReadonlyArray<{ readonly table: string; readonly key: Record<string, string> }>,
  backoffBaseMs = 25,
): Promise<number> {
  let left = 0;
  for (let i = 0; i < requests.length; i += 25) {
    let pending: Record<string, Array<{ DeleteRequest: { Key: Record<string, unknown> } }>> = {};
    for (const r of requests.slice(i, i + 25)) (pending[r.table] ??= []).push({ DeleteRequest: { Key: r.key } });
    for (let attempt = 0; Object.keys(pending).length > 0; attempt++) {
      const out = await doc.send(new BatchWriteCommand({ RequestItems: pending }));
      const unprocessed = (out.UnprocessedItems ?? {}) as typeof pending;
      pending = Object.fromEntries(Object.entries(unprocessed).filter(([, v]) => v && v.length > 0));
      if (Object.keys(pending).length === 0) break;
      if (attempt >= 7) {
        left += Object.values(pending).reduce((n, v) => n + v.length, 0);
        break;
      }
      await sleep(backoffDelay(attempt, backoffBaseMs));
    }
  }
  return left;
}

// ---------------------------------------------------------------- connections

/** The connection item is gone (cleaned up as stale, or expired): only a new connection helps. */
function notConnected(): Error {
  return chatError("NOT_CONNECTED", "this connection is not registered (expired or cleaned up); reconnect");
}

export async function putConnection(ctx: DataContext, item: ConnectionItem): Promise<void> {
  await ctx.doc.send(new PutCommand({ TableName: tableName(ctx, "connections"), Item: { ...item } }));
}

/** `$connect`'s last step: the connection is about to be open (see OPEN_SETTLE_MS). */
export async function markConnected(ctx: DataContext, connectionId: string, nowMs: number): Promise<void> {
  try {
    await ctx.doc.send(
      new UpdateCommand({
        TableName: tableName(ctx, "connections"),
        Key: { connectionId },
        UpdateExpression: "SET openedAt = :now REMOVE connecting",
        ConditionExpression: "attribute_exists(connectionId)",
        ExpressionAttributeValues: { ":now": nowMs },
      }),
    );
  } catch (err) {
    if (isConditionFailure(err)) throw notConnected();
    throw err;
  }
}

/**
 * The per-connection rate limit, in one conditional UpdateItem that also refreshes lastSeenAt and
 * returns the connection (so no route needs another read). Fixed one-minute windows:
 *  1. same window and under the limit: count it;
 *  2. otherwise, if the stored window is another minute: start a new window at 1;
 *  3. otherwise the limit is reached (RATE_LIMITED), or the item does not exist (not registered).
 * A failed condition still costs one write unit (AWS-FACTS: DynamoDB).
 */
export async function touchConnection(ctx: DataContext, connectionId: string, nowMs: number): Promise<ConnectionItem> {
  const table = tableName(ctx, "connections");
  const window = Math.floor(nowMs / 60_000);
  const limit = ctx.config.rateLimitPerMinute;
  // Two frames of one connection processed at once at the start of a minute both fail step 1; one
  // opens the window in step 2 and the other then finds it open with room left: it goes back to
  // step 1 (counted in that window) instead of being refused. Bounded: each round needs another
  // frame to have changed the item in between.
  for (let round = 0; round < 3; round++) {
    try {
      const out = await ctx.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { connectionId },
          UpdateExpression: "SET rateCount = rateCount + :one, lastSeenAt = :now",
          ConditionExpression: "rateWindow = :w AND rateCount < :limit",
          ExpressionAttributeValues: { ":one": 1, ":now": nowMs, ":w": window, ":limit": limit },
          ReturnValues: "ALL_NEW",
        }),
      );
      return liveConnection(out.Attributes as ConnectionItem, nowMs);
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    try {
      const out = await ctx.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { connectionId },
          UpdateExpression: "SET rateWindow = :w, rateCount = :one, lastSeenAt = :now",
          ConditionExpression: "attribute_exists(connectionId) AND (attribute_not_exists(rateWindow) OR rateWindow <> :w)",
          ExpressionAttributeValues: { ":one": 1, ":now": nowMs, ":w": window },
          ReturnValues: "ALL_NEW",
          // Tells "limit reached" (the item comes back) from "no such connection" without another read.
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return liveConnection(out.Attributes as ConnectionItem, nowMs);
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const item = (err as { Item?: Record<string, unknown> }).Item;
      if (!item) throw notConnected();
      const openedByAnother = numberAttribute(item.rateWindow) === window && (numberAttribute(item.rateCount) ?? limit) < limit;
      if (!openedByAnother) break;
    }
  }
  throw chatError("RATE_LIMITED", `rate limit of ${limit} frames per minute reached; retry in the next minute`);
}

/** A number attribute of an item returned with an error: raw (`{ N: "3" }`) or already unmarshalled. */
function numberAttribute(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "object" && value !== null && typeof (value as { N?: unknown }).N === "string") return Number((value as { N: string }).N);
  return undefined;
}

/**
 * A connection item past its expiry cannot belong to an open connection (API Gateway closes
 * connections after 2 h): like every read, the rate-limit update treats it as gone.
 */
function liveConnection(item: ConnectionItem, nowMs: number): ConnectionItem {
  if (Number(item.expiresAt) <= epochSeconds(nowMs)) {
    throw notConnected();
  }
  return item;
}

/** Deletes the connection item; returns it if it existed (a second $disconnect finds nothing). */
export async function deleteConnection(ctx: DataContext, connectionId: string): Promise<ConnectionItem | undefined> {
  const out = await ctx.doc.send(
    new DeleteCommand({ TableName: tableName(ctx, "connections"), Key: { connectionId }, ReturnValues: "ALL_OLD" }),
  );
  return out.Attributes as ConnectionItem | undefined;
}

/** Adds a room to the connection's set and makes it the current room. Fails if the connection is gone. */
export async function addRoomToConnection(ctx: DataContext, connectionId: string, roomId: string): Promise<void> {
  try {
    await ctx.doc.send(
      new UpdateCommand({
        TableName: tableName(ctx, "connections"),
        Key: { connectionId },
        UpdateExpression: "ADD #rooms :room SET currentRoom = :roomId",
        ConditionExpression: "attribute_exists(connectionId)",
        ExpressionAttributeNames: { "#rooms": "rooms" },
        ExpressionAttributeValues: { ":room": new Set([roomId]), ":roomId": roomId },
      }),
    );
  } catch (err) {
    if (isConditionFailure(err)) throw notConnected();
    throw err;
  }
}

/** Removes a room from the connection's set; moves currentRoom to another joined room, or removes it. */
export async function removeRoomFromConnection(ctx: DataContext, connection: ConnectionItem, roomId: string): Promise<void> {
  const remaining = [...(connection.rooms ?? [])].filter((r) => r !== roomId);
  const moveCurrent = connection.currentRoom === roomId;
  const next = remaining[remaining.length - 1];
  await ctx.doc.send(
    new UpdateCommand({
      TableName: tableName(ctx, "connections"),
      Key: { connectionId: connection.connectionId },
      UpdateExpression:
        "DELETE #rooms :room" + (moveCurrent ? (next !== undefined ? " SET currentRoom = :next" : " REMOVE currentRoom") : ""),
      ConditionExpression: "attribute_exists(connectionId)",
      ExpressionAttributeNames: { "#rooms": "rooms" },
      ExpressionAttributeValues: { ":room": new Set([roomId]), ...(moveCurrent && next !== undefined ? { ":next": next } : {}) },
    }),
  ).catch((err: unknown) => {
    // The connection vanished meanwhile (disconnect or clean-up): nothing left to update.
    if (!isConditionFailure(err)) throw err;
  });
}

/** Deletes a connection's memberships (after its connection item is gone). */
export async function deleteMemberships(ctx: DataContext, connectionId: string, rooms: readonly string[]): Promise<number> {
  const table = tableName(ctx, "rooms");
  return batchDelete(ctx.doc, rooms.map((roomId) => ({ table, key: { roomId, sk: MEMBER_PREFIX + connectionId } })));
}

/** Live connection ids of a user, from the byUser index (eventually consistent: GSIs cannot be read consistently). */
export async function liveConnectionsOfUser(ctx: DataContext, userId: string, nowSec: number): Promise<string[]> {
  const ids: string[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ctx.doc.send(
      new QueryCommand({
        TableName: tableName(ctx, "connections"),
        IndexName: CONNECTIONS_BY_USER_INDEX,
        KeyConditionExpression: "userId = :u",
        ExpressionAttributeValues: { ":u": userId },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of out.Items ?? []) {
      if (Number(item.expiresAt) > nowSec) ids.push(String(item.connectionId));
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return ids;
}

// ---------------------------------------------------------------- rooms

/**
 * Adds (or refreshes) a membership. `joinedAt` is kept when the connection was already a member,
 * so the earliest-connection rule for presence stays stable. Returns whether the item is new.
 */
export async function upsertMembership(
  ctx: DataContext,
  m: { roomId: string; connectionId: string; userId: string; username: string; expiresAt: number; nowMs: number },
): Promise<{ created: boolean; joinedAt: number }> {
  const out = await ctx.doc.send(
    new UpdateCommand({
      TableName: tableName(ctx, "rooms"),
      Key: { roomId: m.roomId, sk: MEMBER_PREFIX + m.connectionId },
      UpdateExpression: "SET connectionId = :c, userId = :u, username = :n, expiresAt = :e, joinedAt = if_not_exists(joinedAt, :now)",
      ExpressionAttributeValues: { ":c": m.connectionId, ":u": m.userId, ":n": m.username, ":e": m.expiresAt, ":now": m.nowMs },
      ReturnValues: "ALL_OLD",
    }),
  );
  const previous = out.Attributes?.joinedAt;
  return previous === undefined ? { created: true, joinedAt: m.nowMs } : { created: false, joinedAt: Number(previous) };
}

/** Deletes one membership; returns whether it existed. */
export async function deleteMembership(ctx: DataContext, roomId: string, connectionId: string): Promise<boolean> {
  const out = await ctx.doc.send(
    new DeleteCommand({
      TableName: tableName(ctx, "rooms"),
      Key: { roomId, sk: MEMBER_PREFIX + connectionId },
      ReturnValues: "ALL_OLD",
    }),
  );
  return out.Attributes !== undefined;
}

/** Distinct users of a set of member items, ordered by their earliest (joinedAt, connectionId). */
export function distinctUsers(members: readonly MemberItem[]): Array<{ userId: string; username: string }> {
  const sorted = [...members].sort(compareMembers);
  const seen = new Set<string>();
  const users: Array<{ userId: string; username: string }> = [];
  for (const m of sorted) {
    if (seen.has(m.userId)) continue;
    seen.add(m.userId);
    users.push({ userId: m.userId, username: m.username });
  }
  return users;
}

export function compareMembers(a: MemberItem, b: MemberItem): number {
  return a.joinedAt - b.joinedAt || (a.connectionId < b.connectionId ? -1 : a.connectionId > b.connectionId ? 1 : 0);
}

/**
 * Reads a whole room partition with one (paginated, strongly consistent) Query: members + 1 items.
 * Presence is derived from it, and the `#summary` item is reconciled in the same pass: written when
 * the live distinct-user count differs from the stored one, deleted when the room is empty. This is
 * the only summary bookkeeping, so it can never drift for longer than until the next broadcast.
 */
export async function readRoom(ctx: DataContext, roomId: string, nowSec: number): Promise<RoomView> {
  const table = tableName(ctx, "rooms");
  const members: MemberItem[] = [];
  let summaryUsers: number | undefined;
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ctx.doc.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: "roomId = :r",
        ExpressionAttributeValues: { ":r": roomId },
        ConsistentRead: true,
        ExclusiveStartKey: start,
        ...(ctx.config.roomQueryPageSize ? { Limit: ctx.config.roomQueryPageSize } : {}),
      }),
    );
    for (const item of out.Items ?? []) {
      if (item.sk === SUMMARY_SK) summaryUsers = Number(item.users ?? 0);
      else if (String(item.sk).startsWith(MEMBER_PREFIX) && Number(item.expiresAt) > nowSec) members.push(item as MemberItem);
    }
    start = out.LastEvaluatedKey;
  } while (start);
  const users = distinctUsers(members);
  if (users.length !== (summaryUsers ?? 0)) {
    if (users.length > 0) {
      await ctx.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: { roomId, sk: SUMMARY_SK },
          UpdateExpression: "SET #users = :n, directory = :d, expiresAt = :e",
          ExpressionAttributeNames: { "#users": "users" },
          // The summary expires with the room's longest-lived member, so an abandoned room's entry
          // disappears through TTL even if no broadcast ever reconciles it again.
          ExpressionAttributeValues: { ":n": users.length, ":d": DIRECTORY_PARTITION, ":e": Math.max(...members.map((m) => m.expiresAt)) },
        }),
      );
    } else {
      await ctx.doc.send(new DeleteCommand({ TableName: table, Key: { roomId, sk: SUMMARY_SK } }));
    }
  }
  return { members, users };
}

/**
 * Active rooms from the sparse `directory` index: reads only summary items, never members.
 * A summary whose longest-lived member has expired (an abandoned room) is skipped.
 */
export async function listRooms(ctx: DataContext, nowSec: number): Promise<Array<{ roomId: string; members: number }>> {
  const rooms: Array<{ roomId: string; members: number }> = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out = await ctx.doc.send(
      new QueryCommand({
        TableName: tableName(ctx, "rooms"),
        IndexName: ROOM_DIRECTORY_INDEX,
        KeyConditionExpression: "directory = :d",
        ExpressionAttributeValues: { ":d": DIRECTORY_PARTITION },
        ExclusiveStartKey: start,
      }),
    );
    for (const item of out.Items ?? []) {
      const n = Number(item.users ?? 0);
      // Tables created before expiresAt was projected lack it: treat as live.
      const expired = item.expiresAt !== undefined && Number(item.expiresAt) <= nowSec;
      if (n > 0 && !expired) rooms.push({ roomId: String(item.roomId), members: n });
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return rooms;
}

// ---------------------------------------------------------------- messages

export interface StoreMessageInput {
  readonly conversationId: string;
  readonly userId: string;
  readonly username: string;
  readonly message: string;
  readonly clientMessageId?: string;
  readonly roomId?: string;
  readonly toUserId?: string;
  /** Set by push/index.ts for a system message, with its `data` as JSON text. */
  readonly kind?: "system";
  readonly data?: string;
  readonly nowMs: number;
}

export interface StoredMessage {
  readonly item: MessageItem;
  /** True when (userId, clientMessageId) was seen before: `item` is the ORIGINAL message, nothing new was stored. */
  readonly duplicate: boolean;
}

/**
 * Stores a message before any delivery. With a clientMessageId, one TransactWriteItems puts an
 * idempotency record (condition: not there yet, or expired) and the message together, so a retry
 * can never store a second copy; the retry gets the original message back.
 */
export async function storeMessage(ctx: DataContext, input: StoreMessageInput): Promise<StoredMessage> {
  const table = tableName(ctx, "messages");
  const messageId = randomUUID();
  const nowSec = epochSeconds(input.nowMs);
  const item: MessageItem = {
    conversationId: input.conversationId,
    sk: messageSortKey(input.nowMs, messageId),
    messageId,
    userId: input.userId,
    username: input.username,
    message: input.message,
    sentAt: new Date(input.nowMs).toISOString(),
    expiresAt: nowSec + ctx.config.messageRetentionHours * 3600,
    ...(input.clientMessageId !== undefined ? { clientMessageId: input.clientMessageId } : {}),
    ...(input.roomId !== undefined ? { roomId: input.roomId } : {}),
    ...(input.toUserId !== undefined ? { toUserId: input.toUserId } : {}),
    ...(input.kind !== undefined ? { kind: input.kind } : {}),
    ...(input.data !== undefined ? { data: input.data } : {}),
  };
  if (input.clientMessageId === undefined) {
    await ctx.doc.send(new PutCommand({ TableName: table, Item: { ...item } }));
    return { item, duplicate: false };
  }
  const idemKey = { conversationId: `idem#${input.userId}#${input.clientMessageId}`, sk: "idem" };
  try {
    await ctx.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: table,
              Item: { ...idemKey, messageId, sentAt: item.sentAt, target: input.conversationId, messageSk: item.sk, expiresAt: nowSec + IDEMPOTENCY_SECONDS },
              ConditionExpression: "attribute_not_exists(conversationId) OR expiresAt < :now",
              ExpressionAttributeValues: { ":now": nowSec },
            },
          },
          { Put: { TableName: table, Item: { ...item } } },
        ],
      }),
    );
    return { item, duplicate: false };
  } catch (err) {
    const reasons = (err as { CancellationReasons?: Array<{ Code?: string }> }).CancellationReasons;
    if (errorName(err) !== "TransactionCanceledException" || reasons?.[0]?.Code !== "ConditionalCheckFailed") throw err;
  }
  const record = (await ctx.doc.send(new GetCommand({ TableName: table, Key: idemKey, ConsistentRead: true }))).Item;
  if (!record) throw new Error("idempotency record vanished between the transaction and the read");
  const original = (
    await ctx.doc.send(
      new GetCommand({ TableName: table, Key: { conversationId: record.target, sk: record.messageSk }, ConsistentRead: true }),
    )
  ).Item as MessageItem | undefined;
  // The original can only be missing if its retention ended before the 24 h record: answer with
  // what the record remembers and the retried text (which, for a true retry, is the same text).
  return {
    duplicate: true,
    item: original ?? { ...item, messageId: String(record.messageId), sentAt: String(record.sentAt), sk: String(record.messageSk) },
  };
}

/** A stored system message's `data` as an object; undefined if absent or not a JSON object. */
export function storedData(item: Pick<MessageItem, "data">): Record<string, unknown> | undefined {
  return item.data === undefined ? undefined : parseJsonObject(item.data);
}

export interface HistoryCursor {
  readonly sk: string;
}

export function encodeCursor(sk: string): string {
  return Buffer.from(JSON.stringify({ sk }), "utf8").toString("base64url");
}

/** Decodes an opaque `before` cursor; anything that is not one we issued is BAD_REQUEST. */
export function decodeCursor(cursor: string): HistoryCursor {
  const bad = () => chatError("BAD_REQUEST", "invalid history cursor");
  if (!/^[A-Za-z0-9_-]{1,400}$/.test(cursor)) throw bad();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw bad();
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw bad();
  const sk = (parsed as Record<string, unknown>).sk;
  if (typeof sk !== "string" || !/^\d{13}#[A-Za-z0-9-]{1,64}$/.test(sk)) throw bad();
  return { sk };
}

/**
 * One page of a conversation, newest first from DynamoDB (ScanIndexForward=false), returned
 * oldest..newest. Reads limit+1 items to know whether more remain without an extra empty page.
 * Expiry follows send time, so the first expired item ends the history.
 */
export async function queryHistory(
  ctx: DataContext,
  conversationId: string,
  limit: number,
  before: HistoryCursor | undefined,
  nowSec: number,
): Promise<{ messages: MessageItem[]; next?: string }> {
  const out = await ctx.doc.send(
    new QueryCommand({
      TableName: tableName(ctx, "messages"),
      KeyConditionExpression: "conversationId = :c",
      ExpressionAttributeValues: { ":c": conversationId },
      ScanIndexForward: false,
      Limit: limit + 1,
      ...(before ? { ExclusiveStartKey: { conversationId, sk: before.sk } } : {}),
    }),
  );
  const items = (out.Items ?? []) as MessageItem[];
  const live: MessageItem[] = [];
  for (const item of items) {
    if (Number(item.expiresAt) <= nowSec) break;
    live.push(item);
  }
  const more = live.length > limit;
  const page = more ? live.slice(0, limit) : live;
  // The cursor is the oldest message returned: the next page starts just before it.
  const oldest = page[page.length - 1];
  return { messages: [...page].reverse(), ...(more && oldest ? { next: encodeCursor(oldest.sk) } : {}) };
}
