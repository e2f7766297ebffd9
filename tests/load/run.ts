/**
 * `npm run test:load [-- --connections 1000 --rooms 20 --duration 300 --rate 20]`: the load run of
 * issue 8 (tests/load/load.ts) against its own local runtime process. Prints the figures and the
 * checks as a table, writes test-artifacts/load/result.json, and exits non-zero if a check failed
 * (2 for bad options).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseCommandLine } from "../../scripts/commandLine";
import { formatLoadResult, runLoad, validateLoadOptions, type LoadOptions } from "./load";

/**
 * Default rate: frames per second over all clients that the shared 2-core machine sustains with
 * 1,000 connections in rooms of 50 (a chat frame is ~50 `@connections` posts). Measured
 * (docs/reliability.md, "Load"): 10 frames/s passes every check; at 20 frames/s posts time out
 * waiting for one of the chat worker's 50 SDK sockets and deliveries are lost.
 */
export const DEFAULT_RATE = 10;

export const DEFAULTS: LoadOptions = { connections: 1000, rooms: 20, durationSec: 300, rate: DEFAULT_RATE };

const USAGE = `usage: npm run test:load -- [--connections <n>] [--rooms <n>] [--duration <seconds>] [--rate <frames/s>]
                          [--flood <frames>] [--flood-rate <frames/s>] [--warmup <seconds>] [--memory-margin <percent>] [--seed <n>] [--out <dir>]
defaults: --connections ${DEFAULTS.connections} --rooms ${DEFAULTS.rooms} --duration ${DEFAULTS.durationSec} --rate ${DEFAULTS.rate} --flood 200 --flood-rate 5 --memory-margin 25 --out test-artifacts/load`;

export interface CliOptions extends LoadOptions {
  readonly outDir: string;
}

const LOAD_OPTIONS = {
  connections: { type: "string" },
  rooms: { type: "string" },
  duration: { type: "string" },
  rate: { type: "string" },
  flood: { type: "string" },
  "flood-rate": { type: "string" },
  warmup: { type: "string" },
  "memory-margin": { type: "string" },
  seed: { type: "string" },
  out: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

export function parseLoadArgs(argv: readonly string[]): CliOptions | "help" {
  const { values } = parseCommandLine({ args: [...argv], options: LOAD_OPTIONS }, undefined, `\n${USAGE}`);
  if (values.help) return "help";
  const num = (name: Exclude<keyof typeof LOAD_OPTIONS, "help" | "out">): number | undefined => {
    if (values[name] === undefined) return undefined;
    const n = Number(values[name]);
    if (!Number.isFinite(n)) throw new Error(`--${name} must be a number, got "${values[name]}"`);
    return n;
  };
  const options: CliOptions = {
    connections: num("connections") ?? DEFAULTS.connections,
    rooms: num("rooms") ?? DEFAULTS.rooms,
    durationSec: num("duration") ?? DEFAULTS.durationSec,
    rate: num("rate") ?? DEFAULTS.rate,
    floodFrames: num("flood"),
    floodRate: num("flood-rate"),
    warmupSec: num("warmup"),
    memoryMarginPct: num("memory-margin"),
    seed: num("seed"),
    outDir: values.out ?? path.join("test-artifacts", "load"),
  };
  validateLoadOptions(options);
  if (options.warmupSec !== undefined && !(options.warmupSec >= 1 && options.warmupSec < options.durationSec / 2)) {
    throw new Error(`--warmup must be at least 1 s and under half of --duration`);
  }
  return options;
}

async function main(): Promise<number> {
  let options: CliOptions | "help";
  try {
    options = parseLoadArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (options === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const result = await runLoad({ ...options, log: (line) => process.stdout.write(`${line}\n`) });
  fs.mkdirSync(options.outDir, { recursive: true });
  const file = path.join(options.outDir, "result.json");
  fs.writeFileSync(
    file,
    `${JSON.stringify({ command: ["npm run test:load", "--", ...process.argv.slice(2)].join(" "), ...result }, null, 2)}\n`,
  );
  process.stdout.write(`\n${formatLoadResult(result)}\n\nwrote ${file}\n`);
  return result.passed ? 0 : 1;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: Error) => {
      process.stderr.write(`load run failed: ${err.stack ?? err.message}\n`);
      process.exit(1);
    },
  );
}
