/**
 * What the web page shows, kept apart from the DOM: one conversation per room and per private
 * correspondent, each an ordered list of entries (messages, presence notes, errors). Messages are
 * keyed by `messageId` so that history pages, live broadcasts and resent messages never show twice;
 * a message being sent is keyed by its `clientMessageId` until the server's copy replaces it.
 */
import type { ConversationKey, LoggedMessage } from "../../shared/messages";
import type { HistoryMessage } from "../../shared/protocol";

export { roomKey, userKey, type ConversationKey } from "../../shared/messages";

export type EntryState = "sending" | "sent" | "failed";

export interface MessageEntry {
  readonly kind: "message";
  /** `messageId` once known, else `local:<clientMessageId>`. */
  id: string;
  clientMessageId?: string;
  userId: string;
  username: string;
  text: string;
  sentAt: string;
  state: EntryState;
  /** Shown under the message: "delivered to 2 connections", "not sent: RATE_LIMITED …". */
  note?: string;
  /** A notice pushed by a backend (a `system` frame or a history item of kind "system"). */
  system?: boolean;
  /** When its author last edited it (the text is the edited one). */
  editedAt?: string;
  /** Set once deleted (the text is then ""): who deleted it. */
  deletedBy?: string;
  /** Why the last edit or delete asked for here failed, shown under the message; "" while it is on its way. */
  change?: { readonly pending: boolean; readonly text: string };
}

export interface NoticeEntry {
  readonly kind: "notice" | "error";
  readonly id: string;
  readonly text: string;
  readonly sentAt: string;
}

export type Entry = MessageEntry | NoticeEntry;

export interface Conversation {
  readonly key: ConversationKey;
  readonly entries: Entry[];
  /** History was asked for once (on join or when first opened). */
  historyRequested: boolean;
  /** Cursor for older messages, when the server said there are more. */
  olderCursor?: string;
  /**
   * Cursor for newer messages, after a page read forward (from the read position) that stopped
   * short: until it is followed, the newest message shown before the gap is the last one read.
   */
  newerCursor?: string;
  /** The newest message of the last forward page (what the user has read when `newerCursor` is set). */
  forwardEnd?: string;
  /** The read position when the room was opened: a "New messages" line goes before the first message after it. */
  readMark?: string;
  /** Unread messages counted here (private conversations; rooms use the session's counts). */
  unread: number;
}

let noticeCounter = 0;

const byTime = (a: Entry, b: Entry): number => (a.sentAt < b.sentAt ? -1 : a.sentAt > b.sentAt ? 1 : 0);

export class ConversationStore {
  private readonly conversations = new Map<ConversationKey, Conversation>();

  get(key: ConversationKey): Conversation {
    let c = this.conversations.get(key);
    if (!c) {
      c = { key, entries: [], historyRequested: false, unread: 0 };
      this.conversations.set(key, c);
    }
    return c;
  }

  has(key: ConversationKey): boolean {
    return this.conversations.has(key);
  }

  keys(prefix: "#" | "@"): ConversationKey[] {
    return [...this.conversations.keys()].filter((k) => k.startsWith(prefix));
  }

  remove(key: ConversationKey): void {
    this.conversations.delete(key);
  }

  /** A message the user just sent, shown at once as "sending". */
  addPending(key: ConversationKey, clientMessageId: string, self: { userId: string; username: string }, text: string): MessageEntry {
    const entry: MessageEntry = {
      kind: "message",
      id: `local:${clientMessageId}`,
      clientMessageId,
      userId: self.userId,
      username: self.username,
      text,
      sentAt: new Date().toISOString(),
      state: "sending",
    };
    this.get(key).entries.push(entry);
    return entry;
  }

  /** A message from the server (live or history). Returns false when it was already shown. */
  addMessage(
    key: ConversationKey,
    m: { messageId: string; userId: string; username: string; message: string; sentAt: string; clientMessageId?: string; kind?: "system" },
  ): boolean {
    const c = this.get(key);
    if (c.entries.some((e) => e.id === m.messageId)) return false;
    const pending = m.clientMessageId
      ? (c.entries.find((e) => e.kind === "message" && e.clientMessageId === m.clientMessageId) as MessageEntry | undefined)
      : undefined;
    if (pending) {
      pending.id = m.messageId;
      pending.sentAt = m.sentAt;
      pending.text = m.message;
      pending.state = "sent";
      pending.note = undefined;
      c.entries.sort(byTime);
      return true;
    }
    c.entries.push({
      kind: "message",
      id: m.messageId,
      userId: m.userId,
      username: m.username,
      text: m.message,
      sentAt: m.sentAt,
      state: "sent",
      ...(m.kind === "system" ? { system: true } : {}),
    });
    c.entries.sort(byTime);
    return true;
  }

  /**
   * A history page. A backward page (the newest, or older: `before`) sets the cursor for older
   * messages; a forward page (`forward`: from the read position or `after` a page) sets the one
   * for newer messages, and keeps the older cursor it had unless the page has one.
   */
  addHistory(
    key: ConversationKey,
    messages: readonly HistoryMessage[],
    next: string | undefined,
    forward?: { readonly newer: string | undefined },
  ): number {
    let added = 0;
    for (const m of messages) if (this.addMessage(key, { ...m })) added++;
    const c = this.get(key);
    if (!forward) c.olderCursor = next;
    else {
      if (next !== undefined) c.olderCursor = next;
      c.newerCursor = forward.newer;
      c.forwardEnd = messages.length > 0 ? messages[messages.length - 1].messageId : c.forwardEnd;
    }
    return added;
  }

  /** Marks the message sent with `clientMessageId`, in whatever conversation holds it. */
  updatePending(clientMessageId: string, update: { state: EntryState; note?: string; messageId?: string }): MessageEntry | undefined {
    for (const c of this.conversations.values()) {
      const e = c.entries.find((x) => x.kind === "message" && x.clientMessageId === clientMessageId) as MessageEntry | undefined;
      if (e) {
        e.state = update.state;
        if (update.note !== undefined) e.note = update.note;
        if (update.messageId) e.id = update.messageId;
        return e;
      }
    }
    return undefined;
  }

  /** The message entry with this messageId, in whatever conversation holds it. */
  findMessage(messageId: string): MessageEntry | undefined {
    for (const c of this.conversations.values()) {
      const e = c.entries.find((x) => x.kind === "message" && x.id === messageId);
      if (e) return e as MessageEntry;
    }
    return undefined;
  }

  /**
   * Copies a message's current state (the session's MessageLog: edits in order, tombstones, changes
   * that arrived before the message) onto its entry. Returns the entry, if shown.
   */
  applyState(state: LoggedMessage): MessageEntry | undefined {
    const e = this.findMessage(state.messageId);
    if (!e) return undefined;
    e.text = state.text;
    e.editedAt = state.editedAt;
    e.deletedBy = state.deletedBy;
    return e;
  }

  addNotice(key: ConversationKey, kind: "notice" | "error", text: string): NoticeEntry {
    noticeCounter += 1;
    const entry: NoticeEntry = { kind, id: `notice:${noticeCounter}`, text, sentAt: new Date().toISOString() };
    this.get(key).entries.push(entry);
    return entry;
  }
}

/** A user id from a display name, for signing in locally with just a name. */
export function userIdFromName(name: string): string {
  const id = name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^-+|-+$/g, "")
    .slice(0, 64);
  return id || "user";
}
