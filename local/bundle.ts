/**
 * Transpiles the handlers once per runtime start (and, for the tests, the terminal client once per run) (esbuild, transpile-only: `npm run typecheck`
 * checks types) into one CommonJS file that every function worker loads. Packages from
 * node_modules stay external and are `require`d at run time, as in the deployed archives.
 * Compiling once instead of in each function's worker keeps cold starts about what they are
 * on Lambda: loading JavaScript and running the factory.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import * as esbuild from "esbuild";

/** Bundles `entry` into `<outDir>/handlers-<content hash>.js` (written once per distinct content) and returns its path. */
export async function bundleHandlers(entry: string, outDir: string): Promise<string> {
  const result = await esbuild.build(buildOptions(entry));
  return writeBundle(result.outputFiles![0].contents, outDir, "handlers");
}

/**
 * The same for any program, synchronously, as `<outDir>/<prefix>-<content hash>.js`: the tests spawn
 * the terminal client from it, loading JavaScript rather than compiling TypeScript at each start.
 */
export function bundleProgramSync(entry: string, outDir: string, prefix: string): string {
  if (!/^[a-z][a-z-]*$/.test(prefix)) throw new RangeError(`bundle prefix must be lowercase letters and dashes, got "${prefix}"`);
  const result = esbuild.buildSync(buildOptions(entry));
  return writeBundle(result.outputFiles![0].contents, outDir, prefix);
}

function buildOptions(entry: string): esbuild.BuildOptions & { write: false } {
  return {
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    target: "node20",
    format: "cjs",
    packages: "external",
    sourcemap: "inline",
    write: false,
    logLevel: "silent",
  };
}

function writeBundle(code: Uint8Array, outDir: string, prefix: string): string {
  const file = path.join(outDir, `${prefix}-${createHash("sha256").update(code).digest("hex").slice(0, 16)}.js`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(outDir, { recursive: true });
    // Write then rename: runtimes starting in parallel never load a half-written file.
    const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
    fs.writeFileSync(tmp, code);
    fs.renameSync(tmp, file);
    pruneOldBundles(outDir, file, prefix);
  }
  return file;
}

/** A week: long past any running runtime's start, so no live worker can still need the file. */
const BUNDLE_MAX_AGE_MS = 7 * 24 * 60 * 60 * 1000;

/** Deletes older bundles of the same prefix so `.local/build` does not grow with every edit. */
function pruneOldBundles(outDir: string, keep: string, prefix: string): void {
  for (const name of fs.readdirSync(outDir)) {
    const f = path.join(outDir, name);
    if (f === keep || !new RegExp(`^${prefix}-[0-9a-f]{16}\\.js$`).test(name)) continue;
    try {
      if (Date.now() - fs.statSync(f).mtimeMs > BUNDLE_MAX_AGE_MS) fs.rmSync(f, { force: true });
    } catch {
      // Another runtime pruned it first.
    }
  }
}
