/** Log sink of the local runtime: the gateway's own events and every line the functions write. */

export type LogLevel = "debug" | "info" | "warn" | "error";

export interface LogEntry {
  readonly level: LogLevel;
  /** runtime: the gateway and function host; function: a line a function wrote (as CloudWatch Logs would hold it). */
  readonly source: "runtime" | "function";
  readonly function?: string;
  readonly message: string;
  readonly data?: Readonly<Record<string, unknown>>;
}

export type Logger = (entry: LogEntry) => void;

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export const silentLogger: Logger = () => undefined;

/** Human-readable lines on stderr, from `minLevel` up. Function lines are printed as the function wrote them. */
export function consoleLogger(minLevel: LogLevel = "info", write: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): Logger {
  return (e) => {
    if (ORDER[e.level] < ORDER[minLevel]) return;
    const who = e.function ? `[${e.function}]` : "[gateway]";
    const body = e.source === "function" && e.data ? JSON.stringify(e.data) : e.message;
    write(`${new Date().toISOString()} ${e.level.toUpperCase().padEnd(5)} ${who} ${body}`);
  };
}
