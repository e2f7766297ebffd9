/**
 * Case 5: start-up. Time from spawning `npm run local -- --in-memory --port <free port>` (the
 * documented command; --quiet and a throw-away --outputs file so the developer's .local/outputs.json
 * is left alone) to the first WebSocket connection the runtime accepts. A probe retries every 50 ms
 * with a token signed by the same local secret the runtime uses (.local/secret). The CLI's node
 * process is then sent SIGTERM (it stops DynamoDB Local and exits); whatever of the process group
 * is still running 15 s later is killed, and counted.
 */
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { freePort } from "../../local/dynamoLocal";
import { localSecret } from "../../local/secret";
import { mintLocalToken } from "../../local/token";
import { openClient } from "../lib/clients";
import { commandName, descendants } from "../lib/proc";

const ROOT = path.join(__dirname, "..", "..");

/** How many times the process group outlived SIGTERM by 15 s and had to be killed (reported as a finding). */
export let forcedKills = 0;

export async function measureStartup(timeoutMs = 120_000): Promise<number> {
  const port = await freePort();
  const token = await mintLocalToken(localSecret(path.join(ROOT, ".local")), { userId: "startup-probe", username: "startup probe" });
  const outputs = path.join(ROOT, "bench", "tmp", `startup-outputs-${port}.json`);
  fs.mkdirSync(path.dirname(outputs), { recursive: true });
  const t0 = performance.now();
  const child = spawn("npm", ["run", "--silent", "local", "--", "--in-memory", "--port", String(port), "--quiet", "--outputs", outputs], {
    cwd: ROOT,
    detached: true, // its own process group: npm, node and java are stopped together
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.once("exit", (code) => {
      exitCode = code;
      resolve();
    }),
  );
  try {
    for (;;) {
      if (exitCode !== undefined)
        throw new Error(`npm run local exited with code ${exitCode} before accepting a connection: ${output.trim()}`);
      if (performance.now() - t0 > timeoutMs) throw new Error(`no connection accepted within ${timeoutMs} ms: ${output.trim()}`);
      try {
        const c = await openClient(
          `ws://127.0.0.1:${port}/local`,
          { userId: "startup-probe", username: "startup probe", roomId: "general", token },
          5000,
        );
        const ms = performance.now() - t0;
        c.ws.close(1000);
        return ms;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  } finally {
    if (child.pid) {
      const pgid = child.pid;
      const alive = () => {
        try {
          process.kill(-pgid, 0);
          return true;
        } catch {
          return false;
        }
      };
      const signal = (s: NodeJS.Signals) => {
        try {
          process.kill(-pgid, s);
        } catch {
          /* already gone */
        }
      };
      // SIGTERM to the CLI's own node process, as the README's stop instructions do; npm exits with it.
      const cli = descendants(pgid).find((p) => commandName(p) === "node");
      if (cli) {
        try {
          process.kill(cli, "SIGTERM");
        } catch {
          /* already gone */
        }
      } else signal("SIGTERM");
      // The whole group (npm, the CLI's node, DynamoDB Local's java) must be gone, not only npm.
      const deadline = Date.now() + 15_000;
      while (alive() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      if (alive()) {
        forcedKills += 1;
        signal("SIGKILL");
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      child.stdout?.destroy();
      child.stderr?.destroy();
    }
    fs.rmSync(outputs, { force: true });
  }
}
