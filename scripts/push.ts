/**
 * `npm run push -- --user <id> | --room <id> [--data <json>] <message>`: sends a `system` frame
 * from the command line through push/index.ts (docs/push.md).
 *
 * The stack's outputs come from `.local/outputs.json` (written by `npm run local`) by default, from
 * `--outputs <file>` (e.g. `pulumi stack output --json > out.json`), or from `--stack <name>`, which
 * runs `pulumi stack output --json --stack <name>`. Locally the outputs name DynamoDB Local
 * (`dynamodbEndpoint`) and the local gateway's `@connections` endpoint, which accept any signature.
 *
 * Exit codes: 0 sent (even to nobody online), 1 failure (AWS error, unreachable connections,
 * unreadable outputs), 2 bad usage (arguments, ids, message size).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { namedError } from "../handlers/lib/errors";
import { createPusher, isPushError, type PushResult, type Pusher, type PusherOptions } from "../push";
import { isUsageError, parseCommandLine, usageError } from "./commandLine";

export const USAGE = `Usage: npm run push -- (--user <userId> | --room <roomId>) [options] <message>

Sends a "system" frame to every connection of a user, or to a room (stored in its history first).

Options:
  --user <userId>        every connection (device) of this user
  --room <roomId>        every connection in this room; the message is kept in the room's history
  --data <json>          a JSON object delivered with the message (e.g. '{"orderId":"o-42"}')
  --outputs <file>       stack outputs as JSON (default .local/outputs.json, written by npm run local)
  --stack <name>         read the outputs with \`pulumi stack output --json --stack <name>\`
  --region <region>      AWS region (default: from managementEndpoint, then AWS_REGION)
  --json                 print the result as JSON
  -h, --help             this text

Exit codes: 0 sent, 1 failure, 2 bad usage.
`;

export interface PushArgs {
  readonly target: { readonly kind: "user" | "room"; readonly id: string };
  readonly message: string;
  readonly data?: Record<string, unknown>;
  readonly outputs?: string;
  readonly stack?: string;
  readonly region?: string;
  readonly json: boolean;
}

const PUSH_OPTIONS = {
  user: { type: "string", multiple: true },
  room: { type: "string", multiple: true },
  data: { type: "string" },
  outputs: { type: "string" },
  stack: { type: "string" },
  region: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses the command line (util.parseArgs; a message word that starts with "-" goes after `--`); throws UsageError (exit 2) for anything malformed. Undefined means --help. */
export function parsePushArgs(argv: readonly string[]): PushArgs | undefined {
  const { values, positionals } = parseCommandLine({ args: [...argv], options: PUSH_OPTIONS, allowPositionals: true }, usageError);
  if (values.help) return undefined;
  // multiple: true only to refuse a repeated target (util.parseArgs would keep the last one silently).
  if ((values.user?.length ?? 0) > 1) throw usageError("--user given twice");
  if ((values.room?.length ?? 0) > 1) throw usageError("--room given twice");
  const user = values.user?.[0];
  const room = values.room?.[0];
  const { outputs, stack, region } = values;
  const json = values.json ?? false;
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
  const words = positionals;
  if ((user === undefined) === (room === undefined)) throw usageError("give exactly one of --user <userId> or --room <roomId>");
  if (outputs !== undefined && stack !== undefined) throw usageError("give at most one of --outputs and --stack");
  const message = words.join(" ");
  if (message.trim() === "") throw usageError("the message is missing");
  return {
    target: user !== undefined ? { kind: "user", id: user } : { kind: "room", id: room as string },
    message,
    ...(data !== undefined ? { data } : {}),
    ...(outputs !== undefined ? { outputs } : {}),
    ...(stack !== undefined ? { stack } : {}),
    ...(region !== undefined ? { region } : {}),
    json,
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

export function describeResult(args: PushArgs, r: PushResult): string {
  const to = args.target.kind === "user" ? `user ${args.target.id}` : `room ${args.target.id}`;
  const stored = r.stored ? "; stored in the room's history" : "";
  return `pushed to ${to}: messageId ${r.messageId}, ${r.targets} connection(s): delivered ${r.delivered}, gone ${r.gone} (removed), failed ${r.failed}${r.connecting > 0 ? `, still connecting ${r.connecting}` : ""}${stored}`;
}

export async function main(argv: readonly string[], out = process.stdout, err = process.stderr): Promise<number> {
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
    const notice = { message: args.message, ...(args.data ? { data: args.data } : {}) };
    const result = args.target.kind === "user" ? await pusher.toUser(args.target.id, notice) : await pusher.toRoom(args.target.id, notice);
    out.write(args.json ? `${JSON.stringify(result)}\n` : `${describeResult(args, result)}\n`);
    return result.failed > 0 ? 1 : 0;
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
