/**
 * The data layer (docs/architecture.md describes the model and the cost of each operation).
 *
 * connections  PK connectionId                      one item per open connection
 *              GSI byUser (userId, connectionId)     every device of a user (private messages)
 *              PK "u#<userId>"                       per-user budgets (frames, handshakes)
 *              PK "kick#<roomId>#<userId>"           kick restriction: `until` (ms); no join before it
 * rooms        PK roomId, SK "c#<connectionId>"      one item per member connection
 *              PK "<roomId>#users", SK "u#<userId>"  presence: `n` = the user's member connections,
 *                                                    `v` = transitions so far (odd: present)
 *                                                    (apart from the room partition, which broadcasts read)
 *              PK roomId, SK "#summary"              distinct users; sparse GSI `directory`
 *              PK "<roomId>#jobs", SK "<id>.<shard>" a large room's delivery job handed back: whom it
 *                                                    did not reach (deliveryProgress.ts)
 * messages     PK "room#<id>" | "dm#<a>#<b>", SK "<sentAt ms, 13 digits>#<messageId>" (a UUIDv7 holding
 *                                                    the same ms: the key follows from the id)
 *              PK "idem#<userId>#<conversationId>#<clientMessageId>", SK "idem"   idempotency records (24 h)
 *
 * Membership changes are single TransactWriteItems over the connection item, the member item,
 * the presence item and (when the user arrives or goes) the summary, each part conditional: a
 * connection's `rooms` set, its member items, the presence counts and the summary change together
 * or not at all, and only the writer whose transaction moved a presence count 0 -> 1 or 1 -> 0
 * announces `joined` or `left` (docs/architecture.md, "Races").
 *
 * Every item carries `expiresAt` (epoch seconds, the tables' TTL attribute). DynamoDB deletes
 * expired items lazily (days), so every read here filters them itself (AWS-FACTS: DynamoDB).
 */
import { randomBytes } from "node:crypto";
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  GetCommand,
  PutCommand,
  TransactWriteCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
  paginateQuery,
} from "@aws-sdk/lib-dynamodb";
import { CONNECTIONS_BY_USER_INDEX, type TableName } from "../tables";
import type { HandlerConfig } from "./config";
import { configurationError } from "../env";
import { chatError, errorName, internalError, kickedError } from "./errors";
import { parseJsonObject } from "./json";

export interface DataContext {
  readonly doc: DynamoDBDocumentClient;
  readonly config: HandlerConfig;
}

/** What the membership clean-up needs (the fan-out has no full HandlerConfig): the client and the table names. */
export interface TablesContext {
  readonly doc: DynamoDBDocumentClient;
  readonly config: Pick<HandlerConfig, "tables" | "functionName">;
}

/** API Gateway closes a connection after 2 h at most (AWS-FACTS: Limits); 5 min margin for clock skew. */
export const CONNECTION_LIFETIME_SECONDS = 2 * 3600 + 300;
/** How long a (userId, clientMessageId) pair is remembered: clients retry within seconds, 24 h is generous. */
export const IDEMPOTENCY_SECONDS = 24 * 3600;
export const SUMMARY_SK = "#summary";
export const MEMBER_PREFIX = "c#";
/** Sort-key prefix of a room's per-user presence items (`u#<userId>`). */
export const PRESENCE_PREFIX = "u#";

/**
 * Partition of a room's presence items: beside the room's own partition, so that the Query every
 * broadcast makes reads members only (room ids cannot contain `#`: no room can be named like it).
 */
export function presencePartition(roomId: string): string {
  return `${roomId}#users`;
}
/**
 * Most shards a room's membership is spread over (issue 17): with roomShardSize 1,000 that is about a
 * million users before shards grow past their size. A power of two, as every shard count is.
 */
export const MAX_ROOM_SHARDS = 1024;

/** Sort-key-free marker of a shard partition: `<roomId>#s<k>` (room ids cannot contain `#`). */
const SHARD_MARK = "#s";

/**
 * The partition holding a room's member items of shard `shard`: the room's own partition for shard 0
 * (so a room that never grew keeps today's single partition, summary beside its members), else
 * `<roomId>#s<shard>`.
 */
export function memberPartition(roomId: string, shard: number): string {
  return shard === 0 ? roomId : `${roomId}${SHARD_MARK}${shard}`;
}

/** The shard of a member partition key (memberPartition's inverse): 0 for the room's own partition. */
export function shardOfPartition(partition: string): number {
  const at = partition.lastIndexOf(SHARD_MARK);
  if (at < 0) return 0;
  const n = Number(partition.slice(at + SHARD_MARK.length));
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** What a room's `#summary` item says of its size: distinct users and member shards (1 until it grows). */
export interface RoomSummary {
  readonly users: number;
  readonly shards: number;
}

/**
 * Reads a room's summary (GetItem, strongly consistent: 1 read unit). A room without one has no
 * members: `{ users: 0, shards: 1 }`.
 */
export async function readRoomSummary(ctx: TablesContext, roomId: string): Promise<RoomSummary> {
  const out = await ctx.doc.send(
    new GetCommand({
      TableName: tableName(ctx, "rooms"),
      Key: { roomId, sk: SUMMARY_SK },
      ProjectionExpression: "#users, shards",
      ExpressionAttributeNames: { "#users": "users" },
      ConsistentRead: true,
    }),
  );
  const shards = Number(out.Item?.shards ?? 1);
  return { users: Math.max(0, Number(out.Item?.users ?? 0)), shards: Number.isInteger(shards) && shards >= 1 ? shards : 1 };
}

/**
 * Reads one shard of a room's members (one paginated, strongly consistent Query of its partition):
 * live members, and those past their expiry apart, as readRoom returns them. Shard 0 is the room's
 * own partition, whose `#summary` and anything that is not a member item are skipped. Items of shard
 * k > 0 come back with `roomId` the room's id (not the partition's) and `shard` k.
 */
export async function readShard(
  ctx: TablesContext & { readonly config: Pick<HandlerConfig, "roomQueryPageSize"> },
  roomId: string,
  shard: number,
  nowSec: number,
): Promise<{ members: MemberItem[]; expired: MemberItem[] }> {
  const members: MemberItem[] = [];
  const expired: MemberItem[] = [];
  const pages = paginateQuery(
    { client: ctx.doc, ...(ctx.config.roomQueryPageSize ? { pageSize: ctx.config.roomQueryPageSize } : {}) },
    {
      TableName: tableName(ctx, "rooms"),
      KeyConditionExpression: "roomId = :r AND begins_with(sk, :c)",
      ExpressionAttributeValues: { ":r": memberPartition(roomId, shard), ":c": MEMBER_PREFIX },
      ConsistentRead: true,
    },
  );
  for await (const out of pages) {
    for (const stored of out.Items ?? []) {
      // Shard k > 0 stores its items under `<roomId>#s<k>`: callers get the room's id and the shard.
      const item = (shard > 0 ? { ...stored, roomId, shard } : stored) as MemberItem;
      (Number(item.expiresAt) > nowSec ? members : expired).push(item);
    }
  }
  return { members, expired };
}

/**
 * A connection can be in at most this many rooms (the condition of every join's transaction).
 * $disconnect and stale clean-up touch every joined room (one transaction and one Query each).
 */
export const MAX_ROOMS_PER_CONNECTION = 50;
/** Attempts of one membership transaction (each retry follows a concurrent change of the same items). */
const MEMBERSHIP_ATTEMPTS = 10;
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
  /** The shard the item was read from (readShard, readRoom), when not 0; not stored (the partition says it). */
  readonly shard?: number;
}

export interface RoomView {
  /** Live member connections (expired items filtered out). */
  readonly members: readonly MemberItem[];
  /** Distinct live users, in first-joined order. */
  readonly users: ReadonlyArray<{ readonly userId: string; readonly username: string }>;
  /** Member items past their expiry (API Gateway's 2 h, or the token's deadline: then possibly still open), to be closed and removed. */
  readonly expired: readonly MemberItem[];
  /** The room's `#summary` as readRoom found it: exact distinct users (members past expiry not yet removed included) and shards. */
  readonly summary?: RoomSummary;
  /** True when readRoom read only some shards (its `maxUsers`): members and users are then a sample of the room. */
  readonly partial?: boolean;
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
  /** When the author last edited the text (ISO), absent if never (messageChanges.ts editMessage). */
  readonly editedAt?: string;
  /**
   * A deleted message is a tombstone (messageChanges.ts deleteMessage): `message` is "", `data`
   * and `editedAt` are removed, `deletedAt` (ISO) and `deletedBy` (the user id, or "system" for
   * a backend) say when and by whom.
   */
  readonly deletedAt?: string;
  readonly deletedBy?: string;
}

export function tableName(ctx: TablesContext, t: TableName): string {
  const name = ctx.config.tables[t];
  if (!name) throw configurationError(`table ${t} is not configured for ${ctx.config.functionName}`);
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

/** A UUIDv7 as this server writes it (lowercase): version nibble 7, variant bits 10 (RFC 9562). */
const UUID_V7_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * A message id: a UUIDv7 (RFC 9562, section 5.7) whose first 48 bits are `nowMs`, the message's
 * send time, then version 7, 12 random bits, variant 10 and 62 random bits. The sort key is
 * derived from the id (messageSortKeyOf), so `edit` and `delete` address a message with one
 * UpdateItem and no lookup. `random` (10 bytes) is for tests.
 */
export function uuidV7(nowMs: number, random: Uint8Array = randomBytes(10)): string {
  if (!Number.isInteger(nowMs) || nowMs < 0 || nowMs >= 2 ** 48) throw internalError(`a UUIDv7 cannot hold the time ${nowMs}`);
  const b = new Uint8Array(16);
  // 48-bit big-endian milliseconds: the high 16 bits, then the low 32 (bitwise operators are 32-bit).
  const high = Math.floor(nowMs / 2 ** 32);
  const low = nowMs % 2 ** 32;
  b[0] = (high >>> 8) & 0xff;
  b[1] = high & 0xff;
  b[2] = (low >>> 24) & 0xff;
  b[3] = (low >>> 16) & 0xff;
  b[4] = (low >>> 8) & 0xff;
  b[5] = low & 0xff;
  b.set(random.subarray(0, 10), 6);
  b[6] = 0x70 | (b[6] & 0x0f);
  b[8] = 0x80 | (b[8] & 0x3f);
  const hex = Buffer.from(b).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The milliseconds a UUIDv7 message id holds; undefined for anything else (a v4 id of a message stored before v7 ids). */
export function uuidV7Ms(messageId: string): number | undefined {
  if (!UUID_V7_PATTERN.test(messageId)) return undefined;
  return Number.parseInt(messageId.slice(0, 8) + messageId.slice(9, 13), 16);
}

/** The sort key of the message with this id (storeMessage writes messageSortKey(ms of the id, id)); undefined if the id is not a v7 one. */
export function messageSortKeyOf(messageId: string): string | undefined {
  const ms = uuidV7Ms(messageId);
  return ms === undefined ? undefined : messageSortKey(ms, messageId);
}

/**
 * Equal-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"): a
 * random wait between half the ceiling and the ceiling, so a retry never fires almost at once (as
 * full jitter's 0..ceiling can) while concurrent retries still spread out.
 */
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
    for (const r of requests.slice(i, i + 25)) {
      const list = pending[r.table] ?? [];
      list.push({ DeleteRequest: { Key: r.key } });
      pending[r.table] = list;
    }
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
  const limit = ctx.config.rateLimitPerMinute;
  const item = await countInWindow(ctx, { connectionId }, { window: "rateWindow", count: "rateCount" }, limit, nowMs, {
    mustExist: true,
    set: { lastSeenAt: nowMs },
  });
  if (item === "limited") throw chatError("RATE_LIMITED", `rate limit of ${limit} frames per minute reached; retry in the next minute`);
  return liveConnection(item as unknown as ConnectionItem, nowMs);
}

/** Key of a user's budget item in the connections table (API Gateway connection ids never contain `#`). */
export function userBudgetKey(userId: string): string {
  return `u#${userId}`;
}

/**
 * The per-user frame budget (all of a user's connections together), one more conditional
 * UpdateItem per frame on the user's budget item; the per-connection limit still applies.
 */
export async function spendUserFrame(ctx: DataContext, userId: string, nowMs: number): Promise<void> {
  const limit = userFrameLimit(ctx.config);
  const out = await countInWindow(
    ctx,
    { connectionId: userBudgetKey(userId) },
    { window: "frameWindow", count: "frameCount" },
    limit,
    nowMs,
    {
      mustExist: false,
    },
  );
  if (out === "limited") {
    throw chatError(
      "RATE_LIMITED",
      `rate limit of ${limit} frames per minute for this user (all connections) reached; retry in the next minute`,
    );
  }
}

/** The per-user frame budget: userRateLimitPerMinute, or 4 times the per-connection limit when unset (0). */
export function userFrameLimit(config: Pick<HandlerConfig, "rateLimitPerMinute" | "userRateLimitPerMinute">): number {
  return config.userRateLimitPerMinute > 0 ? config.userRateLimitPerMinute : 4 * config.rateLimitPerMinute;
}

/**
 * The per-user handshake budget, spent by `$connect` before anything is stored: false when the
 * user has opened userConnectsPerMinute connections in this minute already.
 */
export async function spendUserHandshake(ctx: DataContext, userId: string, nowMs: number): Promise<boolean> {
  const out = await countInWindow(
    ctx,
    { connectionId: userBudgetKey(userId) },
    { window: "connectWindow", count: "connectCount" },
    ctx.config.userConnectsPerMinute,
    nowMs,
    { mustExist: false },
  );
  return out !== "limited";
}

/**
 * Counts one event in a fixed one-minute window kept on an item of the connections table, in one
 * conditional UpdateItem (two at the first event of a minute). Returns the item after the update,
 * "limited" when the window is full; throws NOT_CONNECTED when `mustExist` and the item is gone.
 */
async function countInWindow(
  ctx: DataContext,
  key: { connectionId: string },
  attrs: { window: string; count: string },
  limit: number,
  nowMs: number,
  o: { mustExist: boolean; set?: Record<string, number> },
): Promise<Record<string, unknown> | "limited"> {
  const table = tableName(ctx, "connections");
  let window = Math.floor(nowMs / 60_000);
  const names = { "#w": attrs.window, "#c": attrs.count, ...Object.fromEntries(Object.keys(o.set ?? {}).map((k, i) => [`#s${i}`, k])) };
  const setValues = Object.fromEntries(Object.values(o.set ?? {}).map((v, i) => [`:s${i}`, v]));
  const setClause = Object.keys(o.set ?? {})
    .map((_, i) => `, #s${i} = :s${i}`)
    .join("");
  // A budget item (mustExist false) is created by its first event and expires after its window.
  const expiry = o.mustExist ? "" : ", expiresAt = :exp";
  const expiryValue = () => (o.mustExist ? {} : { ":exp": (window + 2) * 60 });
  // Two events processed at once at the start of a minute both fail step 1; one opens the window
  // in step 2 and the other then finds it open with room left: it goes back to step 1 (counted in
  // that window) instead of being refused. Bounded: each round needs another event in between.
  // A window only moves forward (step 2's condition `#w < :w`): an event that read its clock in the
  // minute before the open one counts in the open one; it never rewinds the window, which would
  // reset the count and let a client exceed its limit across the boundary.
  for (let round = 0; round < 3; round++) {
    try {
      const out = await ctx.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: `SET #c = #c + :one${setClause}${expiry}`,
          ConditionExpression: "#w = :w AND #c < :limit",
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ":one": 1, ":w": window, ":limit": limit, ...setValues, ...expiryValue() },
          ReturnValues: "ALL_NEW",
        }),
      );
      return out.Attributes ?? {};
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
    try {
      const out = await ctx.doc.send(
        new UpdateCommand({
          TableName: table,
          Key: key,
          UpdateExpression: `SET #w = :w, #c = :one${setClause}${expiry}`,
          ConditionExpression: `${o.mustExist ? "attribute_exists(connectionId) AND " : ""}(attribute_not_exists(#w) OR #w < :w)`,
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: { ":one": 1, ":w": window, ...setValues, ...expiryValue() },
          ReturnValues: "ALL_NEW",
          // Tells "limit reached" (the item comes back) from "no such connection" without another read.
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return out.Attributes ?? {};
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      const item = (err as { Item?: Record<string, unknown> }).Item;
      if (!item) throw notConnected();
      const itemWindow = numberAttribute(item[attrs.window]);
      // An event whose invocation read the clock before a minute began, and whose update arrives
      // after another event opened that minute, is counted in it (the window it finds), not refused
      // as if the old minute's budget were spent (a burst across a minute boundary on a slow host
      // saw one such false RATE_LIMITED with limits of 100,000).
      if (itemWindow !== undefined && itemWindow > window) {
        window = itemWindow;
        continue;
      }
      const openedByAnother = itemWindow === window && (numberAttribute(item[attrs.count]) ?? limit) < limit;
      if (!openedByAnother) break;
    }
  }
  return "limited";
}

/** A number attribute of an item returned with an error: raw (`{ N: "3" }`) or already unmarshalled. */
function numberAttribute(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "object" && value !== null && typeof (value as { N?: unknown }).N === "string")
    return Number((value as { N: string }).N);
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
export async function deleteConnection(ctx: TablesContext, connectionId: string): Promise<ConnectionItem | undefined> {
  const out = await ctx.doc.send(
    new DeleteCommand({ TableName: tableName(ctx, "connections"), Key: { connectionId }, ReturnValues: "ALL_OLD" }),
  );
  return out.Attributes as ConnectionItem | undefined;
}

/**
 * Connection items by id, in one strongly consistent BatchGetItem per 100 ids (1 RCU each): the
 * items as they are now, as a frame's rate-limit update (strongly consistent) gives a route its own
 * connection, so a kick moves `currentRoom` exactly as the connection's own leave would. An id whose
 * item is missing, or left unprocessed by a throttled call, is simply absent from the map.
 */
export async function readConnections(ctx: TablesContext, ids: readonly string[]): Promise<Map<string, ConnectionItem>> {
  const table = tableName(ctx, "connections");
  const items = new Map<string, ConnectionItem>();
  for (let i = 0; i < ids.length; i += 100) {
    const keys = ids.slice(i, i + 100).map((connectionId) => ({ connectionId }));
    const out = await ctx.doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }));
    for (const item of out.Responses?.[table] ?? []) items.set(String(item.connectionId), item as ConnectionItem);
  }
  return items;
}

/**
 * One item of the connections table (a ban or a kick restriction), strongly consistent (1 RCU, item
 * or not), through a BatchGetItem of one key: the action every function that cleans up connections
 * is granted already, so reading it needs no GetItem grant. A key left unprocessed (throttling) is
 * asked again with backoff; still unprocessed after the last attempt, it is an INTERNAL error, never
 * "absent" (a ban must not be missed because the table was busy).
 */
export async function readConnectionsItem(ctx: TablesContext, connectionId: string): Promise<Record<string, unknown> | undefined> {
  const table = tableName(ctx, "connections");
  for (let attempt = 0; attempt < 5; attempt++) {
    if (attempt > 0) await sleep(backoffDelay(attempt, 25, 400));
    const out = await ctx.doc.send(new BatchGetCommand({ RequestItems: { [table]: { Keys: [{ connectionId }], ConsistentRead: true } } }));
    const item = out.Responses?.[table]?.[0];
    if (item) return item;
    if ((out.UnprocessedKeys?.[table]?.Keys?.length ?? 0) === 0) return undefined;
  }
  throw internalError(`connections item ${connectionId.split("#")[0]}#… left unprocessed after 5 attempts`);
}

/** The end (epoch ms) of the user's kick restriction in the room, when one is in force (strongly consistent). */
export async function activeKick(ctx: TablesContext, roomId: string, userId: string, nowMs: number): Promise<number | undefined> {
  const until = numberAttribute((await readConnectionsItem(ctx, kickKey(roomId, userId)))?.until);
  return until !== undefined && until > nowMs ? until : undefined;
}

// ---------------------------------------------------------------- kick restrictions

/**
 * Key of a kick restriction in the connections table (room ids, user ids and API Gateway connection
 * ids never contain `#`, so no connection or budget item can be named like it). The item has no
 * `userId` attribute, so the byUser index never sees it.
 */
export function kickKey(roomId: string, userId: string): string {
  return `kick#${roomId}#${userId}`;
}

/**
 * Keeps `userId` out of `roomId` until `untilMs`: one conditional PutItem of the restriction item
 * (`until` in ms, TTL `expiresAt` at `until`), which every join transaction checks (addMembership).
 * A restriction never shortens: when one ending later is in force, it stays and its end is
 * returned (the condition's ALL_OLD), so two moderators' kicks keep the longer. Idempotent.
 */
export async function restrictJoins(ctx: TablesContext, roomId: string, userId: string, untilMs: number, by: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.doc.send(
        new PutCommand({
          TableName: tableName(ctx, "connections"),
          Item: { connectionId: kickKey(roomId, userId), until: untilMs, by, expiresAt: Math.ceil(untilMs / 1000) },
          ConditionExpression: "attribute_not_exists(connectionId) OR #until < :until",
          ExpressionAttributeNames: { "#until": "until" },
          ExpressionAttributeValues: { ":until": untilMs },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        }),
      );
      return untilMs;
    } catch (err) {
      if (isConditionFailure(err)) return numberAttribute((err as { Item?: Record<string, unknown> }).Item?.until) ?? untilMs;
      // A join transaction of this user into the room holds the item (its ConditionCheck): DynamoDB
      // refuses a plain write to it meanwhile with TransactionConflictException, which the SDK does
      // not retry. The kick must not fail because the user is joining: back off and write again.
      if (errorName(err) !== "TransactionConflictException" || attempt + 1 >= MEMBERSHIP_ATTEMPTS) throw err;
      await sleep(backoffDelay(attempt, 10, 500));
    }
  }
}

/** Live connection ids of a user, from the byUser index (eventually consistent: GSIs cannot be read consistently). */
export async function liveConnectionsOfUser(ctx: DataContext, userId: string, nowSec: number): Promise<string[]> {
  const ids: string[] = [];
  const pages = paginateQuery(
    { client: ctx.doc },
    {
      TableName: tableName(ctx, "connections"),
      IndexName: CONNECTIONS_BY_USER_INDEX,
      KeyConditionExpression: "userId = :u",
      ExpressionAttributeValues: { ":u": userId },
    },
  );
  for await (const out of pages) {
    for (const item of out.Items ?? []) {
      if (Number(item.expiresAt) > nowSec) ids.push(String(item.connectionId));
    }
  }
  return ids;
}

// ---------------------------------------------------------------- rooms

export interface MembershipInput {
  readonly roomId: string;
  readonly connectionId: string;
  readonly userId: string;
  readonly username: string;
  /** The connection's expiry: the member item expires with it. */
  readonly expiresAt: number;
  readonly nowMs: number;
}

/** One part of a TransactWriteItems request (document-client shape). */
type TransactPart = NonNullable<ConstructorParameters<typeof TransactWriteCommand>[0]["TransactItems"]>[number];

export interface CancellationReason {
  readonly Code?: string;
  readonly Item?: Record<string, unknown>;
}

/** The per-part reasons of a cancelled transaction; undefined for any other error. */
export function cancellationReasons(err: unknown): readonly CancellationReason[] | undefined {
  if (errorName(err) !== "TransactionCanceledException") return undefined;
  return (err as { CancellationReasons?: CancellationReason[] }).CancellationReasons ?? [];
}

const failed = (r: CancellationReason | undefined) => r?.Code === "ConditionalCheckFailed";

/** A string set attribute of an item returned with an error: raw (`{ SS: [...] }`) or unmarshalled. */
function stringSetAttribute(value: unknown): string[] {
  if (value instanceof Set) return [...value].map(String);
  if (typeof value === "object" && value !== null && Array.isArray((value as { SS?: unknown }).SS)) return (value as { SS: string[] }).SS;
  return [];
}

/** The latest any current member can expire: a connection's item expires CONNECTION_LIFETIME_SECONDS after it opened. */
function presenceHorizon(nowMs: number): number {
  return epochSeconds(nowMs) + CONNECTION_LIFETIME_SECONDS;
}

// ---------------------------------------------------------------- shards (docs/architecture.md, "Sharded membership")

/**
 * Attribute of a connection item naming the shard of its membership in `roomId`, written by the join
 * only when the shard is not 0: an item without it (every item written before shards) means shard 0.
 * Leave, `$disconnect` and the stale clean-up read it from the item they already have: no extra read.
 */
export function connectionShardAttribute(roomId: string): string {
  return `shard#${roomId}`;
}

/** The shard of a connection's membership in a room, as its item records it (absent: 0). */
export function shardOfConnection(item: object | undefined, roomId: string): number {
  return shardNumber((item as Record<string, unknown> | undefined)?.[connectionShardAttribute(roomId)]);
}

/** A shard number attribute (raw or unmarshalled); anything else is shard 0. */
function shardNumber(value: unknown): number {
  const n = numberAttribute(value);
  return n !== undefined && Number.isInteger(n) && n > 0 ? n : 0;
}

/**
 * Summary attribute counting the distinct users placed in shard `shard`. Written only once a room has
 * more than one shard (the doubling 1 -> 2 sets `u0` to the users it had), so a room that never grew
 * keeps today's summary.
 */
export function shardUsersAttribute(shard: number): string {
  return `u${shard}`;
}

/** A room's summary as a membership change sees it: exact distinct users, shards, users per shard. */
export interface ShardState {
  readonly users: number;
  readonly shards: number;
  /** Distinct users of shard k at index k (one entry, `users`, while the room has one shard). */
  readonly shardUsers: readonly number[];
}

/** The summary of a room without one (no members yet): one shard. */
const NEW_ROOM: ShardState = { users: 0, shards: 1, shardUsers: [0] };

/** A summary item (raw, as a cancelled transaction returns it, or unmarshalled) as a ShardState. */
export function shardState(item: Record<string, unknown> | undefined): ShardState {
  if (!item) return NEW_ROOM;
  const raw = numberAttribute(item.shards) ?? 1;
  const shards = Number.isInteger(raw) && raw >= 1 ? raw : 1;
  const users = Math.max(0, numberAttribute(item.users) ?? 0);
  const shardUsers = shards === 1 ? [users] : Array.from({ length: shards }, (_, k) => numberAttribute(item[shardUsersAttribute(k)]) ?? 0);
  return { users, shards, shardUsers };
}

/** FNV-1a (32 bits) of a user id: a stable, cheap spread of users over shards (not a security hash). */
export function userHash(userId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < userId.length; i++) {
    h ^= userId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** Where an arriving user goes, and the room's shard count once the join commits. */
export interface Placement {
  readonly shard: number;
  readonly shards: number;
}

/**
 * Places a user arriving in a room (pure; the join's transaction re-checks every figure it uses):
 * - when the room already holds roomShardSize users per shard (users >= size x shards) and has fewer
 *   than MAX_ROOM_SHARDS, this join doubles it and the user goes to one of the new, empty shards;
 * - otherwise to the least loaded shard (ties broken by the user's hash, so concurrent arrivals,
 *   which read the same counts, spread over the tied shards instead of all conflicting on one).
 * The bound that follows, whatever the order of joins and leaves (churn included): below
 * MAX_ROOM_SHARDS no shard ever holds more than roomShardSize users. The least loaded shard has fewer
 * than `size` users whenever users < size x shards (pigeonhole), and the join's condition refuses to
 * count a user into a shard already at `size`.
 */
export function placeUser(state: ShardState, userId: string, shardSize: number): Placement {
  const h = userHash(userId);
  if (state.users >= shardSize * state.shards && state.shards < MAX_ROOM_SHARDS) {
    return { shard: state.shards + (h % state.shards), shards: state.shards * 2 };
  }
  if (state.shards === 1) return { shard: 0, shards: 1 };
  let least = Number.POSITIVE_INFINITY;
  const ties: number[] = [];
  for (let k = 0; k < state.shards; k++) {
    const n = state.shardUsers[k] ?? 0;
    if (n < least) {
      least = n;
      ties.length = 0;
    }
    if (n === least) ties.push(k);
  }
  return { shard: ties[h % ties.length] ?? 0, shards: state.shards };
}

/**
 * The summary part of a join that makes the user present. Its condition holds exactly when the
 * placement's premises still do: the same shard count, and either room left (fewer than size x
 * shards users, fewer than `size` in the chosen shard) or, for a doubling, the very user count it
 * was computed from. ALL_OLD on failure gives the next attempt the summary as it is.
 */
function arrivalSummary(
  table: string,
  roomId: string,
  state: ShardState,
  placement: Placement,
  size: number,
  horizon: number,
): TransactPart {
  const names: Record<string, string> = { "#users": "users", "#shards": "shards" };
  const values: Record<string, unknown> = { ":one": 1, ":dir": DIRECTORY_PARTITION, ":h": horizon, ":shards": state.shards };
  const add = ["#users :one"];
  // The summary (the `directory` index entry) expires after the longest-lived member could.
  const set = ["directory = :dir", "expiresAt = :h"];
  const sameShards = state.shards === 1 ? "(attribute_not_exists(#shards) OR #shards = :shards)" : "#shards = :shards";
  let condition: string;
  if (placement.shards > state.shards) {
    names["#uk"] = shardUsersAttribute(placement.shard);
    add.push("#uk :one");
    set.push("#shards = :grown");
    values[":grown"] = placement.shards;
    values[":known"] = state.users;
    if (state.shards === 1) {
      // Every user so far is in shard 0: its count starts from the summary's.
      names["#u0"] = shardUsersAttribute(0);
      set.push("#u0 = :known");
    }
    condition = `${sameShards} AND #users = :known`;
  } else if (state.shards === 1) {
    values[":full"] = size;
    condition = `${sameShards} AND (attribute_not_exists(#users) OR #users < :full)`;
  } else {
    names["#uk"] = shardUsersAttribute(placement.shard);
    add.push("#uk :one");
    if (state.shards < MAX_ROOM_SHARDS) {
      values[":full"] = size * state.shards;
      values[":size"] = size;
      condition = `${sameShards} AND #users < :full AND (attribute_not_exists(#uk) OR #uk < :size)`;
    } else condition = sameShards;
  }
  return {
    Update: {
      TableName: table,
      Key: { roomId, sk: SUMMARY_SK },
      UpdateExpression: `ADD ${add.join(", ")} SET ${set.join(", ")}`,
      ConditionExpression: condition,
      ExpressionAttributeNames: names,
      ExpressionAttributeValues: values,
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  };
}

/**
 * The summary part of a departure that makes the user absent: one user fewer, and one fewer in the
 * user's shard once the room has several (`shards` > 1 is all it needs to know: counts exist then).
 */
function departureSummary(table: string, roomId: string, shards: number, shard: number): TransactPart {
  const key = { roomId, sk: SUMMARY_SK };
  if (shards === 1) {
    return {
      Update: {
        TableName: table,
        Key: key,
        UpdateExpression: "ADD #users :d",
        ConditionExpression: "attribute_not_exists(#shards) OR #shards = :one",
        ExpressionAttributeNames: { "#users": "users", "#shards": "shards" },
        ExpressionAttributeValues: { ":d": -1, ":one": 1 },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    };
  }
  return {
    Update: {
      TableName: table,
      Key: key,
      UpdateExpression: "ADD #users :d, #uk :d",
      ConditionExpression: "#shards > :one",
      ExpressionAttributeNames: { "#users": "users", "#shards": "shards", "#uk": shardUsersAttribute(shard) },
      ExpressionAttributeValues: { ":d": -1, ":one": 1 },
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  };
}

/**
 * The presence part of a join. Whether this writer moves the user's count from 0 to 1 is a guess
 * (`present` undefined: it does) checked by the part's condition; the two guesses' conditions
 * exclude each other and cover every state, so exactly one of any set of concurrent writers makes
 * each transition, and that writer announces it. The presence item records the user's shard
 * (`shard`, absent for 0): a later device of a present user joins that shard, which its condition
 * checks. ALL_OLD on failure says which guess and which shard are right.
 */
function arrivalPresence(
  table: string,
  roomId: string,
  user: { userId: string; username: string },
  present: number | undefined,
  shard: number,
  nowMs: number,
): TransactPart {
  const key = { roomId: presencePartition(roomId), sk: PRESENCE_PREFIX + user.userId };
  const horizon = presenceHorizon(nowMs);
  if (present === undefined) {
    // The presence item stays (n = 0) when the user goes: `v` counts the user's transitions in the
    // room (odd: present), an exact record of what was announced, and expires with the room.
    return {
      Update: {
        TableName: table,
        Key: key,
        UpdateExpression: `SET n = :one, v = if_not_exists(v, :zero) + :one, #room = :room, userId = :u, username = :name, expiresAt = :h${
          shard > 0 ? ", #shard = :shard" : " REMOVE #shard"
        }`,
        ConditionExpression: "attribute_not_exists(sk) OR n <= :zero",
        ExpressionAttributeNames: { "#room": "room", "#shard": "shard" },
        ExpressionAttributeValues: {
          ":one": 1,
          ":zero": 0,
          ":room": roomId,
          ":u": user.userId,
          ":name": user.username,
          ":h": horizon,
          ...(shard > 0 ? { ":shard": shard } : {}),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    };
  }
  return {
    Update: {
      TableName: table,
      Key: key,
      UpdateExpression: "ADD n :d SET expiresAt = :h",
      ConditionExpression: "n > :zero AND (attribute_not_exists(#shard) OR #shard = :shard)",
      ExpressionAttributeNames: { "#shard": "shard" },
      ExpressionAttributeValues: { ":d": 1, ":zero": 0, ":h": horizon, ":shard": present },
      ReturnValuesOnConditionCheckFailure: "ALL_OLD",
    },
  };
}

/** The presence part of a departure (the same two guesses as arrivalPresence, taking the count 1 -> 0 or down). */
function departurePresence(table: string, roomId: string, userId: string, transition: boolean): TransactPart {
  const key = { roomId: presencePartition(roomId), sk: PRESENCE_PREFIX + userId };
  if (transition) {
    return {
      Update: {
        TableName: table,
        Key: key,
        UpdateExpression: "SET n = :zero, v = if_not_exists(v, :zero) + :one",
        ConditionExpression: "attribute_not_exists(sk) OR n <= :one",
        ExpressionAttributeValues: { ":one": 1, ":zero": 0 },
      },
    };
  }
  return {
    Update: {
      TableName: table,
      Key: key,
      UpdateExpression: "ADD n :d",
      ConditionExpression: "n > :one",
      ExpressionAttributeValues: { ":d": -1, ":one": 1 },
    },
  };
}

/**
 * Attempts of one membership transaction. Each retry follows a concurrent change of the same items
 * (another join moved the summary, a TransactionConflict) or a corrected guess (presence, shard, the
 * room's shard count); a join into a busy large room may need several.
 */
const MEMBERSHIP_ROUNDS = 30;

/**
 * Runs a membership transaction built from a guess (`belief`) of the state of its items: when it is
 * cancelled, `learn` reads the cancellation (conditions' ALL_OLD items) and returns a corrected
 * guess, or `{ done }` to end without writing, or undefined when it learned nothing (then only a
 * TransactionConflict is retried, after a backoff). Returns the guess that committed.
 */
async function settleMembership<B, T>(
  ctx: TablesContext,
  initial: B,
  build: (belief: B) => TransactPart[],
  learn: (belief: B, reasons: readonly CancellationReason[]) => B | { readonly done: T } | undefined,
): Promise<{ committed: B } | { done: T }> {
  let belief = initial;
  for (let attempt = 0; attempt < MEMBERSHIP_ROUNDS; attempt++) {
    try {
      await ctx.doc.send(new TransactWriteCommand({ TransactItems: build(belief) }));
      return { committed: belief };
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (!reasons) throw err;
      const next = learn(belief, reasons);
      if (next !== undefined && typeof next === "object" && next !== null && "done" in next) return next;
      if (next !== undefined) {
        belief = next as B;
        continue;
      }
      // TransactionConflict: another transaction holds one of these items; back off and retry.
      if (reasons.some((r) => r.Code === "TransactionConflict")) {
        await sleep(backoffDelay(Math.min(attempt, 6), 10, 500));
        continue;
      }
      throw err;
    }
  }
  throw internalError(`membership transaction did not settle after ${MEMBERSHIP_ROUNDS} attempts`);
}

/** What a join believes: whether the user is present already (and in which shard), and the room's summary. */
interface JoinBelief {
  readonly present: number | undefined;
  readonly state: ShardState;
}

/**
 * Joins a room: one transaction that adds the room to the connection's `rooms` set (condition:
 * the connection exists, is not in the room yet and is in fewer than MAX_ROOMS_PER_CONNECTION),
 * creates the member item in the user's shard (condition: absent) and counts the connection in the
 * user's presence item, provided no kick restriction of the user in the room is in force (a
 * ConditionCheck of `kick#<roomId>#<userId>`). A user already present joins the shard their presence
 * item names; an arriving one is placed by placeUser, which may double the room's shards in this
 * same transaction. The first attempt guesses an arriving user in a one-shard room with room left,
 * which is the whole cost of a small room; a sharded room pays one cancelled attempt, whose ALL_OLD
 * items give the summary and presence. `firstOfUser` is true when this transaction took the user's
 * count from 0 to 1; `shard` is where the connection's member item is.
 * Kicked: FORBIDDEN (until when). Already a member: only currentRoom moves. Gone: NOT_CONNECTED. Full: BAD_REQUEST.
 */
export async function addMembership(
  ctx: DataContext,
  m: MembershipInput,
): Promise<{ added: boolean; firstOfUser: boolean; shard: number }> {
  const connections = tableName(ctx, "connections");
  const rooms = tableName(ctx, "rooms");
  const size = ctx.config.roomShardSize;
  const horizon = presenceHorizon(m.nowMs);
  const shardOf = (b: JoinBelief) => b.present ?? placeUser(b.state, m.userId, size).shard;
  const build = (b: JoinBelief): TransactPart[] => {
    const shard = shardOf(b);
    const member = {
      roomId: memberPartition(m.roomId, shard),
      sk: MEMBER_PREFIX + m.connectionId,
      connectionId: m.connectionId,
      userId: m.userId,
      username: m.username,
      joinedAt: m.nowMs,
      expiresAt: m.expiresAt,
    };
    return [
      {
        Update: {
          TableName: connections,
          Key: { connectionId: m.connectionId },
          UpdateExpression: `ADD #rooms :room SET currentRoom = :roomId${shard > 0 ? ", #shard = :shard" : " REMOVE #shard"}`,
          ConditionExpression:
            "attribute_exists(connectionId) AND NOT contains(#rooms, :roomId) AND (attribute_not_exists(#rooms) OR size(#rooms) < :max)",
          ExpressionAttributeNames: { "#rooms": "rooms", "#shard": connectionShardAttribute(m.roomId) },
          ExpressionAttributeValues: {
            ":room": new Set([m.roomId]),
            ":roomId": m.roomId,
            ":max": MAX_ROOMS_PER_CONNECTION,
            ...(shard > 0 ? { ":shard": shard } : {}),
          },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      { Put: { TableName: rooms, Item: member, ConditionExpression: "attribute_not_exists(sk)" } },
      {
        // The user is not kicked from the room (moderation.ts kickUser writes the restriction before
        // it reads the members, so a join either commits before it, and is removed, or fails here).
        ConditionCheck: {
          TableName: connections,
          Key: { connectionId: kickKey(m.roomId, m.userId) },
          ConditionExpression: "attribute_not_exists(connectionId) OR #until <= :now",
          ExpressionAttributeNames: { "#until": "until" },
          ExpressionAttributeValues: { ":now": m.nowMs },
          ReturnValuesOnConditionCheckFailure: "ALL_OLD",
        },
      },
      arrivalPresence(rooms, m.roomId, m, b.present, shard, m.nowMs),
      ...(b.present === undefined ? [arrivalSummary(rooms, m.roomId, b.state, placeUser(b.state, m.userId, size), size, horizon)] : []),
    ];
  };
  const out = await settleMembership<JoinBelief, { readonly shard: number }>(
    ctx,
    { present: undefined, state: NEW_ROOM },
    build,
    (b, reasons) => {
      if (failed(reasons[2])) throw kickedError(m.roomId, numberAttribute(reasons[2]?.Item?.until) ?? m.nowMs);
      if (failed(reasons[0])) {
        const item = reasons[0]?.Item;
        if (!item) throw notConnected();
        if (stringSetAttribute(item.rooms).includes(m.roomId)) return { done: { shard: shardOfConnection(item, m.roomId) } };
        throw chatError("BAD_REQUEST", `a connection can be in at most ${MAX_ROOMS_PER_CONNECTION} rooms; leave one first`);
      }
      let next = b;
      if (failed(reasons[3])) {
        const item = reasons[3]?.Item;
        const n = numberAttribute(item?.n) ?? 0;
        const present = item && n > 0 ? shardNumber(item.shard) : undefined;
        // Without an item to read, the other guess is the right one (the conditions cover every state).
        next = { ...next, present: present === b.present && !item ? (b.present === undefined ? 0 : undefined) : present };
      }
      if (failed(reasons[4])) next = { ...next, state: shardState(reasons[4]?.Item) };
      if (next !== b) return next;
      if (failed(reasons[1]))
        throw internalError(`member item of ${m.connectionId} in ${m.roomId} exists but the connection does not list the room`);
      return undefined;
    },
  );
  if ("committed" in out) return { added: true, firstOfUser: out.committed.present === undefined, shard: shardOf(out.committed) };
  // Already a member: a join still makes the room the current one.
  await ctx.doc
    .send(
      new UpdateCommand({
        TableName: connections,
        Key: { connectionId: m.connectionId },
        UpdateExpression: "SET currentRoom = :roomId",
        ConditionExpression: "contains(#rooms, :roomId)",
        ExpressionAttributeNames: { "#rooms": "rooms" },
        ExpressionAttributeValues: { ":roomId": m.roomId },
      }),
    )
    .catch((err: unknown) => {
      if (!isConditionFailure(err)) throw err;
    });
  return { added: false, firstOfUser: false, shard: out.done.shard };
}

/** What a departure believes: the member's shard, whether it takes the user's count to 0, the room's shard count (1, or more). */
interface DepartureBelief {
  readonly shard: number;
  readonly transition: boolean;
  readonly shards: number;
}

/** The first guess of a departure from shard `shard`: a room with one shard unless the member is beyond shard 0. */
function departureGuess(shard: number): DepartureBelief {
  return { shard, transition: true, shards: shard > 0 ? 2 : 1 };
}

/** A departure's presence and summary parts from index `at` of its transaction's cancellation: the corrected guess, or `belief` itself. */
function learnDeparture(belief: DepartureBelief, reasons: readonly CancellationReason[], at: number): DepartureBelief {
  let next = belief;
  if (failed(reasons[at])) next = { ...next, transition: !next.transition };
  if (failed(reasons[at + 1])) next = { ...next, shards: shardState(reasons[at + 1]?.Item).shards };
  return next;
}

/**
 * Leaves a room: one transaction that removes the room (and its shard attribute) from the
 * connection's item (condition: the connection exists, lists the room and records the shard this
 * transaction deletes from), deletes the member item from that shard and uncounts the connection
 * from the user's presence (and, when it was the user's last connection, the user from the summary
 * and their shard's count). The shard comes from `connection` (the item the route has already read);
 * if that view is stale, the condition's ALL_OLD gives the right one. `lastOfUser` is true when it
 * took the count from 1 to 0. A connection that does not list the room: NOT_A_MEMBER; gone:
 * NOT_CONNECTED. currentRoom moves to another room of `connection` (the caller's view of it), or is removed.
 */
export async function removeMembership(
  ctx: DataContext,
  connection: Pick<ConnectionItem, "connectionId" | "userId" | "username" | "rooms" | "currentRoom">,
  roomId: string,
  _nowMs: number,
): Promise<{ lastOfUser: boolean }> {
  const connections = tableName(ctx, "connections");
  const rooms = tableName(ctx, "rooms");
  const remaining = [...(connection.rooms ?? [])].filter((r) => r !== roomId);
  const moveCurrent = connection.currentRoom === roomId;
  const next = remaining[remaining.length - 1];
  const current = moveCurrent ? (next !== undefined ? " SET currentRoom = :next" : "") : "";
  const removed = moveCurrent && next === undefined ? "#shard, currentRoom" : "#shard";
  const build = (b: DepartureBelief): TransactPart[] => [
    {
      Update: {
        TableName: connections,
        Key: { connectionId: connection.connectionId },
        UpdateExpression: `DELETE #rooms :room${current} REMOVE ${removed}`,
        ConditionExpression: `attribute_exists(connectionId) AND contains(#rooms, :roomId) AND ${
          b.shard > 0 ? "#shard = :shard" : "(attribute_not_exists(#shard) OR #shard = :shard)"
        }`,
        ExpressionAttributeNames: { "#rooms": "rooms", "#shard": connectionShardAttribute(roomId) },
        ExpressionAttributeValues: {
          ":room": new Set([roomId]),
          ":roomId": roomId,
          ":shard": b.shard,
          ...(moveCurrent && next !== undefined ? { ":next": next } : {}),
        },
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      },
    },
    {
      Delete: {
        TableName: rooms,
        Key: { roomId: memberPartition(roomId, b.shard), sk: MEMBER_PREFIX + connection.connectionId },
        ConditionExpression: "attribute_exists(sk)",
      },
    },
    departurePresence(rooms, roomId, connection.userId, b.transition),
    ...(b.transition ? [departureSummary(rooms, roomId, b.shards, b.shard)] : []),
  ];
  const initial = departureGuess(shardOfConnection(connection, roomId));
  const out = await settleMembership<DepartureBelief, never>(ctx, initial, build, (b, reasons) => {
    let next = b;
    if (failed(reasons[0])) {
      const item = reasons[0]?.Item;
      if (!item) throw notConnected();
      if (!stringSetAttribute(item.rooms).includes(roomId))
        throw chatError("NOT_A_MEMBER", `this connection has not joined room ${roomId}`);
      const shard = shardOfConnection(item, roomId);
      if (shard === b.shard)
        throw internalError(`connection ${connection.connectionId} refused its leave of ${roomId} for no known reason`);
      next = { ...departureGuess(shard), transition: b.transition };
    }
    next = learnDeparture(next, reasons, 2);
    if (next !== b) return next;
    if (failed(reasons[1])) throw internalError(`connection ${connection.connectionId} lists ${roomId} but has no member item there`);
    return undefined;
  });
  return { lastOfUser: "committed" in out && out.committed.transition };
}

/**
 * Removes the membership of a connection whose item is already gone ($disconnect, or a post that
 * found it gone): one transaction that deletes the member item from its shard (`member.shard`, from
 * the deleted connection item's shard attribute or the member item as the room read returned it;
 * absent: 0) and uncounts it from the user's presence. Whoever deletes it first does the
 * bookkeeping; the others get `removed: false` and announce nothing.
 */
export async function removeMembershipOfGone(
  ctx: TablesContext,
  roomId: string,
  member: { connectionId: string; userId: string; username: string; shard?: number },
  _nowMs: number,
): Promise<{ removed: boolean; lastOfUser: boolean }> {
  const rooms = tableName(ctx, "rooms");
  const shard = shardNumber(member.shard);
  const build = (b: DepartureBelief): TransactPart[] => [
    {
      Delete: {
        TableName: rooms,
        Key: { roomId: memberPartition(roomId, shard), sk: MEMBER_PREFIX + member.connectionId },
        ConditionExpression: "attribute_exists(sk)",
      },
    },
    departurePresence(rooms, roomId, member.userId, b.transition),
    ...(b.transition ? [departureSummary(rooms, roomId, b.shards, shard)] : []),
  ];
  const out = await settleMembership<DepartureBelief, "gone">(ctx, departureGuess(shard), build, (b, reasons) => {
    if (failed(reasons[0])) return { done: "gone" as const };
    const next = learnDeparture(b, reasons, 1);
    return next !== b ? next : undefined;
  });
  if ("done" in out) return { removed: false, lastOfUser: false };
  return { removed: true, lastOfUser: out.committed.transition };
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

/** Shard partitions a whole-room read queries at once. */
const SHARD_READ_CONCURRENCY = 8;

export interface ReadRoomOptions {
  /**
   * Read the shards beyond 0 only when the room has at most this many users (its summary, read with
   * shard 0): a larger room's view is `partial` (shard 0, and `alsoShard`), so a route never reads a
   * large room whole. Absent: every shard.
   */
  readonly maxUsers?: number;
  /** In a partial view, also this shard (the joining connection's own, so it finds itself). */
  readonly alsoShard?: number;
}

/**
 * Reads a room: one (paginated, strongly consistent) Query of its own partition (shard 0 and the
 * summary), then, when the summary says it has more shards, one Query per other shard (readShard).
 * A room that never grew costs exactly one Query, as before shards. The summary is kept by the
 * membership transactions; this read only deletes a summary left at 0 users (conditionally, so a
 * join committed meanwhile keeps it). Member items past their expiry are returned apart
 * (`expired`): their connections are gone (API Gateway closes a connection after 2 h) or past their
 * token's deadline (still open until closed), and the caller closes and removes them like any gone
 * connection (presence.ts broadcastToRoom). Items of shard k > 0 come back with `roomId` the room's
 * id and `shard` k.
 */
export async function readRoom(ctx: DataContext, roomId: string, nowSec: number, options: ReadRoomOptions = {}): Promise<RoomView> {
  const table = tableName(ctx, "rooms");
  const members: MemberItem[] = [];
  const expired: MemberItem[] = [];
  let summaryItem: Record<string, unknown> | undefined;
  const pages = paginateQuery(
    { client: ctx.doc, ...(ctx.config.roomQueryPageSize ? { pageSize: ctx.config.roomQueryPageSize } : {}) },
    { TableName: table, KeyConditionExpression: "roomId = :r", ExpressionAttributeValues: { ":r": roomId }, ConsistentRead: true },
  );
  for await (const out of pages) {
    for (const item of out.Items ?? []) {
      if (item.sk === SUMMARY_SK) summaryItem = item;
      else if (String(item.sk).startsWith(MEMBER_PREFIX)) (Number(item.expiresAt) > nowSec ? members : expired).push(item as MemberItem);
    }
  }
  const state = shardState(summaryItem);
  const whole = options.maxUsers === undefined || state.users <= options.maxUsers;
  const others = whole
    ? Array.from({ length: state.shards - 1 }, (_, i) => i + 1)
    : options.alsoShard !== undefined && options.alsoShard > 0 && options.alsoShard < state.shards
      ? [options.alsoShard]
      : [];
  for (let i = 0; i < others.length; i += SHARD_READ_CONCURRENCY) {
    const reads = await Promise.all(others.slice(i, i + SHARD_READ_CONCURRENCY).map((k) => readShard(ctx, roomId, k, nowSec)));
    for (const r of reads) {
      members.push(...r.members);
      expired.push(...r.expired);
    }
  }
  const partial = state.shards > 1 && !whole;
  if (summaryItem !== undefined && state.users <= 0 && !partial && members.length === 0 && expired.length === 0) {
    // Empty (users is exact): the room is forgotten, shards and all; a next join starts it afresh.
    await ctx.doc
      .send(
        new DeleteCommand({
          TableName: table,
          Key: { roomId, sk: SUMMARY_SK },
          ConditionExpression: "#users <= :zero",
          ExpressionAttributeNames: { "#users": "users" },
          ExpressionAttributeValues: { ":zero": 0 },
        }),
      )
      .catch((err: unknown) => {
        if (!isConditionFailure(err)) throw err;
      });
  }
  return {
    members,
    users: distinctUsers(members),
    expired,
    summary: { users: state.users, shards: state.shards },
    ...(partial ? { partial: true } : {}),
  };
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

/**
 * The partition of an idempotency record: a clientMessageId identifies one message of one sender in
 * one conversation, so the same id used in another room or in a private conversation is another
 * message. Unambiguous: user ids and clientMessageIds cannot contain `#`, so the conversation id
 * (which may) is whatever lies between the first and the last `#` after the user id.
 */
export function idempotencyKey(userId: string, conversationId: string, clientMessageId: string): string {
  return `idem#${userId}#${conversationId}#${clientMessageId}`;
}

export interface StoredMessage {
  readonly item: MessageItem;
  /** True when (userId, conversationId, clientMessageId) was seen before: `item` is the ORIGINAL message, nothing new was stored. */
  readonly duplicate: boolean;
}

/**
 * Stores a message before any delivery. With a clientMessageId, one TransactWriteItems puts an
 * idempotency record (condition: not there yet, or expired) and the message together, so a retry
 * can never store a second copy; the retry gets the original message back as it is now (its
 * edited text, or its tombstone if it was deleted: the routes answer that with NOT_FOUND).
 */
export async function storeMessage(ctx: DataContext, input: StoreMessageInput): Promise<StoredMessage> {
  const table = tableName(ctx, "messages");
  const messageId = uuidV7(input.nowMs);
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
  const idemKey = { conversationId: idempotencyKey(input.userId, input.conversationId, input.clientMessageId), sk: "idem" };
  try {
    await ctx.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          {
            Put: {
              TableName: table,
              Item: {
                ...idemKey,
                messageId,
                sentAt: item.sentAt,
                target: input.conversationId,
                messageSk: item.sk,
                expiresAt: nowSec + IDEMPOTENCY_SECONDS,
              },
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
  if (!record) throw internalError("idempotency record vanished between the transaction and the read");
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
