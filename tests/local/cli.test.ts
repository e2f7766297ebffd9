/**
 * `npm run local` as a user runs it: a child process that prints how to connect, writes the stack
 * outputs, serves the chat API, and on SIGTERM stops everything including DynamoDB Local's java process.
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as net from "node:net";
import * as path from "node:path";
import { isUsageError, parseCliArgs } from "../../local/cli";
import { smokeLocal } from "../../local/smoke";
import { withTimeout } from "./wsClient";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "local", "cli.ts");

function runCli(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(
    process.execPath,
    ["--disable-warning=NodeVersionSupportWarning", "-r", "ts-node/register/transpile-only", CLI, ...args],
    {
      cwd: ROOT,
      env,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

/** Whether the runtime's java process (by its port) and its CLI process (by its outputs path) still run. */
function processes(dynamoPort: string, outputs: string): { java: boolean; cli: boolean } {
  const lines = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" }).stdout.split("\n");
  return {
    java: lines.some((l) => l.includes("DynamoDBLocal.jar") && l.includes(`-port ${dynamoPort}`)),
    cli: lines.some((l) => l.includes("local/cli.ts") && l.includes(outputs)),
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

describe("npm run local (CLI)", function () {
  this.timeout(180_000);

  describe("arguments", () => {
    it("defaults to port 3001, stage local and data under .local/dynamodb", () => {
      const o = parseCliArgs([]);
      assert.equal(o.port, 3001);
      assert.equal(o.stage, "local");
      assert.equal(o.dataDir, path.join(".local", "dynamodb"));
      assert.equal(o.inMemory, false);
      assert.equal(o.idleTimeoutSeconds, 600);
      assert.equal(o.maxDurationSeconds, 7200);
    });

    it("reads every option, in both --flag value and --flag=value forms", () => {
      const o = parseCliArgs([
        "--port=4000",
        "--stage",
        "dev",
        "--in-memory",
        "--serialized",
        "--management-latency-ms",
        "25",
        "--idle-timeout-seconds=30",
        "--max-duration-seconds",
        "60",
        "--quiet",
        "--no-web",
      ]);
      assert.deepEqual(
        {
          port: o.port,
          stage: o.stage,
          inMemory: o.inMemory,
          serialized: o.serialized,
          lat: o.managementLatencyMs,
          idle: o.idleTimeoutSeconds,
          max: o.maxDurationSeconds,
          quiet: o.quiet,
          web: o.web,
        },
        { port: 4000, stage: "dev", inMemory: true, serialized: true, lat: 25, idle: 30, max: 60, quiet: true, web: false },
      );
    });

    it("refuses unknown options and out-of-range values with a message", () => {
      assert.throws(() => parseCliArgs(["--prot", "1"]), isUsageError);
      assert.throws(() => parseCliArgs(["--port", "70000"]), /--port must be an integer from 0 to 65535/);
      assert.throws(() => parseCliArgs(["--idle-timeout-seconds", "601"]), /from 1 to 600/);
      assert.throws(() => parseCliArgs(["--stage", "a/b"]), /--stage/);
      assert.throws(() => parseCliArgs(["--port"]), /needs a value/);
    });
  });

  it("npm run local prints how to connect, writes the outputs, serves the API and stops DynamoDB Local on SIGTERM", async () => {
    const r = await smokeLocal();
    for (const k of ["endpoint", "managementEndpoint", "apiId", "stage", "connectionsTable", "roomsTable", "messagesTable"])
      assert.ok(r.outputs[k], k);
    assert.ok(r.banner.includes(r.outputs.endpoint));
    assert.match(r.banner, /Demo user "demo" token/);
    assert.match(r.banner, /websocat '/);
    assert.match(r.banner, /npm run client -- ws:\/\//);
    // The printed wscat URL works as is.
    assert.equal(r.echoed.type, "chat");
    assert.equal(r.echoed.message, "Hello WebSocket!");
    assert.equal(r.echoed.userId, "demo");
    assert.equal(r.dynamoSurvived, false, "no DynamoDB Local survives the CLI");
  });

  it("stops, DynamoDB Local included, when npm alone is killed", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "chat-orphan-"));
    const outputs = path.join(dir, "outputs.json");
    const npm = spawn(
      "npm",
      ["run", "--silent", "local", "--", "--in-memory", "--port", "0", "--quiet", "--no-web", "--outputs", outputs],
      {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    npm.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const deadline = Date.now() + 150_000;
      while (!out.includes("Ctrl-C stops everything")) {
        assert.equal(npm.exitCode, null, "npm run local exited early");
        assert.ok(Date.now() < deadline, "no banner");
        await new Promise((r) => setTimeout(r, 100));
      }
      const port = new URL((JSON.parse(fs.readFileSync(outputs, "utf8")) as { dynamodbEndpoint: string }).dynamodbEndpoint).port;
      assert.ok(processes(port, outputs).java, "DynamoDB Local runs");
      npm.kill("SIGTERM"); // npm only: its shell does not pass the signal on
      const stopDeadline = Date.now() + 30_000;
      let left = processes(port, outputs);
      while ((left.java || left.cli) && Date.now() < stopDeadline) {
        await new Promise((r) => setTimeout(r, 250));
        left = processes(port, outputs);
      }
      assert.deepEqual(left, { java: false, cli: false }, "no orphan survives npm");
    } finally {
      if (npm.exitCode === null) npm.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("says so plainly when the port is taken", async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const cli = runCli(["--port", String(port), "--in-memory", "--no-web", "--quiet"]);
      assert.equal(await withTimeout(exited(cli.child), 60_000, "the CLI to exit"), 1);
      assert.match(cli.err(), new RegExp(`port ${port} on 127.0.0.1 is already in use`));
    } finally {
      blocker.close();
    }
  });

  it("says so plainly when Java is missing", async () => {
    const cli = runCli(["--in-memory", "--no-web"], { ...process.env, PATH: "/nonexistent" });
    assert.equal(await withTimeout(exited(cli.child), 60_000, "the CLI to exit"), 1);
    assert.match(cli.err(), /Java is not installed or not on PATH: DynamoDB Local needs Java 17/);
  });
});
