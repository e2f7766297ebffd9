/**
 * What `pulumi up` would upload for each function: the serialized factory (`__index.js`) and the
 * npm packages chosen by codePathOptions. Checks each archive is lean (only the packages the
 * function loads, plus X-Ray when tracing) and complete (everything those packages and the
 * serialized code require is inside it).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { builtinModules } from "node:module";
import { FUNCTIONS } from "../../handlers/routes";
import { XRAY_PACKAGE, archivePackages, projectDependencies } from "../../infra/chatFunction";
import { ROOT, PROJECT, stackRun, type StackName, type StackRun } from "./support/stack";

interface ArchiveLike {
  assets:
    | Promise<Record<string, { text?: Promise<string>; path?: Promise<string> }>>
    | Record<string, { text?: Promise<string>; path?: Promise<string> }>;
}

async function archiveOf(run: StackRun, fnName: string): Promise<{ entries: string[]; index: string }> {
  const prefix = `${run.config[`${PROJECT}:projectName`] ?? "chat"}-${run.stack}`;
  const fn = run.ofType("aws:lambda/function:Function").find((f) => f.inputs.name === `${prefix}-${fnName}`);
  assert.ok(fn, fnName);
  const assets = await (fn.inputs.code as ArchiveLike).assets;
  const index = assets["__index.js"];
  assert.ok(index?.text, `${fnName}: __index.js`);
  return { entries: Object.keys(assets).sort(), index: await index.text };
}

/** Top-level package name of an archive entry (`node_modules/@scope/name` or `node_modules/name`). */
function packageOf(entry: string): string | undefined {
  const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(entry);
  return m?.[1];
}

/** Where Node would resolve `dep` from `fromDir` (nested node_modules first, then upwards). */
function resolvePackageDir(dep: string, fromDir: string): string | undefined {
  let dir = fromDir;
  for (;;) {
    const candidate = path.join(dir, "node_modules", dep);
    if (fs.existsSync(path.join(candidate, "package.json"))) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir || !parent.startsWith(ROOT)) return undefined;
    dir = parent;
  }
}

const BUILTINS = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

for (const stack of ["dev", "prod"] as StackName[]) {
  describe(`infra: ${stack} function archives`, function () {
    this.timeout(300_000);
    let run: StackRun;
    let tracing: boolean;
    before(async () => {
      run = await stackRun(stack);
      tracing = run.config[`${PROJECT}:enableXrayTracing`] === "true";
    });

    it("holds exactly the packages each function declares (plus the X-Ray SDK when tracing), and no other project dependency", async () => {
      const deps = projectDependencies();
      for (const spec of FUNCTIONS) {
        const { entries } = await archiveOf(run, spec.name);
        const packages = new Set(entries.map(packageOf).filter((p): p is string => p !== undefined));
        for (const p of spec.packages) assert.ok(packages.has(p), `${spec.name} carries ${p}`);
        assert.equal(packages.has(XRAY_PACKAGE), tracing, `${spec.name}: ${XRAY_PACKAGE} iff tracing`);
        const expected = new Set(archivePackages(spec, tracing, deps).extraIncludePackages);
        for (const d of deps) if (!expected.has(d)) assert.ok(!packages.has(d), `${spec.name} must not carry ${d}`);
        assert.ok(![...packages].some((p) => p.startsWith("@pulumi/")), `${spec.name} carries no @pulumi package`);
        assert.ok(
          entries.every((e) => e === "__index.js" || e.startsWith("node_modules/")),
          `${spec.name}: only the serialized code and packages`,
        );
      }
    });

    it("is complete: every package the serialized code or an archived package requires is in the archive", async () => {
      const problems: string[] = [];
      for (const spec of FUNCTIONS) {
        const { entries, index } = await archiveOf(run, spec.name);
        const archived = new Set(entries.filter((e) => e.startsWith("node_modules/")).map((e) => path.join(ROOT, e)));
        const inArchive = (dir: string) => [...archived].some((a) => dir === a || dir.startsWith(a + path.sep));
        // Modules the serialized closure re-requires at cold start. The X-Ray SDK is required lazily,
        // only when TRACING_ENABLED=true (handlers/lib/clients.ts), so it must be present iff tracing.
        const required = new Set(
          [...index.matchAll(/require\("([^"]+)"\)/g)]
            .map((m) => m[1])
            .filter((r) => !BUILTINS.has(r) && !r.startsWith("."))
            .map((r) => (r.startsWith("@") ? r.split("/").slice(0, 2).join("/") : r.split("/")[0])),
        );
        if (!tracing) required.delete(XRAY_PACKAGE);
        for (const name of required) {
          const dir = resolvePackageDir(name, ROOT);
          if (!dir || !inArchive(dir))
            problems.push(
              `${spec.name}: __index.js requires ${name}, which is not in its archive (add it to the function's packages in handlers/routes.ts)`,
            );
        }
        // Each archived package's own dependencies resolve inside the archive.
        for (const dir of archived) {
          const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { dependencies?: Record<string, string> };
          for (const dep of Object.keys(pkg.dependencies ?? {})) {
            const resolved = resolvePackageDir(dep, dir);
            if (!resolved) problems.push(`${spec.name}: ${dep} (needed by ${path.relative(ROOT, dir)}) is not installed`);
            else if (!inArchive(resolved))
              problems.push(
                `${spec.name}: ${path.relative(ROOT, resolved)} (needed by ${path.relative(ROOT, dir)}) is missing from the archive`,
              );
          }
        }
      }
      assert.deepEqual(problems, []);
    });

    it("stays far below Lambda's 250 MB unzipped deployment package quota", async () => {
      const sizes = new Map<string, number>();
      const sizeOf = (dir: string): number => {
        const known = sizes.get(dir);
        if (known !== undefined) return known;
        let total = 0;
        for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
          const full = path.join(dir, entry.name);
          if (entry.isDirectory()) total += sizeOf(full);
          else if (entry.isFile()) total += fs.statSync(full).size;
        }
        sizes.set(dir, total);
        return total;
      };
      for (const spec of FUNCTIONS) {
        const { entries, index } = await archiveOf(run, spec.name);
        const bytes =
          index.length + entries.filter((e) => e.startsWith("node_modules/")).reduce((sum, e) => sum + sizeOf(path.join(ROOT, e)), 0);
        // Lambda quotas: 250 MB unzipped (code and layers). Keep a wide margin: 64 MB.
        assert.ok(bytes < 64 * 1024 * 1024, `${spec.name}: ${(bytes / 1048576).toFixed(1)} MB unzipped`);
      }
    });

    it("serializes the factory itself: __index.js exports the handler and embeds no secret value", async () => {
      for (const spec of FUNCTIONS) {
        const { index } = await archiveOf(run, spec.name);
        assert.match(index, /exports\.handler = /, spec.name);
        assert.doesNotMatch(index, /rrrrrrrrrrrrrrrr/, `${spec.name}: the generated secret is never serialized`);
        assert.doesNotMatch(index, /require\("@pulumi\//, `${spec.name}: no deployment-time package at run time`);
      }
    });
  });
}
