/**
 * The large-room case (issue 17, "Measured locally"): one room of N members in its own local
 * runtime with an AWS-like `@connections` latency; one member sends K chat messages; per message,
 * the time from the send to each member's receipt.
 *
 * Rooms up to `socketsUpTo` members are real `ws` clients in the bench process (source "sockets").
 * Larger rooms cannot be real sockets on one 2-core machine: the sender is a real socket and every
 * other member is registered in the gateway's counting sink (local/sink.ts, source "sink"): through
 * the real authorizer, `$connect` and join with a real token, so DynamoDB holds exactly what their
 * sockets would leave, and each POST to them is answered 200 after the same latency and counted
 * with its receipt time. Receipt times of sink members are taken in the runtime process on the wall
 * clock (performance.timeOrigin + now), the send time in the bench process on the same clock.
 *
 * Distinct users: the handlers announce a user's first connection in a room to every member, so
 * filling a room of N users posts N^2 / 2 presence frames, except in rooms already above
 * largeRoomUsers, which announce nothing (handlers/settings.ts). When the runtime has the delivery
 * workers and the room will be above the threshold, each member is its own user (shards and the
 * threshold count users, so this is what a large room is); otherwise the room is filled with 100
 * users on N / 100 connections each (a broadcast goes to every connection either way).
 */
import * as os from "node:os";
import { broadcastAndCollect, closeClients, openClient, openClients, type BenchClient, type ClientSpec } from "../lib/clients";
import { planPopulation } from "../lib/population";
import type { LargeRoomRow } from "../lib/results";
import { startRuntimeProcess, type RuntimeProcess } from "../lib/runtimeProcess";
import { median, round, summarize } from "../lib/stats";

export interface LargeRoomOptions {
  /** Start every function before measuring, so no cold start lands in a sample (default true; --quick: false). */
  readonly warm?: boolean;
  readonly sizes: readonly number[];
  /** Rooms of at most this many members are real sockets; larger ones use the sink. */
  readonly socketsUpTo: number;
  readonly messages: number;
  /** Distinct users per room (capped at the room's members); undefined: see the module comment. */
  readonly users?: number;
  /** The runtime's largeRoomUsers. */
  readonly largeRoomUsers: number;
  readonly roomShardSize?: number;
  readonly deliveryWorkerConcurrency?: number;
  readonly deliveryPostsPerSecond?: number;
  readonly managementLatencyMs: number;
  /** Handshakes (socket or sink) in flight at once while the room fills. */
  readonly connectConcurrency: number;
  readonly log: (line: string) => void;
}

/** Users in a room of fewer users than the threshold (or without workers): bounds the set-up's presence posts. */
export const SMALL_PATH_USERS = 100;

/** Distinct users for a room of `members` (see the module comment). */
export function largeRoomUsersFor(members: number, hasWorkers: boolean, largeRoomUsers: number, users?: number): number {
  if (users !== undefined) return Math.min(members, users);
  return hasWorkers && members > largeRoomUsers ? members : Math.min(members, SMALL_PATH_USERS);
}

/** Wall-clock ms with sub-ms resolution, the clock the sink's receipts are on (local/gateway.ts epochMs). */
function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A delivery with no new receipt for this long has stopped (a function timed out, a member was removed). */
const STALL_MS = 15_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function runLargeRoom(o: LargeRoomOptions): Promise<LargeRoomRow[]> {
  const rows: LargeRoomRow[] = [];
  for (const members of o.sizes) rows.push(await measureRoom(o, members));
  return rows;
}

async function measureRoom(o: LargeRoomOptions, members: number): Promise<LargeRoomRow> {
  const source: LargeRoomRow["source"] = members <= o.socketsUpTo ? "sockets" : "sink";
  const rt = await startRuntimeProcess({
    port: 0,
    inMemory: true,
    managementLatencyMs: o.managementLatencyMs,
    // One sender and many connections per user at once: the rate budgets would only measure themselves.
    settings: {
      rateLimitPerMinute: 100_000,
      userRateLimitPerMinute: 1_000_000,
      userConnectsPerMinute: 100_000,
      largeRoomUsers: o.largeRoomUsers,
      ...(o.roomShardSize !== undefined ? { roomShardSize: o.roomShardSize } : {}),
      ...(o.deliveryWorkerConcurrency !== undefined ? { deliveryWorkerConcurrency: o.deliveryWorkerConcurrency } : {}),
      ...(o.deliveryPostsPerSecond !== undefined ? { deliveryPostsPerSecond: o.deliveryPostsPerSecond } : {}),
    },
    warm: o.warm ?? true,
  });
  let clients: BenchClient[] = [];
  try {
    const hasWorkers = rt.functions.includes("deliver");
    const users = largeRoomUsersFor(members, hasWorkers, rt.largeRoomUsers, o.users);
    const roomId = `large-${members}`;
    const population = planPopulation(members, [members], users, 10, "large");
    const specs = population.byRoom[0];
    o.log(
      `  room of ${members} (${source}, ${users} users): runtime up (largeRoomUsers ${rt.largeRoomUsers}, ${hasWorkers ? `workers ${rt.deliveryWorkerConcurrency}, ${rt.deliveryPostsPerSecond} posts/s, shard size ${rt.roomShardSize}` : "no delivery workers"}, @connections latency ${o.managementLatencyMs} ms)`,
    );
    const tokens = await rt.mintTokens(specs.map((s) => ({ userId: s.userId, username: s.username })));
    const withTokens = specs.map((s, i): ClientSpec => ({ ...s, token: tokens[i] }));

    // Fill the room: every member connects through the authorizer and $connect. The joins that
    // announce `joined` (each user's first connection while the room is at most largeRoomUsers
    // users, or every first connection without workers) connect one at a time: a `joined` posted to
    // a connection whose $connect has just returned is refused (410) until the gateway opens it, and
    // under load the handlers can take it for stale (docs/architecture.md "Races"). The rest connect
    // `connectConcurrency` at a time.
    // Rooms above the threshold announce nothing with the delivery workers, or when the users are
    // given (--large-room-users: for handlers that stop announcing there without the workers).
    const quietAbove = hasWorkers || o.users !== undefined;
    const announcing = Math.max(1, quietAbove ? Math.min(users, rt.largeRoomUsers + 1) : users);
    const t0 = performance.now();
    let sender: BenchClient;
    if (source === "sockets") {
      clients = await openClients(rt.endpoint, withTokens.slice(0, announcing), 1);
      clients.push(
        ...(await openClients(rt.endpoint, withTokens.slice(announcing), o.connectConcurrency, (n) =>
          o.log(`  ${n + announcing} connected`),
        )),
      );
      sender = clients[0];
    } else {
      sender = await openClient(rt.endpoint, withTokens[0]);
      clients = [sender];
      const rest = withTokens.slice(1);
      const chunk = 1000;
      for (let i = 0; i < rest.length; ) {
        const end = i < announcing - 1 ? announcing - 1 : Math.min(rest.length, i + chunk);
        const part = rest.slice(i, end).map((s) => ({ token: s.token, roomId: s.roomId, username: s.username }));
        const reg = await rt.registerSink(part, i < announcing - 1 ? 1 : o.connectConcurrency);
        if (reg.refused.length > 0)
          throw new Error(`${reg.refused.length} sink members of ${roomId} were refused (first: HTTP ${reg.refused[0].status})`);
        o.log(`  ${end + 1} registered (${round(reg.perSecond, 1)}/s)`);
        i = end;
      }
    }
    const setupSeconds = (performance.now() - t0) / 1000;
    const registration = {
      perSecond: round(members / setupSeconds, 1),
      seconds: round(setupSeconds, 1),
      concurrency: o.connectConcurrency,
    };
    o.log(`  ${members} members in ${registration.seconds} s (${registration.perSecond}/s, ${o.connectConcurrency} at a time)`);
    // Let the set-up's presence frames drain before measuring.
    await sleep(1000);

    const latencies: number[] = [];
    const posts: number[] = [];
    const rates: number[] = [];
    const invocations: Record<string, number[]> = {};
    let duplicates = 0;
    let missing = 0;
    let timeouts = 0;
    const loadAverage1m = round(os.loadavg()[0], 2);
    const timeoutMs = 60_000 + members * 10;
    const queueAtStart = (await rt.stats()).deliveryQueue;
    let queueBefore = queueAtStart;
    const jobs: number[] = [];
    const receives: number[] = [];
    const jobAges: number[] = [];
    for (let i = 0; i < o.messages; i++) {
      await rt.resetStats();
      const r =
        source === "sockets"
          ? { ...(await broadcastAndCollect(sender, clients, roomId, timeoutMs, STALL_MS)), duplicates: 0 }
          : await broadcastToSink(rt, sender, roomId, members - 1, timeoutMs);
      latencies.push(...r.latencies);
      duplicates += r.duplicates;
      missing += r.missing;
      if (r.missing > 0) o.log(`  message ${i + 1}: ${r.missing} of ${members} members did not receive it`);
      // Whatever is still posting (a retried shard) is counted before the next message.
      await sleep(300);
      const stats = await rt.stats();
      posts.push(stats.management.post);
      const q = stats.deliveryQueue;
      if (q && queueBefore) {
        jobs.push(q.queue.sent - queueBefore.queue.sent);
        receives.push(q.queue.received - queueBefore.queue.received);
        queueBefore = q;
      }
      for (const r of stats.emf)
        if ((r.function as string) === "deliver" && Number.isFinite(r.values.DeliveryJobAge)) jobAges.push(r.values.DeliveryJobAge);
      const windowMs = stats.management.lastPostAtMs - stats.management.firstPostAtMs;
      if (stats.management.post > 1 && windowMs > 0) rates.push(((stats.management.post - 1) * 1000) / windowMs);
      for (const [name, f] of Object.entries(stats.functions)) {
        if (name === "chat" || name === "deliver") {
          invocations[name] = [...(invocations[name] ?? []), f.invocations];
          timeouts += f.timeouts;
        }
      }
    }
    const s = summarize(latencies);
    const ages = summarize(jobAges);
    const queueAtEnd = queueBefore;
    const queue: LargeRoomRow["queue"] =
      queueAtStart && queueAtEnd
        ? {
            jobsPerMessage: median(jobs),
            receivesPerMessage: median(receives),
            recordsReportedFailed: queueAtEnd.mapping.recordsReportedFailed - queueAtStart.mapping.recordsReportedFailed,
            failedInvocations: queueAtEnd.mapping.failedInvocations - queueAtStart.mapping.failedInvocations,
            deadLetters: queueAtEnd.queue.movedToDeadLetterQueue - queueAtStart.queue.movedToDeadLetterQueue,
            maxConcurrentInvocations: queueAtEnd.mapping.maxConcurrentInvocations,
            jobAgeP50Ms: round(ages.p50, 1),
            jobAgeMaxMs: round(ages.max, 1),
          }
        : undefined;
    const path: LargeRoomRow["path"] = (invocations.deliver ?? []).some((n) => n > 0) ? "workers" : "route";
    const effectivePostsPerSecond = rates.length ? median(rates) : Number.NaN;
    const floorMs = (members / rt.deliveryPostsPerSecond) * 1000;
    const effectiveFloorMs = (members / effectivePostsPerSecond) * 1000;
    const row: LargeRoomRow = {
      members,
      p50Ms: round(s.p50, 1),
      p99Ms: round(s.p99, 1),
      maxMs: round(s.max, 1),
      postLatencyMs: o.managementLatencyMs,
      workers: rt.deliveryWorkerConcurrency,
      postsPerSecond: rt.deliveryPostsPerSecond,
      shardSize: rt.roomShardSize,
      source,
      messages: o.messages,
      users,
      path,
      largeRoomUsers: rt.largeRoomUsers,
      fanoutConcurrency: rt.fanoutConcurrency,
      floorMs: round(floorMs, 1),
      p99OverFloor: round(s.p99 / floorMs, 2),
      effectivePostsPerSecond: round(effectivePostsPerSecond, 0),
      effectiveFloorMs: round(effectiveFloorMs, 1),
      p99OverEffectiveFloor: round(s.p99 / effectiveFloorMs, 2),
      postsPerMessage: median(posts),
      duplicates,
      missing,
      functionTimeouts: timeouts,
      invocations: Object.fromEntries(Object.entries(invocations).map(([k, v]) => [k, median(v)])),
      ...(queue ? { queue } : {}),
      registration,
      loadAverage1m,
    };
    o.log(
      `  room of ${members} (${source}, ${path}): p50 ${row.p50Ms} ms, p99 ${row.p99Ms} ms, max ${row.maxMs} ms; floor ${row.floorMs} ms (budget), ${row.effectiveFloorMs} ms (${row.effectivePostsPerSecond} posts/s measured); load ${loadAverage1m}`,
    );
    return row;
  } finally {
    closeClients(clients);
    await rt.stop();
  }
}

/**
 * Sends one chat message from `sender` (a socket) and waits until `sinkMembers` sink members have
 * it: the sender's own copy names the messageId, the sink's receipts of `chat:<messageId>` are
 * polled. Resolves with every member's latency (the sender's included) in ms since the send.
 */
async function broadcastToSink(
  rt: RuntimeProcess,
  sender: BenchClient,
  roomId: string,
  sinkMembers: number,
  timeoutMs: number,
): Promise<{ latencies: number[]; duplicates: number; missing: number }> {
  const nonce = `large-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  const deadline = Date.now() + timeoutMs;
  const own = new Promise<{ messageId: string; at: number }>((resolve, reject) => {
    const timer = setTimeout(() => {
      sender.onFrame = undefined;
      reject(new Error(`the chat message to ${roomId} did not come back to its sender within ${timeoutMs} ms`));
    }, timeoutMs);
    sender.onFrame = (data) => {
      const at = epochMs();
      if (data.includes('"type":"error"')) {
        clearTimeout(timer);
        sender.onFrame = undefined;
        reject(new Error(`the chat message to ${roomId} was answered with an error frame: ${data.slice(0, 300)}`));
        return;
      }
      if (!data.includes(nonce)) return;
      const frame = JSON.parse(data) as { type?: string; messageId?: string };
      if (frame.type !== "chat" || typeof frame.messageId !== "string") return;
      clearTimeout(timer);
      sender.onFrame = undefined;
      resolve({ messageId: frame.messageId, at });
    };
  });
  const sentAt = epochMs();
  sender.ws.send(JSON.stringify({ type: "chat", roomId, message: nonce }));
  const { messageId, at } = await own;
  const key = `chat:${messageId}`;
  let last = 0;
  let lastChange = Date.now();
  for (;;) {
    const { count } = await rt.sinkReceipts(key, false);
    if (count >= sinkMembers) break;
    if (count !== last) {
      last = count;
      lastChange = Date.now();
    }
    if (Date.now() > deadline || Date.now() - lastChange > STALL_MS) break;
    await sleep(50);
  }
  const r = await rt.sinkReceipts(key, true);
  return { latencies: [at - sentAt, ...(r.times ?? []).map((t) => t - sentAt)], duplicates: r.duplicates, missing: sinkMembers - r.count };
}
