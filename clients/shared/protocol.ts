/**
 * The chat API's wire protocol as the clients see it (docs/protocol.md): the frames a client sends,
 * the frames the server sends back, and a parser that turns any incoming text into a typed frame
 * or a typed `invalid` value, never an exception.
 *
 * Shared by the terminal client (Node) and the web page (browser bundle), so at run time it imports
 * nothing: no Node module, no DOM type, no schema library (the web bundle stays small; the server
 * validates what clients send with zod, clients only need to read what the server sends).
 *
 * One source for the wire contract: the frame TYPES are the server's (handlers/lib/frames.ts and
 * handlers/lib/errors.ts), imported with `import type`. Dependency direction: clients/ -> handlers/
 * for types only is acceptable; a type-only import is erased by tsc and esbuild, so neither the
 * bundle nor the terminal client loads any server module (tests/clients/contract.test.ts checks
 * both the types and the bundle). Where a client type differs from the server's it is written as
 * the server's type with the difference spelled out (ErrorFrame's `code`, SystemFrame's `from`),
 * and the contract test states each difference. Runtime constants the client needs are kept here
 * and checked equal to the server's by the same test.
 */
import type * as Wire from "../../handlers/lib/frames";
import type { ErrorCode as WireErrorCode, ErrorFrame as WireErrorFrame } from "../../handlers/lib/errors";

/** Error codes the server answers with (docs/protocol.md "Errors"); equal to handlers/lib/errors.ts ERROR_CODES. */
export const ERROR_CODES = [
  "BAD_REQUEST",
  "FORBIDDEN",
  "NOT_FOUND",
  "NOT_A_MEMBER",
  "NOT_CONNECTED",
  "TOKEN_EXPIRED",
  "RATE_LIMITED",
  "TOO_LARGE",
  "UNKNOWN_TYPE",
  "BAD_JSON",
  "INTERNAL",
] as const satisfies readonly WireErrorCode[];
export type ErrorCode = WireErrorCode;

/**
 * API Gateway closes a connection that sends a frame larger than 32 KB (code 1009) instead of
 * answering it (AWS-FACTS "Limits": frames 32 KB). Clients refuse such frames before sending, so a
 * long paste costs an error line, not the connection.
 */
export const MAX_FRAME_BYTES = 32 * 1024;

/** Server-side page size bounds of `history` (docs/protocol.md: limit 1-100, default 50). */
export const HISTORY_MAX_LIMIT = 100;

/** `kick` minutes when the frame names none, and at most (docs/protocol.md "kick"; handlers/lib/frames.ts). */
export const KICK_DEFAULT_MINUTES = 10;
export const KICK_MAX_MINUTES = 7 * 24 * 60;

/** The room a connection joins when the connect URL names none (handlers/functions/connect.ts). */
export const DEFAULT_ROOM = "general";

type ServerFrameOf<T extends Wire.ServerFrame["type"]> = Extract<Wire.ServerFrame, { readonly type: T }>;

export type ChatFrame = Wire.ChatFrame;
export type PresenceFrame = Wire.PresenceFrame;
export type JoinedFrame = ServerFrameOf<"joined">;
export type LeftFrame = ServerFrameOf<"left">;
export type PrivateFrame = Wire.PrivateFrame;
export type DeliveredFrame = ServerFrameOf<"delivered">;
/** `next`: more rooms follow; send it back as `after` (docs/protocol.md, "Pages"). */
export type RoomsFrame = ServerFrameOf<"rooms">;
export type HistoryFrame = ServerFrameOf<"history">;
export type PongFrame = ServerFrameOf<"pong">;
/** To each connection of a user a moderator (`by`; "system" for a backend) removed from a room; no join before `until`. */
export type KickedFrame = Wire.KickedFrame;
/** The kicking moderator's reply: the restriction's end in force and how many connections were removed. */
export type UserKickedFrame = Wire.UserKickedFrame;
/** A message's text was changed by its author: `roomId` for a room message, `fromUserId`/`toUserId` for a private one. */
export type EditedFrame = Wire.EditedFrame;
/** A message was deleted (its author, a moderator, or `by: "system"` for a backend); history keeps a tombstone. */
export type DeletedFrame = Wire.DeletedFrame;
/** Someone is typing in a room (`roomId`) or to this user (`toUserId`): show it for a few seconds. */
export type TypingFrame = Wire.TypingFrame;
/**
 * A reaction added (or `removed`) by `userId`; `count` is the emoji's count on the message after
 * it, `version` the message's reaction version at that count (messages.ts ignores a frame not newer
 * than what it applied). The server's frame with `version` optional: a frame without one (from a
 * server before it) is applied as it comes.
 */
export type ReactionFrame = Omit<Wire.ReactionFrame, "version"> & { readonly version?: number };
/** A read position moved forward: this user's other device, or (rooms sharing read receipts) another member. */
export type ReadFrame = Wire.ReadFrame;
export type Member = JoinedFrame["members"][number];
export type RoomSummary = RoomsFrame["rooms"][number];
/**
 * A stored message as `history` returns it: a room message or a private one. `kind` is "system"
 * for a notice pushed by a backend (docs/protocol.md "system"); absent for users' messages.
 */
export type HistoryMessage = Wire.HistoryEntry;
/**
 * A notice from a backend service (docs/push.md): to a room, or to every device of this user. The
 * server's frame without `from`, which is always "system" and says nothing `type` does not.
 */
export type SystemFrame = Omit<Wire.SystemFrame, "from">;
/**
 * The server's error frame, with `code` widened to a string so that a code added later on the
 * server still shows in an older client (today's codes: ERROR_CODES).
 */
export type ErrorFrame = Omit<WireErrorFrame, "code"> & { readonly code: string };
/**
 * API Gateway's own answers, which carry no `type`: `{"message":"Internal server error",...}` when
 * an integration fails or times out, `{"message":"Forbidden",...}` when no route matches
 * (AWS-FACTS "Routing"). Not the server's: a client-side type.
 */
export interface GatewayFrame {
  readonly type: "gateway";
  readonly message: string;
  readonly connectionId?: string;
  readonly requestId?: string;
}

export type ServerFrame =
  | ChatFrame
  | PresenceFrame
  | JoinedFrame
  | LeftFrame
  | PrivateFrame
  | DeliveredFrame
  | RoomsFrame
  | HistoryFrame
  | SystemFrame
  | EditedFrame
  | DeletedFrame
  | TypingFrame
  | ReactionFrame
  | ReadFrame
  | PongFrame
  | KickedFrame
  | UserKickedFrame
  | ErrorFrame
  | GatewayFrame;

/** What the parser returns for text that is not a frame this client understands. */
export interface InvalidFrame {
  readonly type: "invalid";
  readonly reason: string;
  readonly raw: string;
}

// ---------------------------------------------------------------------------------------------
// Frames a client sends

/** Frames about a room or a private conversation: their schemas require exactly one of roomId and withUserId. */
type TargetedType = "history" | "edit" | "delete" | "typing" | "react";
/** One targeted frame, narrowed to what the schema's refinement requires: a room, or another user. */
type Targeted<T extends TargetedType> =
  | (Omit<Extract<Wire.ClientFrameInput, { type: T }>, "roomId" | "withUserId"> & { roomId: string })
  | (Omit<Extract<Wire.ClientFrameInput, { type: T }>, "roomId" | "withUserId"> & { withUserId: string });
/**
 * A frame the server's schemas accept (handlers/lib/frames.ts ClientFrameInput), with `history`,
 * `edit` and `delete` narrowed to what their schemas' refinement requires: exactly one of roomId
 * and withUserId.
 */
export type ClientFrame =
  | Exclude<Wire.ClientFrameInput, { type: TargetedType }>
  | Targeted<"history">
  | Targeted<"edit">
  | Targeted<"delete">
  | Targeted<"typing">
  | Targeted<"react">;

/** UTF-8 length of a string without TextEncoder allocations (works in Node and browsers alike). */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** Serializes a frame, or explains why it cannot be sent (larger than one API Gateway frame). */
export function encodeFrame(frame: ClientFrame): { ok: true; text: string } | { ok: false; reason: string } {
  const text = JSON.stringify(frame);
  const size = utf8Length(text);
  if (size > MAX_FRAME_BYTES) {
    return { ok: false, reason: `frame is ${size} bytes; API Gateway accepts at most ${MAX_FRAME_BYTES} bytes per frame` };
  }
  return { ok: true, text };
}

// ---------------------------------------------------------------------------------------------
// Parsing what the server sends

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (o: Json, k: string): string | undefined => (typeof o[k] === "string" ? (o[k] as string) : undefined);
const num = (o: Json, k: string): number | undefined => (typeof o[k] === "number" && Number.isFinite(o[k]) ? (o[k] as number) : undefined);

/** `sentAt` as an ISO string whether the server sends an ISO string or epoch milliseconds. */
function timestamp(o: Json, k: string): string | undefined {
  const s = str(o, k);
  if (s !== undefined) return s;
  const n = num(o, k);
  return n === undefined ? undefined : new Date(n).toISOString();
}

class Missing extends Error {}

function need<T>(value: T | undefined, field: string): T {
  if (value === undefined) throw new Missing(`field "${field}" is missing or has the wrong type`);
  return value;
}

function parseMember(v: unknown): Member {
  if (!isObject(v)) throw new Missing("member is not an object");
  const userId = need(str(v, "userId"), "members[].userId");
  return { userId, username: str(v, "username") ?? userId };
}

function parseHistoryMessage(v: unknown): HistoryMessage {
  if (!isObject(v)) throw new Missing("history message is not an object");
  const userId = need(str(v, "userId") ?? str(v, "fromUserId"), "messages[].userId");
  const toUserId = str(v, "toUserId");
  const clientMessageId = str(v, "clientMessageId");
  const system = str(v, "kind") === "system";
  const editedAt = str(v, "editedAt");
  const deleted = v.deleted === true;
  const reactions = parseReactions(v.reactions);
  const reactionsVersion = count(v, "reactionsVersion");
  return {
    messageId: need(str(v, "messageId"), "messages[].messageId"),
    message: need(str(v, "message"), "messages[].message"),
    sentAt: need(timestamp(v, "sentAt"), "messages[].sentAt"),
    userId,
    username: str(v, "username") ?? str(v, "fromUsername") ?? userId,
    ...(toUserId !== undefined ? { toUserId } : {}),
    ...(clientMessageId !== undefined ? { clientMessageId } : {}),
    ...(system ? { kind: "system" as const } : {}),
    ...(system && isObject(v.data) ? { data: v.data } : {}),
    ...(editedAt !== undefined ? { editedAt } : {}),
    // A tombstone: the text is gone (message ""), who deleted it and when remain.
    ...(deleted ? { deleted: true as const, ...opt("deletedAt", str(v, "deletedAt")), ...opt("deletedBy", str(v, "deletedBy")) } : {}),
    // The server sends none on a tombstone; the clients show none there either (messages.ts).
    ...(reactions !== undefined ? { reactions } : {}),
    ...(reactionsVersion !== undefined ? { reactionsVersion } : {}),
  };
}

const opt = <K extends string>(key: K, value: string | undefined): { [P in K]?: string } =>
  (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };

/** A count the server sends: a non-negative integer, or undefined. */
const count = (o: Json, k: string): number | undefined => {
  const n = num(o, k);
  return n !== undefined && Number.isInteger(n) && n >= 0 ? n : undefined;
};

/**
 * The unread fields of a `rooms` entry or a `joined` reply (issue 18): `unread` (at most 99) and
 * `unreadMore` when there are more (then `unread` is a lower bound). Both absent when the server
 * counted nothing for the room.
 */
function unreadOf(o: Json): { unread?: number; unreadMore?: true } {
  const unread = count(o, "unread");
  return { ...(unread !== undefined ? { unread } : {}), ...(o.unreadMore === true ? { unreadMore: true as const } : {}) };
}

/** A history entry's reactions: well-formed ones only (an emoji and a positive count), in the server's order. */
function parseReactions(v: unknown): NonNullable<HistoryMessage["reactions"]> | undefined {
  if (!Array.isArray(v)) return undefined;
  const reactions = v.flatMap((r) => {
    if (!isObject(r)) return [];
    const emoji = str(r, "emoji");
    const n = count(r, "count");
    if (emoji === undefined || n === undefined || n === 0) return [];
    return [{ emoji, count: n, ...(r.me === true ? { me: true as const } : {}) }];
  });
  return reactions.length > 0 ? reactions : undefined;
}

function parseObject(o: Json): ServerFrame {
  const type = str(o, "type");
  switch (type) {
    case "chat":
      return {
        type,
        roomId: need(str(o, "roomId"), "roomId"),
        messageId: need(str(o, "messageId"), "messageId"),
        userId: need(str(o, "userId"), "userId"),
        username: str(o, "username") ?? need(str(o, "userId"), "userId"),
        message: need(str(o, "message"), "message"),
        sentAt: need(timestamp(o, "sentAt"), "sentAt"),
        ...opt("clientMessageId", str(o, "clientMessageId")),
      };
    case "presence": {
      const event = str(o, "event");
      if (event !== "joined" && event !== "left") throw new Missing(`presence event "${String(o.event)}" is not joined or left`);
      const userId = need(str(o, "userId"), "userId");
      return { type, event, roomId: need(str(o, "roomId"), "roomId"), userId, username: str(o, "username") ?? userId };
    }
    case "joined": {
      const members = Array.isArray(o.members) ? o.members.map(parseMember) : [];
      const count =
        typeof o.memberCount === "number" && Number.isInteger(o.memberCount) && o.memberCount >= members.length
          ? o.memberCount
          : members.length;
      return {
        type,
        roomId: need(str(o, "roomId"), "roomId"),
        members,
        memberCount: count,
        ...(o.membersTruncated === true ? { membersTruncated: true as const } : {}),
        ...unreadOf(o),
        ...opt("readMessageId", str(o, "readMessageId")),
      };
    }
    case "left":
      return { type, roomId: need(str(o, "roomId"), "roomId") };
    case "private": {
      const fromUserId = need(str(o, "fromUserId"), "fromUserId");
      return {
        type,
        messageId: need(str(o, "messageId"), "messageId"),
        fromUserId,
        fromUsername: str(o, "fromUsername") ?? fromUserId,
        toUserId: need(str(o, "toUserId"), "toUserId"),
        message: need(str(o, "message"), "message"),
        sentAt: need(timestamp(o, "sentAt"), "sentAt"),
        ...opt("clientMessageId", str(o, "clientMessageId")),
      };
    }
    case "delivered":
      return {
        type,
        messageId: need(str(o, "messageId"), "messageId"),
        deliveredTo: num(o, "deliveredTo") ?? 0,
        ...opt("clientMessageId", str(o, "clientMessageId")),
      };
    case "rooms": {
      if (!Array.isArray(o.rooms)) throw new Missing(`field "rooms" is not an array`);
      const rooms = o.rooms.map((r): RoomSummary => {
        if (!isObject(r)) throw new Missing("room is not an object");
        return { roomId: need(str(r, "roomId"), "rooms[].roomId"), members: num(r, "members") ?? 0, ...unreadOf(r) };
      });
      return { type, rooms, ...opt("next", str(o, "next")) };
    }
    case "history": {
      if (!Array.isArray(o.messages)) throw new Missing(`field "messages" is not an array`);
      return {
        type,
        messages: o.messages.map(parseHistoryMessage),
        ...opt("roomId", str(o, "roomId")),
        ...opt("withUserId", str(o, "withUserId")),
        ...opt("next", str(o, "next")),
        ...opt("newer", str(o, "newer")),
        ...opt("readMessageId", str(o, "readMessageId")),
      };
    }
    case "typing": {
      const userId = need(str(o, "userId"), "userId");
      const roomId = str(o, "roomId");
      const toUserId = str(o, "toUserId");
      if (roomId === undefined && toUserId === undefined) throw new Missing(`typing names neither "roomId" nor "toUserId"`);
      return { type, userId, username: str(o, "username") ?? userId, ...opt("roomId", roomId), ...opt("toUserId", toUserId) };
    }
    case "reaction":
      return {
        type,
        messageId: need(str(o, "messageId"), "messageId"),
        emoji: need(str(o, "emoji"), "emoji"),
        userId: need(str(o, "userId"), "userId"),
        count: need(count(o, "count"), "count"),
        ...(count(o, "version") !== undefined ? { version: count(o, "version") } : {}),
        ...(o.removed === true ? { removed: true as const } : {}),
        ...opt("roomId", str(o, "roomId")),
        ...opt("fromUserId", str(o, "fromUserId")),
        ...opt("toUserId", str(o, "toUserId")),
      };
    case "read": {
      const userId = need(str(o, "userId"), "userId");
      return {
        type,
        roomId: need(str(o, "roomId"), "roomId"),
        userId,
        username: str(o, "username") ?? userId,
        messageId: need(str(o, "messageId"), "messageId"),
      };
    }
    case "system":
      return {
        type,
        messageId: need(str(o, "messageId"), "messageId"),
        message: need(str(o, "message"), "message"),
        sentAt: need(timestamp(o, "sentAt"), "sentAt"),
        ...opt("roomId", str(o, "roomId")),
        ...opt("toUserId", str(o, "toUserId")),
        ...(isObject(o.data) ? { data: o.data } : {}),
      };
    case "edited":
      return {
        type,
        messageId: need(str(o, "messageId"), "messageId"),
        message: need(str(o, "message"), "message"),
        editedAt: need(timestamp(o, "editedAt"), "editedAt"),
        userId: need(str(o, "userId"), "userId"),
        ...opt("roomId", str(o, "roomId")),
        ...opt("fromUserId", str(o, "fromUserId")),
        ...opt("toUserId", str(o, "toUserId")),
      };
    case "deleted":
      return {
        type,
        messageId: need(str(o, "messageId"), "messageId"),
        by: need(str(o, "by"), "by"),
        deletedAt: need(timestamp(o, "deletedAt"), "deletedAt"),
        ...opt("roomId", str(o, "roomId")),
        ...opt("fromUserId", str(o, "fromUserId")),
        ...opt("toUserId", str(o, "toUserId")),
      };
    case "pong":
      return { type };
    case "kicked":
      return { type, roomId: need(str(o, "roomId"), "roomId"), by: need(str(o, "by"), "by"), until: need(timestamp(o, "until"), "until") };
    case "userKicked":
      return {
        type,
        roomId: need(str(o, "roomId"), "roomId"),
        userId: need(str(o, "userId"), "userId"),
        until: need(timestamp(o, "until"), "until"),
        connections: num(o, "connections") ?? 0,
      };
    case "error":
      return {
        type,
        code: str(o, "code") ?? "INTERNAL",
        message: str(o, "message") ?? "(no message)",
        ...opt("requestType", str(o, "requestType")),
        ...opt("clientMessageId", str(o, "clientMessageId")),
        ...opt("roomId", str(o, "roomId")),
      };
    case undefined:
      if (str(o, "message") !== undefined) {
        return {
          type: "gateway",
          message: str(o, "message") as string,
          ...opt("connectionId", str(o, "connectionId")),
          ...opt("requestId", str(o, "requestId")),
        };
      }
      throw new Missing(`frame has no "type"`);
    default:
      throw new Missing(`unknown frame type "${type}"`);
  }
}

/** Parses one incoming text frame. Never throws: malformed input becomes an `invalid` value. */
export function parseServerFrame(raw: string): ServerFrame | InvalidFrame {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return { type: "invalid", reason: "not JSON", raw };
  }
  if (!isObject(value)) return { type: "invalid", reason: "not a JSON object", raw };
  try {
    return parseObject(value);
  } catch (err) {
    if (err instanceof Missing) return { type: "invalid", reason: err.message, raw };
    throw err;
  }
}

/**
 * The connect URL: `{endpoint}?token=<JWT>&roomId=<room>&username=<display name>` (docs/protocol.md
 * "Connect"). Browsers cannot set headers on a WebSocket, hence the query-string token (AWS-FACTS
 * "Routing": REQUEST authorizer identity source).
 */
export function connectUrl(endpoint: string, params: { token: string; roomId?: string; username?: string }): string {
  const url = new URL(endpoint);
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    throw new TypeError(`endpoint must be a ws:// or wss:// URL, got "${endpoint}"`);
  }
  url.searchParams.set("token", params.token);
  if (params.roomId) url.searchParams.set("roomId", params.roomId);
  if (params.username) url.searchParams.set("username", params.username);
  return url.toString();
}

/** A client-side id for idempotent retries: the server stores a retried (userId, clientMessageId) once. */
export function newClientMessageId(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 12)}`;
}

/**
 * The `sub`, display-name and `moderates` claims of a JWT, read WITHOUT verifying it: only to show
 * who the user is, to recognise their own messages, and to offer moderators their buttons. The
 * server verifies the token and decides; nothing here trusts it.
 */
export function unverifiedClaims(token: string): { sub?: string; name?: string; moderates?: readonly string[] } {
  const parts = token.split(".");
  if (parts.length !== 3) return {};
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    const payload = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    if (!isObject(payload)) return {};
    const name = str(payload, "name") ?? str(payload, "username");
    const sub = str(payload, "sub");
    const moderates = Array.isArray(payload.moderates) ? payload.moderates.filter((p): p is string => typeof p === "string") : undefined;
    return {
      ...(sub !== undefined ? { sub } : {}),
      ...(name !== undefined ? { name } : {}),
      ...(moderates !== undefined ? { moderates } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Whether a room matches one of the token's room patterns (docs/protocol.md "Room access": an exact
 * room id, a prefix followed by `*`, or `*`), compared as strings like the server does. For the user
 * interface only (which buttons to offer): the server decides.
 */
export function roomMatches(patterns: readonly string[], roomId: string): boolean {
  return patterns.some((p) => p === "*" || (p.endsWith("*") ? roomId.startsWith(p.slice(0, -1)) : p === roomId));
}
