/**
 * Client-facing error codes of the wire protocol (docs/protocol.md) and the errors deployed code
 * throws. One style everywhere a deployed function can throw: a factory that makes a plain `Error`
 * and names it (`namedError`), with an `isX()` guard that reads the name. No `Error` subclass:
 * Pulumi's closure serializer rewrites classes into functions, and a serialized subclass of `Error`
 * loses its message and stack (`super(message)` initialises a different object), so a function on
 * AWS would log nothing useful (tests/handlers/serialize.test.ts runs the serialized archives).
 *
 * - `chatError(code, message)`: meant for the client; the message is safe to send back.
 * - `configurationError(message)` (handlers/env.ts): the function's environment is unusable.
 * - `internalError(message)`: a broken invariant; logged, answered `INTERNAL`.
 * - `unauthorizedError()`: the authorizer's 401 (API Gateway's documented "Unauthorized").
 */

/** A plain `Error` with this name and these fields: the one way deployed code makes an error. */
export function namedError(name: string, message: string, fields: Readonly<Record<string, unknown>> = {}): Error {
  const err = new Error(message);
  err.name = name;
  Object.assign(err, fields);
  return err;
}

export type ErrorCode =
  | "BAD_REQUEST"
  | "FORBIDDEN"
  | "NOT_FOUND"
  | "NOT_A_MEMBER"
  | "NOT_CONNECTED"
  | "TOKEN_EXPIRED"
  | "RATE_LIMITED"
  | "TOO_LARGE"
  | "UNKNOWN_TYPE"
  | "BAD_JSON"
  | "INTERNAL";

export const ERROR_CODES: readonly ErrorCode[] = [
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
];

/** An error meant for the client: its message is safe to send back. */
export interface ChatError extends Error {
  readonly name: "ChatError";
  readonly code: ErrorCode;
  /** The room a FORBIDDEN refers to (the error frame carries it); absent for a private conversation's. */
  readonly roomId?: string;
}

export function chatError(code: ErrorCode, message: string): ChatError {
  return namedError("ChatError", message, { code }) as ChatError;
}

/**
 * FORBIDDEN: the connection's token does not grant this room (access.ts canAccess), or (with
 * `message`) the caller may not change that message in it: not its author, nor its moderator.
 */
export function forbiddenError(roomId: string, message = `you do not have access to room ${roomId}`): ChatError {
  return namedError("ChatError", message, { code: "FORBIDDEN", roomId }) as ChatError;
}

/**
 * NOT_FOUND for a retried `chat` or `private` (same clientMessageId) whose message was deleted since
 * it was stored: it is not stored again, and its text cannot be returned (docs/protocol.md, "Idempotency").
 */
export function retriedDeleted(messageId: string): ChatError {
  return chatError("NOT_FOUND", `message ${messageId} with this clientMessageId was deleted; it is not sent again`);
}

/** FORBIDDEN: a moderation frame (kick) for a room the connection's token does not name in `moderates`. */
export function notModeratorError(roomId: string): ChatError {
  return namedError("ChatError", `you do not moderate room ${roomId}`, { code: "FORBIDDEN", roomId }) as ChatError;
}

/** FORBIDDEN: the user was kicked from the room and the restriction lasts until `untilMs` (data.ts kickKey). */
export function kickedError(roomId: string, untilMs: number): ChatError {
  const until = new Date(untilMs).toISOString();
  return namedError("ChatError", `you were removed from room ${roomId} by a moderator; you can join it again from ${until}`, {
    code: "FORBIDDEN",
    roomId,
  }) as ChatError;
}

export function isChatError(err: unknown): err is ChatError {
  return err instanceof Error && err.name === "ChatError" && typeof (err as { code?: unknown }).code === "string";
}

/** A broken invariant (a bug, or a record that changed under us): never the client's fault. */
export interface InternalError extends Error {
  readonly name: "InternalError";
}

export function internalError(message: string): InternalError {
  return namedError("InternalError", message) as InternalError;
}

export function isInternalError(err: unknown): err is InternalError {
  return err instanceof Error && err.name === "InternalError";
}

/**
 * What a Lambda authorizer throws for API Gateway to answer 401: an error whose message is exactly
 * "Unauthorized" (API Gateway matches the message; the name stays "Error" as documented).
 */
export function unauthorizedError(): Error {
  return new Error("Unauthorized");
}

export function isUnauthorizedError(err: unknown): boolean {
  return err instanceof Error && err.message === "Unauthorized";
}

/** The `error` frame (docs/protocol.md). */
export interface ErrorFrame {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
  readonly requestType?: string;
  readonly clientMessageId?: string;
  /** FORBIDDEN only: the room the token does not grant, or in which the message may not be changed. */
  readonly roomId?: string;
}

export function errorFrame(code: ErrorCode, message: string, requestType?: string, clientMessageId?: string, roomId?: string): ErrorFrame {
  return {
    type: "error",
    code,
    message,
    ...(requestType !== undefined ? { requestType } : {}),
    ...(clientMessageId !== undefined ? { clientMessageId } : {}),
    ...(roomId !== undefined ? { roomId } : {}),
  };
}

/** Name of an AWS SDK v3 error (service exceptions carry it as `name`). */
export function errorName(err: unknown): string | undefined {
  return err instanceof Error || (typeof err === "object" && err !== null) ? (err as { name?: string }).name : undefined;
}

/** HTTP status of an AWS SDK v3 service error, if any. */
export function httpStatus(err: unknown): number | undefined {
  const meta = typeof err === "object" && err !== null ? (err as { $metadata?: { httpStatusCode?: number } }).$metadata : undefined;
  return meta?.httpStatusCode;
}
