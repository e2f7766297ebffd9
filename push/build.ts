/**
 * Packages the push module for services outside this repository:
 *
 *   npm run build:push [-- --out <dir>]     (default push/dist, git-ignored)
 *
 * Writes a self-contained npm package: `index.js` (push/index.ts and the handlers' data layer and
 * fan-out it reuses, bundled by esbuild; zod inlined), `index.d.ts` and the declarations it refers
 * to (tsc), and a `package.json` whose dependencies are the AWS SDK v3 clients it calls, at the
 * versions this repository tests. Another service installs it with `npm install <dir>` (or packs it
 * with `npm pack <dir>` and publishes the tarball to its registry).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { build } from "esbuild";
import { parseCommandLine } from "../scripts/commandLine";

const ROOT = path.resolve(__dirname, "..");
export const DEFAULT_PUSH_OUT_DIR = path.join(__dirname, "dist");

/** Packages the bundle requires at run time (installed by the consumer, not bundled). */
export const PUSH_RUNTIME_PACKAGES = [
  "@aws-sdk/client-apigatewaymanagementapi",
  "@aws-sdk/client-dynamodb",
  "@aws-sdk/lib-dynamodb",
  // A push to a room of more than largeRoomUsers users sends delivery jobs (issue 17).
  "@aws-sdk/client-sqs",
] as const;

const USAGE = `usage: npm run build:push [-- --out <dir>]
  Packages push/ as an npm package other Node services can install (default output: push/dist).
  --out <dir>   output folder`;

export interface PushBuild {
  readonly outDir: string;
  readonly files: readonly string[];
  readonly bundleBytes: number;
}

export async function buildPush(outDir = DEFAULT_PUSH_OUT_DIR): Promise<PushBuild> {
  const out = path.resolve(outDir);
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out, { recursive: true });
  await build({
    entryPoints: [path.join(__dirname, "index.ts")],
    outfile: path.join(out, "index.js"),
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // The SDK clients stay external (one copy, shared with the service); the X-Ray SDK is required
    // only when tracing is on, which push never turns on.
    external: [...PUSH_RUNTIME_PACKAGES, "@aws-sdk/*", "@smithy/*", "aws-xray-sdk-core"],
    sourcemap: true,
    logLevel: "silent",
  });
  const tsc = spawnSync(
    process.execPath,
    [
      require.resolve("typescript/bin/tsc"),
      "--declaration",
      "--emitDeclarationOnly",
      "--skipLibCheck",
      "--strict",
      "--esModuleInterop",
      "--target",
      "ES2022",
      "--module",
      "commonjs",
      "--moduleResolution",
      "node",
      "--types",
      "node",
      "--rootDir",
      ROOT,
      "--outDir",
      path.join(out, "types"),
      path.join(__dirname, "index.ts"),
    ],
    { cwd: ROOT, encoding: "utf8" },
  );
  if (tsc.status !== 0) throw new Error(`tsc could not write the declarations:\n${tsc.stdout}${tsc.stderr}`);
  fs.writeFileSync(path.join(out, "index.d.ts"), 'export * from "./types/push/index";\n');
  const rootPackage = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as {
    version: string;
    license?: string;
    dependencies: Record<string, string>;
  };
  const pkg = {
    name: "websocket-chat-push",
    version: rootPackage.version,
    description: "Push system frames to users and rooms of a deployed websocket-chat stack (see docs/push.md)",
    license: rootPackage.license,
    main: "index.js",
    types: "index.d.ts",
    engines: { node: ">=20" },
    dependencies: Object.fromEntries(PUSH_RUNTIME_PACKAGES.map((name) => [name, rootPackage.dependencies[name]])),
  };
  fs.writeFileSync(path.join(out, "package.json"), `${JSON.stringify(pkg, null, 2)}\n`);
  const files: string[] = [];
  const walk = (dir: string) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.push(path.relative(out, full));
    }
  };
  walk(out);
  return { outDir: out, files: files.sort(), bundleBytes: fs.statSync(path.join(out, "index.js")).size };
}

if (require.main === module) {
  let values: { out?: string; help?: boolean } = {};
  try {
    ({ values } = parseCommandLine({ options: { out: { type: "string" }, help: { type: "boolean", short: "h" } } }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  buildPush(values.out).then(
    (r) => {
      process.stdout.write(
        `${r.files.length} files in ${r.outDir} (index.js ${r.bundleBytes} bytes)\ninstall it in a service with: npm install ${r.outDir}\n`,
      );
    },
    (err: Error) => {
      process.stderr.write(`build:push failed: ${err.message}\n`);
      process.exit(1);
    },
  );
}
