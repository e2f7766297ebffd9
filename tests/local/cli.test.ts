/**
 * `npm run local` as a user runs it: a child process that prints how to connect, writes the stack
 * outputs, serves the chat API, and on SIGTERM stops everything including DynamoDB Local's java process.
 */
import * as assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { parseCliArgs, UsageError } from "../../local/cli";
import { connect, withTimeout } from "./wsClient";

const ROOT = path.resolve(__dirname, "..", "..");
const CLI = path.join(ROOT, "local", "cli.ts");

function runCli(args: readonly string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(process.execPath, ["--disable-warning=NodeVersionSupportWarning", "-r", "ts-node/register/transpile-only", CLI, ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  return { child, out: () => out, err: () => err };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function javaOnPort(port: string): boolean {
  const ps = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" });
  return ps.stdout.split("\n").some((l) => l.includes("DynamoDBLocal.jar") && l.includes(`-port ${port}`));
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
      const o = parseCliArgs(["--port=4000", "--stage", "dev", "--in-memory", "--serialized", "--management-latency-ms", "25", "--idle-timeout-seconds=30", "--max-duration-seconds", "60", "--quiet", "--no-web"]);
      assert.deepEqual(
        { port: o.port, stage: o.stage, inMemory: o.inMemory, serialized: o.serialized, lat: o.managementLatencyMs, idle: o.idleTimeoutSeconds, max: o.maxDurationSeconds, quiet: o.quiet, web: o.web },
        { port: 4000, stage: "dev", inMemory: true, serialized: true, lat: 25, idle: 30, max: 60, quiet: true, web: false },
      );
    });

    it("refuses unknown options and out-of-range values with a message", () => {
      assert.throws(() => parseCliArgs(["--prot", "1"]), UsageError);
      assert.throws(() => parseCliArgs(["--port", "70000"]), /--port must be an integer from 0 to 65535/);
      assert.throws(() => parseCliArgs(["--idle-timeout-seconds", "601"]), /from 1 to 600/);
      assert.throws(() => parseCliArgs(["--stage", "a/b"]), /--stage/);
      assert.throws(() => parseCliArgs(["--port"]), /needs a value/);
    });
  });

  it("prints how to connect, writes the outputs, serves the API and stops DynamoDB Local on SIGTERM", async () => {
    const outputs = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "chat-cli-")), "outputs.json");
    const cli = runCli(["--port", "0", "--in-memory", "--no-web", "--quiet", "--outputs", outputs]);
    try {
      await until(() => cli.out().includes("Ctrl-C stops everything") || cli.child.exitCode !== null, 150_000, "the banner");
      assert.equal(cli.child.exitCode, null, `the CLI exited early: ${cli.err()}`);
      const printed = cli.out();
      const out = JSON.parse(fs.readFileSync(outputs, "utf8")) as Record<string, string>;
      for (const k of ["endpoint", "managementEndpoint", "apiId", "stage", "connectionsTable", "roomsTable", "messagesTable"]) assert.ok(out[k], k);
      assert.ok(printed.includes(out.endpoint));
      assert.match(printed, /npx wscat -c '/);
      assert.match(printed, /npm run client -- ws:\/\//);

      // The printed wscat line works as is.
      const url = /npx wscat -c '([^']+)'/.exec(printed)![1];
      const client = await connect(url);
      client.send({ type: "chat", message: "Hello WebSocket!" });
      const frame = await client.next((f) => f.json?.type === "chat");
      assert.equal(frame.json!.message, "Hello WebSocket!");
      assert.equal(frame.json!.userId, "demo");
      await client.close();

      const dynamoPort = new URL(out.dynamodbEndpoint).port;
      assert.ok(javaOnPort(dynamoPort), "DynamoDB Local runs while the CLI runs");
      cli.child.kill("SIGTERM");
      assert.equal(await withTimeout(exited(cli.child), 30_000, "the CLI to exit"), 143);
      assert.ok(!javaOnPort(dynamoPort), "no DynamoDB Local survives the CLI");
    } finally {
      if (cli.child.exitCode === null) cli.child.kill("SIGKILL");
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
