/**
 * Client-facing error codes of the wire protocol (docs/protocol.md) and the error object that
 * carries one through the handler. Plain functions instead of an Error subclass: module scope
 * stays plain so CallbackFunction can serialize it (handlers/index.ts).
 */

export type ErrorCode =
  | "BAD_REQUEST"
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
}

export function chatError(code: ErrorCode, message: string): ChatError {
  const err = new Error(message) as Error & { code: ErrorCode };
  err.name = "ChatError";
  err.code = code;
  return err as ChatError;
}

export function isChatError(err: unknown): err is ChatError {
  return err instanceof Error && err.name === "ChatError" && typeof (err as { code?: unknown }).code === "string";
}

/** The `error` frame (docs/protocol.md). */
export interface ErrorFrame {
  readonly type: "error";
  readonly code: ErrorCode;
  readonly message: string;
  readonly requestType?: string;
  readonly clientMessageId?: string;
}

export function errorFrame(code: ErrorCode, message: string, requestType?: string, clientMessageId?: string): ErrorFrame {
  return {
    type: "error",
    code,
    message,
    ...(requestType !== undefined ? { requestType } : {}),
    ...(clientMessageId !== undefined ? { clientMessageId } : {}),
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
