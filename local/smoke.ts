/**
 * Smoke test of the quick start's first command, as a user runs it:
 *
 *   node -r ts-node/register/transpile-only local/smoke.ts [extra npm run local options]
 *
 * Spawns `npm run local -- --in-memory --port 0 --quiet --no-web --outputs <tmp>` (plus any extra
 * options), waits for the banner, connects with the printed wscat URL, sends
 * {"type":"chat","message":"Hello WebSocket!"}, waits for it to come back, stops the runtime with
 * SIGTERM and checks that no DynamoDB Local java process survives. Exit code 0 when all of it worked.
 * tests/local/cli.test.ts runs the same function.
 */
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import WebSocket from "ws";

const ROOT = path.resolve(__dirname, "..");

export interface SmokeReport {
  /** What `npm run local` printed on stdout. */
  readonly banner: string;
  /** Its .local/outputs.json equivalent. */
  readonly outputs: Record<string, string>;
  /** The frame that came back after sending the chat message. */
  readonly echoed: Record<string, unknown>;
  readonly startMs: number;
  /** npm's exit code after SIGTERM (null when npm itself died of the signal). */
  readonly exitCode: number | null;
  /** Whether DynamoDB Local's java process was still running after the CLI exited. */
  readonly dynamoSurvived: boolean;
}

function javaOnPort(port: string): boolean {
  const ps = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" });
  return ps.stdout.split("\n").some((l) => l.includes("DynamoDBLocal.jar") && l.includes(`-port ${port}`));
}

function echo(url: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`no chat frame within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on("unexpected-response", (_req, res) => {
      clearTimeout(timer);
      reject(new Error(`handshake refused with HTTP ${res.statusCode}`));
    });
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on("open", () => ws.send(JSON.stringify({ type: "chat", message: "Hello WebSocket!" })));
    ws.on("message", (data) => {
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(data.toString()) as Record<string, unknown>;
      } catch {
        return;
      }
      if (frame.type !== "chat" && frame.type !== "error" && frame.message !== "Internal server error") return;
      clearTimeout(timer);
      ws.close();
      resolve(frame);
    });
  });
}

export async function smokeLocal(extraArgs: readonly string[] = [], timeoutMs = 180_000): Promise<SmokeReport> {
  const outputsFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "chat-smoke-")), "outputs.json");
  const started = performance.now();
  const child = spawn(
    "npm",
    ["run", "--silent", "local", "--", "--in-memory", "--port", "0", "--quiet", "--no-web", "--outputs", outputsFile, ...extraArgs],
    {
      cwd: ROOT,
      // Its own process group, signalled as a whole like Ctrl-C signals a terminal's foreground group.
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    const deadline = Date.now() + timeoutMs;
    while (!out.includes("Ctrl-C stops everything")) {
      if (child.exitCode !== null) throw new Error(`npm run local exited with ${child.exitCode}: ${err.trim().slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`npm run local printed no banner within ${timeoutMs} ms: ${err.trim().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const startMs = performance.now() - started;
    const outputs = JSON.parse(fs.readFileSync(outputsFile, "utf8")) as Record<string, string>;
    const url = /npx wscat -c '([^']+)'/.exec(out)?.[1];
    if (!url) throw new Error(`the banner has no wscat line:\n${out}`);
    const echoed = await echo(url, 30_000);
    const dynamoPort = new URL(outputs.dynamodbEndpoint).port;
    // SIGTERM to the group: the CLI stops the gateway, the functions and DynamoDB Local.
    process.kill(-child.pid!, "SIGTERM");
    const exitCode = await exited;
    const stopDeadline = Date.now() + 30_000;
    while (javaOnPort(dynamoPort) && Date.now() < stopDeadline) await new Promise((r) => setTimeout(r, 200));
    return { banner: out, outputs, echoed, startMs, exitCode, dynamoSurvived: javaOnPort(dynamoPort) };
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
    fs.rmSync(path.dirname(outputsFile), { recursive: true, force: true });
  }
}

if (require.main === module) {
  smokeLocal(process.argv.slice(2)).then(
    (r) => {
      const ok = r.echoed.type === "chat" && r.echoed.message === "Hello WebSocket!" && !r.dynamoSurvived;
      process.stdout.write(
        `${ok ? "ok" : "FAILED"}: started in ${(r.startMs / 1000).toFixed(1)} s, echoed ${JSON.stringify(r.echoed)}, exit ${r.exitCode}, ` +
          `DynamoDB Local ${r.dynamoSurvived ? "STILL RUNNING" : "stopped"}\n`,
      );
      process.exit(ok ? 0 : 1);
    },
    (err: Error) => {
      process.stderr.write(`smoke: ${err.message}\n`);
      process.exit(1);
    },
  );
}
