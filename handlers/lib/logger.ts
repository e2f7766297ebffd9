/**
 * Structured JSON logs, one line each on stdout (CloudWatch Logs stores them as they are).
 * Written with process.stdout.write, not console.log, so the Lambda runtime adds no text prefix
 * and each line stays a parsable JSON document. Callers never pass tokens or message bodies.
 */
import type { LogLevel } from "../env";

export type LogFields = Record<string, string | number | boolean | undefined | null | readonly string[]>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields, err?: unknown): void;
  child(fields: LogFields): Logger;
}

function levelRank(level: LogLevel): number {
  return level === "debug" ? 10 : level === "info" ? 20 : level === "warn" ? 30 : 40;
}

/** Only the error's name, message and code: never a request payload the SDK may have attached. */
function describeError(err: unknown): LogFields {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    return {
      errorName: err.name,
      errorMessage: err.message,
      ...(typeof code === "string" ? { errorCode: code } : {}),
      ...(status !== undefined ? { httpStatusCode: status } : {}),
      ...(err.stack ? { stack: err.stack.split("\n").slice(0, 6).join("\n") } : {}),
    };
  }
  return { errorMessage: String(err) };
}

export function createLogger(level: LogLevel, base: LogFields, write?: (line: string) => void): Logger {
  const min = levelRank(level);
  const out = write ?? ((line: string) => void process.stdout.write(`${line}\n`));
  const emit = (lvl: LogLevel, msg: string, fields?: LogFields, err?: unknown) => {
    if (levelRank(lvl) < min) return;
    const record: LogFields = { timestamp: new Date().toISOString(), level: lvl, msg, ...base, ...fields };
    if (err !== undefined) Object.assign(record, describeError(err));
    out(JSON.stringify(record));
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields, err) => emit("error", msg, fields, err),
    child: (fields) => createLogger(level, { ...base, ...fields }, out),
  };
}
