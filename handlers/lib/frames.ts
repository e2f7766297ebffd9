/**
 * The client frames' schemas (zod) and the server frames (docs/protocol.md).
 *
 * Schemas are built by `buildSchemas(config)` inside each factory, never at module scope, so the
 * module serializes as plain functions (handlers/index.ts). Unknown extra fields are ignored
 * (zod's default "strip"): clients can add fields without breaking older servers, and the parsed
 * result is a fresh object holding only the declared keys, so `__proto__` or `constructor` keys in
 * a frame never reach application code.
 */
import { z } from "zod";
import { chatError, type ChatError } from "./errors";

/** Room ids as the issue fixes them; also safe inside keys like `room#<roomId>`. */
export const ROOM_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
/**
 * User ids (the token's `sub`): Cognito subs are UUIDs, other OIDC providers use `provider|id`,
 * e-mail-like or URL-safe ids. `#` is excluded because it separates the parts of keys such as
 * `dm#<a>#<b>`; whitespace and control characters are excluded everywhere.
 */
export const USER_ID_PATTERN = /^[A-Za-z0-9_.@:|+=-]{1,128}$/;
/** Client message ids: UUIDs, ULIDs, counters. */
export const CLIENT_MESSAGE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Longest page cursor the server issues (docs/protocol.md, "Pages"): a history cursor names a
 * `dm#<128>#<128>` conversation and a sort key, about 450 base64url characters.
 */
export const MAX_CURSOR_LENGTH = 600;

/** How long a `kick` keeps the user out of the room when the frame names no `minutes`. */
export const DEFAULT_KICK_MINUTES = 10;
/** The longest a `kick` can keep a user out: a week (a longer exclusion is the user's backend's job: the token's `rooms` claim). */
export const MAX_KICK_MINUTES = 7 * 24 * 60;

/** A UTF-16 surrogate that is not half of a pair (with the u flag a pair is one code point, never Cs). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * A message id in an `edit` or `delete` frame: the alphabet of the ids the server issues (UUIDs)
 * and of client ids, at most 64 characters. A well-formed id that names no message (or a message
 * stored before ids became UUIDv7) is NOT_FOUND, not BAD_REQUEST.
 */
export const MESSAGE_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Reactions (issue 18): an emoji is exactly one RGI emoji (Unicode's recommended-for-general-
 * interchange set: single emoji, modifier and ZWJ sequences, flags, keycaps; a bounded set of
 * grapheme clusters, never arbitrary text). The longest RGI sequences are 14 UTF-16 code units.
 * Built where the schemas are: the `v` flag's `\p{RGI_Emoji}` (ES2024; Node 20 and every current browser).
 */
export const RGI_EMOJI_SOURCE = "^\\p{RGI_Emoji}$";
/** Longest emoji accepted, in UTF-16 code units (a tag-sequence flag such as England's is 14). */
export const MAX_EMOJI_LENGTH = 16;
/** Distinct emoji one message can carry (a reaction with a new emoji beyond this is BAD_REQUEST). */
export const MAX_REACTION_EMOJI = 20;
/** Unread counts stop at this many (`unreadMore` says there are more): reading one costs a bounded Query. */
export const UNREAD_CAP = 99;

export const MESSAGE_TYPES = [
  "chat",
  "join",
  "leave",
  "private",
  "rooms",
  "history",
  "ping",
  "edit",
  "delete",
  "kick",
  "typing",
  "react",
  "read",
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

export function buildSchemas(maxMessageBytes: number) {
  const roomId = z.string().regex(ROOM_ID_PATTERN, "must match ^[A-Za-z0-9_-]{1,64}$");
  const userId = z.string().regex(USER_ID_PATTERN, "must be 1-128 characters of A-Z a-z 0-9 _ . @ : | + = -");
  const clientMessageId = z.string().regex(CLIENT_MESSAGE_ID_PATTERN, "must be 1-64 characters of A-Z a-z 0-9 _ . : -");
  const message = z
    .string()
    .min(1, "must not be empty")
    .refine((s) => utf8Bytes(s) <= maxMessageBytes, {
      message: `must be at most ${maxMessageBytes} UTF-8 bytes`,
      params: { tooLarge: true },
    })
    // JSON allows "\ud800" escapes, but an unpaired surrogate has no UTF-8 encoding: the message
    // could not be stored as a DynamoDB string (UTF-8) nor delivered as a UTF-8 frame unchanged.
    .refine((s) => !LONE_SURROGATE.test(s), "must be well-formed Unicode (no unpaired surrogate)");
  const messageId = z.string().regex(MESSAGE_ID_PATTERN, "must be 1-64 characters of A-Z a-z 0-9 _ . : -");
  /** The conversation of an `edit`, `delete` or `history`: a room or the private conversation with a user. */
  const oneTarget = {
    message: "exactly one of roomId or withUserId is required",
    path: ["roomId"],
  };
  const targeted = (t: { roomId?: string; withUserId?: string }) => (t.roomId === undefined) !== (t.withUserId === undefined);
  const rgiEmoji = new RegExp(RGI_EMOJI_SOURCE, "v");
  const emoji = z
    .string()
    .max(MAX_EMOJI_LENGTH, `must be one emoji (at most ${MAX_EMOJI_LENGTH} UTF-16 code units)`)
    .refine((s) => rgiEmoji.test(s), "must be exactly one emoji (an RGI emoji sequence, not text)");
  const cursor = z.string().max(MAX_CURSOR_LENGTH);
  /** At most one of a history request's starting points: before a cursor, after a cursor, after the read position. */
  const oneStart = (h: { before?: string; after?: string; fromRead?: boolean }) =>
    [h.before !== undefined, h.after !== undefined, h.fromRead === true].filter(Boolean).length <= 1;
  return {
    chat: z.object({ type: z.literal("chat"), message, roomId: roomId.optional(), clientMessageId: clientMessageId.optional() }),
    join: z.object({ type: z.literal("join"), roomId }),
    leave: z.object({ type: z.literal("leave"), roomId }),
    private: z.object({ type: z.literal("private"), toUserId: userId, message, clientMessageId: clientMessageId.optional() }),
    rooms: z.object({
      type: z.literal("rooms"),
      limit: z.number().int("must be an integer").min(1).max(1000).default(500),
      after: z.string().max(MAX_CURSOR_LENGTH).optional(),
    }),
    history: z
      .object({
        type: z.literal("history"),
        roomId: roomId.optional(),
        withUserId: userId.optional(),
        limit: z.number().int("must be an integer").min(1).max(100).default(50),
        before: cursor.optional(),
        after: cursor.optional(),
        fromRead: z.boolean().optional(),
      })
      .refine(targeted, oneTarget)
      .refine(oneStart, { message: "at most one of before, after and fromRead", path: ["before"] })
      .refine((h) => h.fromRead !== true || h.roomId !== undefined, { message: "fromRead needs a roomId", path: ["fromRead"] }),
    ping: z.object({ type: z.literal("ping") }),
    edit: z
      .object({ type: z.literal("edit"), roomId: roomId.optional(), withUserId: userId.optional(), messageId, message })
      .refine(targeted, oneTarget),
    delete: z
      .object({ type: z.literal("delete"), roomId: roomId.optional(), withUserId: userId.optional(), messageId })
      .refine(targeted, oneTarget),
    kick: z.object({
      type: z.literal("kick"),
      roomId,
      userId,
      minutes: z.number().int("must be an integer").min(1).max(MAX_KICK_MINUTES).default(DEFAULT_KICK_MINUTES),
    }),
    typing: z.object({ type: z.literal("typing"), roomId: roomId.optional(), withUserId: userId.optional() }).refine(targeted, oneTarget),
    react: z
      .object({
        type: z.literal("react"),
        roomId: roomId.optional(),
        withUserId: userId.optional(),
        messageId,
        emoji,
        remove: z.boolean().optional(),
      })
      .refine(targeted, oneTarget),
    read: z.object({ type: z.literal("read"), roomId, messageId }),
  };
}

export type Schemas = ReturnType<typeof buildSchemas>;

/**
 * A frame a client may send, as the schemas accept it (their input type: `limit` may be left out,
 * the schema supplies the default). Types only: clients/shared/protocol.ts imports it with
 * `import type`, so the browser bundle gets no byte of zod (tests/clients/contract.test.ts).
 */
export type ClientFrameInput = { [K in MessageType]: z.input<Schemas[K]> }[MessageType];

/** Validates a frame; a failed refinement of the message size is TOO_LARGE, anything else BAD_REQUEST. */
/** Fields that name a message's sender: the server sets them from the token, never the client. */
export const SENDER_FIELDS = ["userId", "username", "fromUserId", "fromUsername"] as const;

/**
 * A `chat` or `private` frame that names a sender other than the caller is refused (BAD_REQUEST)
 * rather than silently re-attributed: a client that tries to speak for someone else is told so, and
 * nothing is stored. Naming oneself (a client echoing its own ids) is harmless and accepted.
 */
export function assertOwnSender(frame: Record<string, unknown>, sender: { readonly userId: string; readonly username: string }): void {
  for (const field of SENDER_FIELDS) {
    if (!Object.hasOwn(frame, field)) continue;
    const own = field === "userId" || field === "fromUserId" ? sender.userId : sender.username;
    if (frame[field] !== own) {
      throw chatError("BAD_REQUEST", `${field}: a frame cannot name another sender; the server sets the sender from the token`);
    }
  }
}

export function parseFrame<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, frame: unknown): T {
  const result = schema.safeParse(frame);
  if (result.success) return result.data;
  throw frameError(result.error);
}

function frameError(error: z.ZodError): ChatError {
  const issues = error.issues;
  if (issues.some((i) => i.code === "custom" && (i.params as { tooLarge?: boolean } | undefined)?.tooLarge)) {
    const tooLarge = issues.find((i) => i.code === "custom")!;
    return chatError("TOO_LARGE", `${tooLarge.path.join(".")} ${tooLarge.message}`);
  }
  const first = issues[0];
  const where = first && first.path.length > 0 ? `${first.path.join(".")}: ` : "";
  return chatError("BAD_REQUEST", `${where}${first?.message ?? "invalid frame"}`);
}

/**
 * Most bytes a history entry's `reactions` adds (issue 18): MAX_REACTION_EMOJI entries of at most
 * `{"emoji":"<MAX_EMOJI_LENGTH code units, at most 3 UTF-8 bytes each>","count":<16 digits>,"me":true},`
 * (96 bytes), `,"reactions":[]` and `,"reactionsVersion":<16 digits>`: 1,972 bytes.
 */
export const MAX_REACTIONS_BYTES = 2048;

/**
 * Bytes kept free in every message frame for the envelope of a `history` page returning that message
 * alone (a page always keeps its first message, pages.ts fitByBytes): the largest envelope is a
 * forward page's (issue 18), `{"type":"history","withUserId":<128>,"messages":[...],"next":<cursor>,
 * "newer":<cursor>,"readMessageId":<36>}` with both cursors at MAX_CURSOR_LENGTH, under 1,450
 * bytes; a history entry is never longer than its chat, private or system frame by more than a
 * few field names (under 200 bytes); and its reactions add at most MAX_REACTIONS_BYTES.
 */
export const HISTORY_PAGE_RESERVE_BYTES = 2048 + MAX_REACTIONS_BYTES;

/**
 * Throws TOO_LARGE if a frame built around a message could not be posted: API Gateway refuses
 * messages over 128 KB (PayloadTooLargeException), and JSON escaping can make a frame larger than
 * its text. The frame must fit with HISTORY_PAGE_RESERVE_BYTES to spare, so that a history page
 * can always return the message. Checked before storing, so nothing undeliverable is ever stored.
 */
export function assertDeliverable(frame: Record<string, unknown>, limitBytes: number): void {
  // Placeholders as long as the real values: a UUID messageId and an ISO-8601 sentAt.
  const sized = { ...frame, messageId: "00000000-0000-0000-0000-000000000000", sentAt: "2000-01-01T00:00:00.000Z" };
  if (utf8Bytes(JSON.stringify(sized)) > limitBytes - HISTORY_PAGE_RESERVE_BYTES) {
    throw chatError("TOO_LARGE", `the message does not fit in one ${limitBytes}-byte WebSocket message once framed`);
  }
}

/** Frames the server sends (docs/protocol.md). */
export interface ChatFrame {
  readonly type: "chat";
  readonly roomId: string;
  readonly messageId: string;
  readonly userId: string;
  readonly username: string;
  readonly message: string;
  readonly sentAt: string;
  readonly clientMessageId?: string;
}

export interface PrivateFrame {
  readonly type: "private";
  readonly messageId: string;
  readonly fromUserId: string;
  readonly fromUsername: string;
  readonly toUserId: string;
  readonly message: string;
  readonly sentAt: string;
  readonly clientMessageId?: string;
}

export interface PresenceFrame {
  readonly type: "presence";
  readonly event: "joined" | "left";
  readonly roomId: string;
  readonly userId: string;
  readonly username: string;
}

/** Author of every `system` frame and of the history items that store one (never a real user: see `kind`). */
export const SYSTEM_USER_ID = "system";
export const SYSTEM_USERNAME = "System";

/**
 * A notice pushed by a backend service through push/index.ts (docs/push.md), not typed by a user:
 * to a room (stored in its history first, like `chat`) or to every connection of one user (not
 * stored). `data` is an optional JSON object for the receiving application (an order id, a link).
 */
export interface SystemFrame {
  readonly type: "system";
  readonly from: typeof SYSTEM_USER_ID;
  readonly messageId: string;
  readonly message: string;
  readonly sentAt: string;
  readonly roomId?: string;
  readonly toUserId?: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

/**
 * Posted to every connection of a user that a moderator (or a backend: `by` "system") removed from
 * a room; the user cannot join it again before `until` (ISO 8601).
 */
export interface KickedFrame {
  readonly type: "kicked";
  readonly roomId: string;
  /** The moderator's userId, or SYSTEM_USER_ID for a backend. */
  readonly by: string;
  readonly until: string;
}

/**
 * The kicking moderator's reply: `userId` is kept out of `roomId` until `until` (the restriction in
 * force: a kick never shortens an earlier, longer one); `connections` of theirs were removed from the
 * room (0 when they were not in it).
 */
export interface UserKickedFrame {
  readonly type: "userKicked";
  readonly roomId: string;
  readonly userId: string;
  readonly until: string;
  readonly connections: number;
}

/**
 * A message's text was changed by its author (`edit`): to the room's connections, or to every
 * connection of both users of a private conversation. `userId` is the author; a room message has
 * `roomId`, a private one `fromUserId` (the author) and `toUserId` as its `private` frame had them.
 */
export interface EditedFrame {
  readonly type: "edited";
  readonly messageId: string;
  readonly message: string;
  readonly editedAt: string;
  readonly userId: string;
  readonly roomId?: string;
  readonly fromUserId?: string;
  readonly toUserId?: string;
}

/**
 * A message was deleted (`delete`, or a backend): its text can no longer be read, history keeps a
 * tombstone. `by` is the user who deleted it (its author or a moderator of the room), or "system"
 * for a backend. Where as in EditedFrame.
 */
export interface DeletedFrame {
  readonly type: "deleted";
  readonly messageId: string;
  readonly by: string;
  readonly deletedAt: string;
  readonly roomId?: string;
  readonly fromUserId?: string;
  readonly toUserId?: string;
}

/**
 * Someone is typing (issue 18): to the room's other users' connections, or to the other user of a
 * private conversation (`toUserId`, as in `private`). Ephemeral: nothing is stored. Clients show it
 * for a few seconds, or until that user's message arrives.
 */
export interface TypingFrame {
  readonly type: "typing";
  readonly userId: string;
  readonly username: string;
  readonly roomId?: string;
  readonly toUserId?: string;
}

/**
 * A reaction was added (or, with `removed`, taken back) by `userId`: to everyone who can see the
 * message (where as in EditedFrame). `count` is the message's number of reactions with this emoji
 * after the change, and `version` the message's reaction version read with it: every reaction
 * change to the message adds 1 to it. Concurrent reactions' frames may arrive in any order: a
 * client ignores a reaction frame whose version is not above the last it applied for that message
 * and emoji (a history entry's `reactionsVersion` counts as applied for all of the entry's emoji).
 */
export interface ReactionFrame {
  readonly type: "reaction";
  readonly messageId: string;
  readonly emoji: string;
  readonly userId: string;
  readonly count: number;
  readonly version: number;
  readonly removed?: true;
  readonly roomId?: string;
  readonly fromUserId?: string;
  readonly toUserId?: string;
}

/**
 * A user's read position in a room moved forward to `messageId` (issue 18): to that user's other
 * connections (so every device's counters agree), and, in rooms whose read receipts are shared
 * (readReceiptRooms), to the room's members. Also the reply to `read`, with the position in force.
 */
export interface ReadFrame {
  readonly type: "read";
  readonly roomId: string;
  readonly userId: string;
  readonly username: string;
  readonly messageId: string;
}

/** The user's unread messages in a room: at most UNREAD_CAP; `unreadMore` when there are more. */
export interface Unread {
  readonly unread?: number;
  readonly unreadMore?: true;
}

export type ServerFrame =
  | ChatFrame
  | TypingFrame
  | ReactionFrame
  | ReadFrame
  | PrivateFrame
  | PresenceFrame
  | SystemFrame
  | KickedFrame
  | UserKickedFrame
  | EditedFrame
  | DeletedFrame
  | {
      readonly type: "joined";
      readonly roomId: string;
      /** The room's users, as many as fit in JOINED_MEMBERS_BUDGET_BYTES (API Gateway sends at most 128 KB). */
      readonly members: ReadonlyArray<{ userId: string; username: string }>;
      /** Distinct users in the room. */
      readonly memberCount: number;
      /** Present (true) when `members` lists fewer than `memberCount` users. */
      readonly membersTruncated?: true;
      /** The user's unread messages in the room (Unread), and the read position they count from. */
      readonly unread?: number;
      readonly unreadMore?: true;
      readonly readMessageId?: string;
    }
  | { readonly type: "left"; readonly roomId: string }
  | { readonly type: "delivered"; readonly messageId: string; readonly clientMessageId?: string; readonly deliveredTo: number }
  | {
      readonly type: "rooms";
      /** `unread` (Unread) for the rooms the user has a read position in or this connection has joined. */
      readonly rooms: ReadonlyArray<{ roomId: string; members: number; unread?: number; unreadMore?: true }>;
      readonly next?: string;
    }
  | {
      readonly type: "history";
      readonly roomId?: string;
      readonly withUserId?: string;
      readonly messages: readonly HistoryEntry[];
      /** Cursor of the page before this one (older messages). */
      readonly next?: string;
      /** Cursor of the page after this one (newer messages): set by a forward read (`after`, `fromRead`) that stopped short. */
      readonly newer?: string;
      /** A `fromRead` page: the read position it started after (absent when the user has none: then from the oldest). */
      readonly readMessageId?: string;
    }
  | { readonly type: "pong" };

export interface HistoryEntry {
  readonly messageId: string;
  readonly userId: string;
  readonly username: string;
  readonly message: string;
  readonly sentAt: string;
  readonly toUserId?: string;
  readonly clientMessageId?: string;
  /**
   * "system" for a message pushed by a backend (then `userId` is SYSTEM_USER_ID and `data` may be
   * set); absent for messages written by users. A user whose id happens to be "system" is told
   * apart by this field, which no user frame can set.
   */
  readonly kind?: "system";
  readonly data?: Readonly<Record<string, unknown>>;
  /** When its author last edited it (ISO); the text is the edited one. */
  readonly editedAt?: string;
  /**
   * A deleted message (a tombstone): `message` is "", there is no `data` nor `editedAt`, and
   * `deletedAt` and `deletedBy` (a user id, or "system" for a backend) say when and by whom.
   */
  readonly deleted?: true;
  readonly deletedAt?: string;
  readonly deletedBy?: string;
  /**
   * Reactions to a live message (issue 18): each emoji with its count, most frequent first, and
   * `me` when the caller is one of them. Absent when there are none and on tombstones.
   */
  readonly reactions?: ReadonlyArray<{ readonly emoji: string; readonly count: number; readonly me?: true }>;
  /**
   * The message's reaction version the counts above are at (ReactionFrame `version`): present on a
   * live message that ever had a reaction (also when none is left).
   */
  readonly reactionsVersion?: number;
}
