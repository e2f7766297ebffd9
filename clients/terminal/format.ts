/**
 * How the terminal client prints what happens: one line per event, `HH:MM:SS [tag] text`, with a
 * tag a reader (or a test, or grep) can pick out: chat, presence, joined, left, private, delivered,
 * rooms, history, system, edited, deleted, kicked, typing, reaction, read, error, info. A message line starts with its
 * reference, `^3`, which `/edit ^3 …` and `/delete ^3` name. Pure functions, so the format is
 * unit-tested.
 */
import { changeConversation, deletedByOther, reactionsText, type LoggedMessage } from "../shared/messages";
import type { ServerFrame, HistoryMessage, Member } from "../shared/protocol";
import { isUnregisteredConnectionError, unreadLabel, type SessionEvent, type UnreadState } from "../shared/session";

export interface FormatContext {
  /** The user's own id, to tell "from" and "to" apart in private messages. */
  readonly selfId?: string;
  /** Recipient of a private message by clientMessageId (for `delivered` lines). */
  readonly privateTarget?: (clientMessageId: string) => string | undefined;
  /** Wall clock (replaceable in tests). */
  readonly now?: () => Date;
  /** ANSI colours (only on a TTY). */
  readonly color?: boolean;
  /** A message's reference and current state (the session's MessageLog), by messageId. */
  readonly message?: (messageId: string) => LoggedMessage | undefined;
  /** The user's unread messages in a room (the session's UnreadState). */
  readonly unread?: (roomId: string) => UnreadState | undefined;
}

const COLORS: Record<string, string> = {
  chat: "",
  presence: "\x1b[36m",
  joined: "\x1b[36m",
  left: "\x1b[36m",
  private: "\x1b[35m",
  delivered: "\x1b[2m",
  rooms: "\x1b[33m",
  history: "\x1b[2m",
  system: "\x1b[1;33m",
  error: "\x1b[31m",
  info: "\x1b[2m",
  edited: "\x1b[2m",
  deleted: "\x1b[2m",
  kicked: "\x1b[1;31m",
  typing: "\x1b[2m",
  reaction: "\x1b[2m",
  read: "\x1b[2m",
};

/** `HH:MM:SS` in local time. */
export function clock(date: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${p(date.getHours())}:${p(date.getMinutes())}:${p(date.getSeconds())}`;
}

/** The end of a kick in local time (with the date unless it is today). */
function untilOf(iso: string, ctx: FormatContext): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return sanitize(iso);
  const p = (n: number) => String(n).padStart(2, "0");
  const today = (ctx.now ?? (() => new Date()))();
  const sameDay = d.toDateString() === today.toDateString();
  return `${sameDay ? "" : `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} `}${clock(d)}`;
}

function timeOf(sentAt: string, ctx: FormatContext): string {
  const d = new Date(sentAt);
  return clock(Number.isNaN(d.getTime()) ? (ctx.now ?? (() => new Date()))() : d);
}

/** Removes control characters so that a message cannot move the cursor or recolour the terminal. */
export function sanitize(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is replaced
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/g, "�").replace(/\n/g, "\n           ");
}

const who = (username: string, userId: string) => (username === userId ? sanitize(userId) : `${sanitize(username)} (${sanitize(userId)})`);
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

export function line(tag: string, text: string, ctx: FormatContext, time?: string): string {
  const stamp = time ?? clock((ctx.now ?? (() => new Date()))());
  const t = `[${tag}]`;
  const color = ctx.color ? (COLORS[tag.split(" ")[0]] ?? "") : "";
  return color ? `${stamp} ${color}${t}\x1b[0m ${text}` : `${stamp} ${t} ${text}`;
}

/** `^3 ` before a message the session has a reference for (nothing otherwise). */
function refOf(messageId: string, ctx: FormatContext): string {
  const ref = ctx.message?.(messageId)?.ref;
  return ref === undefined ? "" : `^${ref} `;
}

/** A message's text as it is now: the last edit's, marked "(edited)", or its tombstone. */
function textOf(m: { text: string; userId: string; editedAt?: string; deletedBy?: string; system?: boolean }): string {
  if (m.deletedBy !== undefined) {
    const by = deletedByOther(m);
    return by === undefined ? "[deleted]" : `[deleted by ${sanitize(by)}]`;
  }
  return `${sanitize(m.text)}${m.editedAt !== undefined ? " (edited)" : ""}`;
}

/** The text of a live message: the session's current state (an edit may have come first), else the frame's. */
function liveText(messageId: string, fallback: string, ctx: FormatContext): string {
  const m = ctx.message?.(messageId);
  return m ? textOf(m) : sanitize(fallback);
}

/**
 * `  12 unread` on a `/rooms` line: the session's count (the server's, unless this client has read
 * further than the server has confirmed yet), for rooms the server counted.
 */
function unreadOf(r: { roomId: string; unread?: number; unreadMore?: true }, ctx: FormatContext): string {
  if (r.unread === undefined) return "";
  const state = ctx.unread?.(r.roomId) ?? { unread: r.unread, more: r.unreadMore === true };
  return state.unread ? `  ${unreadLabel(state)} unread` : "";
}

/** `; 12 unread` on a `joined` line when the server counted unread messages. */
function unreadNote(frame: { unread?: number; unreadMore?: true }): string {
  if (!frame.unread) return "";
  return `; ${unreadLabel({ unread: frame.unread, more: frame.unreadMore === true })} unread (/unread shows them)`;
}

function memberList(members: readonly Member[]): string {
  return members.length === 0 ? "nobody" : members.map((m) => who(m.username, m.userId)).join(", ");
}

export function formatHistoryMessage(m: HistoryMessage, scope: string, ctx: FormatContext): string {
  // The entry is the server's state when the page was read: its text, "(edited)", or a tombstone.
  const text = textOf({
    text: m.message,
    userId: m.userId,
    ...(m.editedAt !== undefined ? { editedAt: m.editedAt } : {}),
    ...(m.deleted ? { deletedBy: m.deletedBy ?? "" } : {}),
    ...(m.kind === "system" ? { system: true } : {}),
  });
  const ref = refOf(m.messageId, ctx);
  const reactions = !m.deleted && m.reactions && m.reactions.length > 0 ? `  [${reactionsText(m.reactions)}]` : "";
  // A backend's notice is shown as one, whatever user id it carries (docs/protocol.md "system").
  if (m.kind === "system") return line(`history ${scope}`, `${timeOf(m.sentAt, ctx)} ${ref}[system] ${text}${reactions}`, ctx);
  const to = m.toUserId && m.toUserId !== m.userId ? ` -> ${sanitize(m.toUserId)}` : "";
  return line(`history ${scope}`, `${timeOf(m.sentAt, ctx)} ${ref}${who(m.username, m.userId)}${to}: ${text}${reactions}`, ctx);
}

/** The lines printed for one server frame (several for rooms and history). */
export function formatFrame(frame: ServerFrame, ctx: FormatContext): string[] {
  switch (frame.type) {
    case "chat":
      return [
        line(
          `chat #${frame.roomId}`,
          `${refOf(frame.messageId, ctx)}${who(frame.username, frame.userId)}: ${liveText(frame.messageId, frame.message, ctx)}`,
          ctx,
          timeOf(frame.sentAt, ctx),
        ),
      ];
    case "presence":
      return [
        line(`presence #${frame.roomId}`, `${who(frame.username, frame.userId)} ${frame.event === "joined" ? "joined" : "left"}`, ctx),
      ];
    case "joined":
      return [
        line(
          `joined #${frame.roomId}`,
          `${plural(frame.memberCount ?? frame.members.length, "member")}: ${memberList(frame.members)}${frame.membersTruncated ? ` and ${(frame.memberCount ?? 0) - frame.members.length} more` : ""}${unreadNote(frame)}`,
          ctx,
        ),
      ];
    case "left":
      return [line(`left #${frame.roomId}`, "you left the room", ctx)];
    case "private": {
      const mine = ctx.selfId !== undefined && frame.fromUserId === ctx.selfId;
      const tag = mine ? `private to ${sanitize(frame.toUserId)}` : `private from ${who(frame.fromUsername, frame.fromUserId)}`;
      return [line(tag, `${refOf(frame.messageId, ctx)}${liveText(frame.messageId, frame.message, ctx)}`, ctx, timeOf(frame.sentAt, ctx))];
    }
    case "delivered": {
      const to = frame.clientMessageId ? ctx.privateTarget?.(frame.clientMessageId) : undefined;
      return [
        line(
          "delivered",
          `${refOf(frame.messageId, ctx)}private message${to ? ` to ${sanitize(to)}` : ""} reached ${plural(frame.deliveredTo, "connection")} (id ${frame.messageId})`,
          ctx,
        ),
      ];
    }
    case "rooms":
      if (frame.rooms.length === 0) return [line("rooms", "no active rooms", ctx)];
      return [
        line("rooms", `${plural(frame.rooms.length, "active room")}:`, ctx),
        ...frame.rooms.map((r) => line("rooms", `  #${sanitize(r.roomId)}  ${plural(r.members, "user")}${unreadOf(r, ctx)}`, ctx)),
      ];
    case "history": {
      const scope = frame.roomId !== undefined ? `#${frame.roomId}` : `@${frame.withUserId ?? "?"}`;
      const head = line(
        `history ${scope}`,
        `${plural(frame.messages.length, "message")}${frame.readMessageId !== undefined ? ` after your read position ${refOf(frame.readMessageId, ctx).trim() || frame.readMessageId}` : ""}${frame.next ? " (older messages exist: /more)" : ""}${frame.newer ? " (newer messages exist: /newer)" : ""}`,
        ctx,
      );
      return [head, ...frame.messages.map((m) => formatHistoryMessage(m, scope, ctx))];
    }
    case "system":
      return [
        line(
          frame.roomId !== undefined ? `system #${frame.roomId}` : "system",
          frame.roomId !== undefined
            ? `${refOf(frame.messageId, ctx)}${liveText(frame.messageId, frame.message, ctx)}`
            : sanitize(frame.message),
          ctx,
          timeOf(frame.sentAt, ctx),
        ),
      ];
    case "edited":
    case "deleted": {
      // The message as it is now (a late, older edit changes nothing), with its reference.
      const where = changeConversation(frame, ctx.selfId) ?? "";
      const m = ctx.message?.(frame.messageId);
      if (m) {
        const author = m.system ? "[system]" : who(m.username, m.userId);
        return [line(`${frame.type} ${where}`, `${refOf(frame.messageId, ctx)}${author}: ${textOf(m)}`, ctx)];
      }
      // A message this client has not seen (older than what it showed, or still on its way).
      const what =
        frame.type === "edited"
          ? `${sanitize(frame.userId)}: ${sanitize(frame.message)} (edited; message ${frame.messageId})`
          : `message ${frame.messageId} [deleted by ${sanitize(frame.by)}]`;
      return [line(`${frame.type} ${where}`, what, ctx)];
    }
    case "pong":
      return [];
    // Shown from the session's `typing` event (once when someone starts, not for every frame).
    case "typing":
      return [];
    case "reaction": {
      const where = changeConversation(frame, ctx.selfId) ?? "";
      const m = ctx.message?.(frame.messageId);
      const verb = frame.removed ? `took back ${frame.emoji}` : `reacted ${frame.emoji}`;
      const byWhom = frame.userId === ctx.selfId ? "you" : sanitize(frame.userId);
      const now = m ? `  [${reactionsText(m.reactions) || "no reactions"}]` : ` (${frame.emoji} ${frame.count})`;
      return [line(`reaction ${where}`, `${refOf(frame.messageId, ctx) || `message ${frame.messageId} `}${byWhom} ${verb}${now}`, ctx)];
    }
    case "read": {
      const at = refOf(frame.messageId, ctx).trim() || `message ${frame.messageId}`;
      if (frame.userId !== ctx.selfId) return [line(`read #${frame.roomId}`, `${who(frame.username, frame.userId)} read up to ${at}`, ctx)];
      const state = ctx.unread?.(frame.roomId);
      return [line(`read #${frame.roomId}`, `you read up to ${at} on another device${state ? `; ${unreadLabel(state)} unread` : ""}`, ctx)];
    }
    case "kicked":
      return [
        line(
          `kicked #${frame.roomId}`,
          `you were removed from the room by ${sanitize(frame.by)}; you can join it again at ${untilOf(frame.until, ctx)}`,
          ctx,
        ),
      ];
    case "userKicked":
      return [
        line(
          `kicked #${frame.roomId}`,
          `${sanitize(frame.userId)} is kept out until ${untilOf(frame.until, ctx)} (${plural(frame.connections, "connection")} removed)`,
          ctx,
        ),
      ];
    case "error": {
      // The generic "no access" refusal is said briefly; other FORBIDDENs (someone else's message, not
      // a moderator, kicked from the room until a time) keep the server's explanation.
      if (frame.code === "FORBIDDEN" && frame.roomId !== undefined && frame.message === `you do not have access to room ${frame.roomId}`) {
        const request = frame.requestType
          ? ` (request ${frame.requestType}${frame.clientMessageId ? `, message ${frame.clientMessageId}` : ""})`
          : "";
        return [line("error FORBIDDEN", `you do not have access to #${sanitize(frame.roomId)}${request}`, ctx)];
      }
      const about = [
        frame.requestType ? `request ${frame.requestType}` : "",
        frame.clientMessageId ? `message ${frame.clientMessageId}` : "",
      ]
        .filter(Boolean)
        .join(", ");
      return [line(`error ${frame.code}`, `${sanitize(frame.message)}${about ? ` (${about})` : ""}`, ctx)];
    }
    case "gateway":
      return [
        line(
          "error GATEWAY",
          `API Gateway answered: ${sanitize(frame.message)}${frame.requestId ? ` (request ${frame.requestId})` : ""}`,
          ctx,
        ),
      ];
  }
}

/** The lines printed for a session event that is not a server frame. */
export function formatEvent(event: SessionEvent, ctx: FormatContext): string[] {
  switch (event.type) {
    case "frame":
      if (event.redundant) return [];
      // The answer to this device's own `read` says what it already knows.
      if (event.reply && event.frame.type === "read") return [];
      if (isUnregisteredConnectionError(event.frame)) {
        const why =
          event.frame.type === "error" && event.frame.code === "TOKEN_EXPIRED"
            ? "the token has expired"
            : "the server no longer knows this connection";
        return [line("info", `${why}; reconnecting with a new token (unacknowledged messages will be resent)`, ctx)];
      }
      return formatFrame(event.frame, ctx);
    case "invalid":
      return [
        line("error CLIENT", `unreadable frame from the server (${event.frame.reason}): ${sanitize(event.frame.raw.slice(0, 200))}`, ctx),
      ];
    case "local-error":
      return [line("error CLIENT", event.message, ctx)];
    case "queued":
      return [line("info", `not connected: "${event.frame.type}" will be sent once the connection is back`, ctx)];
    case "rejoined":
      return [
        line(
          "info",
          `reconnected; rejoining ${event.rooms.map((r) => `#${r}`).join(", ") || "no rooms"}${event.resent ? `; resending ${plural(event.resent, "unacknowledged message")}` : ""}`,
          ctx,
        ),
      ];
    case "fatal":
      return [line("error FATAL", event.message, ctx)];
    case "typing":
      // Once when someone starts; a line-based terminal has nothing to clear when they stop.
      return event.started
        ? [line(`typing ${event.conversation}`, `${who(event.started.username, event.started.userId)} is typing…`, ctx)]
        : [];
    case "status":
      switch (event.status) {
        case "connecting":
          return [line("info", "connecting…", ctx)];
        case "open":
          return [line("info", `connected to ${event.url ?? "the chat API"}`, ctx)];
        case "reconnecting":
          // The line announcing the delay already said it; the attempt itself needs no second line.
          if (event.delayMs === undefined) return [];
          return [
            line(
              "info",
              `connection lost (code ${event.close?.code ?? "?"}${event.close?.reason ? ` ${sanitize(event.close.reason)}` : ""}); reconnecting in ${(event.delayMs / 1000).toFixed(1)}s (attempt ${event.attempt ?? 1})`,
              ctx,
            ),
          ];
        case "closed":
          return [line("info", "disconnected", ctx)];
        case "idle":
          return [];
      }
  }
}
