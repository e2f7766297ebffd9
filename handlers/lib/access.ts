/**
 * Room access from the token (issue 16): which rooms a user may join, post to, read and see listed,
 * and which they moderate, decided statelessly by the user's own backend through the token it
 * issues (as Ably's capability tokens and Pusher's private channels do).
 *
 * - Claim `rooms`: an array of room patterns; claim `moderates`: patterns of rooms the user
 *   moderates (moderating implies access). A pattern is an exact room id, a prefix followed by `*`
 *   (`"team-*"`), or `"*"` for every room. Patterns are compared as strings (equality or
 *   `startsWith`), never turned into regular expressions.
 * - Without the `rooms` claim the deployment decides (`roomAccess`): `open` grants every room,
 *   `token` grants none (a `moderates` claim still grants what it names).
 *
 * The authorizer validates the claims (parseAccessClaims: a bad claim refuses the handshake) and
 * passes them to every route in its context as comma-joined text (patterns contain no comma);
 * the routes read them back with accessFromContext. Plain functions and constants only (closure
 * serialization).
 */
import type { AuthorizerContext } from "../events";

/** The most patterns a claim may hold: the authorizer's context travels with every frame. */
export const MAX_ACCESS_PATTERNS = 50;
/** A room id (frames.ts ROOM_ID_PATTERN), optionally followed by `*`; or `*` alone. */
const PATTERN = /^(?:\*|[A-Za-z0-9_-]{1,64}|[A-Za-z0-9_-]{1,63}\*)$/;

/** How a deployment treats a token without the `rooms` claim (stack config `roomAccess`). */
export type RoomAccessMode = "open" | "token";

export interface Access {
  /** Patterns of rooms granted by the token, or undefined when the token has no `rooms` claim. */
  readonly rooms?: readonly string[];
  /** Patterns of rooms the user moderates (empty when the claim is absent). */
  readonly moderates: readonly string[];
}

/** Why a claim was refused (the authorizer logs it; the client only sees the refused handshake). */
export interface AccessClaimProblem {
  readonly problem: string;
}

export function matchesPattern(pattern: string, roomId: string): boolean {
  if (pattern === "*") return true;
  if (pattern.endsWith("*")) return roomId.startsWith(pattern.slice(0, -1));
  return pattern === roomId;
}

function matchesAny(patterns: readonly string[], roomId: string): boolean {
  return patterns.some((p) => matchesPattern(p, roomId));
}

/** May the user join, post to, read and see this room? */
export function canAccess(access: Access, mode: RoomAccessMode, roomId: string): boolean {
  if (matchesAny(access.moderates, roomId)) return true;
  if (access.rooms === undefined) return mode === "open";
  return matchesAny(access.rooms, roomId);
}

/** Does the user moderate this room? */
export function canModerate(access: Access, roomId: string): boolean {
  return matchesAny(access.moderates, roomId);
}

function parsePatterns(name: string, value: unknown): readonly string[] | AccessClaimProblem {
  if (!Array.isArray(value)) return { problem: `${name} is not an array` };
  if (value.length > MAX_ACCESS_PATTERNS) return { problem: `${name} has more than ${MAX_ACCESS_PATTERNS} patterns` };
  const out: string[] = [];
  for (const p of value) {
    if (typeof p !== "string" || !PATTERN.test(p)) return { problem: `${name} holds an invalid pattern` };
    if (!out.includes(p)) out.push(p);
  }
  return out;
}

function isProblem(v: unknown): v is AccessClaimProblem {
  return typeof v === "object" && v !== null && "problem" in v;
}

/** The access a verified token's payload grants, or the problem that refuses it. */
export function parseAccessClaims(payload: Readonly<Record<string, unknown>>): Access | AccessClaimProblem {
  const rooms = payload.rooms === undefined ? undefined : parsePatterns("rooms", payload.rooms);
  if (isProblem(rooms)) return rooms;
  const moderates = payload.moderates === undefined ? [] : parsePatterns("moderates", payload.moderates);
  if (isProblem(moderates)) return moderates;
  return rooms === undefined ? { moderates } : { rooms, moderates };
}

/**
 * A comma-separated list of patterns as a person types it (`npm run token -- --rooms 'a,team-*'`,
 * the local token endpoint): the claim's array, or the problem with it. An empty text is an empty
 * claim (no room).
 */
export function parsePatternList(name: string, text: string): readonly string[] | AccessClaimProblem {
  const items = text.trim() === "" ? [] : text.split(",").map((p) => p.trim());
  const parsed = parsePatterns(name, items);
  return isProblem(parsed) ? { problem: `${parsed.problem} (each an exact room id, a prefix ending in *, or *)` } : parsed;
}

export function isAccessClaimProblem<T>(v: T | AccessClaimProblem): v is AccessClaimProblem {
  return isProblem(v);
}

/** The authorizer context entries that carry the access (absent claim: no entry). */
export function accessContext(access: Access): { rooms?: string; moderates?: string } {
  return {
    ...(access.rooms !== undefined ? { rooms: access.rooms.join(",") } : {}),
    ...(access.moderates.length > 0 ? { moderates: access.moderates.join(",") } : {}),
  };
}

/**
 * The access of a connection, read back from its authorizer context. An entry that is not what the
 * authorizer writes grants nothing (fail closed): an empty or malformed `rooms` is "no room".
 */
export function accessFromContext(context: AuthorizerContext | undefined): Access {
  const split = (v: unknown): string[] => (typeof v === "string" && v !== "" ? v.split(",").filter((p) => PATTERN.test(p)) : []);
  const rooms = context?.rooms;
  return rooms === undefined ? { moderates: split(context?.moderates) } : { rooms: split(rooms), moderates: split(context?.moderates) };
}
