/**
 * `npm run local`: the whole chat API on this machine (docs/local.md).
 *
 *   npm run local -- [--port 3001] [--stage local] [--data-dir .local/dynamodb | --in-memory] [--serialized]
 *                    [--management-latency-ms 0] [--idle-timeout-seconds 600] [--max-duration-seconds 7200]
 *                    [--no-web] [--log-level info] [--quiet] [--allowed-origin <origin>]...
 *                    [--room-access open|token] [--read-receipt-rooms <patterns>]
 *
 * Starts DynamoDB Local, creates the stack's tables, builds the web page, starts the gateway, prints
 * how to connect and writes .local/outputs.json. Ctrl-C or SIGTERM stops everything, DynamoDB Local included.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { parseCommandLine, usageError } from "../scripts/commandLine";
import { consoleLogger, silentLogger, type LogLevel } from "./logger";
import type { RoomAccessMode } from "../handlers/lib/access";
import { HANDLER_SETTINGS, settingProblem } from "../handlers/settings";
import { LOCAL_DEFAULTS, startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "./runtime";

/** A malformed command line (exit 2), shared with scripts/push.ts. */
export { isUsageError, usageError, type UsageError } from "../scripts/commandLine";

export interface CliOptions {
  readonly port: number;
  readonly host: string;
  readonly stage: string;
  readonly dataDir: string;
  readonly inMemory: boolean;
  readonly serialized: boolean;
  readonly managementLatencyMs: number;
  readonly idleTimeoutSeconds: number;
  readonly maxDurationSeconds: number;
  readonly web: boolean;
  readonly logLevel: LogLevel;
  readonly quiet: boolean;
  readonly outputs: string;
  /** Browser origins allowed to connect (the stack's allowedOrigins); empty allows any. */
  readonly allowedOrigins: readonly string[];
  /** Rooms a token without the `rooms` claim may use (the stack's roomAccess; prod sets token). */
  readonly roomAccess: RoomAccessMode;
  /** Rooms whose members see each other's read positions (the stack's readReceiptRooms): comma-separated patterns. */
  readonly readReceiptRooms: string;
  readonly help: boolean;
}

/** An origin as browsers send it: scheme, host, optional port, no path (same rule as infra/config.ts). */
const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i;

export const USAGE = `Usage: npm run local -- [options]

Runs the chat API on this machine: DynamoDB Local, the stack's tables, every function in its own
worker with the environment the stack gives it, and an API Gateway-faithful WebSocket endpoint.

Options:
  --port <n>                    gateway port (default 3001; 0 picks a free one)
  --host <ip>                   interface to listen on (default 127.0.0.1)
  --stage <name>                stage, the endpoint's path (default local)
  --data-dir <dir>              DynamoDB Local data folder (default .local/dynamodb, kept across restarts)
  --in-memory                   keep no data (DynamoDB Local in memory)
  --serialized                  run the serialized callback modules pulumi up would upload
  --management-latency-ms <n>   delay added to every @connections call (default 0)
  --idle-timeout-seconds <n>    idle timeout (default 600, as API Gateway)
  --max-duration-seconds <n>    maximum connection duration (default 7200, as API Gateway)
  --no-web                      do not build and serve the web page
  --log-level <level>           debug, info, warn or error (default info)
  --quiet                       print only the connection details
  --outputs <file>              where to write the stack outputs (default .local/outputs.json)
  --allowed-origin <origin>     browser Origin allowed to connect, e.g. https://chat.example.com
                                (repeatable; default: any; clients sending no Origin are always accepted)
  --room-access <mode>          open (default): a token without the rooms claim may use any room;
                                token: it may use none, as prod's stack file sets (docs/deploy.md)
  --read-receipt-rooms <list>   rooms whose members see each other's read positions: comma-separated
                                patterns (an exact id, a prefix ending in *, or *; default none)
  --help                        this text
`;

const CLI_OPTIONS = {
  port: { type: "string" },
  host: { type: "string" },
  stage: { type: "string" },
  "data-dir": { type: "string" },
  "in-memory": { type: "boolean" },
  serialized: { type: "boolean" },
  "management-latency-ms": { type: "string" },
  "idle-timeout-seconds": { type: "string" },
  "max-duration-seconds": { type: "string" },
  "no-web": { type: "boolean" },
  "log-level": { type: "string" },
  quiet: { type: "boolean" },
  outputs: { type: "string" },
  "allowed-origin": { type: "string", multiple: true },
  "room-access": { type: "string" },
  "read-receipt-rooms": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses the command line with util.parseArgs (scripts/commandLine.ts); throws UsageError (exit 2). */
export function parseCliArgs(argv: readonly string[]): CliOptions {
  const o = {
    port: 3001,
    host: "127.0.0.1",
    stage: "local",
    dataDir: path.join(".local", "dynamodb"),
    inMemory: false,
    serialized: false,
    managementLatencyMs: 0,
    idleTimeoutSeconds: 600,
    maxDurationSeconds: 7200,
    web: true,
    logLevel: "info" as LogLevel,
    quiet: false,
    outputs: path.join(".local", "outputs.json"),
    allowedOrigins: [] as string[],
    roomAccess: LOCAL_DEFAULTS.roomAccess as RoomAccessMode,
    readReceiptRooms: LOCAL_DEFAULTS.readReceiptRooms as string,
    help: false,
  };
  const { values } = parseCommandLine({ args: [...argv], options: CLI_OPTIONS }, usageError);
  for (const [name, v] of Object.entries(values)) {
    // util.parseArgs takes `--stage=` as an empty value; an empty value here is always a mistake.
    if (v === "" || (Array.isArray(v) && v.includes(""))) throw usageError(`--${name} needs a value`);
  }
  const int = (
    flag: "port" | "management-latency-ms" | "idle-timeout-seconds" | "max-duration-seconds",
    min: number,
    max: number,
  ): number | undefined => {
    const raw = values[flag];
    if (raw === undefined) return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw usageError(`--${flag} must be an integer from ${min} to ${max}, got "${raw}"`);
    return n;
  };
  o.port = int("port", 0, 65535) ?? o.port;
  if (values.host !== undefined) o.host = values.host;
  if (values.stage !== undefined) {
    o.stage = values.stage;
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(o.stage)) throw usageError("--stage must be 1-128 letters, digits, '-' or '_'");
  }
  if (values["data-dir"] !== undefined) o.dataDir = values["data-dir"];
  if (values["in-memory"]) o.inMemory = true;
  if (values.serialized) o.serialized = true;
  o.managementLatencyMs = int("management-latency-ms", 0, 60_000) ?? o.managementLatencyMs;
  o.idleTimeoutSeconds = int("idle-timeout-seconds", 1, 600) ?? o.idleTimeoutSeconds;
  o.maxDurationSeconds = int("max-duration-seconds", 1, 7200) ?? o.maxDurationSeconds;
  if (values["no-web"]) o.web = false;
  if (values["log-level"] !== undefined) {
    const l = values["log-level"];
    if (l !== "debug" && l !== "info" && l !== "warn" && l !== "error") throw usageError("--log-level must be debug, info, warn or error");
    o.logLevel = l;
  }
  if (values.quiet) o.quiet = true;
  if (values.outputs !== undefined) o.outputs = values.outputs;
  for (const origin of values["allowed-origin"] ?? []) {
    if (!ORIGIN.test(origin)) {
      throw usageError(
        `--allowed-origin must be an origin like https://chat.example.com (scheme, host, optional port; no path), got "${origin}"`,
      );
    }
    o.allowedOrigins.push(origin);
  }
  const mode = values["room-access"];
  if (mode !== undefined) {
    if (mode !== "open" && mode !== "token") throw usageError(`--room-access must be open or token, got "${mode}"`);
    o.roomAccess = mode;
  }
  const receipts = values["read-receipt-rooms"];
  if (receipts !== undefined) {
    const problem = settingProblem(HANDLER_SETTINGS.readReceiptRooms, receipts);
    if (problem !== undefined) throw usageError(`--read-receipt-rooms must be ${problem}, got "${receipts}"`);
    o.readReceiptRooms = receipts;
  }
  if (values.help) o.help = true;
  return o;
}

/** Java 17+ is DynamoDB Local's one requirement: say so plainly instead of a spawn error. */
export function checkJava(): string | undefined {
  const r = spawnSync("java", ["-version"], { encoding: "utf8" });
  if (r.error)
    return "Java is not installed or not on PATH: DynamoDB Local needs Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless)";
  const out = `${r.stderr}${r.stdout}`;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(out);
  if (m) {
    const major = m[1] === "1" ? Number(m[2]) : Number(m[1]);
    if (major < 17) return `Java ${major} found: DynamoDB Local needs Java 17 or newer`;
  }
  return undefined;
}

/** What `npm run local` prints once everything is up. */
export function banner(
  rt: LocalRuntime,
  demo: { userId: string; username: string; token: string },
  outputsFile: string,
  web: boolean,
): string {
  const q = (t: string) => `${rt.endpoint}?userId=${demo.userId}&username=${demo.username}&roomId=general&token=${t}`;
  return [
    "",
    "Chat API running locally",
    `  WebSocket endpoint   ${rt.endpoint}`,
    `  @connections         ${rt.managementEndpoint}/@connections/{connectionId}`,
    web ? `  Web client           ${rt.webUrl}` : "  Web client           (off: --no-web)",
    `  Token endpoint       ${rt.webUrl}_local/token?userId=<id>&name=<display name>   (local only)`,
    `  DynamoDB Local       ${rt.dynamodbEndpoint}   tables ${Object.values(rt.tableNames).join(", ")}`,
    `  Stack outputs        ${outputsFile}`,
    "",
    `Demo user "${demo.userId}" token (valid 2 h):`,
    `  ${demo.token}`,
    "",
    "Connect:",
    `  npx wscat -c '${q(demo.token)}'`,
    `  websocat '${q(demo.token)}'`,
    `  npm run client -- ${rt.endpoint} --user ${demo.userId} --name ${demo.username}`,
    'Then send: {"type":"chat","message":"Hello WebSocket!"}',
    "",
    "Ctrl-C stops everything.",
    "",
  ].join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  let options: CliOptions;
  try {
    options = parseCliArgs(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  // The SDK warns on Node < 22 (Lambda runs nodejs22.x); the warning says nothing about this program.
  if (Number(process.versions.node.split(".")[0]) < 22) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  const javaProblem = checkJava();
  if (javaProblem) {
    process.stderr.write(`npm run local: ${javaProblem}\n`);
    return 1;
  }
  const webDir = path.join(__dirname, "..", "clients", "web", "dist");
  const runtimeOptions: LocalRuntimeOptions = {
    port: options.port,
    host: options.host,
    stage: options.stage,
    dataDir: options.dataDir,
    inMemory: options.inMemory,
    serialized: options.serialized,
    managementLatencyMs: options.managementLatencyMs,
    idleTimeoutMs: options.idleTimeoutSeconds * 1000,
    maxDurationMs: options.maxDurationSeconds * 1000,
    webDir: options.web ? webDir : undefined,
    logger: options.quiet ? silentLogger : consoleLogger(options.logLevel),
    warm: true,
    settings: { allowedOrigins: options.allowedOrigins, roomAccess: options.roomAccess, readReceiptRooms: options.readReceiptRooms },
  };
  let rt: LocalRuntime;
  try {
    rt = await startLocalRuntime(runtimeOptions);
  } catch (err) {
    process.stderr.write(`npm run local: ${(err as Error).message}\n`);
    return 1;
  }

  /** Longer than the default function timeout plus the gateway's 2 s close grace. */
  const STOP_DEADLINE_MS = 20_000;
  let stopping: Promise<void> | undefined;
  const stop = (why: string, code: number) => {
    stopping ??= (async () => {
      process.stderr.write(`\n${why}: stopping the gateway, the functions and DynamoDB Local…\n`);
      // A stop that cannot finish (a function stuck on a dead dependency) must not leave the process
      // behind: exit anyway; the runtime's exit hook still kills DynamoDB Local.
      setTimeout(() => {
        process.stderr.write(`did not stop within ${STOP_DEADLINE_MS / 1000} s; exiting\n`);
        process.exit(code);
      }, STOP_DEADLINE_MS).unref();
      await rt.stop();
      process.exit(code);
    })();
    return stopping;
  };
  process.once("SIGINT", () => void stop("SIGINT", 130));
  process.once("SIGTERM", () => void stop("SIGTERM", 143));
  // Started by `npm run local`: if npm goes away without passing on a signal (a SIGTERM sent to npm
  // alone is not forwarded through its shell), stop rather than leave an orphaned runtime and java.
  if (process.env.npm_lifecycle_event === "local") {
    const parent = process.ppid;
    setInterval(() => {
      if (process.ppid !== parent) void stop("npm exited", 0);
    }, 1000).unref();
  }
  process.on("uncaughtException", (err) => {
    process.stderr.write(`npm run local: unexpected error: ${err.stack ?? err.message}\n`);
    void stop("crash", 1);
  });

  if (options.web) {
    try {
      // The page is built with this endpoint baked in, so it connects without typing (clients/web/build.ts).
      const { buildWeb } = await import("../clients/web/build");
      await buildWeb({ endpoint: rt.endpoint, outDir: webDir });
    } catch (err) {
      process.stderr.write(`web page not built (${(err as Error).message}); the API itself is running\n`);
    }
  }
  fs.mkdirSync(path.dirname(path.resolve(options.outputs)), { recursive: true });
  // Same names as `pulumi stack output --json`, so scripts work against either.
  fs.writeFileSync(options.outputs, `${JSON.stringify(rt.outputs(), null, 2)}\n`);
  const demo = { userId: "demo", username: "Demo" };
  const token = await rt.mintToken(demo.userId, demo.username);
  process.stdout.write(banner(rt, { ...demo, token }, options.outputs, options.web));
  return -1; // keep running until a signal
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      if (code >= 0) process.exit(code);
    },
    (err: Error) => {
      process.stderr.write(`npm run local: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
