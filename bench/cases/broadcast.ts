/**
 * Cases 1 and 2 (bounded half): one local runtime with an AWS-like @connections latency, the
 * population of bench/lib/population.ts connected over real WebSockets, then for each measured
 * room: chat messages from one member to the room (cost per message from the handlers' usage
 * metrics, and send-to-receipt latency at every member), the Scan-per-message reference on the same
 * tables, and a probe connection that measures `$connect` and `$disconnect` into that room.
 */
import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import {
  broadcastAndWait,
  closeClients,
  closeClientsGracefully,
  openClient,
  openRooms,
  type BenchClient,
  type ClientSpec,
} from "../lib/clients";
import { planPopulation, type Population } from "../lib/population";
import type { BroadcastRow, OperationUsage } from "../lib/results";
import { startRuntimeProcess, type RuntimeProcessOptions } from "../lib/runtimeProcess";
import { medianUsage, usageOf, waitForEmf } from "../lib/usageStats";
import { scanBroadcast, type ScanBroadcastResult } from "../reference/scanBroadcast";

export interface RoomCaseOptions {
  /** Start every function before measuring, so no cold start lands in a sample (default true; --quick: false). */
  readonly warm?: boolean;
  readonly connections: number;
  readonly sizes: readonly number[];
  readonly managementLatencyMs: number;
  /** Overrides the runtime's fan-out concurrency (undefined = the project's default). */
  readonly fanoutConcurrency?: number;
  readonly functionTimeoutMs?: number;
  /** Chat messages sent to a room of `members`. */
  readonly messagesFor: (members: number) => number;
  readonly handshakeConcurrency: number;
  /** Distinct users per measured room (bench/lib/population.ts). */
  readonly usersPerRoom: number;
  /** Also run the Scan reference and the connect/disconnect/ping probes (the cost case). */
  readonly measureCost: boolean;
  readonly log: (line: string) => void;
}

export interface RoomSizeResult {
  readonly members: number;
  readonly latenciesMs: number[];
  readonly messages: number;
  readonly chat: OperationUsage;
  readonly chatDelivered: number;
  readonly scan?: ScanBroadcastResult;
  readonly connect?: OperationUsage;
  readonly authorizer?: OperationUsage;
  readonly disconnect?: OperationUsage;
  /** Issue 18's frames from one member (cost case only): a typing that passes, a reaction added, a read moved forward. */
  readonly typing?: OperationUsage;
  readonly react?: OperationUsage;
  readonly read?: OperationUsage;
}

export interface RoomCaseResult {
  readonly fanoutConcurrency: number;
  readonly population: Population;
  readonly sizes: RoomSizeResult[];
  readonly ping?: OperationUsage;
  /** Metric values per EMF line (for the custom-metric series count). */
  readonly metricsPerEmfLine: number;
  readonly setupSeconds: number;
}

export async function runRoomCase(o: RoomCaseOptions): Promise<RoomCaseResult> {
  const runtimeOptions: RuntimeProcessOptions = {
    port: 0,
    inMemory: true,
    managementLatencyMs: o.managementLatencyMs,
    // The benchmark's senders are few and fast, and it opens many connections per user at once: the
    // per-connection and per-user budgets would only measure themselves.
    settings: {
      ...(o.fanoutConcurrency !== undefined ? { fanoutConcurrency: o.fanoutConcurrency } : {}),
      rateLimitPerMinute: 100_000,
      userRateLimitPerMinute: 1_000_000,
      userConnectsPerMinute: 100_000,
      // Typing is measured in every room size (the cost model applies the stack's bound itself).
      typingMaxRoomUsers: 100_000,
    },
    ...(o.functionTimeoutMs !== undefined ? { functionTimeoutMs: o.functionTimeoutMs } : {}),
    warm: o.warm ?? true,
  };
  const rt = await startRuntimeProcess(runtimeOptions);
  let clients: BenchClient[] = [];
  try {
    o.log(
      `  runtime up (fan-out concurrency ${rt.fanoutConcurrency}, @connections latency ${o.managementLatencyMs} ms); connecting ${o.connections} clients`,
    );
    const population = planPopulation(o.connections, o.sizes, o.usersPerRoom);
    const all = population.byRoom.flat();
    const tokens = await rt.mintTokens(all.map((s) => ({ userId: s.userId, username: s.username })));
    const tokenOf = new Map(all.map((s, i) => [s, tokens[i]]));
    const t0 = performance.now();
    clients = await openRooms(
      rt.endpoint,
      population.byRoom.map((g) => g.map((s): ClientSpec => ({ ...s, token: tokenOf.get(s)! }))),
      o.handshakeConcurrency,
      (n) => o.log(`  ${n} connected`),
    );
    const setupSeconds = (performance.now() - t0) / 1000;
    o.log(`  ${clients.length} clients connected in ${setupSeconds.toFixed(1)} s`);
    // Let presence frames of the set-up drain before measuring.
    await new Promise((r) => setTimeout(r, 500));

    const dynamo = new DynamoDBClient({
      endpoint: rt.dynamodbEndpoint,
      region: rt.region,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const management = new ApiGatewayManagementApiClient({
      endpoint: rt.managementEndpoint,
      region: rt.region,
      credentials: { accessKeyId: "local", secretAccessKey: "local" },
    });
    const sizes: RoomSizeResult[] = [];
    let metricsPerEmfLine = 0;
    for (const members of o.sizes) {
      const roomId = `bench-${members}`;
      const room = clients.filter((c) => c.spec.roomId === roomId);
      if (room.length !== members) throw new Error(`room ${roomId} has ${room.length} clients, expected ${members}`);
      const sender = room[0];
      const latencies: number[] = [];
      const usage: OperationUsage[] = [];
      const messages = o.messagesFor(members);
      let delivered = 0;
      for (let i = 0; i < messages; i++) {
        await rt.resetStats();
        latencies.push(...(await broadcastAndWait(sender, room, roomId, 60_000)));
        const stats = await waitForEmf(rt, "chat", 1);
        const chatRecord = stats.emf.find((r) => r.function === "chat");
        metricsPerEmfLine = Math.max(metricsPerEmfLine, Object.keys(chatRecord?.values ?? {}).length);
        delivered = chatRecord?.values.Deliveries ?? delivered;
        usage.push(usageOf(stats, "chat"));
      }
      const result: { -readonly [K in keyof RoomSizeResult]: RoomSizeResult[K] } = {
        members,
        latenciesMs: latencies,
        messages,
        chat: medianUsage(usage),
        chatDelivered: delivered,
      };
      o.log(
        `  room of ${members}: ${messages} messages, chat reads ${result.chat.itemsRead} items, ${result.chat.managementCalls} @connections calls`,
      );
      if (o.measureCost) {
        // The reference design, on the same tables and the same members.
        const nonce = `scan-reference-${members}-${Date.now()}`;
        const received = waitForMarker(room, nonce, 60_000);
        received.catch(() => undefined);
        result.scan = await scanBroadcast({
          dynamo,
          management,
          connectionsTable: rt.tableNames.connections,
          roomId,
          data: JSON.stringify({
            type: "chat",
            roomId,
            messageId: nonce,
            userId: "reference",
            username: "reference",
            message: nonce,
            sentAt: new Date().toISOString(),
          }),
        });
        await received;
        // A new user's connection into the room, then its departure.
        await rt.resetStats();
        const [token] = await rt.mintTokens([{ userId: `probe-${members}`, username: `probe ${members}` }]);
        const probe = await openClient(rt.endpoint, { userId: `probe-${members}`, username: `probe ${members}`, roomId, token });
        const connectStats = await waitForEmf(rt, "connect", 1);
        result.connect = usageOf(connectStats, "connect");
        result.authorizer = connectStats.emf.some((r) => r.function === "authorizer") ? usageOf(connectStats, "authorizer") : undefined;
        await new Promise((r) => setTimeout(r, 200));
        await rt.resetStats();
        await closeClientsGracefully([probe]);
        result.disconnect = usageOf(await waitForEmf(rt, "disconnect", 1), "disconnect");
        await new Promise((r) => setTimeout(r, 200));
        Object.assign(result, await measureSignals(rt, room, roomId));
      }
      sizes.push(result);
    }
    let ping: OperationUsage | undefined;
    if (o.measureCost) {
      await rt.resetStats();
      const pinger = clients[0];
      const pong = new Promise<void>((resolve) => {
        pinger.onFrame = (data) => {
          if (data.includes("pong")) {
            pinger.onFrame = undefined;
            resolve();
          }
        };
      });
      pinger.ws.send(JSON.stringify({ type: "ping" }));
      await pong;
      ping = usageOf(await waitForEmf(rt, "ping", 1), "ping");
    }
    dynamo.destroy();
    management.destroy();
    return { fanoutConcurrency: rt.fanoutConcurrency, population, sizes, ping, metricsPerEmfLine, setupSeconds };
  } finally {
    closeClients(clients);
    await rt.stop();
  }
}

/**
 * Issue 18's frames, each from the room's second member (the sender's reactions and reads would be
 * about its own message): one typing (the first of its user in the room: it passes the throttle),
 * one reaction to the last chat message, one read of it. Each function's EMF line gives its usage.
 */
async function measureSignals(
  rt: Awaited<ReturnType<typeof startRuntimeProcess>>,
  room: readonly BenchClient[],
  roomId: string,
): Promise<Pick<RoomSizeResult, "typing" | "react" | "read">> {
  const [sender, other] = room;
  const messageId = await sendAndCapture(sender, roomId);
  const measure = async (fn: string, frame: Record<string, unknown>): Promise<OperationUsage> => {
    await rt.resetStats();
    other.ws.send(JSON.stringify(frame));
    const usage = usageOf(await waitForEmf(rt, fn, 1), fn);
    // Let the fan-out's frames drain before the next measurement.
    await new Promise((r) => setTimeout(r, 200));
    return usage;
  };
  return {
    typing: await measure("typing", { type: "typing", roomId }),
    react: await measure("react", { type: "react", roomId, messageId, emoji: "👍" }),
    read: await measure("read", { type: "read", roomId, messageId }),
  };
}

/** Sends one chat message from `sender` and resolves with its messageId (from the sender's own copy). */
function sendAndCapture(sender: BenchClient, roomId: string, timeoutMs = 30_000): Promise<string> {
  const nonce = `signal-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      sender.onFrame = undefined;
      reject(new Error(`the chat message to ${roomId} did not come back to its sender within ${timeoutMs} ms`));
    }, timeoutMs);
    sender.onFrame = (data) => {
      if (!data.includes(nonce)) return;
      const frame = JSON.parse(data) as { type?: string; messageId?: string };
      if (frame.type !== "chat" || frame.messageId === undefined) return;
      clearTimeout(timer);
      sender.onFrame = undefined;
      resolve(frame.messageId);
    };
    sender.ws.send(JSON.stringify({ type: "chat", roomId, message: nonce }));
  });
}

function waitForMarker(members: readonly BenchClient[], marker: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let remaining = members.length;
    const timer = setTimeout(() => {
      for (const m of members) m.onFrame = undefined;
      reject(new Error(`${remaining} members did not receive the reference broadcast within ${timeoutMs} ms`));
    }, timeoutMs);
    for (const m of members) {
      let got = false;
      m.onFrame = (data) => {
        if (got || !data.includes(marker)) return;
        got = true;
        m.onFrame = undefined;
        if (--remaining === 0) {
          clearTimeout(timer);
          resolve();
        }
      };
    }
  });
}

export function broadcastRows(connections: number, sizes: readonly RoomSizeResult[]): BroadcastRow[] {
  return sizes
    .filter((s) => s.scan)
    .map((s) => {
      const scan = s.scan!;
      const ratio = scan.itemsRead / s.chat.itemsRead;
      const targetRatio = connections / s.members / 1.2;
      return {
        members: s.members,
        ours: {
          itemsRead: s.chat.itemsRead,
          readUnits: s.chat.readUnits,
          writeUnits: s.chat.writeUnits,
          managementCalls: s.chat.managementCalls,
          delivered: s.chatDelivered,
        },
        scan: {
          itemsRead: scan.itemsRead,
          readUnits: scan.readUnits,
          writeUnits: scan.writeUnits,
          managementCalls: scan.managementCalls,
          delivered: scan.delivered,
        },
        itemsReadRatio: ratio,
        targetItemsRead: s.members + 5,
        targetRatio,
        itemsReadMet: s.chat.itemsRead <= s.members + 5,
        ratioMet: ratio >= targetRatio,
      };
    });
}
