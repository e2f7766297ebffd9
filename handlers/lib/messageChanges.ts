/**
 * Changing stored messages (issue 16): `edit` by the author, `delete` by the author, a moderator of
 * the room, or a backend ("system", push/index.ts). editMessage, deleteMessage and the frames are
 * shared by handlers/functions/edit.ts and delete.ts and by the push module, so that every path
 * changes a message the same way; announceChange is the route functions' fan-out (a backend
 * delivers the `deleted` frame with its own, as it delivers its `system` frames).
 *
 * A message id is a UUIDv7 holding the message's send time (data.ts uuidV7), so the item's key
 * (conversation, `<ms>#<id>`) follows from the frame: each change is ONE conditional UpdateItem,
 * no lookup. Its condition says who may change what; when it fails, the item as it was
 * (ReturnValuesOnConditionCheckFailure ALL_OLD, no extra read) tells why: no such message (or an
 * expired one, or one deleted before an edit) -> NOT_FOUND; someone else's -> FORBIDDEN; the same
 * change already made -> an idempotent repeat, answered without a second fan-out.
 *
 * Module scope holds only plain constants and function declarations (closure serialization).
 */
import { UpdateCommand, type UpdateCommandOutput } from "@aws-sdk/lib-dynamodb";
import {
  backoffDelay,
  dmConversation,
  epochSeconds,
  isConditionFailure,
  liveConnectionsOfUser,
  messageSortKeyOf,
  roomConversation,
  sleep,
  tableName,
  type MessageItem,
  type TablesContext,
} from "./data";
import { chatError, errorName, forbiddenError, internalError, type ChatError } from "./errors";
import type { DeletedFrame, EditedFrame, ReactionFrame } from "./frames";
import type { Logger } from "./logger";
import { readRoomToBroadcast } from "./largeRooms";
import { broadcastToRoom, type RoomContext } from "./presence";
import { requireAccess, requireFanout, requireMember, type MessageRequest, type Runtime } from "./runtime";

const ROOM_CONVERSATION_PREFIX = "room#";
/** Attempts of a change that meets a reaction's transaction on the message (TransactionConflictException). */
const CONFLICT_ATTEMPTS = 8;

/** The outcome of a change: the message as it is now, and whether this request changed it. */
export interface MessageChange {
  readonly item: MessageItem;
  /** True when the same change had already been made (a retried delete, an edit to the text it has): nothing was written. */
  readonly repeat: boolean;
}

export interface EditInput {
  /** The conversation (data.ts roomConversation or dmConversation) the caller may read. */
  readonly conversationId: string;
  readonly messageId: string;
  /** The caller: only the author may edit. */
  readonly userId: string;
  /** The new text, validated like a chat message (frames.ts buildSchemas, assertDeliverable). */
  readonly message: string;
  readonly nowMs: number;
}

export interface DeleteInput {
  readonly conversationId: string;
  readonly messageId: string;
  /** Who deletes: a user id, or "system" (SYSTEM_USER_ID) for a backend. */
  readonly by: string;
  /** Any message of the conversation (a moderator of the room, a backend); otherwise the author's own only. */
  readonly anyAuthor: boolean;
  readonly nowMs: number;
}

function notFound(messageId: string): ChatError {
  return chatError("NOT_FOUND", `no message ${messageId} in this conversation (it may have expired or been deleted)`);
}

/** FORBIDDEN naming the room (a private conversation's names none: both users know it). */
function notYours(conversationId: string, what: string): ChatError {
  const message = `only the author ${what}`;
  return conversationId.startsWith(ROOM_CONVERSATION_PREFIX)
    ? forbiddenError(conversationId.slice(ROOM_CONVERSATION_PREFIX.length), message)
    : chatError("FORBIDDEN", message);
}

/** An attribute value of an item returned with an error, raw (`{ S: "x" }`, `{ N: "1" }`) or already plain. */
function plainValue(value: unknown): unknown {
  if (typeof value !== "object" || value === null) return value;
  const v = value as { S?: unknown; N?: unknown; BOOL?: unknown };
  if (typeof v.S === "string") return v.S;
  if (typeof v.N === "string") return Number(v.N);
  if (typeof v.BOOL === "boolean") return v.BOOL;
  return value;
}

/** The item a failed condition returned (ALL_OLD), as a message; undefined when there was none. */
function oldItem(err: unknown): MessageItem | undefined {
  const raw = (err as { Item?: Record<string, unknown> }).Item;
  if (!raw) return undefined;
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, plainValue(v)])) as unknown as MessageItem;
}

/** The item's key, or NOT_FOUND when the id is not one this server issues now (a UUIDv7). */
function messageKey(conversationId: string, messageId: string): { conversationId: string; sk: string } {
  const sk = messageSortKeyOf(messageId);
  if (sk === undefined) throw notFound(messageId);
  return { conversationId, sk };
}

/** Gone for every reader: never stored, past its retention (TTL deletes lazily), or the item has no message shape. */
function isLive(item: MessageItem | undefined, nowMs: number): item is MessageItem {
  return item !== undefined && Number(item.expiresAt) > epochSeconds(nowMs) && typeof item.userId === "string";
}

/**
 * Sends an UpdateItem of a message item. While a reaction's transaction holds the item
 * (reactions.ts), DynamoDB refuses a plain write to it with TransactionConflictException, which
 * the SDK does not retry: the change backs off and writes again instead of failing.
 */
async function updateMessage(ctx: TablesContext, command: UpdateCommand): Promise<UpdateCommandOutput> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await ctx.doc.send(command);
    } catch (err) {
      if (errorName(err) !== "TransactionConflictException" || attempt + 1 >= CONFLICT_ATTEMPTS) throw err;
      await sleep(backoffDelay(attempt, 10, 500));
    }
  }
}

/**
 * Replaces a message's text and sets `editedAt`: one UpdateItem whose condition is: the message
 * exists and has not expired, the caller wrote it, it is not deleted, it is not a backend's notice,
 * and the text differs or it was never edited. Editing to the text it already has (a retried edit)
 * writes nothing and returns the message as it is (`repeat`).
 */
export async function editMessage(ctx: TablesContext, input: EditInput): Promise<MessageChange> {
  const key = messageKey(input.conversationId, input.messageId);
  try {
    const out = await updateMessage(
      ctx,
      new UpdateCommand({
        TableName: tableName(ctx, "messages"),
        Key: key,
        UpdateExpression: "SET #message = :message, #editedAt = :at",
        ConditionExpression:
          "attribute_exists(#sk) AND #expiresAt > :now AND #userId = :user AND attribute_not_exists(#deletedAt) AND attribute_not_exists(#kind) AND (#message <> :message OR attribute_not_exists(#editedAt))",
        ExpressionAttributeNames: {
          "#sk": "sk",
          "#message": "message",
          "#editedAt": "editedAt",
          "#expiresAt": "expiresAt",
          "#userId": "userId",
          "#deletedAt": "deletedAt",
          "#kind": "kind",
        },
        ExpressionAttributeValues: {
          ":message": input.message,
          ":at": new Date(input.nowMs).toISOString(),
          ":now": epochSeconds(input.nowMs),
          ":user": input.userId,
        },
        ReturnValues: "ALL_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { item: out.Attributes as MessageItem, repeat: false };
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    const old = oldItem(err);
    if (!isLive(old, input.nowMs) || old.deletedAt !== undefined) throw notFound(input.messageId);
    if (old.userId !== input.userId || old.kind !== undefined) throw notYours(input.conversationId, "can edit a message");
    if (old.message === input.message && old.editedAt !== undefined) return { item: old, repeat: true };
    throw internalError(`the edit condition of ${input.messageId} failed on an item it accepts`);
  }
}

/**
 * Deletes a message, leaving a tombstone: one UpdateItem that empties `message`, removes `data`
 * and `editedAt` and sets `deletedAt` and `deletedBy`, on condition that the message exists, has
 * not expired and is not deleted yet, and (unless `anyAuthor`) that the caller wrote it (a
 * backend's notice has no user author). Deleting a deleted message writes nothing and returns the
 * tombstone (`repeat`): a retried delete is not an error.
 */
export async function deleteMessage(ctx: TablesContext, input: DeleteInput): Promise<MessageChange> {
  const key = messageKey(input.conversationId, input.messageId);
  const author = input.anyAuthor ? "" : " AND #userId = :user AND attribute_not_exists(#kind)";
  try {
    const out = await updateMessage(
      ctx,
      new UpdateCommand({
        TableName: tableName(ctx, "messages"),
        Key: key,
        UpdateExpression: "SET #message = :empty, #deletedAt = :at, #deletedBy = :by REMOVE #data, #editedAt",
        ConditionExpression: `attribute_exists(#sk) AND #expiresAt > :now AND attribute_not_exists(#deletedAt)${author}`,
        ExpressionAttributeNames: {
          "#sk": "sk",
          "#message": "message",
          "#data": "data",
          "#editedAt": "editedAt",
          "#expiresAt": "expiresAt",
          "#deletedAt": "deletedAt",
          "#deletedBy": "deletedBy",
          ...(input.anyAuthor ? {} : { "#userId": "userId", "#kind": "kind" }),
        },
        ExpressionAttributeValues: {
          ":empty": "",
          ":at": new Date(input.nowMs).toISOString(),
          ":by": input.by,
          ":now": epochSeconds(input.nowMs),
          ...(input.anyAuthor ? {} : { ":user": input.by }),
        },
        ReturnValues: "ALL_NEW",
        ReturnValuesOnConditionCheckFailure: "ALL_OLD",
      }),
    );
    return { item: out.Attributes as MessageItem, repeat: false };
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    const old = oldItem(err);
    if (!isLive(old, input.nowMs)) throw notFound(input.messageId);
    if (old.deletedAt !== undefined) return { item: old, repeat: true };
    if (!input.anyAuthor && (old.userId !== input.by || old.kind !== undefined)) {
      throw notYours(input.conversationId, "or a moderator of the room can delete a message");
    }
    throw internalError(`the delete condition of ${input.messageId} failed on an item it accepts`);
  }
}

/**
 * The conversation an `edit` or `delete` frame names, checked as `chat` and `history` check it: a
 * room the token grants (else FORBIDDEN) and this connection has joined (else NOT_A_MEMBER), or the
 * private conversation of the caller with `withUserId` (oneself: BAD_REQUEST). Nobody can name a
 * private conversation they are not in: its key is built from the caller's own id.
 */
export function conversationOf(
  rt: Pick<Runtime, "config">,
  req: Pick<MessageRequest, "event" | "connection">,
  target: { readonly roomId?: string; readonly withUserId?: string },
): string {
  if (target.roomId !== undefined) {
    requireAccess(rt, req.event, target.roomId);
    requireMember(req.connection, target.roomId);
    return roomConversation(target.roomId);
  }
  const other = target.withUserId;
  if (other === undefined) throw chatError("BAD_REQUEST", "exactly one of roomId or withUserId is required");
  if (other === req.connection.userId) throw chatError("BAD_REQUEST", "withUserId must be another user");
  return dmConversation(req.connection.userId, other);
}

/** Where a stored message lives, as its frames say it: its room, or its private conversation's users. */
export function frameWhere(
  item: Pick<MessageItem, "messageId" | "userId" | "roomId" | "toUserId">,
): { roomId: string } | { fromUserId: string; toUserId: string } {
  if (item.roomId !== undefined) return { roomId: item.roomId };
  if (item.toUserId !== undefined) return { fromUserId: item.userId, toUserId: item.toUserId };
  throw internalError(`message ${item.messageId} names neither a room nor a recipient`);
}

/** The `edited` frame of an edited message. */
export function editedFrame(item: MessageItem): EditedFrame {
  if (item.editedAt === undefined) throw internalError(`message ${item.messageId} has no editedAt`);
  return {
    type: "edited",
    messageId: item.messageId,
    message: item.message,
    editedAt: item.editedAt,
    userId: item.userId,
    ...frameWhere(item),
  };
}

/** The `deleted` frame of a tombstone. */
export function deletedFrame(item: MessageItem): DeletedFrame {
  if (item.deletedAt === undefined || item.deletedBy === undefined) throw internalError(`message ${item.messageId} is not deleted`);
  return { type: "deleted", messageId: item.messageId, by: item.deletedBy, deletedAt: item.deletedAt, ...frameWhere(item) };
}

/**
 * Sends a change (an edit, a delete, a reaction: handlers/lib/reactions.ts) to everyone who can see
 * the message: a room's member connections (a consistent read of the room partition, then
 * broadcastToRoom, which also removes gone and expired members as a `chat` does), or every connection of both users of a private conversation (byUser index), the
 * caller's included: the caller's copy is its confirmation. Returns whether the caller's copy
 * reached it; if not, the route answers with the frame instead (as `chat` does).
 */
export async function announceChange(
  rt: Runtime & RoomContext,
  log: Logger,
  item: Pick<MessageItem, "messageId" | "userId" | "roomId" | "toUserId">,
  frame: EditedFrame | DeletedFrame | ReactionFrame,
  callerConnectionId: string,
  nowMs: number,
): Promise<{ readonly reachedCaller: boolean; readonly delivered: number }> {
  const payload = JSON.stringify(frame);
  const nowSec = epochSeconds(nowMs);
  if (item.roomId !== undefined) {
    // A large room (issue 17): the route's one Query stops at the summary, and the frame goes to the
    // delivery workers, who leave the caller out: its route answers it with the frame.
    const room = await readRoomToBroadcast(rt, item.roomId, nowSec, rt.config.largeRoomUsers);
    const result = await broadcastToRoom(rt, log, room, item.roomId, payload, undefined, { caller: callerConnectionId });
    return { reachedCaller: result.delivered.includes(callerConnectionId), delivered: result.delivered.length };
  }
  const users = [...new Set([item.userId, item.toUserId ?? item.userId])];
  const devices = await Promise.all(users.map((u) => liveConnectionsOfUser(rt, u, nowSec)));
  // The caller is named even if the index (eventually consistent) does not list its connection yet.
  const targets = [...new Set([callerConnectionId, ...devices.flat()])];
  const result = await requireFanout(rt).deliver(targets, payload, log);
  return { reachedCaller: result.delivered.includes(callerConnectionId), delivered: result.delivered.length };
}
