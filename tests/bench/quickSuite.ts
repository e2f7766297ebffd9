/**
 * Smoke tests of `npm run bench -- --quick`: the benchmark runs end to end against real runtimes and
 * writes its files. They check counts and structure (items read per broadcast, the Scan reading every
 * connection, one latency sample per member per message, the chart), never timings: performance is
 * shown by the benchmark's output, not asserted. `quickSuite(cases)` runs the cases given, with the
 * checks of those cases: `npm test` runs broadcast and coldstart (tests/bench/quick.test.ts), `npm run
 * test:long` every case (tests/long/benchQuick.long.ts).
 */
import * as assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { devicesPerUserFor } from "../../bench/lib/population";
import type { BenchResults } from "../../bench/lib/results";
import { CASES } from "../../bench/run";

const ROOT = path.join(__dirname, "..", "..");

function runQuick(outDir: string, args: readonly string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        "--disable-warning=NodeVersionSupportWarning",
        "-r",
        "ts-node/register/transpile-only",
        "bench/run.ts",
        "--quick",
        "--out",
        outDir,
        ...args,
      ],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGTERM"), 280_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The bench's cases. */
export const QUICK_CASES = CASES;
export type QuickCase = (typeof CASES)[number];

/** The results keys each case writes. */
const KEYS: Record<QuickCase, ReadonlyArray<keyof BenchResults>> = {
  broadcast: ["broadcast", "costInputs", "latency"],
  latency: ["latency"],
  coldstart: ["coldStart"],
  throughput: ["throughput"],
  startup: ["startup"],
  "large-room": ["largeRoom"],
};

/** `npm run bench -- --quick` with these cases (every case when `cases` is all of them), and the checks of those cases. */
export function quickSuite(cases: readonly QuickCase[]): void {
  const all = QUICK_CASES.every((c) => cases.includes(c));
  const title = all ? "npm run bench -- --quick" : `npm run bench -- --quick --cases ${cases.join(",")}`;
  /** An `it` that runs only when the suite runs every case it needs. */
  const itFor = (needs: readonly QuickCase[], name: string, fn: () => void) => {
    if (needs.every((c) => cases.includes(c))) it(name, fn);
  };
  describe(title, function () {
    this.timeout(300_000);
    let dir: string;
    let results: BenchResults;
    let output: string;

    before(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-quick-"));
      const run = await runQuick(dir, all ? [] : ["--cases", cases.join(",")]);
      output = run.output;
      assert.equal(run.code, 0, `bench --quick failed:\n${run.output.slice(-3000)}`);
      results = JSON.parse(fs.readFileSync(path.join(dir, "results.json"), "utf8")) as BenchResults;
    });

    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it(all ? "measures every case and records the machine" : "measures the cases asked for and records the machine", () => {
      for (const key of cases.flatMap((c) => KEYS[c])) assert.ok(results[key], `results.${key}`);
      assert.equal(results.quick, true);
      assert.ok(results.machine.cores >= 1 && results.machine.node.startsWith("v"));
      if (cases.includes("broadcast")) assert.match(output, /1\. Broadcast cost/);
    });

    itFor(["broadcast"], "reads members + 1 items per broadcast while the Scan reads every connection", () => {
      const b = results.broadcast!;
      assert.deepEqual(
        b.rows.map((r) => r.members),
        [10, 30],
      );
      for (const r of b.rows) {
        assert.equal(r.ours.itemsRead, r.members + 1, `items read for ${r.members}`);
        assert.equal(r.ours.managementCalls, r.members);
        assert.equal(r.ours.delivered, r.members);
        assert.ok(r.scan.itemsRead >= b.connections, `the Scan evaluated ${r.scan.itemsRead} of ${b.connections} connections`);
        assert.equal(r.scan.delivered, r.members);
      }
    });

    itFor(
      ["broadcast"],
      "measures issue 18's frames for the cost model: typing posts to the other users, a reaction to everyone, a read to the reader's other devices",
      () => {
        const c = results.costInputs!;
        assert.ok(c.typing && c.react && c.read, "costInputs.typing, react and read");
        // Fitted over the rooms of 10 and 30 members, 10 users each (1 and 3 devices per user).
        const posts = (u: NonNullable<typeof c.typing>, members: number) =>
          Math.round(u.fixed.managementCalls + u.perMember.managementCalls * members);
        const devices = (members: number) => devicesPerUserFor(members, 10);
        for (const members of [10, 30]) {
          assert.equal(posts(c.typing, members), members - devices(members), `typing in a room of ${members}`);
          assert.equal(posts(c.react, members), members, `react in a room of ${members}`);
          assert.equal(posts(c.read, members), devices(members) - 1, `read in a room of ${members}`);
        }
      },
    );

    itFor(["latency"], "has one latency sample per member per message for both fan-outs", () => {
      const l = results.latency!;
      assert.equal(l.sequentialConcurrency, 1);
      for (const row of l.rows) {
        assert.equal(row.bounded.count, row.members * row.messages);
        assert.ok(row.sequential && row.sequential.count === row.members * 2);
        assert.ok(row.bounded.p50 > 0 && row.bounded.p50 <= row.bounded.p99);
      }
    });

    itFor(["coldstart"], "sizes and initialises the chat function's archive", () => {
      const [chat] = results.coldStart!.rows;
      assert.equal(chat.function, "chat");
      assert.ok(chat.zipBytes > 0 && chat.zipBytes < chat.uncompressedBytes);
      assert.equal(chat.error, undefined);
      assert.equal(chat.initMs.count, 3);
      assert.ok(chat.packages.includes("@aws-sdk/client-dynamodb"));
    });

    itFor(["large-room"], "measures a socket room and a sink room (issue 17) with every member receiving every message", () => {
      const rows = results.largeRoom!.rows;
      assert.deepEqual(
        rows.map((r) => [r.members, r.source, r.messages]),
        [
          [30, "sockets", 2],
          [100, "sink", 2],
        ],
      );
      for (const r of rows) {
        assert.equal(r.missing, 0, `members of the room of ${r.members} missed a message`);
        assert.ok(r.postsPerMessage >= r.members - 1, `${r.postsPerMessage} posts per message to ${r.members} members`);
        assert.equal(r.postLatencyMs, 20);
        assert.ok(r.p50Ms <= r.p99Ms && r.p99Ms <= r.maxMs);
      }
    });

    itFor(["latency"], "writes REPORT.md with the SVG chart beside it", () => {
      const report = fs.readFileSync(path.join(dir, "REPORT.md"), "utf8");
      assert.match(report, /!\[Delivery latency against room size\]\(latency\.svg\)/);
      const svg = fs.readFileSync(path.join(dir, "latency.svg"), "utf8");
      assert.equal((svg.match(/<polyline /g) ?? []).length, 4);
    });

    itFor(["broadcast"], "feeds the cost model with per-operation figures", () => {
      const c = results.costInputs!;
      assert.ok(Math.abs(c.chat.perMember.itemsRead - 1) < 1e-9, "one more item read per member");
      assert.ok(Math.abs(c.chat.perMember.managementCalls - 1) < 1e-9, "one more @connections call per member");
      assert.ok(c.scanReadUnitsPerConnection > 0);
    });
  });
}
