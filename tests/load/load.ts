/**
 * The load run of issue 8: N real WebSocket clients in R rooms send mixed traffic (chat mostly,
 * plus private, history, rooms, ping and join/leave) at a fixed rate for a set duration, against a
 * local runtime in its own process (bench/lib/runtimeProcess.ts); one client floods mid-run. Then
 * it checks, from what the clients saw and from history read back through the API:
 *
 * - every message its sender saw acknowledged (its own broadcast back for `chat`, `delivered` for
 *   `private`) reached every member connected for the whole run exactly once, and is in history
 *   exactly once;
 * - every frame got its answer; no unexpected error frame; no unexpected disconnect;
 * - the flooding client got RATE_LIMITED and the others none;
 * - the runtime's RSS at the end is within a stated margin of its RSS after warm-up.
 *
 * Figures (latencies, memory, counts) are reported, never asserted: performance is shown by numbers,
 * correctness by checks. Used by `npm run test:load` (tests/load/run.ts) and, short, by
 * tests/reliability/load.test.ts.
 */
import WebSocket from "ws";
import { closeClients, openClients, type BenchClient, type ClientSpec } from "../../bench/lib/clients";
import { machineInfo, type MachineInfo } from "../../bench/lib/machine";
import { rssMiB } from "../../bench/lib/proc";
import { startRuntimeProcess, type RuntimeProcess } from "../../bench/lib/runtimeProcess";
import { round, summarize, type Summary } from "../../bench/lib/stats";
import { METRICS } from "../../handlers/metrics";
import { seededRandom } from "../../bench/model/random";

export interface LoadOptions {
  /** WebSocket connections, one user each (the flooding client is one of them). */
  readonly connections: number;
  readonly rooms: number;
  readonly durationSec: number;
  /** Client frames per second over all clients (the flood excluded). */
  readonly rate: number;
  /** Traffic before the warm-up memory reading. Default min(30 s, a tenth of the run). */
  readonly warmupSec?: number;
  /** Chat frames the flooding client sends, centred on the middle of the run. Default 200. */
  readonly floodFrames?: number;
  /**
   * Pace of the flood, frames/s. Default 5: five times the average rate rateLimitPerMinute (60)
   * allows, so that 140 of the 200 frames are refused. Not all at once: locally every concurrent invocation of a function shares one worker
   * and its SDK clients' 50 sockets, which Lambda's one-invocation-per-instance does not
   * (docs/reliability.md, "Load").
   */
  readonly floodRate?: number;
  /** Allowed growth of the runtime's RSS from warm-up to end, percent. Default 25 (see docs/reliability.md). */
  readonly memoryMarginPct?: number;
  /** Seed of the traffic generator (same seed, same sequence of actions). */
  readonly seed?: number;
  /** Handshakes in flight while connecting. Default 16. */
  readonly handshakeConcurrency?: number;
  readonly log?: (line: string) => void;
}

/** Share of each action in the traffic mix (sums to 1). */
export const MIX = { chat: 0.8, private: 0.05, history: 0.04, rooms: 0.03, ping: 0.04, roam: 0.04 } as const;
type Action = keyof typeof MIX;
/** A roaming client joins another room and leaves it this long after. */
const ROAM_MS = 2000;
/** How long the run waits for answers and deliveries after the last frame. */
const SETTLE_MS = 60_000;

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface LoadResult {
  readonly options: Required<Omit<LoadOptions, "log">>;
  readonly machine: MachineInfo;
  readonly startedAt: string;
  readonly wallSeconds: number;
  readonly connectSeconds: number;
  readonly sent: Readonly<Record<Action | "join" | "leave" | "flood", number>>;
  readonly chat: {
    readonly acked: number;
    readonly errors: number;
    readonly deliveriesExpected: number;
    readonly deliveriesReceived: number;
  };
  readonly private: { readonly acked: number; readonly deliveredTo1: number; readonly errors: number };
  readonly lost: number;
  readonly duplicates: number;
  readonly history: {
    readonly checked: number;
    readonly missing: number;
    readonly duplicates: number;
    readonly unacknowledgedStored: number;
    readonly requests: number;
  };
  readonly unanswered: number;
  readonly unexpectedErrors: Readonly<Record<string, number>>;
  /** The first unexpected error frames: who got them, when (s from the start of traffic), the frame. */
  readonly errorSamples: ReadonlyArray<{ readonly userId: string; readonly atSec: number; readonly frame: string }>;
  readonly unexpectedDisconnects: number;
  readonly flood: {
    readonly frames: number;
    readonly accepted: number;
    readonly rateLimited: number;
    readonly othersRateLimited: number;
    readonly othersDeliveryLatencyMs: { readonly baseline: Summary; readonly duringFlood: Summary };
  };
  readonly latencyMs: { readonly ack: Summary; readonly delivery: Summary };
  readonly memory: {
    readonly warmupRssMiB: number | null;
    readonly endRssMiB: number | null;
    readonly driftPct: number | null;
    readonly marginPct: number;
    readonly samples: ReadonlyArray<{ readonly atSec: number; readonly rssMiB: number | null }>;
    readonly dynamoRssMiB: number | null;
  };
  readonly runtime: Readonly<Record<string, number>>;
  readonly checks: readonly Check[];
  readonly passed: boolean;
}

/** The seeded PRNG of the bad-input generator and the model (mulberry32, bench/model/random.ts), so a run's sequence of actions can be reproduced. */
export const prng = seededRandom;

/** The action a uniform number in [0, 1) selects from MIX. */
export function pickAction(u: number): Action {
  let acc = 0;
  for (const [action, share] of Object.entries(MIX) as Array<[Action, number]>) {
    acc += share;
    if (u < acc) return action;
  }
  return "chat";
}

export function validateLoadOptions(o: LoadOptions): void {
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new RangeError(`--${name} must be an integer >= ${min}, got ${v}`);
  };
  int("connections", o.connections, 4);
  int("rooms", o.rooms, 1);
  int("duration", o.durationSec, 5);
  if (!(o.rate > 0 && o.rate <= 1000)) throw new RangeError(`--rate must be within (0, 1000] frames/s, got ${o.rate}`);
  if (o.connections < o.rooms * 2) throw new RangeError(`--connections (${o.connections}) must be at least twice --rooms (${o.rooms})`);
  if (o.floodFrames !== undefined) int("flood", o.floodFrames, 1);
  if (o.floodRate !== undefined && !(o.floodRate > 0 && o.floodRate <= 1000))
    throw new RangeError(`--flood-rate must be within (0, 1000] frames/s, got ${o.floodRate}`);
}

interface Pending {
  readonly kind: "chat" | "private";
  readonly sender: LoadClient;
  readonly roomId?: string;
  readonly to?: LoadClient;
  readonly sentAt: number;
  readonly flood: boolean;
  messageId?: string;
  deliveredTo?: number;
  error?: string;
}

interface LoadClient {
  readonly index: number;
  readonly userId: string;
  readonly home: string;
  readonly bench: BenchClient;
  /** messageId → copies received (chat and private). */
  readonly received: Map<string, number>;
  readonly sent: Record<string, number>;
  readonly answered: Record<string, number>;
  roaming?: string;
  closedUnexpectedly: boolean;
  /** The end-of-run history check waits for the next `history` answer here. */
  historyWaiter?: (frame: Record<string, unknown>) => void;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  validateLoadOptions(options);
  const o = {
    connections: options.connections,
    rooms: options.rooms,
    durationSec: options.durationSec,
    rate: options.rate,
    warmupSec: options.warmupSec ?? Math.min(30, Math.max(2, Math.round(options.durationSec / 10))),
    floodFrames: options.floodFrames ?? 200,
    floodRate: options.floodRate ?? 5,
    memoryMarginPct: options.memoryMarginPct ?? 25,
    seed: options.seed ?? 8,
    handshakeConcurrency: options.handshakeConcurrency ?? 16,
  };
  const log = options.log ?? (() => undefined);
  const started = Date.now();
  const machine = machineInfo();
  const random = prng(o.seed);

  // The stack's defaults (rate limit 60 frames a minute per connection, fan-out 16); nothing kept on disk.
  const rt: RuntimeProcess = await startRuntimeProcess({ port: 0, inMemory: true, warm: true });
  const clients: LoadClient[] = [];
  try {
    // ------------------------------------------------------------ connect
    const roomIds = Array.from({ length: o.rooms }, (_, r) => `load-${r}`);
    const users = Array.from({ length: o.connections }, (_, i) => ({
      userId: `load-u${i}`,
      username: `Load user ${i}`,
      roomId: roomIds[i % o.rooms],
    }));
    const tokens = await rt.mintTokens(users);
    const specs: ClientSpec[] = users.map((u, i) => ({ ...u, token: tokens[i] }));
    // Shuffled: handshakes into the same room overlap, as real users' do.
    const order = specs.map((_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j], order[i]];
    }
    const connectStart = Date.now();
    const opened = await openClients(
      rt.endpoint,
      order.map((i) => specs[i]),
      o.handshakeConcurrency,
      (n) => log(`  ${n} connected`),
    );
    const connectSeconds = (Date.now() - connectStart) / 1000;
    const byIndex = new Map<number, BenchClient>();
    for (const [k, b] of opened.entries()) byIndex.set(order[k], b);
    for (let i = 0; i < o.connections; i++) {
      const bench = byIndex.get(i)!;
      clients.push({
        index: i,
        userId: users[i].userId,
        home: users[i].roomId,
        bench,
        received: new Map(),
        sent: {},
        answered: {},
        closedUnexpectedly: bench.ws.readyState !== WebSocket.OPEN,
      });
    }
    log(`connected ${clients.length} clients in ${o.rooms} rooms in ${connectSeconds.toFixed(1)} s`);
    const byUser = new Map(clients.map((c) => [c.userId, c]));
    const members = new Map<string, LoadClient[]>(roomIds.map((r) => [r, clients.filter((c) => c.home === r)]));
    const flooder = clients[0];

    // ------------------------------------------------------------ what every client sees
    const pending = new Map<string, Pending>(); // clientMessageId → request
    const ackLatency: number[] = [];
    const deliveryLatency: Array<{ sentAt: number; ms: number; sender: number }> = [];
    const unexpectedErrors: Record<string, number> = {};
    let unexpectedDisconnects = 0;
    let finished = false;
    let trafficStart = performance.now();
    /** The first unexpected errors in full, to tell what caused them. */
    const errorSamples: Array<{ userId: string; atSec: number; frame: string }> = [];
    const countError = (code: string) => (unexpectedErrors[code] = (unexpectedErrors[code] ?? 0) + 1);

    for (const c of clients) {
      c.bench.ws.on("close", () => {
        if (finished) return;
        c.closedUnexpectedly = true;
        unexpectedDisconnects += 1;
      });
      c.bench.onFrame = (data, at) => {
        let f: Record<string, unknown>;
        try {
          f = JSON.parse(data) as Record<string, unknown>;
        } catch {
          countError("non-JSON frame");
          return;
        }
        const answered = (kind: string) => (c.answered[kind] = (c.answered[kind] ?? 0) + 1);
        switch (f.type) {
          case "chat":
          case "private": {
            const id = String(f.messageId);
            c.received.set(id, (c.received.get(id) ?? 0) + 1);
            const p = typeof f.clientMessageId === "string" ? pending.get(f.clientMessageId) : undefined;
            if (!p) return;
            if (f.type === "chat" && p.sender === c) {
              if (p.messageId === undefined) {
                p.messageId = id;
                answered(p.flood ? "flood" : "chat");
                ackLatency.push(at - p.sentAt);
              }
            }
            if (!p.flood && (p.sender !== c || f.type === "private"))
              deliveryLatency.push({ sentAt: p.sentAt, ms: at - p.sentAt, sender: p.sender.index });
            return;
          }
          case "delivered": {
            const p = typeof f.clientMessageId === "string" ? pending.get(f.clientMessageId) : undefined;
            if (p && p.sender === c && p.messageId === undefined) {
              p.messageId = String(f.messageId);
              p.deliveredTo = Number(f.deliveredTo);
              answered("private");
              ackLatency.push(at - p.sentAt);
            }
            return;
          }
          case "error": {
            const code = String(f.code);
            const requestType = typeof f.requestType === "string" ? f.requestType : "unknown";
            const p = typeof f.clientMessageId === "string" ? pending.get(f.clientMessageId) : undefined;
            if (p && p.sender === c) p.error = code;
            if (requestType === "history" && c.historyWaiter) {
              const w = c.historyWaiter;
              c.historyWaiter = undefined;
              answered("history-check");
              w(f);
            } else answered(p?.flood ? "flood" : requestType);
            if (!(code === "RATE_LIMITED" && c === flooder)) {
              countError(code);
              if (errorSamples.length < 10)
                errorSamples.push({ userId: c.userId, atSec: round((at - trafficStart) / 1000, 1), frame: data.slice(0, 300) });
            }
            return;
          }
          case "history":
            if (c.historyWaiter) {
              const w = c.historyWaiter;
              c.historyWaiter = undefined;
              answered("history-check");
              w(f);
            } else answered("history");
            return;
          case "pong":
            return void answered("ping");
          case "rooms":
            return void answered("rooms");
          case "joined":
            return void answered("join");
          case "left":
            return void answered("leave");
          case "presence":
            return;
          default:
            // API Gateway's own frames: {"message":"Internal server error"} or "Forbidden".
            countError(typeof f.message === "string" ? f.message : `frame type ${String(f.type)}`);
        }
      };
    }

    // ------------------------------------------------------------ traffic
    let seq = 0;
    const sent: Record<Action | "join" | "leave" | "flood", number> = {
      chat: 0,
      private: 0,
      history: 0,
      rooms: 0,
      ping: 0,
      roam: 0,
      join: 0,
      leave: 0,
      flood: 0,
    };
    const send = (c: LoadClient, kind: string, frame: Record<string, unknown>) => {
      if (c.bench.ws.readyState !== WebSocket.OPEN) return false;
      c.sent[kind] = (c.sent[kind] ?? 0) + 1;
      c.bench.ws.send(JSON.stringify(frame));
      return true;
    };
    const text = () => `load ${seq} ${"x".repeat(Math.floor(random() * 240))}`;
    const roamTimers = new Set<NodeJS.Timeout>();
    const act = (c: LoadClient, action: Action) => {
      seq += 1;
      switch (action) {
        case "chat": {
          const cmid = `c${seq}`;
          pending.set(cmid, { kind: "chat", sender: c, roomId: c.home, sentAt: performance.now(), flood: false });
          if (send(c, "chat", { type: "chat", roomId: c.home, message: text(), clientMessageId: cmid })) sent.chat += 1;
          else pending.delete(cmid);
          return;
        }
        case "private": {
          let to = clients[1 + Math.floor(random() * (clients.length - 1))];
          if (to === c) to = clients[1 + (to.index % (clients.length - 1))];
          const cmid = `p${seq}`;
          pending.set(cmid, { kind: "private", sender: c, to, sentAt: performance.now(), flood: false });
          if (send(c, "private", { type: "private", toUserId: to.userId, message: text(), clientMessageId: cmid })) sent.private += 1;
          else pending.delete(cmid);
          return;
        }
        case "history":
          if (send(c, "history", { type: "history", roomId: c.home, limit: 20 })) sent.history += 1;
          return;
        case "rooms":
          if (send(c, "rooms", { type: "rooms" })) sent.rooms += 1;
          return;
        case "ping":
          if (send(c, "ping", { type: "ping" })) sent.ping += 1;
          return;
        case "roam": {
          if (c.roaming) return act(c, "ping");
          const others = roomIds.filter((r) => r !== c.home);
          const roomId = others[Math.floor(random() * others.length)];
          if (!send(c, "join", { type: "join", roomId })) return;
          sent.roam += 1;
          sent.join += 1;
          c.roaming = roomId;
          const t = setTimeout(() => {
            roamTimers.delete(t);
            if (send(c, "leave", { type: "leave", roomId })) sent.leave += 1;
            c.roaming = undefined;
          }, ROAM_MS);
          roamTimers.add(t);
          return;
        }
      }
    };

    const rssSamples: Array<{ atSec: number; rssMiB: number | null }> = [];
    let warmupRss: number | null = null;
    let floodAt = Number.POSITIVE_INFINITY;
    const floodCmids: string[] = [];
    trafficStart = performance.now();
    const durationMs = o.durationSec * 1000;
    let done = 0;
    let nextSample = 0;
    let warmedUp = false;
    let flooded = false;
    // The flood is centred on the middle of the run, after warm-up.
    const floodStartMs = Math.max(o.warmupSec * 1000, durationMs / 2 - ((o.floodFrames / o.floodRate) * 1000) / 2);
    log(
      `traffic: ${o.rate} frames/s for ${o.durationSec} s (warm-up ${o.warmupSec} s, flood of ${o.floodFrames} frames at ${o.floodRate}/s from ${Math.round(floodStartMs / 1000)} s)`,
    );
    for (;;) {
      const elapsed = performance.now() - trafficStart;
      if (elapsed >= durationMs) break;
      const due = Math.floor((o.rate * elapsed) / 1000);
      for (; done < due; done++) act(clients[1 + Math.floor(random() * (clients.length - 1))], pickAction(random()));
      if (!warmedUp && elapsed >= o.warmupSec * 1000) {
        warmedUp = true;
        warmupRss = rssMiB(rt.pid);
        // Counters from here on: EMF records and durations kept by the runtime are cleared, so what
        // they hold does not count as growth.
        await rt.resetStats();
        log(`  warm-up done at ${(elapsed / 1000).toFixed(0)} s: runtime RSS ${warmupRss?.toFixed(0)} MiB`);
      }
      if (!flooded && elapsed >= floodStartMs) {
        flooded = true;
        floodAt = performance.now();
        log(`  flood: ${o.floodFrames} chat frames from ${flooder.userId} at ${o.floodRate}/s from ${(elapsed / 1000).toFixed(0)} s`);
      }
      if (flooded && floodCmids.length < o.floodFrames) {
        // One client sends far above rateLimitPerMinute, each frame a chat message to its room.
        const floodDue = Math.min(o.floodFrames, Math.floor((o.floodRate * (performance.now() - floodAt)) / 1000) + 1);
        while (floodCmids.length < floodDue) {
          const i = floodCmids.length;
          const cmid = `f${i}`;
          floodCmids.push(cmid);
          pending.set(cmid, { kind: "chat", sender: flooder, roomId: flooder.home, sentAt: performance.now(), flood: true });
          if (send(flooder, "flood", { type: "chat", roomId: flooder.home, message: `flood ${i}`, clientMessageId: cmid })) sent.flood += 1;
        }
      }
      if (elapsed >= nextSample) {
        rssSamples.push({ atSec: round(elapsed / 1000, 0), rssMiB: rssMiB(rt.pid) });
        nextSample += 10_000;
        if (rssSamples.length % 3 === 1)
          log(
            `  ${(elapsed / 1000).toFixed(0)} s: ${done} frames sent, runtime RSS ${rssSamples[rssSamples.length - 1].rssMiB?.toFixed(0)} MiB`,
          );
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const trafficSeconds = (performance.now() - trafficStart) / 1000;
    log(`traffic done: ${done} frames in ${trafficSeconds.toFixed(0)} s; settling`);

    // ------------------------------------------------------------ settle
    await new Promise((r) => setTimeout(r, ROAM_MS + 200));
    for (const t of roamTimers) clearTimeout(t);
    const unansweredCount = () => {
      let n = 0;
      for (const c of clients) {
        if (c.closedUnexpectedly) continue;
        for (const [kind, k] of Object.entries(c.sent)) n += Math.max(0, k - (c.answered[kind] ?? 0));
      }
      return n;
    };
    const deliveryGap = () => {
      let missing = 0;
      for (const p of pending.values()) {
        if (p.messageId === undefined) continue;
        for (const m of expectedRecipients(p)) if (!m.received.has(p.messageId)) missing += 1;
      }
      return missing;
    };
    const expectedRecipients = (p: Pending): LoadClient[] =>
      p.kind === "chat" ? members.get(p.roomId!)!.filter((m) => !m.closedUnexpectedly) : p.to && !p.to.closedUnexpectedly ? [p.to] : [];
    const settleDeadline = Date.now() + SETTLE_MS;
    while (Date.now() < settleDeadline && (unansweredCount() > 0 || deliveryGap() > 0)) await new Promise((r) => setTimeout(r, 250));
    // Every invocation finished (nothing still posting), then a ping per client: its pong comes after
    // every frame posted to that connection before it (one TCP stream), so late duplicates would show.
    const quietDeadline = Date.now() + 30_000;
    for (;;) {
      const s = await rt.stats();
      const busy = Object.values(s.functions).reduce((n, f) => n + f.invocations - f.durationsMs.length, 0);
      if (busy <= 0 || Date.now() > quietDeadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    // In batches: a burst of N frames at once is N concurrent invocations of one local worker
    // sharing its SDK clients' 50 sockets (Lambda would run N instances), which is not what is measured here.
    const DRAIN_BATCH = 25;
    for (let i = 0; i < clients.length; i += DRAIN_BATCH) {
      const batch = clients.slice(i, i + DRAIN_BATCH).filter((c) => !c.closedUnexpectedly);
      const before = batch.map((c) => c.answered.ping ?? 0);
      for (const c of batch) send(c, "ping", { type: "ping" });
      const drainDeadline = Date.now() + 15_000;
      while (Date.now() < drainDeadline && batch.some((c, k) => (c.answered.ping ?? 0) <= before[k]))
        await new Promise((r) => setTimeout(r, 20));
    }
    const unanswered = unansweredCount();
    const endRss = rssMiB(rt.pid);
    const dynamoPid = rt.dynamoPid();
    const dynamoRss = dynamoPid ? rssMiB(dynamoPid) : null;
    const stats = await rt.stats();

    // ------------------------------------------------------------ deliveries: exactly once to everyone connected throughout
    let lost = 0;
    let duplicates = 0;
    let deliveriesExpected = 0;
    let deliveriesReceived = 0;
    const acked = [...pending.values()].filter((p) => p.messageId !== undefined);
    for (const p of acked) {
      for (const m of expectedRecipients(p)) {
        deliveriesExpected += 1;
        const n = m.received.get(p.messageId!) ?? 0;
        if (n === 0) lost += 1;
        else deliveriesReceived += 1;
      }
    }
    // A second copy anywhere (roaming members included) is a duplicate.
    for (const c of clients) for (const n of c.received.values()) if (n > 1) duplicates += n - 1;

    // ------------------------------------------------------------ history: every acknowledged message exactly once
    let historyRequests = 0;
    const readAll = async (reader: LoadClient, query: Record<string, unknown>): Promise<string[] | undefined> => {
      const ids: string[] = [];
      let before: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const answer = new Promise<Record<string, unknown>>((resolve, reject) => {
          const timer = setTimeout(() => {
            reader.historyWaiter = undefined;
            reject(new Error(`no history answer for ${reader.userId} within 15 s`));
          }, 15_000);
          reader.historyWaiter = (f) => {
            clearTimeout(timer);
            resolve(f);
          };
        });
        historyRequests += 1;
        send(reader, "history-check", { type: "history", ...query, limit: 100, ...(before ? { before } : {}) });
        const f = await answer.catch(() => undefined);
        if (f?.type !== "history") return undefined;
        for (const m of f.messages as Array<{ messageId: string }>) ids.push(m.messageId);
        if (typeof f.next !== "string") return ids;
        before = f.next;
      }
      return ids;
    };
    let historyMissing = 0;
    let historyDuplicates = 0;
    let unacknowledgedStored = 0;
    let historyChecked = 0;
    const compare = (expectedIds: readonly string[], got: readonly string[] | undefined) => {
      historyChecked += expectedIds.length;
      if (!got) {
        historyMissing += expectedIds.length;
        return;
      }
      const counts = new Map<string, number>();
      for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
      for (const id of expectedIds) {
        const n = counts.get(id) ?? 0;
        if (n === 0) historyMissing += 1;
        if (n > 1) historyDuplicates += n - 1;
        counts.delete(id);
      }
      // Stored messages nobody saw acknowledged (e.g. answered INTERNAL after the write): reported, not lost.
      unacknowledgedStored += counts.size;
    };
    for (const roomId of roomIds) {
      const reader = members.get(roomId)!.find((m) => !m.closedUnexpectedly && m !== flooder);
      const expectedIds = acked.filter((p) => p.kind === "chat" && p.roomId === roomId).map((p) => p.messageId!);
      compare(expectedIds, reader ? await readAll(reader, { roomId }) : undefined);
    }
    const pairs = new Map<string, { reader: LoadClient; withUserId: string; ids: string[] }>();
    for (const p of acked) {
      if (p.kind !== "private") continue;
      const key = `${p.sender.userId}>${p.to!.userId}`;
      const entry = pairs.get(key) ?? { reader: p.sender, withUserId: p.to!.userId, ids: [] };
      entry.ids.push(p.messageId!);
      pairs.set(key, entry);
    }
    // A conversation holds both directions: compare each reader's view with both directions' acknowledged ids.
    const conversations = new Map<string, { reader: LoadClient; withUserId: string; ids: string[] }>();
    for (const e of pairs.values()) {
      const key = [e.reader.userId, e.withUserId].sort().join("|");
      const c = conversations.get(key);
      if (c) c.ids.push(...e.ids);
      else conversations.set(key, { ...e, ids: [...e.ids] });
    }
    const convList = [...conversations.values()];
    // Readers are spread so that no connection nears its per-minute rate limit; a few in parallel.
    for (let i = 0; i < convList.length; i += 8) {
      const slice = convList.slice(i, i + 8);
      const views = await Promise.all(
        slice.map((c) => (byUser.get(c.reader.userId)!.closedUnexpectedly ? undefined : readAll(c.reader, { withUserId: c.withUserId }))),
      );
      for (const [k, c] of slice.entries()) compare(c.ids, views[k]);
    }

    // ------------------------------------------------------------ flood and latency
    const floodAnswers = floodCmids.map((id) => pending.get(id)!);
    const floodAccepted = floodAnswers.filter((p) => p.messageId !== undefined).length;
    const floodLimited = floodAnswers.filter((p) => p.error === "RATE_LIMITED").length;
    const othersRateLimited = unexpectedErrors.RATE_LIMITED ?? 0;
    // The flood and 5 s after it.
    const FLOOD_WINDOW_MS = (o.floodFrames / o.floodRate) * 1000 + 5000;
    const inFlood = (t: number) => t >= floodAt && t < floodAt + FLOOD_WINDOW_MS;
    const warmupEnd = trafficStart + o.warmupSec * 1000;
    const baseline = summarize(deliveryLatency.filter((d) => d.sentAt >= warmupEnd && !inFlood(d.sentAt)).map((d) => d.ms));
    const duringFlood = summarize(deliveryLatency.filter((d) => inFlood(d.sentAt)).map((d) => d.ms));
    const totalErrors = Object.values(unexpectedErrors).reduce((s, n) => s + n, 0);
    const chatErrors = [...pending.values()].filter((p) => p.kind === "chat" && !p.flood && p.error).length;
    const privateAcked = acked.filter((p) => p.kind === "private");
    const driftPct = warmupRss && endRss ? ((endRss - warmupRss) / warmupRss) * 100 : null;

    const metric = (name: string) => stats.emf.reduce((s, r) => s + (r.values[name] ?? 0), 0);
    const fnTotals = Object.values(stats.functions);
    const runtime = {
      invocations: fnTotals.reduce((s, f) => s + f.invocations, 0),
      functionErrors: fnTotals.reduce((s, f) => s + f.errors, 0),
      functionTimeouts: fnTotals.reduce((s, f) => s + f.timeouts, 0),
      functionCrashes: fnTotals.reduce((s, f) => s + f.crashes, 0),
      managementPosts: stats.management.post,
      managementGone: stats.management.gone,
      managementLimitExceeded: stats.management.limitExceeded,
      deliveries: metric(METRICS.deliveries),
      failedDeliveries: metric(METRICS.failedDeliveries),
      staleConnectionsCleaned: metric(METRICS.staleConnectionsCleaned),
      rateLimited: metric(METRICS.rateLimited),
    };

    const checks: Check[] = [
      { name: "every connection opened", ok: clients.length === o.connections, detail: `${clients.length} of ${o.connections}` },
      { name: "every frame answered", ok: unanswered === 0, detail: `${unanswered} unanswered` },
      { name: "acknowledged messages lost", ok: lost === 0, detail: `${lost} of ${deliveriesExpected} deliveries missing` },
      { name: "duplicate deliveries", ok: duplicates === 0, detail: `${duplicates}` },
      {
        name: "history: every acknowledged message exactly once",
        ok: historyMissing === 0 && historyDuplicates === 0 && historyChecked === acked.length,
        detail: `${historyChecked} checked, ${historyMissing} missing, ${historyDuplicates} duplicated, ${unacknowledgedStored} stored without acknowledgement`,
      },
      { name: "no unexpected disconnect", ok: unexpectedDisconnects === 0, detail: `${unexpectedDisconnects}` },
      { name: "no unexpected error frame", ok: totalErrors === 0, detail: totalErrors === 0 ? "0" : JSON.stringify(unexpectedErrors) },
      {
        name: "flooding client rate limited",
        ok: floodLimited > 0 && floodAccepted + floodLimited === floodCmids.length && floodAccepted <= 2 * rt.rateLimitPerMinute,
        detail: `${floodLimited} RATE_LIMITED, ${floodAccepted} accepted of ${floodCmids.length} (at most ${rt.rateLimitPerMinute} a minute window)`,
      },
      { name: "others never rate limited", ok: othersRateLimited === 0, detail: `${othersRateLimited}` },
      {
        name: "no failed post, no stale clean-up, no function failure",
        ok:
          runtime.failedDeliveries === 0 &&
          runtime.staleConnectionsCleaned === 0 &&
          runtime.functionTimeouts === 0 &&
          runtime.functionCrashes === 0 &&
          runtime.functionErrors === 0,
        detail: `failed ${runtime.failedDeliveries}, stale ${runtime.staleConnectionsCleaned}, timeouts ${runtime.functionTimeouts}, crashes ${runtime.functionCrashes}, errors ${runtime.functionErrors}`,
      },
      {
        name: `runtime RSS end within +${o.memoryMarginPct}% of warm-up`,
        ok: driftPct !== null && driftPct <= o.memoryMarginPct,
        detail:
          driftPct === null
            ? "RSS not readable (/proc)"
            : `${warmupRss!.toFixed(0)} -> ${endRss!.toFixed(0)} MiB (${driftPct >= 0 ? "+" : ""}${driftPct.toFixed(1)}%)`,
      },
    ];

    finished = true;
    const result: LoadResult = {
      options: o,
      machine,
      startedAt: new Date(started).toISOString(),
      wallSeconds: round((Date.now() - started) / 1000, 0),
      connectSeconds: round(connectSeconds, 1),
      sent,
      chat: {
        acked: acked.filter((p) => p.kind === "chat" && !p.flood).length,
        errors: chatErrors,
        deliveriesExpected,
        deliveriesReceived,
      },
      private: {
        acked: privateAcked.length,
        deliveredTo1: privateAcked.filter((p) => p.deliveredTo === 1).length,
        errors: [...pending.values()].filter((p) => p.kind === "private" && p.error).length,
      },
      lost,
      duplicates,
      history: {
        checked: historyChecked,
        missing: historyMissing,
        duplicates: historyDuplicates,
        unacknowledgedStored,
        requests: historyRequests,
      },
      unanswered,
      unexpectedErrors,
      errorSamples,
      unexpectedDisconnects,
      flood: {
        frames: floodCmids.length,
        accepted: floodAccepted,
        rateLimited: floodLimited,
        othersRateLimited,
        othersDeliveryLatencyMs: { baseline: roundSummary(baseline), duringFlood: roundSummary(duringFlood) },
      },
      latencyMs: { ack: roundSummary(summarize(ackLatency)), delivery: roundSummary(summarize(deliveryLatency.map((d) => d.ms))) },
      memory: {
        warmupRssMiB: roundOrNull(warmupRss),
        endRssMiB: roundOrNull(endRss),
        driftPct: driftPct === null ? null : round(driftPct, 1),
        marginPct: o.memoryMarginPct,
        samples: rssSamples.map((s) => ({ atSec: s.atSec, rssMiB: roundOrNull(s.rssMiB) })),
        dynamoRssMiB: roundOrNull(dynamoRss),
      },
      runtime,
      checks,
      passed: checks.every((c) => c.ok),
    };
    return result;
  } finally {
    closeClients(clients.map((c) => c.bench));
    await rt.stop();
  }
}

function roundSummary(s: Summary): Summary {
  return {
    count: s.count,
    min: round(s.min),
    p50: round(s.p50),
    p95: round(s.p95),
    p99: round(s.p99),
    max: round(s.max),
    mean: round(s.mean),
  };
}

function roundOrNull(v: number | null): number | null {
  return v === null ? null : round(v, 0);
}

/** The result as a plain-text table (what `npm run test:load` prints). */
export function formatLoadResult(r: LoadResult): string {
  const ms = (s: Summary) => (s.count === 0 ? "n/a" : `p50 ${s.p50} ms, p95 ${s.p95} ms, p99 ${s.p99} ms (n=${s.count})`);
  const rows: Array<[string, string]> = [
    [
      "machine",
      `${r.machine.cpuModel}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, Node ${r.machine.node}, load ${r.machine.loadAverage1m}`,
    ],
    [
      "run",
      `${r.options.connections} connections, ${r.options.rooms} rooms, ${r.options.durationSec} s at ${r.options.rate} frames/s (seed ${r.options.seed}); connect ${r.connectSeconds} s; wall ${r.wallSeconds} s`,
    ],
    [
      "frames sent",
      Object.entries(r.sent)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ],
    [
      "chat",
      `${r.chat.acked} acknowledged, ${r.chat.errors} errors; deliveries ${r.chat.deliveriesReceived} of ${r.chat.deliveriesExpected}`,
    ],
    ["private", `${r.private.acked} acknowledged (${r.private.deliveredTo1} with deliveredTo 1), ${r.private.errors} errors`],
    ["lost / duplicates", `${r.lost} / ${r.duplicates}`],
    [
      "history",
      `${r.history.checked} checked in ${r.history.requests} requests: ${r.history.missing} missing, ${r.history.duplicates} duplicated, ${r.history.unacknowledgedStored} stored unacknowledged`,
    ],
    ["unexpected disconnects", String(r.unexpectedDisconnects)],
    [
      "flood",
      `${r.flood.frames} frames: ${r.flood.rateLimited} RATE_LIMITED, ${r.flood.accepted} accepted; others rate limited ${r.flood.othersRateLimited}`,
    ],
    ["others' delivery, baseline", ms(r.flood.othersDeliveryLatencyMs.baseline)],
    ["others' delivery, flood + 5 s", ms(r.flood.othersDeliveryLatencyMs.duringFlood)],
    ["acknowledgement latency", ms(r.latencyMs.ack)],
    ["delivery latency (all)", ms(r.latencyMs.delivery)],
    [
      "runtime RSS",
      `${r.memory.warmupRssMiB} MiB after warm-up, ${r.memory.endRssMiB} MiB at end (${r.memory.driftPct === null ? "n/a" : `${r.memory.driftPct >= 0 ? "+" : ""}${r.memory.driftPct}%`}, margin +${r.memory.marginPct}%); DynamoDB Local ${r.memory.dynamoRssMiB} MiB`,
    ],
    [
      "runtime counters",
      Object.entries(r.runtime)
        .map(([k, v]) => `${k} ${v}`)
        .join(", "),
    ],
  ];
  const width = Math.max(...rows.map(([k]) => k.length), ...r.checks.map((c) => c.name.length + 7));
  const lines = rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`);
  lines.push("", "checks:");
  for (const c of r.checks) lines.push(`  ${c.ok ? "PASS" : "FAIL"}  ${c.name.padEnd(width - 8)}  ${c.detail}`);
  if (r.errorSamples.length > 0) {
    lines.push("", "first unexpected error frames:");
    for (const e of r.errorSamples) lines.push(`  ${e.atSec} s  ${e.userId}  ${e.frame}`);
  }
  lines.push("", r.passed ? "load run PASSED" : "load run FAILED");
  return lines.join("\n");
}
