/**
 * Prints an HS256 token the local API accepts:
 *   npm run token -- <userId> [--name <display name>] [--rooms 'a,team-*'] [--moderates 'team-*'] [--ttl <seconds>] [--dir <secret dir>]
 * Signed with the local secret (.local/secret, created if missing); iss "chat-local", aud "chat-api",
 * valid 12 h by default. --rooms and --moderates set the access claims (handlers/lib/access.ts);
 * an invalid pattern is a usage error (exit 2).
 */
import { SignJWT } from "jose";
import { USER_ID_PATTERN } from "../handlers/lib/frames";
import { LOCAL_AUDIENCE, LOCAL_ISSUER, localSecret } from "../local/secret";
import { isAccessClaimProblem, parsePatternList } from "../handlers/lib/access";
import { isUsageError, parseCommandLine, usageError } from "./commandLine";

export interface TokenOptions {
  readonly userId: string;
  readonly name?: string;
  readonly ttlSeconds?: number;
  readonly secret: string;
  readonly issuer?: string;
  readonly audience?: string;
  /** `rooms` claim: room patterns the token grants; absent: no claim (the stack's roomAccess decides). */
  readonly rooms?: readonly string[];
  /** `moderates` claim: patterns of rooms the user moderates. */
  readonly moderates?: readonly string[];
}

export const DEFAULT_TTL_SECONDS = 12 * 3600;

export async function signLocalToken(o: TokenOptions): Promise<string> {
  if (!USER_ID_PATTERN.test(o.userId)) throw new Error(`invalid userId "${o.userId}": 1-128 characters of A-Z a-z 0-9 _ . @ : | + = -`);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.rooms !== undefined ? { rooms: [...o.rooms] } : {}),
    ...(o.moderates !== undefined ? { moderates: [...o.moderates] } : {}),
  })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(o.userId)
    .setIssuer(o.issuer ?? LOCAL_ISSUER)
    .setAudience(o.audience ?? LOCAL_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (o.ttlSeconds ?? DEFAULT_TTL_SECONDS))
    .sign(new TextEncoder().encode(o.secret));
}

const TOKEN_USAGE = `usage: npm run token -- <userId> [--name <display name>] [--rooms <patterns>] [--moderates <patterns>] [--ttl <seconds>] [--dir <secret dir>]
  Prints a token the local runtime accepts (HS256 with .local/secret, iss chat-local, aud chat-api).
  --name <name>    display name claim
  --rooms <list>   rooms claim: comma-separated patterns the token grants, each an exact room id,
                   a prefix ending in * (team-*) or * (every room); '' grants none. Without it the
                   stack's roomAccess decides (open: every room; token: none)
  --moderates <list>  moderates claim: patterns of rooms the user moderates (implies access)
  --ttl <seconds>  lifetime (default 43200: 12 h)
  --dir <dir>      folder holding the secret (default .local)`;

const TOKEN_OPTIONS = {
  name: { type: "string" },
  ttl: { type: "string" },
  dir: { type: "string" },
  rooms: { type: "string" },
  moderates: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export interface TokenArgs {
  readonly userId: string;
  readonly name?: string;
  readonly ttlSeconds?: number;
  readonly dir?: string;
  readonly rooms?: readonly string[];
  readonly moderates?: readonly string[];
}

/** The command line; a malformed one throws a UsageError (exit 2). */
export function parseArgs(argv: readonly string[]): TokenArgs {
  const { values, positionals } = parseCommandLine(
    { args: [...argv], options: TOKEN_OPTIONS, allowPositionals: true },
    usageError,
    `\n${TOKEN_USAGE}`,
  );
  if (values.help) {
    process.stdout.write(`${TOKEN_USAGE}\n`);
    process.exit(0);
  }
  let ttlSeconds: number | undefined;
  if (values.ttl !== undefined) {
    ttlSeconds = Number(values.ttl);
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw usageError("--ttl must be a positive integer (seconds)");
  }
  if (positionals.length !== 1) throw usageError(TOKEN_USAGE);
  const access: { rooms?: readonly string[]; moderates?: readonly string[] } = {};
  for (const name of ["rooms", "moderates"] as const) {
    const text = values[name];
    if (text === undefined) continue;
    const patterns = parsePatternList(name, text);
    if (isAccessClaimProblem(patterns)) throw usageError(`--${name}: ${patterns.problem}`);
    access[name] = patterns;
  }
  return { userId: positionals[0], name: values.name, ttlSeconds, dir: values.dir, ...access };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const token = await signLocalToken({ ...args, secret: localSecret(args.dir) });
  process.stdout.write(`${token}\n`);
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`token: ${err.message}\n`);
    process.exit(isUsageError(err) ? 2 : 1);
  });
}
