/** Derives the cost model's per-operation inputs (scripts/cost.ts) from the broadcast case's measurements. */
import type { RoomCaseResult } from "../cases/broadcast";
import type { CostInputs, LinearUsage, OperationUsage } from "./results";
import { linearFit, median } from "./stats";

const KEYS: ReadonlyArray<keyof OperationUsage> = ["readUnits", "writeUnits", "itemsRead", "managementCalls", "durationMs", "logBytes"];

export function fitUsage(points: ReadonlyArray<{ members: number; usage: OperationUsage }>): LinearUsage {
  const fixed: Record<string, number> = {};
  const perMember: Record<string, number> = {};
  for (const k of KEYS) {
    const f = linearFit(points.map((p) => ({ x: p.members, y: p.usage[k] })));
    fixed[k] = f.intercept;
    perMember[k] = f.slope;
  }
  return { fixed: fixed as unknown as OperationUsage, perMember: perMember as unknown as OperationUsage };
}

export function deriveCostInputs(room: RoomCaseResult, managementLatencyMs: number, date: string): CostInputs | undefined {
  const measured = room.sizes.filter((s) => s.scan && s.connect && s.disconnect);
  const signal = (k: "typing" | "react" | "read"): LinearUsage | undefined => {
    const points = measured.filter((s) => s[k] !== undefined);
    return points.length === measured.length ? fitUsage(points.map((s) => ({ members: s.members, usage: s[k]! }))) : undefined;
  };
  if (measured.length === 0 || !room.ping) return undefined;
  const authorizers = measured.map((s) => s.authorizer).filter((a): a is OperationUsage => a !== undefined);
  const med = (k: keyof OperationUsage) => median(authorizers.map((a) => a[k]));
  return {
    source: `measured by npm run bench on ${date} (local runtime, DynamoDB Local's consumed capacity, room sizes ${measured.map((s) => s.members).join("/")})`,
    chat: fitUsage(measured.map((s) => ({ members: s.members, usage: s.chat }))),
    connect: fitUsage(measured.map((s) => ({ members: s.members, usage: s.connect! }))),
    disconnect: fitUsage(measured.map((s) => ({ members: s.members, usage: s.disconnect! }))),
    authorizer: authorizers.length
      ? {
          readUnits: med("readUnits"),
          writeUnits: med("writeUnits"),
          itemsRead: med("itemsRead"),
          managementCalls: med("managementCalls"),
          durationMs: med("durationMs"),
          logBytes: med("logBytes"),
        }
      : { readUnits: 0, writeUnits: 0, itemsRead: 0, managementCalls: 0, durationMs: 0, logBytes: 0 },
    ping: room.ping,
    ...(signal("typing") ? { typing: signal("typing") } : {}),
    ...(signal("react") ? { react: signal("react") } : {}),
    ...(signal("read") ? { read: signal("read") } : {}),
    scanReadUnitsPerConnection: median(measured.map((s) => s.scan!.readUnits / Math.max(1, s.scan!.itemsRead))),
    fanoutConcurrency: room.fanoutConcurrency,
    managementLatencyMs,
  };
}

/**
 * Issue 17's large-room delivery: what the cost model (scripts/cost.ts largeRoomCost) adds to the
 * measured chat figures above for a room delivered by the workers. Design figures, not measured
 * (docs/cost.md, "Large rooms", gives each one's source); the bench's large-room case measures the
 * workers' own usage once it exists.
 */
export interface LargeRoomDesign {
  /**
   * Items the route's first Query page reads in a large room before it sends the jobs: the summary and
   * up to 127 members (branch worker's handlers/lib/largeRooms.ts BROADCAST_FIRST_PAGE_ITEMS).
   */
  readonly routeFirstPageItems: number;
  /** Summary reads per job (GetItem, 1 unit): 0, deliver.ts reads only its shard. */
  readonly workerSummaryReadUnits: number;
  /** A DeliveryJob's JSON besides its frame (v, id, roomId, shard, exclude, enqueuedAtMs). */
  readonly jobEnvelopeBytes: number;
  /** The chat frame a job carries (a short chat message). */
  readonly frameBytes: number;
  /** SQS bills each 64 KB chunk of a request's payload as one request (SendMessageBatch, ReceiveMessage). */
  readonly sqsChunkBytes: number;
  /** One SendMessageBatch call as the route's duration sees it (ms). */
  readonly sendBatchMs: number;
  /** Pollers an event source mapping with maximumConcurrency keeps long-polling an idle queue, and their wait (s). */
  readonly idlePollers: number;
  readonly longPollSeconds: number;
}

export const LARGE_ROOM_DESIGN: LargeRoomDesign = {
  routeFirstPageItems: 128,
  workerSummaryReadUnits: 0,
  jobEnvelopeBytes: 300,
  frameBytes: 1024,
  sqsChunkBytes: 64 * 1024,
  sendBatchMs: 10,
  idlePollers: 5,
  longPollSeconds: 20,
};
