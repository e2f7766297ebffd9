/**
 * Case 4: sustained chat throughput through the local runtime. The runtime runs in its own process
 * (bench/child/runtimeHost.ts) with no @connections latency; `connections` real ws clients in
 * `rooms` rooms take turns sending chat messages, `window` messages in flight at any time, for
 * `durationS`. A bounded window measures what the runtime sustains: with every client sending at
 * once (200 broadcasts of 20 posts in flight) the posts of the chat function queue behind its one
 * management client's 50 sockets (the SDK's default), pass the handlers' 5 s request timeout and are
 * lost, which measures the queue, not the throughput. (On Lambda each concurrent invocation is its
 * own instance with its own client; the local runtime runs them all in one worker.) Reported: messages accepted per second, deliveries per
 * second, send-to-own-copy latency, and the CPU seconds (over the measured window) and peak RSS
 * (whole life) of the runtime process and of the DynamoDB Local it started, from /proc.
 */
import { closeClients, openRooms, type BenchClient, type ClientSpec } from "../lib/clients";
import { cpuSeconds, peakRssMiB } from "../lib/proc";
import type { BenchResults } from "../lib/results";
import { startRuntimeProcess } from "../lib/runtimeProcess";
import { summarize, type Summary } from "../lib/stats";

export interface ThroughputOptions {
  /** Start every function before measuring, so no cold start lands in a sample (default true; --quick: false). */
  readonly warm?: boolean;
  readonly connections: number;
  readonly rooms: number;
  readonly durationS: number;
  /** Chat messages in flight at once (the offered load). */
  readonly window: number;
  /** A message whose copy has not come back to its sender by then counts as lost. */
  readonly messageTimeoutMs: number;
  readonly log: (line: string) => void;
}

export type ThroughputResult = NonNullable<BenchResults["throughput"]> & {
  readonly latencyMs: Summary;
  readonly chatInvocationMs: Summary;
};

export async function runThroughput(o: ThroughputOptions): Promise<ThroughputResult> {
  const rt = await startRuntimeProcess({
    port: 0,
    inMemory: true,
    managementLatencyMs: 0,
    // Every client sends as fast as its messages come back: the per-connection rate limit would cap the test itself.
    settings: { rateLimitPerMinute: 100_000, userRateLimitPerMinute: 1_000_000, userConnectsPerMinute: 100_000 },
    warm: o.warm ?? true,
  });
  let clients: BenchClient[] = [];
  try {
    const perRoom = Math.ceil(o.connections / o.rooms);
    const specs: Array<Omit<ClientSpec, "token">> = [];
    for (let i = 0; i < o.connections; i++) {
      const room = Math.floor(i / perRoom);
      specs.push({ userId: `tp-${i}`, username: `throughput ${i}`, roomId: `tp-room-${room}` });
    }
    const tokens = await rt.mintTokens(specs.map((s) => ({ userId: s.userId, username: s.username })));
    const byRoom: ClientSpec[][] = [];
    specs.forEach((s, i) => {
      const r = Math.floor(i / perRoom);
      byRoom[r] = [...(byRoom[r] ?? []), { ...s, token: tokens[i] }];
    });
    clients = await openRooms(rt.endpoint, byRoom, o.rooms);
    o.log(`  ${clients.length} clients in ${byRoom.length} rooms connected; running for ${o.durationS} s`);
    await new Promise((r) => setTimeout(r, 500));
    await rt.resetStats();

    let sent = 0;
    let accepted = 0;
    let deliveries = 0;
    let errors = 0;
    let lost = 0;
    const latencies: number[] = [];
    let running = true;
    const dynamoPid = rt.dynamoPid();
    const cpu0 = cpuSeconds(rt.pid) ?? Number.NaN;
    const dcpu0 = dynamoPid ? (cpuSeconds(dynamoPid) ?? Number.NaN) : Number.NaN;
    const t0 = performance.now();
    // A window of messages in flight, sent by the clients in turn: each slot sends the next message
    // when its previous one came back to its sender (or was answered with an error, or was lost).
    // 200 clients take turns and at most `window` messages are in flight, so a client never has two.
    const pending = new Map<number, { at: number; timer: NodeJS.Timeout; done: () => void }>();
    clients.forEach((c, idx) => {
      c.onFrame = (data, at) => {
        const p = pending.get(idx);
        if (data.includes('"type":"chat"')) {
          deliveries += 1;
          if (p && data.includes(`"message":"tp-${idx}-`) && data.includes(`"userId":"${c.spec.userId}"`)) {
            accepted += 1;
            latencies.push(at - p.at);
            p.done();
          }
        } else if (data.includes('"type":"error"')) {
          errors += 1;
          p?.done();
        }
      };
    });
    let turn = 0;
    let seq = 0;
    const slot = () =>
      new Promise<void>((resolve) => {
        const sendNext = () => {
          if (!running) return resolve();
          let idx = turn++ % clients.length;
          while (pending.has(idx)) idx = turn++ % clients.length;
          const c = clients[idx];
          const entry = {
            at: performance.now(),
            timer: setTimeout(() => {
              lost += 1;
              entry.done();
            }, o.messageTimeoutMs),
            done: () => {
              clearTimeout(entry.timer);
              pending.delete(idx);
              setImmediate(sendNext);
            },
          };
          pending.set(idx, entry);
          sent += 1;
          c.ws.send(JSON.stringify({ type: "chat", roomId: c.spec.roomId, message: `tp-${idx}-${seq++}` }));
        };
        sendNext();
      });
    const loops = Array.from({ length: o.window }, slot);
    await new Promise((r) => setTimeout(r, o.durationS * 1000));
    running = false;
    const elapsedS = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(rt.pid) ?? Number.NaN;
    const dcpu1 = dynamoPid ? (cpuSeconds(dynamoPid) ?? Number.NaN) : Number.NaN;
    const acceptedInWindow = accepted;
    const deliveriesInWindow = deliveries;
    // Let the last in-flight messages finish so the runtime stops cleanly.
    await Promise.race([Promise.all(loops), new Promise((r) => setTimeout(r, 10_000))]);
    const stats = await rt.stats();
    const result: ThroughputResult = {
      connections: clients.length,
      rooms: byRoom.length,
      durationS: Math.round(elapsedS * 10) / 10,
      messagesSent: sent,
      messagesAccepted: acceptedInWindow,
      deliveries: deliveriesInWindow,
      messagesPerSecond: acceptedInWindow / elapsedS,
      deliveriesPerSecond: deliveriesInWindow / elapsedS,
      errors,
      lost,
      window: o.window,
      runtimeCpuSeconds: cpu1 - cpu0,
      runtimePeakRssMiB: peakRssMiB(rt.pid) ?? Number.NaN,
      dynamoLocalCpuSeconds: dcpu1 - dcpu0,
      dynamoLocalPeakRssMiB: dynamoPid ? (peakRssMiB(dynamoPid) ?? Number.NaN) : Number.NaN,
      latencyMs: summarize(latencies),
      chatInvocationMs: summarize(stats.functions.chat?.durationsMs ?? []),
      method:
        `${o.window} chat messages in flight, sent by the clients in turn; a slot sends the next message when the previous one's copy reached its sender ` +
        `(or it was answered with an error, or lost after ${o.messageTimeoutMs} ms); ` +
        "runtime and DynamoDB Local CPU seconds are deltas over the window, RSS peaks (VmHWM) over the process's life",
    };
    o.log(
      `  ${result.messagesPerSecond.toFixed(0)} msgs/s, ${result.deliveriesPerSecond.toFixed(0)} deliveries/s, runtime CPU ${result.runtimeCpuSeconds.toFixed(1)} s, ` +
        `peak RSS ${result.runtimePeakRssMiB.toFixed(0)} MiB; DynamoDB Local CPU ${result.dynamoLocalCpuSeconds.toFixed(1)} s; ` +
        `chat invocation p50 ${result.chatInvocationMs.p50.toFixed(0)} ms, own-copy p50 ${result.latencyMs.p50.toFixed(0)} ms`,
    );
    return result;
  } finally {
    closeClients(clients);
    await rt.stop();
  }
}
