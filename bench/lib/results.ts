/**
 * The shape of bench/results.json: written by bench/run.ts, read by scripts/cost.ts and by
 * bench/REPORT.md's generator. Every figure carries the unit in its name.
 */
import type { MachineInfo } from "./machine";
import type { Summary } from "./stats";

/** What one invocation (or one broadcast) consumed, as the handlers' usage middleware reports it. */
export interface OperationUsage {
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly itemsRead: number;
  /** `@connections` calls (each outbound message is one billed API Gateway message). */
  readonly managementCalls: number;
  /** Wall-clock duration of the invocation in the local runtime (a stand-in for billed Lambda duration). */
  readonly durationMs: number;
  /** Bytes of log output per invocation (structured logs plus the EMF line). */
  readonly logBytes: number;
}

/** usage(members) = fixed + perMember * members, fitted over the room sizes measured. */
export interface LinearUsage {
  readonly fixed: OperationUsage;
  readonly perMember: OperationUsage;
}

/** Per-operation inputs of the cost model (scripts/cost.ts). */
export interface CostInputs {
  /** Where the figures come from ("measured by npm run bench on <date>" or the documented fallback). */
  readonly source: string;
  /** A chat message broadcast to a room of `members` connections (the chat function). */
  readonly chat: LinearUsage;
  /** One `$connect` into a room of `members` (joined presence is posted to the others). */
  readonly connect: LinearUsage;
  /** One `$disconnect` from a room of `members` (left presence). */
  readonly disconnect: LinearUsage;
  readonly authorizer: OperationUsage;
  readonly ping: OperationUsage;
  /**
   * Issue 18's frames in a room of `members` (absent in results written before them: scripts/cost.ts
   * then uses its design formulas): a `typing` that passes the throttle (measured with
   * typingMaxRoomUsers raised above every room size, so the fit is linear; the model applies the
   * stack's bound), a `react` adding a reaction, a `read` moving the position forward.
   */
  readonly typing?: LinearUsage;
  readonly react?: LinearUsage;
  readonly read?: LinearUsage;
  /** The Scan-per-message reference: read units per connection item scanned (eventually consistent Scan). */
  readonly scanReadUnitsPerConnection: number;
  /** Fan-out concurrency the chat durations were measured with, and the simulated @connections latency. */
  readonly fanoutConcurrency: number;
  readonly managementLatencyMs: number;
}

export interface BroadcastRow {
  readonly members: number;
  readonly ours: {
    readonly itemsRead: number;
    readonly readUnits: number;
    readonly writeUnits: number;
    readonly managementCalls: number;
    readonly delivered: number;
  };
  readonly scan: {
    readonly itemsRead: number;
    readonly readUnits: number;
    readonly writeUnits: number;
    readonly managementCalls: number;
    readonly delivered: number;
  };
  /** scan.itemsRead / ours.itemsRead */
  readonly itemsReadRatio: number;
  readonly targetItemsRead: number;
  readonly targetRatio: number;
  readonly itemsReadMet: boolean;
  readonly ratioMet: boolean;
}

export interface LatencyRow {
  readonly members: number;
  readonly messages: number;
  readonly bounded: Summary;
  readonly sequential: Summary | null;
  /** sequential.p99 / bounded.p99 */
  readonly speedupP99: number | null;
  readonly p99Met: boolean;
  readonly speedupMet: boolean | null;
}

/**
 * One room of the large-room case (issue 17): K messages from one member, send-to-receipt at every
 * member. The first ten fields are what the simulation (branch `model`) calibrates against.
 */
export interface LargeRoomRow {
  readonly members: number;
  /** Over every member's first receipt of every message (nearest rank). */
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The gateway's added latency per `@connections` call. */
  readonly postLatencyMs: number;
  /** deliveryWorkerConcurrency the runtime ran with. */
  readonly workers: number;
  /** deliveryPostsPerSecond the runtime ran with (the configured post budget). */
  readonly postsPerSecond: number;
  /** roomShardSize the runtime ran with. */
  readonly shardSize: number;
  /** "sockets": every member a real ws client; "sink": the sender a socket, every other member counted by the gateway's sink. */
  readonly source: "sockets" | "sink";
  readonly messages: number;
  /** Distinct users in the room (shards and the large-room threshold count users). */
  readonly users: number;
  /** "workers" when the deliver function ran for the messages, "route" when the chat invocation posted. */
  readonly path: "route" | "workers";
  readonly largeRoomUsers: number;
  readonly fanoutConcurrency: number;
  /** members / postsPerSecond, in ms: the floor the configured post budget sets. */
  readonly floorMs: number;
  readonly p99OverFloor: number;
  /** POSTs answered per second between a message's first and last answered POST (median over the messages). */
  readonly effectivePostsPerSecond: number;
  /** members / effectivePostsPerSecond, in ms: the floor this machine's measured post rate sets. */
  readonly effectiveFloorMs: number;
  readonly p99OverEffectiveFloor: number;
  /** `@connections` POSTs per message (median): members, plus retries and duplicates. */
  readonly postsPerMessage: number;
  /** Receipts of a message a member already had (retried deliveries), over all messages. */
  readonly duplicates: number;
  /** Member receipts that never came, over all messages (0 when every member received every message). */
  readonly missing: number;
  /** Timeouts of chat and deliver invocations during the messages. */
  readonly functionTimeouts: number;
  /** Invocations per message (median) of the functions that delivered. */
  readonly invocations: Readonly<Record<string, number>>;
  /**
   * The delivery queue during the messages, when the runtime has one: jobs sent and received per
   * message (median), records reported failed, failed worker invocations and dead letters (totals),
   * the most workers at once, and the DeliveryJobAge metric (ms from enqueue to the worker's start).
   */
  readonly queue?: {
    readonly jobsPerMessage: number;
    readonly receivesPerMessage: number;
    readonly recordsReportedFailed: number;
    readonly failedInvocations: number;
    readonly deadLetters: number;
    readonly maxConcurrentInvocations: number;
    readonly jobAgeP50Ms: number;
    readonly jobAgeMaxMs: number;
  };
  /** Members registered (sockets: handshakes) per second, and how long it took. */
  readonly registration: { readonly perSecond: number; readonly seconds: number; readonly concurrency: number };
  /** 1-minute load average when the room's measurement started (the machine is shared). */
  readonly loadAverage1m: number;
}

export interface ColdStartRow {
  readonly function: string;
  readonly zipBytes: number;
  readonly uncompressedBytes: number;
  readonly files: number;
  readonly packages: readonly string[];
  readonly serializedBytes: number;
  readonly initMs: Summary;
  /** Median ms to require the function's npm packages alone in a fresh process. */
  readonly packagesLoadMedianMs: number;
  readonly met: boolean;
  /** Set when the archive cannot initialise in a fresh process (e.g. a module missing from it). */
  readonly error?: string;
}

export interface BenchResults {
  readonly schemaVersion: 1;
  readonly generatedAt: string;
  readonly command: string;
  readonly quick: boolean;
  readonly machine: MachineInfo;
  readonly notes: string[];
  readonly broadcast?: { readonly connections: number; readonly method: string; readonly rows: BroadcastRow[] };
  readonly latency?: {
    readonly managementLatencyMs: number;
    readonly boundedConcurrency: number;
    readonly sequentialConcurrency: number;
    readonly method: string;
    readonly rows: LatencyRow[];
  };
  readonly coldStart?: { readonly method: string; readonly samples: number; readonly rows: ColdStartRow[] };
  readonly throughput?: {
    readonly connections: number;
    readonly rooms: number;
    readonly durationS: number;
    readonly messagesSent: number;
    readonly messagesAccepted: number;
    readonly deliveries: number;
    readonly messagesPerSecond: number;
    readonly deliveriesPerSecond: number;
    readonly errors: number;
    readonly lost: number;
    readonly window: number;
    readonly runtimeCpuSeconds: number;
    readonly runtimePeakRssMiB: number;
    readonly dynamoLocalCpuSeconds: number;
    readonly dynamoLocalPeakRssMiB: number;
    readonly method: string;
  };
  readonly largeRoom?: { readonly managementLatencyMs: number; readonly method: string; readonly rows: LargeRoomRow[] };
  readonly startup?: { readonly samples: number; readonly ms: Summary; readonly met: boolean; readonly method: string };
  readonly costInputs?: CostInputs;
}
