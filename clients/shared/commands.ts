/**
 * The slash commands both clients accept (docs/clients.md): `/chat <message>` (plain text also
 * sends), `/join <room>`, `/leave <room>`, `/private <userId> <message>`, `/rooms`,
 * `/history [room]`, `/edit [^ref] <text>`, `/delete [^ref]`, `/kick [#room] <userId> [minutes]`,
 * `/react [^ref] <emoji>`, `/unreact [^ref] <emoji>`, `/unread [room]`, `/newer`, `/quit`, `/help`. Parsing is pure so it is unit-tested once and reused by the
 * terminal client and the web page's message box.
 */
import { KICK_MAX_MINUTES } from "./protocol";

export type Command =
  | { readonly kind: "chat"; readonly message: string; readonly roomId?: string }
  | { readonly kind: "join"; readonly roomId: string }
  | { readonly kind: "leave"; readonly roomId: string }
  | { readonly kind: "private"; readonly toUserId: string; readonly message: string }
  | { readonly kind: "rooms" }
  | { readonly kind: "history"; readonly roomId?: string; readonly withUserId?: string; readonly limit?: number }
  | { readonly kind: "more" }
  /** The page after the last one shown (its `newer` cursor). */
  | { readonly kind: "newer" }
  /** History from the read position (`fromRead`); `roomId` absent = the current room. */
  | { readonly kind: "unread"; readonly roomId?: string }
  /** `ref` absent = the newest message of the current conversation; `remove` for /unreact. */
  | { readonly kind: "react"; readonly ref?: number; readonly emoji: string; readonly remove: boolean }
  | { readonly kind: "who"; readonly roomId?: string }
  /** `ref`: the number the terminal shows before a message (`^3`); absent = your last message. */
  | { readonly kind: "edit"; readonly ref?: number; readonly message: string }
  | { readonly kind: "delete"; readonly ref?: number }
  /** `roomId` absent = the current room; `minutes` absent = the server's default (10). */
  | { readonly kind: "kick"; readonly userId: string; readonly roomId?: string; readonly minutes?: number }
  | { readonly kind: "quit" }
  | { readonly kind: "help" }
  | { readonly kind: "none" }
  | { readonly kind: "invalid"; readonly message: string };

/** What `/help` prints (the terminal; the web page says it in one line). A plain string, so the page's bundle leaves it out. */
export const HELP_TEXT = `Commands:
  <text>                      send <text> to the current room
  /chat <message>             same, explicitly
  /join <room>                join a room (it becomes the current room)
  /leave <room>               leave a room
  /private <userId> <message> send a private message
  /rooms                      list active rooms and their number of users
  /history [room] [n]         show the last n (1-100, default 50) messages of a room (default: the current room)
  /history @<userId> [n]      show your private conversation with a user
  /more                       show the page of messages before the last /history
  /unread [room]              show the messages after your read position (default: the current room)
  /newer                      show the page of messages after the last /unread page
  /react [^n] <emoji>         react to message ^n (default: the newest message here) with one emoji
  /unreact [^n] <emoji>       take your reaction back
  /who [room]                 who is in a room you joined (default: the current room)
  /edit [^n] <text>           replace the text of your message ^n (the number before it; default: your last message)
  /delete [^n]                delete message ^n for everyone (yours, or any in a room you moderate; default: your last)
  /kick [#room] <userId> [m]  moderators: keep a user out of a room (default: the current one) for m minutes (default 10)
  /quit                       close the connection and exit
  /help                       this help`;

const USAGE: Record<string, string> = {
  chat: "usage: /chat <message>",
  join: "usage: /join <room>",
  leave: "usage: /leave <room>",
  private: "usage: /private <userId> <message>",
  history: "usage: /history [room] [n] or /history @<userId> [n], with n from 1 to 100",
  edit: "usage: /edit [^n] <new text>, where ^n is the number shown before the message (default: your last message)",
  delete: "usage: /delete [^n], where ^n is the number shown before the message (default: your last message)",
  kick: `usage: /kick [#room] <userId> [minutes], minutes from 1 to ${KICK_MAX_MINUTES} (default 10)`,
  react: "usage: /react [^n] <emoji> (or /unreact), where ^n is the number shown before the message (default: the newest one)",
};

/** A message reference as shown (`^3`) or typed (`3`). */
const REF = /^\^?(\d{1,9})$/;

/** Splits `/name rest` into the command name and the rest (whitespace inside the rest is kept). */
function splitCommand(line: string): { name: string; rest: string } {
  const match = /^\/(\S*)\s*([\s\S]*)$/.exec(line);
  return match ? { name: match[1].toLowerCase(), rest: match[2] } : { name: "", rest: "" };
}

/** One word, no spaces: room ids and user ids. The server checks the exact pattern. */
function singleWord(rest: string): string | undefined {
  const word = rest.trim();
  return word.length > 0 && !/\s/.test(word) ? word : undefined;
}

/** A room argument; `#room` is accepted too, as rooms are displayed that way. */
function roomWord(rest: string): string | undefined {
  const word = singleWord(rest);
  const room = word?.startsWith("#") ? word.slice(1) : word;
  return room ? room : undefined;
}

export function parseCommand(input: string): Command {
  const line = input.replace(/[\r\n]+$/, "");
  if (line.trim() === "") return { kind: "none" };
  // "//text" sends "/text" literally, so a message can start with a slash.
  if (line.startsWith("//")) return { kind: "chat", message: line.slice(1) };
  if (!line.startsWith("/")) return { kind: "chat", message: line };

  const { name, rest } = splitCommand(line);
  switch (name) {
    case "chat":
    case "say":
      return rest.trim() ? { kind: "chat", message: rest } : { kind: "invalid", message: USAGE.chat };
    case "join":
    case "j": {
      const roomId = roomWord(rest);
      return roomId ? { kind: "join", roomId } : { kind: "invalid", message: USAGE.join };
    }
    case "leave":
    case "part": {
      const roomId = roomWord(rest);
      return roomId ? { kind: "leave", roomId } : { kind: "invalid", message: USAGE.leave };
    }
    case "private":
    case "msg":
    case "pm": {
      const m = /^(\S+)\s+([\s\S]*\S[\s\S]*)$/.exec(rest);
      return m ? { kind: "private", toUserId: m[1], message: m[2] } : { kind: "invalid", message: USAGE.private };
    }
    case "rooms":
      return rest.trim() ? { kind: "invalid", message: "usage: /rooms" } : { kind: "rooms" };
    case "history": {
      const words = rest.trim().split(/\s+/).filter(Boolean);
      // `/history [target] [n]`; a lone number is a page size for the current room (a room named
      // only with digits is written `#123`). Sizes follow docs/protocol.md: limit 1-100.
      let target: string | undefined;
      let count: string | undefined;
      if (words.length === 1 && /^\d+$/.test(words[0])) count = words[0];
      else if (words.length === 1) target = words[0];
      else if (words.length === 2) [target, count] = words;
      else if (words.length > 2) return { kind: "invalid", message: USAGE.history };
      let limit: number | undefined;
      if (count !== undefined) {
        limit = /^\d+$/.test(count) ? Number(count) : NaN;
        if (!(limit >= 1 && limit <= 100)) return { kind: "invalid", message: USAGE.history };
      }
      const size = limit !== undefined ? { limit } : {};
      if (target === undefined) return { kind: "history", ...size };
      if (target.startsWith("@")) {
        return target.length > 1 ? { kind: "history", withUserId: target.slice(1), ...size } : { kind: "invalid", message: USAGE.history };
      }
      const roomId = target.startsWith("#") ? target.slice(1) : target;
      return roomId ? { kind: "history", roomId, ...size } : { kind: "invalid", message: USAGE.history };
    }
    case "more":
    case "older":
      return rest.trim() ? { kind: "invalid", message: "usage: /more" } : { kind: "more" };
    case "newer":
      return rest.trim() ? { kind: "invalid", message: "usage: /newer" } : { kind: "newer" };
    case "unread": {
      if (!rest.trim()) return { kind: "unread" };
      const roomId = roomWord(rest);
      return roomId ? { kind: "unread", roomId } : { kind: "invalid", message: "usage: /unread [room]" };
    }
    case "react":
    case "unreact": {
      // `/react ^3 👍` or `/react 👍`; the server checks that it is exactly one emoji.
      const words = rest.trim().split(/\s+/).filter(Boolean);
      const ref = words.length === 2 ? REF.exec(words[0]) : null;
      if (words.length === 2 && !ref) return { kind: "invalid", message: USAGE.react };
      if (words.length < 1 || words.length > 2 || REF.test(words[words.length - 1])) return { kind: "invalid", message: USAGE.react };
      return { kind: "react", ...(ref ? { ref: Number(ref[1]) } : {}), emoji: words[words.length - 1], remove: name === "unreact" };
    }
    case "who":
    case "members": {
      if (!rest.trim()) return { kind: "who" };
      const roomId = roomWord(rest);
      return roomId ? { kind: "who", roomId } : { kind: "invalid", message: "usage: /who [room]" };
    }
    case "edit": {
      // `/edit ^3 text` or `/edit 3 text` names a message; `/edit text` is your last one (so a text
      // that starts with a number needs the reference: `/edit ^7 3 apples`).
      const m = /^(\S+)\s+([\s\S]*\S[\s\S]*)$/.exec(rest.trim());
      const ref = m ? REF.exec(m[1]) : null;
      if (m && ref) return { kind: "edit", ref: Number(ref[1]), message: m[2] };
      if (!rest.trim() || REF.test(rest.trim())) return { kind: "invalid", message: USAGE.edit };
      return { kind: "edit", message: rest.trim() };
    }
    case "delete":
    case "del": {
      if (!rest.trim()) return { kind: "delete" };
      const ref = REF.exec(rest.trim());
      return ref ? { kind: "delete", ref: Number(ref[1]) } : { kind: "invalid", message: USAGE.delete };
    }
    case "kick": {
      const words = rest.trim().split(/\s+/).filter(Boolean);
      const room = words[0]?.startsWith("#") ? words.shift()?.slice(1) : undefined;
      if (room === "" || words.length < 1 || words.length > 2) return { kind: "invalid", message: USAGE.kick };
      const [userId, count] = words;
      let minutes: number | undefined;
      if (count !== undefined) {
        minutes = /^\d+$/.test(count) ? Number(count) : NaN;
        if (!(minutes >= 1 && minutes <= KICK_MAX_MINUTES)) return { kind: "invalid", message: USAGE.kick };
      }
      return { kind: "kick", userId, ...(room !== undefined ? { roomId: room } : {}), ...(minutes !== undefined ? { minutes } : {}) };
    }
    case "quit":
    case "exit":
      return { kind: "quit" };
    case "help":
    case "?":
      return { kind: "help" };
    default:
      return { kind: "invalid", message: `unknown command "/${name}"; type /help for the list` };
  }
}
