/**
 * Command-line arguments of the terminal client:
 *   npm run client -- <endpoint> [--token <jwt> | --user <userId>] [--name <display>] [--room <room>]
 */

import { parseArgs as parseCommandLine } from "node:util";

export { unverifiedClaims } from "../shared/protocol";

/** Exit codes (docs/clients.md). */
export const EXIT = {
  /** `/quit`, end of input, or Ctrl-C. */
  ok: 0,
  /** An unexpected failure inside the client. */
  internal: 1,
  /** Bad command-line arguments. */
  usage: 2,
  /** The first connection could not be opened (endpoint unreachable or not a chat API). */
  unreachable: 3,
  /** The handshake was refused with 401/403 (token missing, invalid, expired), or no token could be minted. */
  rejected: 4,
  /** The connection dropped and every reconnection attempt failed. */
  connectionLost: 5,
} as const;

export const USAGE = `usage: npm run client -- <endpoint> [--token <jwt> | --user <userId>] [--name <display name>] [--room <room>]

  <endpoint>        ws:// or wss:// URL of the API stage, e.g. ws://127.0.0.1:3001/local
                    or wss://abc123.execute-api.eu-west-1.amazonaws.com/dev
  --token <jwt>     a token the API accepts (for a deployed stack: from your identity provider,
                    or signed with the stack's generated secret: README, "Deploy, use, destroy")
  --user <userId>   mint a local token for <userId> (local runtime only)
  --name <name>     display name (default: the token's name claim, or the user id)
  --room <room>     room to join on connect (default: general)
  --ping-interval <seconds>
                    seconds between pings (default 300: half of API Gateway's 10-minute idle timeout)
  --no-color        plain output even on a terminal
  --help            this text

Environment: CHAT_TOKEN is used when neither --token nor --user is given.
Exit codes: 0 quit, 1 internal error, 2 usage, 3 endpoint unreachable, 4 token refused,
5 connection lost and reconnection gave up.`;

export interface CliArgs {
  readonly endpoint: string;
  readonly token?: string;
  readonly user?: string;
  readonly name?: string;
  readonly room?: string;
  /** Milliseconds between pings. */
  readonly pingIntervalMs?: number;
  readonly color: boolean;
}

export type ParsedArgs = { ok: true; args: CliArgs } | { ok: false; help: boolean; message: string };

const OPTIONS = {
  token: { type: "string" },
  user: { type: "string" },
  name: { type: "string" },
  room: { type: "string" },
  "ping-interval": { type: "string" },
  "no-color": { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * util.parseArgs's error in this client's words (the scripts share scripts/commandLine.ts; the client
 * keeps its own copy so that clients/ depends on nothing outside it).
 */
function usageMessage(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown };
  const message = String(e?.message ?? "");
  const option = /'(-[^' ]*)/.exec(message)?.[1] ?? "";
  if (e?.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") return `unknown option ${option}`;
  if (e?.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE")
    return /does not take an argument/.test(message) ? `${option} takes no value` : `${option} needs a value`;
  if (e?.code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") return `unexpected argument ${/'([^']*)'/.exec(message)?.[1] ?? ""}`;
  return message;
}

export function parseArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): ParsedArgs {
  let parsed: ReturnType<typeof parseCommandLine<{ args: string[]; options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseCommandLine({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    if (argv.includes("--help") || argv.includes("-h")) return { ok: false, help: true, message: USAGE };
    return { ok: false, help: false, message: usageMessage(err) };
  }
  const { values, positionals: positional } = parsed;
  if (values.help) return { ok: false, help: true, message: USAGE };
  const color = !values["no-color"];
  for (const flag of ["token", "user", "name", "room", "ping-interval"] as const) {
    if (values[flag] === "") return { ok: false, help: false, message: `--${flag} needs a value` };
  }
  if (positional.length !== 1) {
    return {
      ok: false,
      help: false,
      message: positional.length === 0 ? "the endpoint is missing" : `unexpected argument ${positional[1]}`,
    };
  }
  const endpoint = positional[0];
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    return { ok: false, help: false, message: `the endpoint "${endpoint}" is not a URL` };
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") {
    return { ok: false, help: false, message: `the endpoint must start with ws:// or wss://, got "${endpoint}"` };
  }
  if (values.token && values.user) return { ok: false, help: false, message: "give either --token or --user, not both" };
  let pingIntervalMs: number | undefined;
  if (values["ping-interval"] !== undefined) {
    const seconds = Number(values["ping-interval"]);
    // Above 540 s a ping could arrive after API Gateway's 10-minute idle timeout has cut the connection.
    if (!Number.isFinite(seconds) || seconds < 0.1 || seconds > 540) {
      return { ok: false, help: false, message: "--ping-interval must be a number of seconds from 0.1 to 540" };
    }
    pingIntervalMs = Math.round(seconds * 1000);
  }
  const token = values.token ?? (values.user ? undefined : env.CHAT_TOKEN || undefined);
  if (!token && !values.user) return { ok: false, help: false, message: "give --token <jwt> or --user <userId> (or set CHAT_TOKEN)" };
  return {
    ok: true,
    args: {
      endpoint,
      color,
      ...(token ? { token } : {}),
      ...(values.user ? { user: values.user } : {}),
      ...(values.name ? { name: values.name } : {}),
      ...(values.room ? { room: values.room.replace(/^#/, "") } : {}),
      ...(pingIntervalMs !== undefined ? { pingIntervalMs } : {}),
    },
  };
}
