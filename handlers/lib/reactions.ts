/**
 * Reactions (issue 18): one reaction per user, message and emoji, counted on the message.
 *
 * Storage, all in the messages table but never in a conversation's partition (history pages read
 * only messages):
 * - the reaction item: PK `rx#<userId>#<conversationId>` (user ids contain no `#`, so the key is
 *   unambiguous), SK `<message sort key>#<emoji>`, `expiresAt` = now + messageRetentionHours (it
 *   outlives its message by at most that much). It makes "one reaction per user" a condition, and
 *   gives `history` the caller's own reactions (`me`) with one bounded Query.
 * - on the MESSAGE item: a number attribute `r:<emoji>` per emoji (named through
 *   ExpressionAttributeNames, so any emoji is a valid name) and the string set `reactionEmoji` of
 *   the emoji counted there, at most MAX_REACTION_EMOJI of them.
 *
 * Adding is one TransactWriteItems: Put of the reaction item (condition: not there) and Update of
 * the message (`ADD` its count and its emoji to the set; condition: the message exists, has not
 * expired, is not deleted, and the emoji is already counted or the set has room). Removing is the
 * transaction's mirror (Delete of the reaction item, condition: there; `ADD` -1); a count that
 * reaches 0 is then removed with the emoji by a conditional UpdateItem (`#count <= 0`), so a
 * concurrent add keeps its emoji. The count in force is then read with one consistent GetItem.
 * A refused transaction says why through its cancellation reasons: the reaction item's condition
 * (already reacted / not reacted) is a repeat: nothing is written and the same frame is announced
 * again, as for a retried edit (the first attempt may have stopped after its write).
 *
 * Module scope holds only plain constants and function declarations (closure serialization).
 */
import { GetCommand, TransactWriteCommand, UpdateCommand, paginateQuery } from "@aws-sdk/lib-dynamodb";
import {
  backoffDelay,
  cancellationReasons,
  epochSeconds,
  messageSortKeyOf,
  sleep,
  tableName,
  type DataContext,
  type MessageItem,
  type TablesContext,
} from "./data";
import { chatError, errorName, internalError } from "./errors";
import { MAX_REACTION_EMOJI, type HistoryEntry, type ReactionFrame } from "./frames";
import type { Logger } from "./logger";
import { frameWhere } from "./messageChanges";

/** Prefix of a message item's per-emoji counters: `r:<emoji>`. */
export const REACTION_COUNT_PREFIX = "r:";
/** The message item's string set of the emoji it counts. */
export const REACTION_EMOJI_ATTRIBUTE = "reactionEmoji";
/**
 * The message item's reaction version: a number every reaction change adds 1 to, in the same
 * transaction. A `reaction` frame carries the version read with its count, and a history entry the
 * version of the counts it shows (`reactionsVersion`): concurrent reactions' frames may arrive in
 * any order, and a client keeps, per message and emoji, the state of the highest version it saw.
 */
export const REACTION_VERSION_ATTRIBUTE = "reactionVersion";
/** Attempts of a reaction transaction that meets another transaction on the same message (TransactionConflict). */
const REACTION_ATTEMPTS = 8;

export interface ReactInput {
  /** The conversation (roomConversation or dmConversation) the caller may read. */
  readonly conversationId: string;
  readonly messageId: string;
  readonly userId: string;
  readonly emoji: string;
  readonly remove: boolean;
  readonly nowMs: number;
  /** Where a failed best-effort clean-up (dropEmoji) is reported. */
  readonly log: Logger;
}

export interface Reaction {
  /** The message as far as its frames need it (where it lives, its author). */
  readonly item: MessageItem;
  /** The message's count of this emoji after the change. */
  readonly count: number;
  /** The message's reaction version read with `count` (REACTION_VERSION_ATTRIBUTE). */
  readonly version: number;
  /** True when nothing was written: the caller had already reacted (add) or had not (remove). */
  readonly repeat: boolean;
}

/** Partition of a user's reaction items in one conversation. */
export function reactionPartition(userId: string, conversationId: string): string {
  return `rx#${userId}#${conversationId}`;
}

function notFound(messageId: string): Error {
  return chatError("NOT_FOUND", `no message ${messageId} in this conversation (it may have expired or been deleted)`);
}

/** A live, not deleted message: the only kind that can be reacted to and whose reactions history shows. */
function isReactable(item: Record<string, unknown> | undefined, nowMs: number): boolean {
  return (
    item !== undefined && Number(item.expiresAt) > epochSeconds(nowMs) && typeof item.userId === "string" && item.deletedAt === undefined
  );
}

/**
 * Adds (or removes) the caller's reaction with one emoji to one message and returns the count in
 * force. NOT_FOUND: an id that is not a UUIDv7 (no key follows from it), no such message in the
 * conversation, expired or deleted. BAD_REQUEST: a new emoji on a message that already counts
 * MAX_REACTION_EMOJI others.
 */
export async function react(ctx: DataContext, input: ReactInput): Promise<Reaction> {
  const messageSk = messageSortKeyOf(input.messageId);
  if (messageSk === undefined) throw notFound(input.messageId);
  const table = tableName(ctx, "messages");
  const messageKey = { conversationId: input.conversationId, sk: messageSk };
  const reactionKey = { conversationId: reactionPartition(input.userId, input.conversationId), sk: `${messageSk}#${input.emoji}` };
  const count = `${REACTION_COUNT_PREFIX}${input.emoji}`;
  const nowSec = epochSeconds(input.nowMs);
  const live = "attribute_exists(#sk) AND #expiresAt > :now AND attribute_not_exists(#deletedAt)";
  const transactItems = input.remove
    ? [
        { Delete: { TableName: table, Key: reactionKey, ConditionExpression: "attribute_exists(sk)" } },
        {
          Update: {
            TableName: table,
            Key: messageKey,
            UpdateExpression: "ADD #count :minusOne, #rxv :one",
            ConditionExpression: live,
            ExpressionAttributeNames: {
              "#count": count,
              "#rxv": REACTION_VERSION_ATTRIBUTE,
              "#sk": "sk",
              "#expiresAt": "expiresAt",
              "#deletedAt": "deletedAt",
            },
            ExpressionAttributeValues: { ":minusOne": -1, ":one": 1, ":now": nowSec },
          },
        },
      ]
    : [
        {
          Put: {
            TableName: table,
            Item: { ...reactionKey, expiresAt: nowSec + ctx.config.messageRetentionHours * 3600 },
            ConditionExpression: "attribute_not_exists(sk)",
          },
        },
        {
          Update: {
            TableName: table,
            Key: messageKey,
            UpdateExpression: "ADD #count :one, #set :emojiSet, #rxv :one",
            ConditionExpression: `${live} AND (contains(#set, :emoji) OR attribute_not_exists(#set) OR size(#set) < :max)`,
            ExpressionAttributeNames: {
              "#count": count,
              "#set": REACTION_EMOJI_ATTRIBUTE,
              "#rxv": REACTION_VERSION_ATTRIBUTE,
              "#sk": "sk",
              "#expiresAt": "expiresAt",
              "#deletedAt": "deletedAt",
            },
            ExpressionAttributeValues: {
              ":one": 1,
              ":emojiSet": new Set([input.emoji]),
              ":emoji": input.emoji,
              ":max": MAX_REACTION_EMOJI,
              ":now": nowSec,
            },
          },
        },
      ];
  let repeat = false;
  let messageRefused = false;
  for (let attempt = 0; ; attempt++) {
    try {
      await ctx.doc.send(new TransactWriteCommand({ TransactItems: transactItems }));
      break;
    } catch (err) {
      const reasons = cancellationReasons(err);
      if (!reasons) throw err;
      messageRefused = reasons[1]?.Code === "ConditionalCheckFailed";
      repeat = reasons[0]?.Code === "ConditionalCheckFailed";
      if (messageRefused || repeat) break;
      // Another transaction holds the message (someone else's reaction to it at the same moment):
      // DynamoDB cancels this one (TransactionConflict), which the SDK does not retry.
      if (reasons.some((r) => r.Code === "TransactionConflict") && attempt + 1 < REACTION_ATTEMPTS) {
        await sleep(backoffDelay(attempt, 10, 500));
        continue;
      }
      throw err;
    }
  }
  const item = await readCount(ctx, messageKey, count);
  if (!isReactable(item, input.nowMs)) throw notFound(input.messageId);
  if (messageRefused && !input.remove) {
    throw chatError("BAD_REQUEST", `a message can have at most ${MAX_REACTION_EMOJI} different reactions; react with one it has`);
  }
  if (messageRefused) throw internalError(`the reaction condition of ${input.messageId} failed on a live message`);
  const n = Math.max(0, Number(item?.[count] ?? 0));
  if (input.remove && !repeat && n === 0) {
    // The removal has committed: a failed clean-up must not turn it into an error (nor skip its
    // announcement). An emoji left at 0 is not shown, and the next removal to 0 tries again.
    try {
      await dropEmoji(ctx, messageKey, count, input.emoji);
    } catch (err) {
      input.log.warn("reaction at 0 not cleaned up (best effort; the next removal to 0 retries)", {
        messageId: input.messageId,
        emoji: input.emoji,
        error: errorName(err),
      });
    }
  }
  return { item: item as unknown as MessageItem, count: n, version: Number(item?.[REACTION_VERSION_ATTRIBUTE] ?? 0), repeat };
}

/**
 * The message's fields that its frames need, one emoji's count and the reaction version: a
 * consistent read (the transaction just wrote it), so count and version belong together.
 */
async function readCount(
  ctx: TablesContext,
  key: { conversationId: string; sk: string },
  count: string,
): Promise<Record<string, unknown> | undefined> {
  const out = await ctx.doc.send(
    new GetCommand({
      TableName: tableName(ctx, "messages"),
      Key: key,
      ConsistentRead: true,
      ProjectionExpression: "#count, #rxv, messageId, userId, roomId, toUserId, expiresAt, deletedAt",
      ExpressionAttributeNames: { "#count": count, "#rxv": REACTION_VERSION_ATTRIBUTE },
    }),
  );
  return out.Item;
}

/**
 * Removes an emoji whose count fell to 0 from the message (its counter and its set entry), on
 * condition that it is still 0: an add that came in between keeps it. Best effort: an emoji left
 * in the set at 0 is not shown (reactionsOf) and is removed by the next removal that reaches 0.
 */
async function dropEmoji(ctx: TablesContext, key: { conversationId: string; sk: string }, count: string, emoji: string): Promise<void> {
  for (let attempt = 0; attempt < REACTION_ATTEMPTS; attempt++) {
    try {
      await ctx.doc.send(
        new UpdateCommand({
          TableName: tableName(ctx, "messages"),
          Key: key,
          UpdateExpression: "DELETE #set :emojiSet REMOVE #count",
          ConditionExpression: "#count <= :zero",
          ExpressionAttributeNames: { "#set": REACTION_EMOJI_ATTRIBUTE, "#count": count },
          ExpressionAttributeValues: { ":emojiSet": new Set([emoji]), ":zero": 0 },
        }),
      );
      return;
    } catch (err) {
      const name = errorName(err);
      if (name === "ConditionalCheckFailedException") return;
      // A reaction transaction holds the message: a plain write is refused meanwhile (not retried by the SDK).
      if (name !== "TransactionConflictException" || attempt + 1 >= REACTION_ATTEMPTS) throw err;
      await sleep(backoffDelay(attempt, 10, 500));
    }
  }
}

/** The `reaction` frame of a change: everyone who can see the message gets it (messageChanges.ts announceChange). */
export function reactionFrame(r: Reaction, userId: string, emoji: string, removed: boolean): ReactionFrame {
  return {
    type: "reaction",
    messageId: r.item.messageId,
    emoji,
    userId,
    count: r.count,
    version: r.version,
    ...(removed ? { removed: true as const } : {}),
    ...frameWhere(r.item),
  };
}

/** A message's reactions as history returns them: counts above 0, most frequent first, then by emoji (code units). */
export function reactionsOf(item: MessageItem, mine: ReadonlySet<string>): NonNullable<HistoryEntry["reactions"]> {
  const raw = item as unknown as Record<string, unknown>;
  const set = raw[REACTION_EMOJI_ATTRIBUTE];
  if (item.deletedAt !== undefined || !(set instanceof Set)) return [];
  const out: Array<{ emoji: string; count: number; me?: true }> = [];
  for (const emoji of set as Set<string>) {
    const count = Number(raw[`${REACTION_COUNT_PREFIX}${emoji}`] ?? 0);
    if (count > 0) out.push({ emoji, count, ...(mine.has(`${item.sk}#${emoji}`) ? { me: true as const } : {}) });
  }
  return out.sort((a, b) => b.count - a.count || (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));
}

/** The message's reaction version (REACTION_VERSION_ATTRIBUTE), undefined when it never had a reaction or is deleted. */
export function reactionsVersionOf(item: MessageItem): number | undefined {
  const v = (item as unknown as Record<string, unknown>)[REACTION_VERSION_ATTRIBUTE];
  return item.deletedAt === undefined && v !== undefined ? Number(v) : undefined;
}

/** True when some message of the page has a reaction counted (then `me` is worth a read). */
export function hasReactions(items: readonly MessageItem[]): boolean {
  return items.some((m) => reactionsOf(m, new Set()).length > 0);
}

/**
 * The caller's reactions to the messages whose sort keys lie between `oldestSk` and `newestSk`,
 * as `<message sk>#<emoji>` keys: one Query of the caller's reaction partition in that range,
 * bounded by the page (at most its messages times MAX_REACTION_EMOJI items). The upper bound is
 * `<newestSk>$`: `$` follows `#`, so every `<newestSk>#<emoji>` sorts below it (DynamoDB compares
 * UTF-8 bytes, where an emoji's 0xF0 lead byte sorts above U+FFFF's, so `#\uffff` would not do).
 */
export async function myReactions(
  ctx: DataContext,
  userId: string,
  conversationId: string,
  oldestSk: string,
  newestSk: string,
): Promise<Set<string>> {
  const mine = new Set<string>();
  const pages = paginateQuery(
    { client: ctx.doc },
    {
      TableName: tableName(ctx, "messages"),
      KeyConditionExpression: "conversationId = :p AND sk BETWEEN :from AND :to",
      ExpressionAttributeValues: { ":p": reactionPartition(userId, conversationId), ":from": oldestSk, ":to": `${newestSk}$` },
      ProjectionExpression: "sk",
    },
  );
  for await (const page of pages) for (const item of page.Items ?? []) mine.add(String(item.sk));
  return mine;
}
