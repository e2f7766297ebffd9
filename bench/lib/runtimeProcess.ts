/**
 * The bench side of bench/child/runtimeHost.ts: forks a local runtime in its own process and talks
 * to it over IPC. `stop()` always ends the child (and with it the DynamoDB Local it started): the
 * child leads its own process group, so a forced kill (SIGKILL skips the runtime's exit hook that
 * stops java) reaches DynamoDB Local too instead of leaving it orphaned. If the bench itself dies,
 * the child sees its IPC channel close and stops (bench/child/runtimeHost.ts).
 */
import { fork, type ChildProcess } from "node:child_process";
import * as path from "node:path";
import type { LocalRuntimeOptions } from "../../local/runtime";
import { commandName, descendants } from "./proc";
import type { SinkMemberSpec } from "../../local/sink";
import type { HostReady, HostReply, HostRequest, HostStats, SinkRegistrationReply } from "./runtimeProtocol";

type Request = HostRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export interface RuntimeProcess extends HostReady {
  readonly child: ChildProcess;
  stats(): Promise<HostStats>;
  resetStats(): Promise<void>;
  mintTokens(users: ReadonlyArray<{ userId: string; username: string }>): Promise<string[]>;
  /** Registers socketless members in the runtime's sink (local/sink.ts), `concurrency` handshakes at a time. */
  registerSink(members: readonly SinkMemberSpec[], concurrency: number): Promise<SinkRegistrationReply>;
  /** Sink members that received `key` (local/sink.ts frameKey), and with `times` their first receipts (epoch ms). */
  sinkReceipts(key: string, times: boolean): Promise<{ count: number; duplicates: number; times?: number[] }>;
  /** The DynamoDB Local (java) process the runtime started, if any. */
  dynamoPid(): number | undefined;
  stop(): Promise<void>;
}

/** Options that can cross the process boundary (JSON: no functions, no logger). */
export type RuntimeProcessOptions = Omit<LocalRuntimeOptions, "logger" | "managementFault">;

export async function startRuntimeProcess(options: RuntimeProcessOptions, startTimeoutMs = 120_000): Promise<RuntimeProcess> {
  const root = path.join(__dirname, "..", "..");
  const child = fork(path.join(root, "bench", "child", "runtimeHost.ts"), [JSON.stringify(options)], {
    cwd: root,
    execArgv: ["--disable-warning=NodeVersionSupportWarning", "-r", "ts-node/register/transpile-only"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
    detached: true,
  });
  /** Signals the child's whole process group (the runtime and its DynamoDB Local). */
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      /* the group is already gone */
    }
  };
  let nextId = 1;
  const pending = new Map<number, { resolve: (r: HostReply) => void; reject: (e: Error) => void }>();
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const ready = new Promise<HostReady>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`local runtime did not start within ${startTimeoutMs} ms`)), startTimeoutMs);
    child.on("message", (msg: HostReply) => {
      if (msg.type === "ready") {
        clearTimeout(timer);
        resolve(msg);
        return;
      }
      const id = "id" in msg ? msg.id : undefined;
      if (id === undefined) {
        clearTimeout(timer);
        reject(new Error(`local runtime failed to start: ${msg.type === "error" ? msg.message : msg.type}`));
        return;
      }
      const p = pending.get(id);
      if (!p) return;
      pending.delete(id);
      if (msg.type === "error") p.reject(new Error(msg.message));
      else p.resolve(msg);
    });
    child.once("exit", (code) => {
      exited = true;
      clearTimeout(timer);
      for (const p of pending.values()) p.reject(new Error(`runtime process exited with code ${code}`));
      pending.clear();
      reject(new Error(`runtime process exited with code ${code} before it was ready`));
    });
  });
  const request = (req: Request): Promise<HostReply> =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error("runtime process has exited"));
      const id = nextId++;
      pending.set(id, { resolve, reject });
      child.send({ ...req, id } as HostRequest);
    });
  let info: HostReady;
  try {
    info = await ready;
  } catch (err) {
    killGroup("SIGKILL");
    throw err;
  }
  let stopping: Promise<void> | undefined;
  return {
    ...info,
    child,
    stats: async () => {
      const r = await request({ type: "stats" });
      if (r.type !== "stats") throw new Error(`unexpected reply ${r.type}`);
      return r.stats;
    },
    resetStats: async () => {
      await request({ type: "resetStats" });
    },
    mintTokens: async (users) => {
      const r = await request({ type: "mintTokens", users });
      if (r.type !== "tokens") throw new Error(`unexpected reply ${r.type}`);
      return r.tokens;
    },
    registerSink: async (members, concurrency) => {
      const r = await request({ type: "registerSink", members, concurrency });
      if (r.type !== "sinkRegistered") throw new Error(`unexpected reply ${r.type}`);
      return r.registration;
    },
    sinkReceipts: async (key, times) => {
      const r = await request({ type: "sinkReceipts", key, times });
      if (r.type !== "sinkReceipts") throw new Error(`unexpected reply ${r.type}`);
      return { count: r.count, duplicates: r.duplicates, ...(r.times ? { times: r.times } : {}) };
    },
    dynamoPid: () => descendants(info.pid).find((p) => commandName(p) === "java"),
    stop: () =>
      (stopping ??= (async () => {
        if (!exited) {
          const timer = setTimeout(() => killGroup("SIGKILL"), 20_000);
          try {
            await Promise.race([request({ type: "stop" }).catch(() => undefined), exitPromise]);
            await exitPromise;
          } finally {
            clearTimeout(timer);
          }
        }
        // Whatever the runtime left in its group (nothing after a clean stop).
        killGroup("SIGKILL");
      })()),
  };
}
