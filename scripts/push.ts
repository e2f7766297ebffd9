/**
 * `npm run push -- --user <id> | --room <id> [--data <json>] <message>`: sends a `system` frame
 * from the command line through push/index.ts (docs/push.md); `disconnect <userId>`,
 * `ban <userId> --until <time> | --minutes <n>` and `unban <userId>` close a user's connections and
 * ban or unban them; `delete <roomId> <messageId>` (or `delete --between <a>,<b> <messageId>`)
 * deletes a message and `kick <roomId> <userId> [--minutes <n>]` keeps a user out of a room, as
 * "system" (issue 16).
 *
 * The stack's outputs come from `.local/outputs.json` (written by `npm run local`) by default, from
 * `--outputs <file>` (e.g. `pulumi stack output --json > out.json`), or from `--stack <name>`, which
 * runs `pulumi stack output --json --stack <name>`. Locally the outputs name DynamoDB Local
 * (`dynamodbEndpoint`) and the local gateway's `@connections` endpoint, which accept any signature.
 *
 * Exit codes: 0 done (even to nobody online, or a message already deleted), 1 failure (AWS error,
 * unreachable connections, unreadable outputs, a message to delete that does not exist), 2 bad
 * usage (arguments, ids, message size, a ban's end, a kick's minutes).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { namedError } from "../handlers/lib/errors";
import {
  DEFAULT_KICK_MINUTES,
  MAX_BAN_DAYS,
  MAX_KICK_MINUTES,
  createPusher,
  isPushError,
  type BanResult,
  type DeleteResult,
  type DisconnectResult,
  type KickResult,
  type MessageTarget,
  type PushResult,
  type Pusher,
  type PusherOptions,
  type UnbanResult,
} from "../push";
import { isUsageError, parseCommandLine, usageError } from "./commandLine";

export const USAGE = `Usage: npm run push -- (--user <userId> | --room <roomId>) [options] <message>
       npm run push -- disconnect <userId> [options]
       npm run push -- ban <userId> (--until <time> | --minutes <n>) [options]
       npm run push -- unban <userId> [options]
       npm run push -- delete (<roomId> | --between <userA>,<userB>) <messageId> [options]
       npm run push -- kick <roomId> <userId> [--minutes <n>] [options]

Sends a "system" frame to every connection of a user, or to a room (stored in its history first).
disconnect closes every connection of the user (they may connect again at once).
ban refuses the user's handshakes (403) until the given time, then closes their connections.
unban lifts the ban at once.
delete deletes a message of a room, or of the private conversation of two users, as "system":
  history keeps a tombstone, and the room (or both users' devices) receive "deleted".
  Deleting a deleted message is not an error; an unknown one is NOT_FOUND (exit 1).
kick takes every connection of the user out of the room ("kicked", by "system"), and refuses
  their joins for --minutes (default ${DEFAULT_KICK_MINUTES}).

Options:
  --user <userId>        every connection (device) of this user
  --room <roomId>        every connection in this room; the message is kept in the room's history
  --data <json>          a JSON object delivered with the message (e.g. '{"orderId":"o-42"}')
  --until <time>         ban: end of the ban, ISO 8601 with a zone (e.g. 2030-01-31T18:00:00Z)
  --minutes <n>          ban: end of the ban, n minutes from now (1 to ${MAX_BAN_DAYS * 1440}, i.e. ${MAX_BAN_DAYS} days);
                         kick: how long the user stays out (1 to ${MAX_KICK_MINUTES}, i.e. 7 days; default ${DEFAULT_KICK_MINUTES})
  --between <a>,<b>      delete: the private conversation of users a and b (instead of a <roomId>)
  --outputs <file>       stack outputs as JSON (default .local/outputs.json, written by npm run local)
  --stack <name>         read the outputs with \`pulumi stack output --json --stack <name>\`
  --region <region>      AWS region (default: from managementEndpoint, then AWS_REGION)
  --json                 print the result as JSON
  -h, --help             this text

disconnect, ban, unban, delete and kick take no --user or --room: with either, the words are a message.
Exit codes: 0 done, 1 failure, 2 bad usage.
`;

/** Options every command takes: where the stack's outputs are, and how to print. */
interface CommonArgs {
  readonly outputs?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly json: boolean;
}

/** Today's form: a `system` frame to a user or a room. */
export interface SendArgs extends CommonArgs {
  readonly command: "send";
  readonly target: { readonly kind: "user" | "room"; readonly id: string };
  readonly message: string;
  readonly data?: Record<string, unknown>;
}

export interface DisconnectArgs extends CommonArgs {
  readonly command: "disconnect";
  readonly userId: string;
}

export interface BanArgs extends CommonArgs {
  readonly command: "ban";
  readonly userId: string;
  readonly until: Date;
}

export interface UnbanArgs extends CommonArgs {
  readonly command: "unban";
  readonly userId: string;
}

export interface DeleteArgs extends CommonArgs {
  readonly command: "delete";
  readonly target: MessageTarget;
  readonly messageId: string;
}

export interface KickArgs extends CommonArgs {
  readonly command: "kick";
  readonly roomId: string;
  readonly userId: string;
  /** Absent: the pusher's default (DEFAULT_KICK_MINUTES). */
  readonly minutes?: number;
}

export type PushArgs = SendArgs | DisconnectArgs | BanArgs | UnbanArgs | DeleteArgs | KickArgs;

const COMMON_OPTIONS = {
  outputs: { type: "string" },
  stack: { type: "string" },
  region: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

const PUSH_OPTIONS = {
  user: { type: "string", multiple: true },
  room: { type: "string", multiple: true },
  data: { type: "string" },
  ...COMMON_OPTIONS,
} as const;

const BAN_OPTIONS = { until: { type: "string" }, minutes: { type: "string" }, ...COMMON_OPTIONS } as const;
const DELETE_OPTIONS = { between: { type: "string" }, ...COMMON_OPTIONS } as const;
const KICK_OPTIONS = { minutes: { type: "string" }, ...COMMON_OPTIONS } as const;

const COMMANDS = ["disconnect", "ban", "unban", "delete", "kick"] as const;
type Command = (typeof COMMANDS)[number];

function isCommand(word: string | undefined): word is Command {
  return (COMMANDS as readonly string[]).includes(word ?? "");
}

/** Options that take a value, in any command (the others are flags). */
const VALUE_OPTIONS = new Set(["--user", "--room", "--data", "--outputs", "--stack", "--region", "--until", "--minutes", "--between"]);

/**
 * Where the command word is: the first word that is neither an option nor an option's value,
 * before any `--`, when no --user or --room is given. With --user or --room the line is today's
 * push form whatever its words (so every line that worked before means what it meant); without
 * either, today's form was refused anyway.
 */
function commandIndex(argv: readonly string[]): number | undefined {
  const end = argv.indexOf("--") === -1 ? argv.length : argv.indexOf("--");
  const words = argv.slice(0, end);
  if (words.some((w) => ["--user", "--room"].includes(w.split("=")[0]))) return undefined;
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (w.startsWith("-")) {
      if (VALUE_OPTIONS.has(w)) i++; // `--x value`; `--x=value` is one word
      continue;
    }
    return isCommand(w) ? i : undefined;
  }
  return undefined;
}

function commonArgs(values: { outputs?: string; stack?: string; region?: string; json?: boolean }): CommonArgs {
  const { outputs, stack, region } = values;
  if (outputs !== undefined && stack !== undefined) throw usageError("give at most one of --outputs and --stack");
  return {
    ...(outputs !== undefined ? { outputs } : {}),
    ...(stack !== undefined ? { stack } : {}),
    ...(region !== undefined ? { region } : {}),
    json: values.json ?? false,
  };
}

const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An ISO 8601 date-time with a zone (`Z` or `+hh:mm`) as epoch ms; undefined for anything else,
 * including a calendar date that does not exist (Date would roll `02-31` over into March).
 */
export function parseIsoTime(text: string): number | undefined {
  const m = ISO_TIME.exec(text);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number);
  const ms = Number((m[7] ?? "0").padEnd(3, "0").slice(0, 3));
  if (mo < 1 || mo > 12 || h > 23 || mi > 59 || sec > 59) return undefined;
  if (new Date(Date.UTC(y, mo - 1, d)).getUTCDate() !== d || d < 1) return undefined;
  const zone = m[8];
  const offsetMinutes = zone === "Z" ? 0 : (zone.startsWith("-") ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4, 6)));
  if (zone !== "Z" && (Number(zone.slice(1, 3)) > 23 || Number(zone.slice(4, 6)) > 59)) return undefined;
  return Date.UTC(y, mo - 1, d, h, mi, sec, ms) - offsetMinutes * 60_000;
}

/** `ban`'s end from --until or --minutes: in the future and at most MAX_BAN_DAYS ahead. */
function banUntil(values: { until?: string; minutes?: string }, nowMs: number): Date {
  if ((values.until === undefined) === (values.minutes === undefined))
    throw usageError("ban needs exactly one of --until <time> or --minutes <n>");
  const maxMinutes = MAX_BAN_DAYS * 1440;
  let ms: number;
  if (values.minutes !== undefined) {
    const n = /^\d{1,9}$/.test(values.minutes) ? Number(values.minutes) : Number.NaN;
    if (!(n >= 1 && n <= maxMinutes))
      throw usageError(`--minutes must be an integer from 1 to ${maxMinutes} (${MAX_BAN_DAYS} days), got ${values.minutes}`);
    ms = nowMs + n * 60_000;
  } else {
    const parsed = parseIsoTime(values.until as string);
    if (parsed === undefined)
      throw usageError(`--until must be an ISO 8601 time with a zone (e.g. 2030-01-31T18:00:00Z), got ${values.until}`);
    if (parsed <= nowMs) throw usageError(`--until ${values.until} is not in the future`);
    if (parsed > nowMs + maxMinutes * 60_000) throw usageError(`--until ${values.until} is more than ${MAX_BAN_DAYS} days ahead`);
    ms = parsed;
  }
  return new Date(ms);
}

/** `kick`'s --minutes: an integer from 1 to MAX_KICK_MINUTES (the `kick` frame's bounds), when given. */
function kickMinutes(minutes: string | undefined): number | undefined {
  if (minutes === undefined) return undefined;
  const n = /^\d{1,9}$/.test(minutes) ? Number(minutes) : Number.NaN;
  if (!(n >= 1 && n <= MAX_KICK_MINUTES))
    throw usageError(`--minutes must be an integer from 1 to ${MAX_KICK_MINUTES} (7 days), got ${minutes}`);
  return n;
}

/** `delete (<roomId> | --between <a>,<b>) <messageId> [options]`. */
function parseDelete(rest: readonly string[]): DeleteArgs | undefined {
  const { values, positionals } = parseCommandLine({ args: [...rest], options: DELETE_OPTIONS, allowPositionals: true }, usageError);
  if (values.help) return undefined;
  const common = commonArgs(values);
  if (values.between !== undefined) {
    const users = values.between.split(",");
    if (users.length !== 2 || users.some((u) => u === ""))
      throw usageError(`--between takes two user ids separated by a comma (e.g. alice,bob), got ${values.between}`);
    if (positionals.length === 0) throw usageError("delete needs a <messageId>");
    if (positionals.length > 1) throw usageError(`unexpected argument ${positionals[1]}`);
    return { command: "delete", target: { between: [users[0], users[1]] }, messageId: positionals[0], ...common };
  }
  if (positionals.length < 2)
    throw usageError("delete needs a <roomId> and a <messageId> (or --between <userA>,<userB> and a <messageId>)");
  if (positionals.length > 2) throw usageError(`unexpected argument ${positionals[2]}`);
  return { command: "delete", target: { roomId: positionals[0] }, messageId: positionals[1], ...common };
}

/** `kick <roomId> <userId> [--minutes <n>] [options]`. */
function parseKick(rest: readonly string[]): KickArgs | undefined {
  const { values, positionals } = parseCommandLine({ args: [...rest], options: KICK_OPTIONS, allowPositionals: true }, usageError);
  if (values.help) return undefined;
  if (positionals.length < 2) throw usageError("kick needs a <roomId> and a <userId>");
  if (positionals.length > 2) throw usageError(`unexpected argument ${positionals[2]}`);
  const minutes = kickMinutes(values.minutes);
  return {
    command: "kick",
    roomId: positionals[0],
    userId: positionals[1],
    ...(minutes !== undefined ? { minutes } : {}),
    ...commonArgs(values),
  };
}

/** `disconnect|ban|unban <userId> [options]`, `delete ...`, `kick ...`. */
function parseCommand(command: Command, rest: readonly string[], nowMs: number): PushArgs | undefined {
  if (command === "delete") return parseDelete(rest);
  if (command === "kick") return parseKick(rest);
  const { values, positionals } = parseCommandLine(
    { args: [...rest], options: command === "ban" ? BAN_OPTIONS : COMMON_OPTIONS, allowPositionals: true },
    usageError,
  );
  if (values.help) return undefined;
  if (positionals.length === 0) throw usageError(`${command} needs a <userId>`);
  if (positionals.length > 1) throw usageError(`unexpected argument ${positionals[1]}`);
  const userId = positionals[0];
  const common = commonArgs(values);
  if (command === "ban") return { command, userId, until: banUntil(values as { until?: string; minutes?: string }, nowMs), ...common };
  return { command, userId, ...common };
}

/**
 * Parses the command line (util.parseArgs; a message word that starts with "-" goes after `--`);
 * throws UsageError (exit 2) for anything malformed. Undefined means --help. Without --user or
 * --room, a first word `disconnect`, `ban`, `unban`, `delete` or `kick` is that command; anything
 * else is today's push form.
 */
export function parsePushArgs(argv: readonly string[], nowMs = Date.now()): PushArgs | undefined {
  const at = commandIndex(argv);
  if (at !== undefined) return parseCommand(argv[at] as Command, [...argv.slice(0, at), ...argv.slice(at + 1)], nowMs);
  const { values, positionals } = parseCommandLine({ args: [...argv], options: PUSH_OPTIONS, allowPositionals: true }, usageError);
  if (values.help) return undefined;
  // multiple: true only to refuse a repeated target (util.parseArgs would keep the last one silently).
  if ((values.user?.length ?? 0) > 1) throw usageError("--user given twice");
  if ((values.room?.length ?? 0) > 1) throw usageError("--room given twice");
  const user = values.user?.[0];
  const room = values.room?.[0];
  let data: Record<string, unknown> | undefined;
  if (values.data !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(values.data);
    } catch (err) {
      throw usageError(`--data is not JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw usageError("--data must be a JSON object");
    data = parsed as Record<string, unknown>;
  }
  if ((user === undefined) === (room === undefined)) throw usageError("give exactly one of --user <userId> or --room <roomId>");
  const common = commonArgs(values);
  const message = positionals.join(" ");
  if (message.trim() === "") throw usageError("the message is missing");
  return {
    command: "send",
    target: user !== undefined ? { kind: "user", id: user } : { kind: "room", id: room as string },
    message,
    ...(data !== undefined ? { data } : {}),
    ...common,
  };
}

/** A failure reading the outputs (exit 1): missing file, no Pulumi CLI, a missing output. */
export interface OutputsError extends Error {
  readonly name: "OutputsError";
}

export function outputsError(message: string): OutputsError {
  return namedError("OutputsError", message) as OutputsError;
}

export function isOutputsError(err: unknown): err is OutputsError {
  return err instanceof Error && err.name === "OutputsError";
}

/** Reads the stack outputs as `pulumi stack output --json` prints them. */
export function readOutputs(args: Pick<PushArgs, "outputs" | "stack">, run = spawnSync): Record<string, unknown> {
  let text: string;
  let source: string;
  if (args.stack !== undefined) {
    source = `pulumi stack output --json --stack ${args.stack}`;
    const out = run("pulumi", ["stack", "output", "--json", "--stack", args.stack], { encoding: "utf8", timeout: 60_000 });
    if (out.error) {
      const missing = (out.error as NodeJS.ErrnoException).code === "ENOENT";
      throw outputsError(
        missing
          ? `the Pulumi CLI is not installed here (pulumi not found on PATH). Where it is, run \`pulumi stack output --json --stack ${args.stack} > outputs.json\` and pass --outputs outputs.json`
          : `${source} failed: ${out.error.message}`,
      );
    }
    if (out.status !== 0) throw outputsError(`${source} exited with ${out.status}: ${String(out.stderr).trim()}`);
    text = String(out.stdout);
  } else {
    source = args.outputs ?? path.join(".local", "outputs.json");
    try {
      text = fs.readFileSync(source, "utf8");
    } catch (err) {
      const hint = args.outputs === undefined ? " (start the local API with `npm run local`, or pass --outputs or --stack)" : "";
      throw outputsError(`cannot read ${source}: ${(err as Error).message}${hint}`);
    }
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw outputsError(`${source} is not JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw outputsError(`${source} is not a JSON object of outputs`);
  return parsed as Record<string, unknown>;
}

/** The pusher's options from the outputs' names (index.ts exports; local/runtime.ts outputs()). */
export function pusherOptionsFrom(outputs: Record<string, unknown>, region?: string): PusherOptions {
  const text = (name: string): string => {
    const v = outputs[name];
    if (typeof v !== "string" || v === "") throw outputsError(`the outputs have no "${name}"; are they this chat API stack's outputs?`);
    return v;
  };
  const optionalInt = (name: string): number | undefined => {
    const v = outputs[name];
    if (v === undefined) return undefined;
    const n = typeof v === "number" ? v : Number(v);
    if (!Number.isInteger(n)) throw outputsError(`output "${name}" is not an integer: ${JSON.stringify(v)}`);
    return n;
  };
  const dynamo = outputs.dynamodbEndpoint;
  const maxMessageBytes = optionalInt("maxMessageBytes");
  const messageRetentionHours = optionalInt("messageRetentionHours");
  return {
    connectionsTable: text("connectionsTable"),
    roomsTable: text("roomsTable"),
    messagesTable: text("messagesTable"),
    managementEndpoint: text("managementEndpoint"),
    ...(typeof dynamo === "string" && dynamo !== "" ? { dynamoEndpoint: dynamo } : {}),
    ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}),
    ...(messageRetentionHours !== undefined ? { messageRetentionHours } : {}),
    ...(region !== undefined ? { region } : {}),
  };
}

export function describeResult(args: SendArgs, r: PushResult): string {
  const to = args.target.kind === "user" ? `user ${args.target.id}` : `room ${args.target.id}`;
  const stored = r.stored ? "; stored in the room's history" : "";
  return `pushed to ${to}: messageId ${r.messageId}, ${r.targets} connection(s): delivered ${r.delivered}, gone ${r.gone} (removed), failed ${r.failed}${r.connecting > 0 ? `, still connecting ${r.connecting}` : ""}${stored}`;
}

/** The line printed for disconnect, ban and unban. */
export function describeUserResult(r: DisconnectResult | BanResult | UnbanResult): string {
  if ("lifted" in r) return r.lifted ? `unbanned user ${r.userId}: handshakes are accepted again` : `user ${r.userId} was not banned`;
  const closes = `${r.targets} connection(s): closed ${r.closed}, gone ${r.gone}, failed ${r.failed}`;
  if ("until" in r) return `banned user ${r.userId} until ${r.until} (handshakes refused with 403 until then); ${closes}`;
  return `disconnected user ${r.userId}: ${closes}`;
}

/** The line printed for delete. */
export function describeDeleteResult(args: DeleteArgs, r: DeleteResult): string {
  const where = "roomId" in args.target ? `room ${args.target.roomId}` : `the conversation of ${args.target.between.join(" and ")}`;
  if (r.alreadyDeleted) return `message ${r.messageId} in ${where} was already deleted (by ${r.by} at ${r.deletedAt}): nothing sent`;
  return `deleted message ${r.messageId} in ${where} (by ${r.by}); ${r.targets} connection(s): delivered ${r.delivered}, gone ${r.gone} (removed), failed ${r.failed}${r.connecting > 0 ? `, still connecting ${r.connecting}` : ""}`;
}

/** The line printed for kick. */
export function describeKickResult(r: KickResult): string {
  return `kicked user ${r.userId} from room ${r.roomId} until ${r.until} (joins refused until then); ${r.removed} connection(s) removed from the room`;
}

/** Runs the parsed command; resolves to the line to print and the exit code. */
async function run(pusher: Pusher, args: PushArgs): Promise<{ text: string; json: unknown; code: number }> {
  switch (args.command) {
    case "send": {
      const notice = { message: args.message, ...(args.data ? { data: args.data } : {}) };
      const r = args.target.kind === "user" ? await pusher.toUser(args.target.id, notice) : await pusher.toRoom(args.target.id, notice);
      return { text: describeResult(args, r), json: r, code: r.failed > 0 ? 1 : 0 };
    }
    case "disconnect":
    case "ban": {
      const r = args.command === "ban" ? await pusher.banUser(args.userId, args.until) : await pusher.disconnectUser(args.userId);
      return { text: describeUserResult(r), json: r, code: r.failed > 0 ? 1 : 0 };
    }
    case "unban": {
      const r = await pusher.unbanUser(args.userId);
      return { text: describeUserResult(r), json: r, code: 0 };
    }
    case "delete": {
      const r = await pusher.deleteMessage(args.target, args.messageId);
      return { text: describeDeleteResult(args, r), json: r, code: r.failed > 0 ? 1 : 0 };
    }
    case "kick": {
      const r = await pusher.kick(args.roomId, args.userId, args.minutes);
      return { text: describeKickResult(r), json: r, code: 0 };
    }
  }
}

/** Where main writes: process.stdout and process.stderr, or a test's collector. */
export interface TextSink {
  write(text: string): unknown;
}

export async function main(argv: readonly string[], out: TextSink = process.stdout, err: TextSink = process.stderr): Promise<number> {
  let args: PushArgs | undefined;
  try {
    args = parsePushArgs(argv);
  } catch (e) {
    if (isUsageError(e)) {
      err.write(`push: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  if (!args) {
    out.write(USAGE);
    return 0;
  }
  let pusher: Pusher | undefined;
  try {
    pusher = createPusher(pusherOptionsFrom(readOutputs(args), args.region));
    const result = await run(pusher, args);
    out.write(args.json ? `${JSON.stringify(result.json)}\n` : `${result.text}\n`);
    return result.code;
  } catch (e) {
    if (isPushError(e)) {
      err.write(`push: ${e.code}: ${e.message}\n`);
      return e.code === "BAD_REQUEST" || e.code === "TOO_LARGE" ? 2 : 1;
    }
    if (isOutputsError(e)) {
      err.write(`push: ${e.message}\n`);
      return 1;
    }
    err.write(`push: ${(e as Error).message ?? String(e)}\n`);
    return 1;
  } finally {
    pusher?.close();
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`push: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
