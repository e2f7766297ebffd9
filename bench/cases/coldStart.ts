/**
 * Case 3: cold start per function.
 *
 * Archive: built exactly as `aws.lambda.CallbackFunction` builds it (node_modules/@pulumi/aws/
 * lambda/lambdaMixins.js): `__index.js` = pulumi.runtime.serializeFunction(FACTORIES[name],
 * { serialize: () => true, exportName: "handler", isFactoryFunction: true, allowSecrets: true }),
 * plus every folder pulumi.runtime.computeCodePaths returns for the codePathOptions the stack uses
 * (infra/chatFunction.ts archivePackages: the function's spec.packages and their dependencies, with
 * "aws-sdk" excluded as lambdaMixins does). The archive is then zipped with bench/lib/zip.ts
 * (deflate level 6, one entry per file, no directory entries, like the Pulumi engine's Go zip
 * writer) and its byte length reported. The zip is kept under bench/tmp/archives/ for inspection.
 *
 * Init time: the archive is extracted to a fresh folder outside the repository (so only what it
 * contains can be required, as in /var/task), then a fresh `node` process with the function's
 * environment (handlers/env.ts functionEnvironment plus AWS_REGION etc.) runs
 * `require("./__index.js")`, which loads the modules and runs the factory (serializeFunction
 * appends `exports.handler = factory()`). The time of that require is the init time; the median
 * of `samples` processes is reported. A second set of fresh processes requires only the npm
 * packages of spec.packages, to show what dominates. Every module the serialized code requires by
 * name is also resolved against the extracted archive, so a lazily required module that is missing
 * (which would fail only at the first invocation) is reported too.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { DeploymentSettings } from "../../handlers/env";
import { functionEnvironment } from "../../handlers/env";
import { FUNCTIONS, type FunctionName, type FunctionSpec } from "../../handlers/routes";
import type { ColdStartRow } from "../lib/results";
import { summarize } from "../lib/stats";
import { filesUnder, writeZip, type ZipEntry } from "../lib/zip";

const ROOT = path.join(__dirname, "..", "..");

export interface ColdStartOptions {
  readonly functions?: readonly FunctionName[];
  readonly samples: number;
  readonly log: (line: string) => void;
}

const SETTINGS: DeploymentSettings = {
  tableNames: { connections: "chat-bench-connections", rooms: "chat-bench-rooms", messages: "chat-bench-messages" },
  managementEndpoint: "https://abcdef1234.execute-api.us-east-1.amazonaws.com/bench",
  stage: "bench",
  environment: "dev",
  messageRetentionHours: 168,
  maxMessageBytes: 4096,
  rateLimitPerMinute: 120,
  fanoutConcurrency: 16,
  logLevel: "info",
  metricsNamespace: "ChatApi",
  tracing: false,
  // The deployed authorizer fetches its secret from Secrets Manager on first use; here it is given
  // directly so no network call is attempted (the fetch is not part of module initialisation).
  auth: { mode: "shared-secret", issuer: "chat-local", audience: "chat-api", sharedSecret: "0".repeat(64) },
  allowedOrigins: [],
};

interface Built {
  readonly spec: FunctionSpec;
  readonly zipBytes: number;
  readonly uncompressedBytes: number;
  readonly files: number;
  readonly serializedBytes: number;
  readonly dir: string;
  readonly packages: string[];
  /** Modules the serialized code names in a require() call that the archive cannot resolve. */
  readonly unresolved: string[];
}

/**
 * Every non-builtin module the serialized code requires by a literal name, checked against the
 * extracted archive. Init only loads what module scope requires; a require inside a function body
 * (a lazily built client) runs at the first invocation, so a module missing from the archive would
 * only fail then. This catches it without invoking anything.
 */
function unresolvedRequires(text: string, dir: string, conditional: readonly string[]): string[] {
  const { builtinModules } = require("node:module") as typeof import("node:module");
  const ids = new Set<string>();
  for (const m of text.matchAll(/require\(\s*["']([^"']+)["']\s*\)/g)) ids.add(m[1]);
  const missing: string[] = [];
  for (const id of [...ids].sort()) {
    if (id.startsWith("node:") || builtinModules.includes(id) || id.startsWith(".")) continue;
    if (conditional.some((c) => id === c || id.startsWith(`${c}/`))) continue;
    try {
      require.resolve(id, { paths: [dir] });
      // require.resolve falls back to the global folders only when paths find nothing: make sure it resolved inside.
      if (!require.resolve(id, { paths: [dir] }).startsWith(dir)) missing.push(id);
    } catch {
      missing.push(id);
    }
  }
  return missing;
}

async function buildArchive(spec: FunctionSpec, workDir: string): Promise<Built> {
  const pulumi = await import("@pulumi/pulumi");
  const { FACTORIES } = await import("../../handlers/index");
  const { archivePackages, projectDependencies } = await import("../../infra/chatFunction");
  const serialized = await pulumi.runtime.serializeFunction(FACTORIES[spec.name] as (...args: unknown[]) => unknown, {
    serialize: () => true,
    exportName: "handler",
    isFactoryFunction: true,
    allowSecrets: true,
  });
  const pk = archivePackages(spec, false, projectDependencies(path.join(ROOT, "package.json")));
  const cwd = process.cwd();
  process.chdir(ROOT); // computeCodePaths looks for package.json from the working directory
  let codePaths: Map<string, unknown>;
  try {
    codePaths = await pulumi.runtime.computeCodePaths({
      extraIncludePackages: [...pk.extraIncludePackages],
      extraExcludePackages: [...pk.extraExcludePackages, "aws-sdk"],
    });
  } finally {
    process.chdir(cwd);
  }
  const entries: ZipEntry[] = [{ name: "__index.js", data: Buffer.from(serialized.text) }];
  const packages: string[] = [];
  for (const rel of [...codePaths.keys()].sort()) {
    const abs = path.resolve(ROOT, rel);
    packages.push(rel.replace(/^node_modules\//, ""));
    if (fs.statSync(abs).isDirectory()) entries.push(...filesUnder(abs, rel));
    else entries.push({ name: rel, data: fs.readFileSync(abs) });
  }
  const zip = writeZip(entries);
  const archives = path.join(ROOT, "bench", "tmp", "archives");
  fs.mkdirSync(archives, { recursive: true });
  fs.writeFileSync(path.join(archives, `${spec.name}.zip`), zip);
  const dir = path.join(workDir, spec.name);
  for (const e of entries) {
    const target = path.join(dir, e.name);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, e.data);
  }
  return {
    spec,
    // Packages the stack adds only with tracing on (the X-Ray SDK, required only when TRACING_ENABLED=true).
    unresolved: unresolvedRequires(
      serialized.text,
      dir,
      archivePackages(spec, true, projectDependencies(path.join(ROOT, "package.json"))).extraIncludePackages.filter(
        (p) => !pk.extraIncludePackages.includes(p),
      ),
    ),
    zipBytes: zip.length,
    uncompressedBytes: entries.reduce((s, e) => s + e.data.length, 0),
    files: entries.length,
    serializedBytes: Buffer.byteLength(serialized.text),
    dir,
    packages,
  };
}

function lambdaEnv(spec: FunctionSpec): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    ...functionEnvironment(spec, SETTINGS),
    AWS_REGION: "us-east-1",
    AWS_DEFAULT_REGION: "us-east-1",
    AWS_LAMBDA_FUNCTION_NAME: `chat-bench-${spec.name}`,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: "256",
    AWS_ACCESS_KEY_ID: "bench",
    AWS_SECRET_ACCESS_KEY: "bench",
    NODE_OPTIONS: "--disable-warning=NodeVersionSupportWarning",
  };
}

/** Runs `script` in a fresh node process in `cwd` and returns the number it prints. */
function timeInFreshProcess(cwd: string, env: NodeJS.ProcessEnv, script: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["-e", script], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      const m = /COLDSTART_MS=([\d.]+)/.exec(out);
      if (code === 0 && m) resolve(Number(m[1]));
      else reject(new Error(`init in a fresh process failed (exit ${code}): ${(err || out).trim().slice(0, 500)}`));
    });
  });
}

const INIT_SCRIPT = `
const t0 = performance.now();
const m = require("./__index.js");
const t1 = performance.now();
if (typeof m.handler !== "function") { console.error("handler is " + typeof m.handler); process.exit(3); }
process.stdout.write("COLDSTART_MS=" + (t1 - t0) + "\\n");
`;

function packagesScript(packages: readonly string[]): string {
  return `
const t0 = performance.now();
for (const p of ${JSON.stringify(packages)}) require(p);
process.stdout.write("COLDSTART_MS=" + (performance.now() - t0) + "\\n");
`;
}

export async function runColdStart(o: ColdStartOptions): Promise<ColdStartRow[]> {
  const names = new Set(o.functions ?? FUNCTIONS.map((f) => f.name));
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-coldstart-"));
  const rows: ColdStartRow[] = [];
  try {
    for (const spec of FUNCTIONS.filter((f) => names.has(f.name))) {
      const built = await buildArchive(spec, workDir);
      const env = lambdaEnv(spec);
      const init: number[] = [];
      const pkgs: number[] = [];
      let error: string | undefined;
      try {
        for (let i = 0; i < o.samples; i++) {
          init.push(await timeInFreshProcess(built.dir, env, INIT_SCRIPT));
          pkgs.push(await timeInFreshProcess(built.dir, env, packagesScript(spec.packages)));
        }
        if (built.unresolved.length)
          error = `the code requires ${built.unresolved.join(", ")}, which the archive does not contain (fails at first use)`;
      } catch (err) {
        // An archive that cannot initialise is a finding (a deployed function would fail the same way), not a crash of the bench.
        error =
          (err as Error).message
            .split("\n")
            .find((l) => /Cannot find module|Error/.test(l))
            ?.trim() ?? (err as Error).message.slice(0, 300);
      }
      const initMs = summarize(init);
      const packagesLoadMedianMs = summarize(pkgs).p50;
      o.log(
        error
          ? `  ${spec.name}: ${(built.zipBytes / 1024).toFixed(0)} KiB zipped, FAILS: ${error}`
          : `  ${spec.name}: ${(built.zipBytes / 1024).toFixed(0)} KiB zipped, init median ${initMs.p50.toFixed(0)} ms (packages alone ${packagesLoadMedianMs.toFixed(0)} ms)`,
      );
      rows.push({
        function: spec.name,
        zipBytes: built.zipBytes,
        uncompressedBytes: built.uncompressedBytes,
        files: built.files,
        packages: built.packages,
        serializedBytes: built.serializedBytes,
        initMs,
        packagesLoadMedianMs,
        met: !error && initMs.p50 <= 150,
        ...(error ? { error } : {}),
      });
    }
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
  return rows;
}
