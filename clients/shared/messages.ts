/**
 * The messages a client has seen, and what happened to them since (docs/protocol.md "edited",
 * "deleted"): their current text, whether and when they were edited, and tombstones. Shared by the
 * terminal client (which shows a short reference, `^3`, per message so that `/edit ^3 …` can name
 * one) and the web page (which redraws a message in place).
 *
 * The rules live here once:
 * - an `edited` frame replaces the text unless the message already carries a later (or the same)
 *   `editedAt`: two edits may arrive out of order, the latest wins;
 * - a `deleted` frame leaves a tombstone (text "", who and when) and nothing revives it;
 * - a change to a message not seen yet (frames come from different requests: the author may have
 *   changed it while its broadcast was still on its way) is kept until the message arrives;
 * - a `history` entry is the server's current state and wins over what the client saw live.
 *
 * Plain data, no DOM and no Node: it runs in the browser bundle and in the terminal.
 */
import type { ChatFrame, DeletedFrame, EditedFrame, HistoryMessage, PrivateFrame, ReactionFrame } from "./protocol";

/** A conversation: `#room`, or `@user` for the private conversation with that user. */
export type ConversationKey = `#${string}` | `@${string}`;

export const roomKey = (roomId: string): ConversationKey => `#${roomId}`;
export const userKey = (userId: string): ConversationKey => `@${userId}`;

/** The target of an `edit` or `delete` frame for a message of this conversation. */
export function targetOf(conversation: ConversationKey): { roomId: string } | { withUserId: string } {
  return conversation.startsWith("#") ? { roomId: conversation.slice(1) } : { withUserId: conversation.slice(1) };
}

export interface LoggedMessage {
  /** Short number for the terminal (`^3`): given in the order messages are first seen, never reused. */
  readonly ref: number;
  readonly messageId: string;
  readonly conversation: ConversationKey;
  /** The author (`system` for a backend's notice). */
  readonly userId: string;
  readonly username: string;
  /** The current text: the last edit's, or "" once deleted. */
  readonly text: string;
  readonly sentAt: string;
  readonly editedAt?: string;
  /** Set once deleted: who deleted it (the author, a moderator, or "system") and when. */
  readonly deletedBy?: string;
  readonly deletedAt?: string;
  /** A backend's notice (docs/protocol.md "system"). */
  readonly system?: boolean;
  /**
   * Its reactions (issue 18): each emoji with its count, most frequent first (then by emoji), `me`
   * when this user is one of them. Empty on a tombstone.
   */
  readonly reactions: readonly Reaction[];
}

export interface Reaction {
  readonly emoji: string;
  readonly count: number;
  readonly me?: true;
}

/** The server's order of reactions (docs/protocol.md "history"): count descending, then emoji. */
function sortReactions(list: Reaction[]): Reaction[] {
  return list.sort((a, b) => b.count - a.count || (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));
}

/** Reactions as one short text: `👍 2 ❤️ 1` (a star marks the user's own: `👍 2*`). */
export function reactionsText(reactions: readonly Reaction[]): string {
  return reactions.map((r) => `${r.emoji} ${r.count}${r.me ? "*" : ""}`).join("  ");
}

/**
 * Who to name on a tombstone: the moderator (or "system") who deleted someone else's message;
 * undefined when the authors deleted their own, or the message is not deleted.
 */
export function deletedByOther(m: Pick<LoggedMessage, "userId" | "deletedBy" | "system">): string | undefined {
  if (m.deletedBy === undefined) return undefined;
  return m.deletedBy !== m.userId || m.system ? m.deletedBy : undefined;
}

/** The conversation an `edited`, `deleted` or `reaction` frame is about, seen from `selfId`. */
export function changeConversation(
  frame: EditedFrame | DeletedFrame | ReactionFrame,
  selfId: string | undefined,
): ConversationKey | undefined {
  if (frame.roomId !== undefined) return roomKey(frame.roomId);
  if (frame.fromUserId === undefined || frame.toUserId === undefined) return undefined;
  return userKey(frame.fromUserId === selfId ? frame.toUserId : frame.fromUserId);
}

/** A change that arrived before its message (docs/protocol.md "edited"). */
type EarlyChange = EditedFrame | DeletedFrame | ReactionFrame;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** How many messages (and early changes) are kept: older ones are forgotten, oldest first. */
export const MESSAGE_LOG_LIMIT = 2000;
const EARLY_CHANGES_LIMIT = 200;

export class MessageLog {
  private readonly byId = new Map<string, Mutable<LoggedMessage>>();
  private readonly byRef = new Map<number, Mutable<LoggedMessage>>();
  private readonly early = new Map<string, EarlyChange[]>();
  /**
   * Per message, the reaction versions applied (issue 18): `floor` from its last history entry
   * (`reactionsVersion`, for all of its emoji), and per emoji its last `reaction` frame's `version`.
   */
  private readonly reactionVersions = new Map<string, { floor: number; emoji: Map<string, number> }>();
  private nextRef = 1;
  private readonly limit: number;

  constructor(limit = MESSAGE_LOG_LIMIT) {
    this.limit = limit;
  }

  get(messageId: string): LoggedMessage | undefined {
    return this.byId.get(messageId);
  }

  ref(ref: number): LoggedMessage | undefined {
    return this.byRef.get(ref);
  }

  /**
   * The newest message of `userId` that can still be changed (not deleted, not a notice), in one
   * conversation or in any: what `/edit <text>` and `/delete` with no reference mean.
   */
  lastOf(userId: string, conversation?: ConversationKey): LoggedMessage | undefined {
    let best: LoggedMessage | undefined;
    for (const m of this.byId.values()) {
      if (m.userId !== userId || m.system || m.deletedBy !== undefined) continue;
      if (conversation !== undefined && m.conversation !== conversation) continue;
      if (!best || m.sentAt > best.sentAt || (m.sentAt === best.sentAt && m.ref > best.ref)) best = m;
    }
    return best;
  }

  /**
   * How many messages of a conversation this log holds after `messageId` (UUIDv7 ids sort in
   * storage order), not by `exceptUserId` and not deleted: the unread ones this client knows of.
   */
  countAfter(conversation: ConversationKey, messageId: string, exceptUserId: string | undefined): number {
    let n = 0;
    for (const m of this.byId.values()) {
      if (m.conversation === conversation && m.messageId > messageId && m.userId !== exceptUserId && m.deletedBy === undefined) n++;
    }
    return n;
  }

  /** The newest message of a conversation this log holds (by id: UUIDv7 ids sort in storage order). */
  newest(conversation: ConversationKey): LoggedMessage | undefined {
    let best: LoggedMessage | undefined;
    for (const m of this.byId.values()) if (m.conversation === conversation && (!best || m.messageId > best.messageId)) best = m;
    return best;
  }

  /** A live room message. */
  chat(frame: ChatFrame): LoggedMessage {
    return this.record(roomKey(frame.roomId), {
      messageId: frame.messageId,
      userId: frame.userId,
      username: frame.username,
      message: frame.message,
      sentAt: frame.sentAt,
    });
  }

  /** A live private message, as received (or as sent from another device of this user). */
  private(frame: PrivateFrame, selfId: string | undefined): LoggedMessage {
    const other = frame.fromUserId === selfId ? frame.toUserId : frame.fromUserId;
    return this.record(userKey(other), {
      messageId: frame.messageId,
      userId: frame.fromUserId,
      username: frame.fromUsername,
      message: frame.message,
      sentAt: frame.sentAt,
    });
  }

  /**
   * A message seen in any form: live, from history, or sent by this client (known from its
   * `delivered`). A history entry (`fromHistory`) carries the server's current state, which wins,
   * reactions included (an entry without `reactions` has none).
   */
  record(conversation: ConversationKey, m: HistoryMessage, fromHistory = false): LoggedMessage {
    const known = this.byId.get(m.messageId);
    if (known) {
      if (m.deleted) this.tombstone(known, m.deletedBy ?? known.deletedBy ?? "", m.deletedAt ?? known.deletedAt ?? "");
      else if (fromHistory || m.reactions !== undefined) this.historyReactions(known, m);
      if (
        !m.deleted &&
        m.editedAt !== undefined &&
        known.deletedBy === undefined &&
        !(known.editedAt !== undefined && known.editedAt >= m.editedAt)
      ) {
        known.text = m.message;
        known.editedAt = m.editedAt;
      }
      return known;
    }
    const entry: Mutable<LoggedMessage> = {
      ref: this.nextRef++,
      messageId: m.messageId,
      conversation,
      userId: m.userId,
      username: m.username,
      text: m.message,
      sentAt: m.sentAt,
      ...(m.editedAt !== undefined ? { editedAt: m.editedAt } : {}),
      ...(m.kind === "system" ? { system: true } : {}),
      reactions: m.reactions && !m.deleted ? sortReactions(m.reactions.map((r) => ({ ...r }))) : [],
    };
    if (m.deleted) this.tombstone(entry, m.deletedBy ?? "", m.deletedAt ?? "");
    else if (m.reactionsVersion !== undefined) this.reactionVersions.set(entry.messageId, { floor: m.reactionsVersion, emoji: new Map() });
    this.byId.set(entry.messageId, entry);
    this.byRef.set(entry.ref, entry);
    for (const change of this.early.get(entry.messageId) ?? []) this.apply(entry, change);
    this.early.delete(entry.messageId);
    this.forgetOldest();
    return entry;
  }

  /**
   * An `edited` frame. Returns the message as it is now, or undefined when it has not been seen
   * yet (the change is kept for when it arrives). `changed` is false for a stale or repeated edit.
   */
  edited(frame: EditedFrame): { message?: LoggedMessage; changed: boolean } {
    return this.change(frame);
  }

  /** A `deleted` frame: as `edited`; `changed` is false when the message was already a tombstone. */
  deleted(frame: DeletedFrame): { message?: LoggedMessage; changed: boolean } {
    return this.change(frame);
  }

  /**
   * A `reaction` frame: the emoji's count on the message becomes the frame's (the server's count
   * after that change), and `me` follows when `selfId` reacted. As `edited` for a message not seen yet.
   */
  reaction(frame: ReactionFrame, selfId: string | undefined): { message?: LoggedMessage; changed: boolean } {
    this.selfId = selfId;
    return this.change(frame);
  }

  private selfId: string | undefined;

  private change(frame: EarlyChange): { message?: LoggedMessage; changed: boolean } {
    const known = this.byId.get(frame.messageId);
    if (known) return { message: known, changed: this.apply(known, frame) };
    const list = this.early.get(frame.messageId) ?? [];
    list.push(frame);
    this.early.set(frame.messageId, list);
    if (this.early.size > EARLY_CHANGES_LIMIT) this.early.delete(this.early.keys().next().value as string);
    return { changed: false };
  }

  /** Applies one change; true if it changed anything. */
  private apply(m: Mutable<LoggedMessage>, change: EarlyChange): boolean {
    if (m.deletedBy !== undefined) return false;
    if (change.type === "reaction") return this.react(m, change);
    if (change.type === "deleted") {
      this.tombstone(m, change.by, change.deletedAt);
      return true;
    }
    // Out of order: the latest editedAt wins (ISO 8601 in UTC compares as text).
    if (m.editedAt !== undefined && m.editedAt >= change.editedAt) return false;
    m.text = change.message;
    m.editedAt = change.editedAt;
    return true;
  }

  /**
   * A history entry's reactions: the server's state at the entry's `reactionsVersion` (0 when it
   * has none). They replace what is known, except an emoji whose last applied `reaction` frame is
   * newer (its count stays), and nothing at all when a newer history entry was applied already.
   */
  private historyReactions(known: Mutable<LoggedMessage>, m: HistoryMessage): void {
    const version = m.reactionsVersion ?? 0;
    const seen = this.reactionVersions.get(known.messageId);
    if (seen && version < seen.floor) return;
    const newer = (emoji: string) => (seen?.emoji.get(emoji) ?? 0) > version;
    known.reactions = sortReactions([
      ...(m.reactions ?? []).filter((r) => !newer(r.emoji)).map((r) => ({ ...r })),
      ...known.reactions.filter((r) => newer(r.emoji)),
    ]);
    if (seen) seen.floor = version;
    else if (m.reactionsVersion !== undefined) this.reactionVersions.set(known.messageId, { floor: version, emoji: new Map() });
  }

  /**
   * True when a `reaction` frame is older than what this log applied for its message and emoji:
   * its `version` is not above that emoji's last frame nor the last history entry's
   * `reactionsVersion` (concurrent reactions' frames may arrive in any order). A frame without a
   * version is never stale. Records the version of a frame that is not.
   */
  private staleReaction(frame: ReactionFrame): boolean {
    if (frame.version === undefined) return false;
    let seen = this.reactionVersions.get(frame.messageId);
    if (!seen) {
      seen = { floor: 0, emoji: new Map() };
      this.reactionVersions.set(frame.messageId, seen);
    }
    if (frame.version <= Math.max(seen.floor, seen.emoji.get(frame.emoji) ?? 0)) return true;
    seen.emoji.set(frame.emoji, frame.version);
    return false;
  }

  private react(m: Mutable<LoggedMessage>, frame: ReactionFrame): boolean {
    if (this.staleReaction(frame)) return false;
    const mine = frame.userId === this.selfId;
    const old = m.reactions.find((r) => r.emoji === frame.emoji);
    const me = mine ? !frame.removed : old?.me === true;
    if (old && old.count === frame.count && (old.me === true) === me) return false;
    if (!old && frame.count === 0) return false;
    const rest = m.reactions.filter((r) => r.emoji !== frame.emoji);
    m.reactions = sortReactions(
      frame.count > 0 ? [...rest, { emoji: frame.emoji, count: frame.count, ...(me ? { me: true } : {}) }] : rest,
    );
    return true;
  }

  private tombstone(m: Mutable<LoggedMessage>, by: string, at: string): void {
    m.text = "";
    m.reactions = [];
    m.deletedBy = by;
    m.deletedAt = at;
    delete m.editedAt;
  }

  private forgetOldest(): void {
    while (this.byId.size > this.limit) {
      const oldest = this.byId.values().next().value as LoggedMessage;
      this.byId.delete(oldest.messageId);
      this.byRef.delete(oldest.ref);
      this.reactionVersions.delete(oldest.messageId);
    }
  }
}
