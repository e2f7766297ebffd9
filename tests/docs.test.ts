/**
 * The docs match the code: every npm script is in the README's script table and answers --help,
 * every error code the handlers can send is in docs/protocol.md, every relative link resolves,
 * and the README's quick start is what .ci/run runs.
 */
import { strict as assert } from "node:assert";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ERROR_CODES } from "../handlers/lib/errors";
import { ERROR_CODES as CLIENT_ERROR_CODES } from "../clients/shared/protocol";

const ROOT = path.resolve(__dirname, "..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");
const scripts = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts;

describe("docs", function () {
  this.timeout(120_000);

  it("the README's npm scripts table lists every script in package.json, and nothing else", () => {
    const readme = read("README.md");
    const section = readme.slice(readme.indexOf("## npm scripts"), readme.indexOf("\n## ", readme.indexOf("## npm scripts") + 5));
    const documented = [...section.matchAll(/^\| `npm (?:run )?([a-z:-]+)/gm)].map((m) => m[1]);
    assert.deepEqual([...documented].sort(), Object.keys(scripts).sort());
  });

  it("every script that runs a program answers --help with a usage line and exit code 0", async () => {
    // tsc, mocha and biome (test, typecheck, lint, format) have their own --help; the others run a
    // program of this project. Two at a time: each is a ts-node start, mostly CPU.
    const names = Object.keys(scripts).filter((name) => /^node /.test(scripts[name]));
    const help = (name: string) =>
      new Promise<{ name: string; status: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn("npm", ["run", "-s", name, "--", "--help"], { cwd: ROOT });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d: Buffer) => {
          stdout += d.toString();
        });
        child.stderr.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
        child.on("close", (status) => {
          clearTimeout(timer);
          resolve({ name, status, stdout, stderr });
        });
      });
    const results: Array<Awaited<ReturnType<typeof help>>> = [];
    const queue = [...names];
    await Promise.all(
      [0, 1].map(async () => {
        for (let name = queue.shift(); name !== undefined; name = queue.shift()) results.push(await help(name));
      }),
    );
    assert.equal(results.length, names.length);
    for (const out of results) {
      assert.equal(out.status, 0, `npm run ${out.name} -- --help exited ${out.status}: ${out.stderr}`);
      assert.match(out.stdout, /usage/i, `npm run ${out.name} -- --help prints a usage`);
    }
  });

  it("docs/protocol.md documents every error code the handlers send, and the clients know them all", () => {
    const protocol = read("docs/protocol.md");
    for (const code of ERROR_CODES) assert.match(protocol, new RegExp(`\\| \`${code}\` \\|`), `${code} in the error table`);
    assert.deepEqual([...CLIENT_ERROR_CODES].sort(), [...ERROR_CODES].sort());
  });

  it("relative links in README.md and docs/*.md point at files that exist", () => {
    const files = [
      "README.md",
      ...fs
        .readdirSync(path.join(ROOT, "docs"))
        .filter((f) => f.endsWith(".md"))
        .map((f) => `docs/${f}`),
    ];
    for (const file of files) {
      for (const m of read(file).matchAll(/\]\(([^)#\s]+)(#[^)]*)?\)/g)) {
        const target = m[1];
        if (/^[a-z]+:/i.test(target)) continue;
        assert.ok(fs.existsSync(path.resolve(ROOT, path.dirname(file), target)), `${file} links to ${target}`);
      }
    }
  });

  it("the README's quick start is the two commands .ci/run runs", () => {
    const readme = read("README.md");
    const quick = readme.slice(readme.indexOf("## Quick start"), readme.indexOf("\n## ", readme.indexOf("## Quick start") + 5));
    assert.match(quick, /npm ci && npm run local/);
    assert.match(quick, /^npm test\b/m);
    const ci = read(".ci/run");
    assert.match(ci, /^npm ci\b/m);
    assert.match(ci, /local\/smoke\.ts/);
    assert.match(ci, /^npm test$/m);
    assert.match(read("local/smoke.ts"), /spawn\(\s*"npm",\s*\["run", "--silent", "local"/, "the smoke test starts npm run local itself");
  });

  it("the cost worked example in README.md and docs/cost.md is what npm run cost prints from the committed results", () => {
    const out = spawnSync("npm", ["run", "-s", "cost", "--", "--connections", "2000", "--rooms", "20", "--messages-per-minute", "100"], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(out.status, 0, out.stderr);
    const money = (line: string | undefined) => (line ?? "").match(/\$[0-9][0-9,.]*/g) ?? [];
    const pick = (text: string, label: RegExp) => text.split("\n").find((l) => label.test(l));
    for (const doc of ["README.md", "docs/cost.md"]) {
      const full = read(doc);
      const text = full.slice(full.indexOf("$ npm run cost -- --connections 2000 --rooms 20 --messages-per-minute 100"));
      assert.ok(text.length < full.length, `${doc} shows the worked example`);
      for (const label of [
        /^Total\s+per month/,
        /read request units/i,
        /write request units/i,
        /WebSocket messages/,
        /Custom metrics/,
        /^\s+(Alarms|Standard-resolution alarms)\b/,
        /^\s+Dashboards\b/,
      ]) {
        assert.deepEqual(money(pick(text, label)), money(pick(out.stdout, label)), `${doc}: ${label}`);
      }
    }
  });

  it("the monitoring bill of the small workload in README.md and docs/cost.md is what npm run cost prints (default and prod config)", () => {
    const total = (extra: string[]) => {
      const out = spawnSync(
        "npm",
        ["run", "-s", "cost", "--", "--connections", "50", "--rooms", "5", "--messages-per-minute", "5", ...extra],
        { cwd: ROOT, encoding: "utf8", timeout: 60_000 },
      );
      assert.equal(out.status, 0, out.stderr);
      const line = out.stdout.split("\n").find((l) => /^Total\s+per month/.test(l)) ?? "";
      return (line.match(/\$[0-9][0-9,.]*/g) ?? [])[0];
    };
    const defaults = total([]);
    const prod = total(["--memory-mb", "512", "--detailed-monitoring"]);
    assert.ok(defaults && prod);
    const costDoc = read("docs/cost.md");
    const section = costDoc.slice(costDoc.indexOf("## The monitoring bill"));
    assert.ok(section.includes(`**${defaults}**`), `docs/cost.md: default ${defaults}`);
    assert.ok(section.includes(`**${prod}**`), `docs/cost.md: prod ${prod}`);
    const readme = read("README.md");
    assert.ok(readme.includes(`costs ${defaults} a month with the default config`), `README: default ${defaults}`);
    assert.ok(readme.includes(`and ${prod} with prod's config`), `README: prod ${prod}`);
  });
});
