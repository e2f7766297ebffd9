/**
 * Runs each chat function as deployed: one worker_thread per function, with its own process.env
 * (functionEnvironment() plus what Lambda itself sets), a measured cold start, a timeout after which
 * the instance is replaced, and captured stdout/stderr (structured logs forwarded, EMF lines parsed).
 */
import { randomUUID } from "node:crypto";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { Worker } from "node:worker_threads";
import type { FunctionName } from "../handlers/routes";
import type { Logger } from "./logger";

/** What the worker loads. */
export type FunctionSource =
  /** handlers/index.ts transpiled once by esbuild (local/bundle.ts): `FACTORIES[name]()` is the cold start. */
  | { readonly kind: "bundle"; readonly modulePath: string; readonly exportName: string }
  /** The module `serializeFunction(FACTORIES[name], { isFactoryFunction: true })` produced. */
  | { readonly kind: "serialized"; readonly modulePath: string; readonly exportName: string }
  /** A plain module exporting `factory()` or `handler` (test fixtures through `functionOverrides`). */
  | { readonly kind: "module"; readonly modulePath: string; readonly tsconfig?: string };

export interface LambdaErrorInfo {
  readonly name: string;
  readonly message: string;
  readonly stack?: string;
}

export type InvokeOutcome<T> =
  | { readonly ok: true; readonly result: T; readonly durationMs: number; readonly coldStart: boolean }
  | {
      readonly ok: false;
      /** error: the handler threw; timeout: it ran past the function timeout; crash: the instance died; init: the factory failed. */
      readonly kind: "error" | "timeout" | "crash" | "init";
      readonly error: LambdaErrorInfo;
      readonly durationMs: number;
      readonly coldStart: boolean;
    };

/** One EMF log line as CloudWatch would extract it (Embedded Metric Format specification). */
export interface EmfRecord {
  readonly function: FunctionName;
  /** The invocation's request id, when the line carries one. */
  readonly requestId?: string;
  readonly namespace: string;
  readonly dimensions: Readonly<Record<string, string>>;
  /** Metric name → value (arrays of values are summed). */
  readonly values: Readonly<Record<string, number>>;
}

export interface FunctionStats {
  invocations: number;
  errors: number;
  timeouts: number;
  crashes: number;
  coldStarts: number;
  /** Cold start durations (factory run), ms. */
  readonly initMs: number[];
  /** Invocation durations as the runtime saw them, ms. */
  readonly durationsMs: number[];
}

export function emptyFunctionStats(): FunctionStats {
  return { invocations: 0, errors: 0, timeouts: 0, crashes: 0, coldStarts: 0, initMs: [], durationsMs: [] };
}

export interface FunctionHostOptions {
  readonly name: FunctionName;
  readonly source: FunctionSource;
  /** The function's whole environment (process.env inside its worker). */
  readonly env: Readonly<Record<string, string>>;
  readonly timeoutMs: number;
  readonly memoryMb: number;
  readonly region: string;
  readonly accountId: string;
  readonly logger: Logger;
  readonly stats: FunctionStats;
  readonly onEmf: (record: EmfRecord) => void;
  /** Lambda's init phase limit is 10 s; a worker per function starting at once on a busy machine needs more (default 60 s). */
  readonly initTimeoutMs?: number;
  /**
   * Invocations one instance runs at once (default MAX_CONCURRENT_INVOCATIONS); later ones wait
   * their turn, and their timeout starts when they start, as a Lambda invocation's does.
   */
  readonly maxConcurrentInvocations?: number;
}

/**
 * Lambda gives each invocation its own instance; locally all of a function's invocations share one
 * worker and its SDK clients, whose HTTP agent has 50 sockets, and the SDK's 1 s connectionTimeout
 * includes waiting for a free socket. Without a bound, a burst (300 frames at once) starves the pool:
 * calls fail with TimeoutError or hang past the function timeout, and frames are answered INTERNAL
 * or with API Gateway's Internal server error instead of their documented answer. 16 at once keeps a
 * chat's store, room Query and fan-out posts (16 in flight) well inside the pool.
 */
export const MAX_CONCURRENT_INVOCATIONS = 16;

interface Pending {
  readonly resolve: (o: InvokeOutcome<unknown>) => void;
  started: number;
  readonly coldStart: boolean;
  timer?: NodeJS.Timeout;
  /** Set while the invocation waits for a free slot of its instance. */
  start?: () => void;
}

const WORKER_FILE = path.join(__dirname, "worker.js");

/** One execution environment (a Lambda "instance"). */
class Instance {
  readonly worker: Worker;
  readonly ready: Promise<LambdaErrorInfo | undefined>;
  readonly pending = new Map<string, Pending>();
  dead = false;
  retired = false;
  served = 0;
  /** Invocations running in the worker (the others in `pending` wait in `waiting`, in order). */
  private running = 0;
  private readonly waiting: string[] = [];

  constructor(
    private readonly host: FunctionHost,
    private readonly o: FunctionHostOptions,
  ) {
    const logStream = `${new Date().toISOString().slice(0, 10).replace(/-/g, "/")}/[$LATEST]${randomUUID().replace(/-/g, "")}`;
    this.logStream = logStream;
    this.worker = new Worker(WORKER_FILE, {
      env: { ...o.env, AWS_LAMBDA_LOG_STREAM_NAME: logStream },
      workerData: { functionName: o.name, source: o.source },
      stdout: true,
      stderr: true,
      // The function's memory setting bounds its heap, as the Lambda memory size bounds the sandbox.
      resourceLimits: { maxOldGenerationSizeMb: Math.max(o.memoryMb, 256) },
    });
    this.pipe(this.worker.stdout, "info");
    this.pipe(this.worker.stderr, "error");
    this.ready = new Promise((resolve) => {
      const initTimer = setTimeout(() => {
        resolve({ name: "Runtime.InitTimeout", message: `init did not finish within ${o.initTimeoutMs ?? 60_000} ms` });
        this.kill();
      }, o.initTimeoutMs ?? 60_000);
      initTimer.unref();
      this.worker.on("message", (msg: WorkerMessage) => {
        if (msg.type === "ready") {
          clearTimeout(initTimer);
          o.stats.coldStarts += 1;
          o.stats.initMs.push(msg.initMs);
          o.logger({ level: "debug", source: "runtime", function: o.name, message: `cold start ${msg.initMs.toFixed(0)} ms` });
          resolve(undefined);
        } else if (msg.type === "initError") {
          clearTimeout(initTimer);
          resolve({ name: "Runtime.InitError", message: `${msg.error.name}: ${msg.error.message}`, stack: msg.error.stack });
          this.kill();
        } else if (msg.type === "result" || msg.type === "error") {
          this.settle(msg);
        }
      });
      const died = (err?: Error) => {
        clearTimeout(initTimer);
        const info: LambdaErrorInfo = {
          name: "Runtime.ExitError",
          message: err ? `instance died: ${err.message}` : "instance exited",
          stack: err?.stack,
        };
        resolve(info);
        this.failAll("crash", info);
      };
      this.worker.on("error", (err) => died(err));
      this.worker.on("exit", () => died());
    });
  }

  readonly logStream: string;

  private pipe(stream: NodeJS.ReadableStream, level: "info" | "error"): void {
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on("line", (line) => this.host.onLogLine(line, level));
  }

  private settle(msg: { type: "result"; id: string; result: unknown } | { type: "error"; id: string; error: LambdaErrorInfo }): void {
    const p = this.pending.get(msg.id);
    if (!p) return; // already timed out
    this.pending.delete(msg.id);
    if (p.timer) clearTimeout(p.timer);
    this.finished();
    const durationMs = performance.now() - p.started;
    this.o.stats.durationsMs.push(durationMs);
    if (msg.type === "result") p.resolve({ ok: true, result: msg.result, durationMs, coldStart: p.coldStart });
    else {
      this.o.stats.errors += 1;
      p.resolve({ ok: false, kind: "error", error: msg.error, durationMs, coldStart: p.coldStart });
    }
    this.maybeFinish();
  }

  invoke(id: string, message: unknown, coldStart: boolean, resolve: (o: InvokeOutcome<unknown>) => void): void {
    const p: Pending = { resolve, started: performance.now(), coldStart };
    this.pending.set(id, p);
    this.served += 1;
    p.start = () => this.start(id, p, message, coldStart, resolve);
    if (this.running < (this.o.maxConcurrentInvocations ?? MAX_CONCURRENT_INVOCATIONS)) p.start();
    else this.waiting.push(id);
  }

  /** One slot is free again: the oldest waiting invocation starts. */
  private finished(): void {
    this.running -= 1;
    while (this.waiting.length > 0) {
      const next = this.pending.get(this.waiting.shift()!);
      if (next?.start) {
        next.start();
        return;
      }
    }
  }

  private start(id: string, p: Pending, message: unknown, coldStart: boolean, resolve: (o: InvokeOutcome<unknown>) => void): void {
    p.start = undefined;
    p.started = performance.now();
    this.running += 1;
    p.timer = setTimeout(() => {
      if (!this.pending.delete(id)) return;
      this.finished();
      this.o.stats.timeouts += 1;
      const durationMs = performance.now() - p.started;
      this.o.stats.durationsMs.push(durationMs);
      this.o.logger({
        level: "warn",
        source: "runtime",
        function: this.o.name,
        message: `Task timed out after ${(this.o.timeoutMs / 1000).toFixed(2)} seconds`,
      });
      resolve({
        ok: false,
        kind: "timeout",
        error: { name: "Sandbox.Timedout", message: `Task timed out after ${(this.o.timeoutMs / 1000).toFixed(2)} seconds` },
        durationMs,
        coldStart,
      });
      // Lambda discards an instance whose invocation timed out; the next invocation cold-starts.
      // Other invocations running on this worker (each would have its own instance on Lambda) finish first.
      this.retire();
    }, this.o.timeoutMs);
    this.worker.postMessage(message);
  }

  retire(): void {
    this.retired = true;
    this.host.forget(this);
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.retired && this.pending.size === 0) this.kill();
  }

  failAll(kind: "crash", error: LambdaErrorInfo): void {
    if (this.dead) return;
    this.dead = true;
    this.host.forget(this);
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      if (p.timer) clearTimeout(p.timer);
      this.o.stats.crashes += 1;
      p.resolve({ ok: false, kind, error, durationMs: performance.now() - p.started, coldStart: p.coldStart });
    }
  }

  kill(): void {
    this.host.forget(this);
    void this.worker.terminate();
  }
}

type WorkerMessage =
  | { type: "ready"; initMs: number }
  | { type: "initError"; error: LambdaErrorInfo }
  | { type: "result"; id: string; result: unknown }
  | { type: "error"; id: string; error: LambdaErrorInfo };

/** A deployed function: at most one live instance at a time, replaced after a timeout, crash or init failure. */
export class FunctionHost {
  private current: Instance | undefined;
  private readonly all = new Set<Instance>();
  private stopped = false;

  constructor(readonly options: FunctionHostOptions) {}

  get name(): FunctionName {
    return this.options.name;
  }

  /** Starts an instance now (the CLI warms functions so the first connect is quick). */
  async warm(): Promise<LambdaErrorInfo | undefined> {
    return this.instance().ready;
  }

  private instance(): Instance {
    if (!this.current || this.current.dead || this.current.retired) {
      this.current = new Instance(this, this.options);
      this.all.add(this.current);
    }
    return this.current;
  }

  forget(instance: Instance): void {
    if (this.current === instance) this.current = undefined;
    if (instance.dead || (instance.retired && instance.pending.size === 0)) this.all.delete(instance);
  }

  async invoke<T>(event: unknown, requestId: string): Promise<InvokeOutcome<T>> {
    const o = this.options;
    if (this.stopped) {
      return {
        ok: false,
        kind: "crash",
        error: { name: "Runtime.ExitError", message: `function ${this.name} is stopped` },
        durationMs: 0,
        coldStart: false,
      };
    }
    o.stats.invocations += 1;
    const started = performance.now();
    const instance = this.instance();
    const coldStart = instance.served === 0;
    const initError = await instance.ready;
    if (initError) {
      o.stats.errors += 1;
      o.logger({ level: "error", source: "runtime", function: o.name, message: `${initError.name}: ${initError.message}` });
      return { ok: false, kind: "init", error: initError, durationMs: performance.now() - started, coldStart };
    }
    if (instance.dead) {
      return { ok: false, kind: "crash", error: { name: "Runtime.ExitError", message: "instance exited" }, durationMs: 0, coldStart };
    }
    const id = randomUUID();
    return new Promise<InvokeOutcome<T>>((resolve) => {
      instance.invoke(
        id,
        {
          type: "invoke",
          id,
          event,
          context: {
            functionName: o.env.AWS_LAMBDA_FUNCTION_NAME ?? o.name,
            invokedFunctionArn: `arn:aws:lambda:${o.region}:${o.accountId}:function:${o.env.AWS_LAMBDA_FUNCTION_NAME ?? o.name}`,
            memoryLimitInMB: o.memoryMb,
            awsRequestId: requestId,
            logGroupName: o.env.AWS_LAMBDA_LOG_GROUP_NAME ?? `/aws/lambda/${o.name}`,
            logStreamName: instance.logStream,
            deadline: Date.now() + o.timeoutMs,
          },
        },
        coldStart,
        resolve as (x: InvokeOutcome<unknown>) => void,
      );
    });
  }

  /** A line the function wrote: EMF lines become metrics, JSON lines are structured logs, others plain text. */
  onLogLine(line: string, stream: "info" | "error"): void {
    const o = this.options;
    if (line.trim() === "") return;
    let parsed: unknown;
    if (line.startsWith("{")) {
      try {
        parsed = JSON.parse(line);
      } catch {
        parsed = undefined;
      }
    }
    if (parsed && typeof parsed === "object") {
      const record = parseEmf(o.name, parsed as Record<string, unknown>);
      if (record) {
        o.onEmf(record);
        o.logger({ level: "debug", source: "function", function: o.name, message: "EMF", data: parsed as Record<string, unknown> });
        return;
      }
      const obj = parsed as Record<string, unknown>;
      const level = typeof obj.level === "string" ? obj.level.toLowerCase() : stream;
      o.logger({
        level: level === "error" || level === "warn" || level === "debug" ? level : "info",
        source: "function",
        function: o.name,
        message: typeof obj.msg === "string" ? obj.msg : typeof obj.message === "string" ? obj.message : line,
        data: obj,
      });
      return;
    }
    o.logger({ level: stream, source: "function", function: o.name, message: line });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const instances = [...this.all];
    this.all.clear();
    this.current = undefined;
    await Promise.all(
      instances.map(async (i) => {
        i.failAll("crash", { name: "Runtime.ExitError", message: "runtime stopped" });
        await i.worker.terminate();
      }),
    );
  }
}

/** Extracts the metrics of an Embedded Metric Format object, or undefined if it is not one. */
export function parseEmf(fn: FunctionName, obj: Record<string, unknown>): EmfRecord | undefined {
  const aws = obj._aws as { CloudWatchMetrics?: unknown } | undefined;
  if (!aws || !Array.isArray(aws.CloudWatchMetrics)) return undefined;
  const values: Record<string, number> = {};
  const dimensions: Record<string, string> = {};
  let namespace = "";
  for (const directive of aws.CloudWatchMetrics as Array<Record<string, unknown>>) {
    if (typeof directive.Namespace === "string") namespace = directive.Namespace;
    for (const set of (directive.Dimensions as unknown[][] | undefined) ?? []) {
      for (const d of set) if (typeof d === "string" && typeof obj[d] === "string") dimensions[d] = obj[d] as string;
    }
    for (const m of (directive.Metrics as Array<{ Name?: unknown }> | undefined) ?? []) {
      if (typeof m.Name !== "string") continue;
      const v = obj[m.Name];
      if (typeof v === "number") values[m.Name] = v;
      else if (Array.isArray(v)) values[m.Name] = v.reduce((a: number, b) => a + (typeof b === "number" ? b : 0), 0);
    }
  }
  return { function: fn, ...(typeof obj.requestId === "string" ? { requestId: obj.requestId } : {}), namespace, dimensions, values };
}
