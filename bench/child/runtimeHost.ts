/**
 * Runs one local runtime (local/runtime.ts) in its own process for the benchmarks, so that the
 * WebSocket clients (in the bench process) and the runtime do not share an event loop, and so
 * that the runtime's CPU time and peak RSS can be read from /proc for this process alone.
 *
 * Started with child_process.fork by bench/lib/runtimeProcess.ts; options arrive as JSON in
 * argv[2]; it answers requests over the IPC channel (stats, resetStats, mintToken, stop).
 */
import { startLocalRuntime, type LocalRuntime, type LocalRuntimeOptions } from "../../local/runtime";
import type { LogEntry } from "../../local/logger";
import type { DeliveryQueueFigures, HostReply, HostRequest, HostStats } from "../lib/runtimeProtocol";

async function main(): Promise<void> {
  const options = JSON.parse(process.argv[2] ?? "{}") as LocalRuntimeOptions;
  /** Bytes the functions wrote to their logs, per function (what CloudWatch Logs would ingest). */
  const logBytes: Record<string, number> = {};
  const logger = (e: LogEntry) => {
    if (e.source !== "function" || !e.function) return;
    const bytes = (e.data ? Buffer.byteLength(JSON.stringify(e.data)) : Buffer.byteLength(e.message)) + 1;
    logBytes[e.function] = (logBytes[e.function] ?? 0) + bytes;
  };
  let runtime: LocalRuntime;
  try {
    runtime = await startLocalRuntime({ ...options, logger });
  } catch (err) {
    send({ type: "error", message: `${(err as Error).name}: ${(err as Error).message}` });
    process.exit(1);
  }
  const stats = (): HostStats => ({
    functions: runtime.stats.functions,
    emf: runtime.stats.emf,
    management: runtime.stats.management,
    logBytes: { ...logBytes },
    ...deliveryQueue(),
  });
  /** The runtime's delivery queue figures, if it has a queue (the local runtime of issue 17's workers). */
  const deliveryQueue = (): { deliveryQueue?: DeliveryQueueFigures } => {
    const read = (runtime.stats as { deliveryQueue?: () => DeliveryQueueFigures }).deliveryQueue;
    try {
      return read ? { deliveryQueue: read() } : {};
    } catch {
      return {}; // deliver disabled: no queue
    }
  };
  process.on("message", async (raw: HostRequest) => {
    try {
      switch (raw.type) {
        case "stats":
          return send({ type: "stats", id: raw.id, stats: stats() });
        case "resetStats":
          runtime.resetStats();
          runtime.sink.reset();
          for (const k of Object.keys(logBytes)) delete logBytes[k];
          return send({ type: "ok", id: raw.id });
        case "mintTokens": {
          const tokens: string[] = [];
          for (const u of raw.users) tokens.push(await runtime.mintToken(u.userId, u.username));
          return send({ type: "tokens", id: raw.id, tokens });
        }
        case "registerSink": {
          const r = await runtime.sink.register(raw.members, raw.concurrency);
          return send({
            type: "sinkRegistered",
            id: raw.id,
            registration: { ...r, connectionIds: r.connectionIds.map((c) => c ?? null) },
          });
        }
        case "sinkReceipts": {
          if (!raw.times) return send({ type: "sinkReceipts", id: raw.id, count: runtime.sink.receivedCount(raw.key), duplicates: 0 });
          const r = runtime.sink.receipts(raw.key);
          return send({ type: "sinkReceipts", id: raw.id, count: r.first.size, duplicates: r.duplicates, times: [...r.first.values()] });
        }
        case "stop":
          await runtime.stop();
          send({ type: "ok", id: raw.id });
          process.disconnect?.();
          return setTimeout(() => process.exit(0), 100);
      }
    } catch (err) {
      send({ type: "error", id: raw.id, message: (err as Error).message });
    }
  });
  // If the bench process dies, do not leave a runtime (and its DynamoDB Local) behind.
  process.on("disconnect", () => {
    void runtime.stop().finally(() => process.exit(0));
  });
  send({
    type: "ready",
    pid: process.pid,
    endpoint: runtime.endpoint,
    managementEndpoint: runtime.managementEndpoint,
    dynamodbEndpoint: runtime.dynamodbEndpoint,
    region: runtime.region,
    tableNames: runtime.tableNames,
    fanoutConcurrency: runtime.settings.fanoutConcurrency,
    rateLimitPerMinute: runtime.settings.rateLimitPerMinute,
    largeRoomUsers: runtime.settings.largeRoomUsers,
    roomShardSize: runtime.settings.roomShardSize,
    deliveryWorkerConcurrency: runtime.settings.deliveryWorkerConcurrency,
    deliveryPostsPerSecond: runtime.settings.deliveryPostsPerSecond,
    functions: Object.keys(runtime.stats.functions).filter((f) => !(options.disabledFunctions ?? []).includes(f as never)),
  });
}

function send(reply: HostReply): void {
  process.send?.(reply);
}

void main();
