/**
 * Test support for the clients: a local runtime on the run's shared DynamoDB Local, and the terminal
 * client spawned as a real process, driven through stdin and read line by line from stdout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { bundleProgramSync } from "../../local/bundle";
import { startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "../../local/runtime";
import { sharedDynamo, uniquePrefix } from "../support/globalFixtures";

export const REPO_ROOT = path.resolve(__dirname, "..", "..");

/** A runtime with its own tables and secret, on the shared DynamoDB Local, silent. */
export async function startTestRuntime(
  label: string,
  extra: Partial<LocalRuntimeOptions> = {},
): Promise<{ rt: LocalRuntime; dir: string }> {
  const dynamo = await sharedDynamo();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `chat-clients-${label}-`));
  const rt = await startLocalRuntime({
    dynamodbEndpoint: dynamo.endpoint,
    tablePrefix: uniquePrefix(label),
    secretDir: dir,
    quiet: true,
    ...extra,
  });
  return { rt, dir };
}

export interface ExitResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

let terminalJs: string | undefined;
/**
 * The terminal client transpiled once (esbuild, as the local runtime does the handlers) into
 * .local/build: each of the run's ~30 spawns then loads JavaScript instead of compiling the client's
 * TypeScript through ts-node (about a CPU-second a spawn). `npm run client` runs the same source.
 */
export function terminalClientScript(): string {
  terminalJs ??= bundleProgramSync(
    path.join(REPO_ROOT, "clients", "terminal", "cli.ts"),
    path.join(REPO_ROOT, ".local", "build"),
    "terminal",
  );
  return terminalJs;
}

/** The terminal client as a child process. */
export class TerminalClient {
  readonly lines: string[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<ExitResult>;
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiters: Array<{ re: RegExp; from: number; resolve: (line: string) => void }> = [];
  private partial = "";

  constructor(args: readonly string[], env: Record<string, string> = {}) {
    this.child = spawn(
      process.execPath,
      ["--disable-warning=NodeVersionSupportWarning", "--enable-source-maps", terminalClientScript(), ...args],
      { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: "pipe" },
    );
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      const parts = (this.partial + chunk).split("\n");
      this.partial = parts.pop() ?? "";
      for (const l of parts) this.push(l);
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => this.stderr.push(chunk));
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        if (this.partial) this.push(this.partial);
        this.partial = "";
        resolve({ code, signal });
      }),
    );
  }

  private push(line: string): void {
    this.lines.push(line);
    const index = this.lines.length - 1;
    for (const w of [...this.waiters]) {
      if (index >= w.from && w.re.test(line)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`);
  }

  endInput(): void {
    this.child.stdin.end();
  }

  /** The number of lines printed so far: pass it to `expect` to wait only for later lines. */
  mark(): number {
    return this.lines.length;
  }

  /** Waits for a line matching `re`, printed at or after line index `from` (default: any line). */
  async expect(re: RegExp, from = 0, timeoutMs = 15_000): Promise<string> {
    const found = this.lines.find((l, i) => i >= from && re.test(l));
    if (found !== undefined) return found;
    return new Promise((resolve, reject) => {
      const waiter = {
        re,
        from,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `no line matching ${re} within ${timeoutMs} ms; output was:\n${this.lines.join("\n")}\nstderr:\n${this.stderr.join("")}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** True if some line printed so far (from the start) matches. */
  saw(re: RegExp): boolean {
    return this.lines.some((l) => re.test(l));
  }

  async exit(timeoutMs = 15_000): Promise<ExitResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`client did not exit within ${timeoutMs} ms; output:\n${this.lines.join("\n")}`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.exited, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill("SIGKILL");
  }
}

export interface Relay {
  readonly port: number;
  /** Offline: open connections are cut (both ways) and new ones are closed at once. */
  setOffline(offline: boolean): void;
  close(): Promise<void>;
}

/** A TCP relay on 127.0.0.1 to `targetPort`: a network link the test can cut and restore. */
export async function startRelay(targetPort: number): Promise<Relay> {
  let offline = false;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    if (offline) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: "127.0.0.1", port: targetPort });
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    setOffline(value) {
      offline = value;
      if (value) {
        for (const [a, b] of [...pairs]) {
          a.destroy();
          b.destroy();
        }
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const [a, b] of [...pairs]) {
          a.destroy();
          b.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
