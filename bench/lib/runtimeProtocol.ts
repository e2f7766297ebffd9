/** Messages between the bench process and bench/child/runtimeHost.ts (over the fork IPC channel). */
import type { EmfRecord, FunctionStats } from "../../local/functions";
import type { ManagementStats } from "../../local/gateway";
import type { TableName } from "../../handlers/tables";
import type { SinkMemberSpec, SinkRegistration } from "../../local/sink";

export interface HostStats {
  readonly functions: Record<string, FunctionStats>;
  readonly emf: EmfRecord[];
  readonly management: ManagementStats;
  /** Bytes of log lines per function since the last reset. */
  readonly logBytes: Record<string, number>;
  /** The delivery queue's cumulative figures, when the runtime runs one (issue 17: local/runtime.ts stats.deliveryQueue). */
  readonly deliveryQueue?: DeliveryQueueFigures;
}

/** What the bench reads of the runtime's delivery queue stats (local SQS QueueStats, EventSourceMappingStats). */
export interface DeliveryQueueFigures {
  readonly queue: { readonly sent: number; readonly received: number; readonly movedToDeadLetterQueue: number };
  readonly mapping: {
    readonly invocations: number;
    readonly failedInvocations: number;
    readonly recordsReportedFailed: number;
    readonly maxConcurrentInvocations: number;
  };
}

export type HostRequest =
  | { readonly type: "stats"; readonly id: number }
  | { readonly type: "resetStats"; readonly id: number }
  | { readonly type: "mintTokens"; readonly id: number; readonly users: ReadonlyArray<{ userId: string; username: string }> }
  | { readonly type: "stop"; readonly id: number }
  /** Registers socketless members through the real handshake (local/sink.ts), `concurrency` at a time. */
  | { readonly type: "registerSink"; readonly id: number; readonly members: readonly SinkMemberSpec[]; readonly concurrency: number }
  /** How many sink members received a frame key; with `times`, their first receipts (epoch ms) too. */
  | { readonly type: "sinkReceipts"; readonly id: number; readonly key: string; readonly times: boolean };

export interface HostReady {
  readonly type: "ready";
  readonly pid: number;
  readonly endpoint: string;
  readonly managementEndpoint: string;
  readonly dynamodbEndpoint: string;
  readonly region: string;
  readonly tableNames: Readonly<Record<TableName, string>>;
  readonly fanoutConcurrency: number;
  readonly rateLimitPerMinute: number;
  /** Issue 17's delivery settings the runtime runs with (handlers/settings.ts). */
  readonly largeRoomUsers: number;
  readonly roomShardSize: number;
  readonly deliveryWorkerConcurrency: number;
  readonly deliveryPostsPerSecond: number;
  /** The functions deployed (the route table's, less any disabled). */
  readonly functions: readonly string[];
}

/** SinkRegistration over IPC (JSON has no undefined in arrays: a refused member's id is null). */
export interface SinkRegistrationReply extends Omit<SinkRegistration, "connectionIds"> {
  readonly connectionIds: ReadonlyArray<string | null>;
}

export type HostReply =
  | HostReady
  | { readonly type: "stats"; readonly id: number; readonly stats: HostStats }
  | { readonly type: "tokens"; readonly id: number; readonly tokens: string[] }
  | { readonly type: "ok"; readonly id: number }
  | { readonly type: "sinkRegistered"; readonly id: number; readonly registration: SinkRegistrationReply }
  | { readonly type: "sinkReceipts"; readonly id: number; readonly count: number; readonly duplicates: number; readonly times?: number[] }
  | { readonly type: "error"; readonly id?: number; readonly message: string };
