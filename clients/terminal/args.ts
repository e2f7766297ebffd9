/**
 * Command-line arguments of the terminal client:
 *   npm run client -- <endpoint> [--token <jwt> | --user <userId>] [--name <display>] [--room <room>]
 */

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

const VALUE_FLAGS = new Set(["--token", "--user", "--name", "--room", "--ping-interval"]);

export function parseArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): ParsedArgs {
  const values: Record<string, string> = {};
  const positional: string[] = [];
  let color = true;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") return { ok: false, help: true, message: USAGE };
    if (arg === "--no-color") {
      color = false;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = arg.startsWith("--") && eq > 0 ? arg.slice(0, eq) : arg;
    if (VALUE_FLAGS.has(flag)) {
      const value = eq > 0 && flag !== arg ? arg.slice(eq + 1) : argv[++i];
      if (value === undefined || value === "" || (flag === arg && value.startsWith("--"))) {
        return { ok: false, help: false, message: `${flag} needs a value` };
      }
      values[flag.slice(2)] = value;
      continue;
    }
    if (arg.startsWith("-")) return { ok: false, help: false, message: `unknown option ${arg}` };
    positional.push(arg);
  }
  if (positional.length !== 1) {
    return { ok: false, help: false, message: positional.length === 0 ? "the endpoint is missing" : `unexpected argument ${positional[1]}` };
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
