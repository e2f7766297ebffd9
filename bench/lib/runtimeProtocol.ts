/** Messages between the bench process and bench/child/runtimeHost.ts (over the fork IPC channel). */
import type { EmfRecord, FunctionStats } from "../../local/functions";
import type { ManagementStats } from "../../local/gateway";
import type { TableName } from "../../handlers/tables";

export interface HostStats {
  readonly functions: Record<string, FunctionStats>;
  readonly emf: EmfRecord[];
  readonly management: ManagementStats;
  /** Bytes of log lines per function since the last reset. */
  readonly logBytes: Record<string, number>;
}

export type HostRequest =
  | { readonly type: "stats"; readonly id: number }
  | { readonly type: "resetStats"; readonly id: number }
  | { readonly type: "mintTokens"; readonly id: number; readonly users: ReadonlyArray<{ userId: string; username: string }> }
  | { readonly type: "stop"; readonly id: number };

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
}

export type HostReply =
  | HostReady
  | { readonly type: "stats"; readonly id: number; readonly stats: HostStats }
  | { readonly type: "tokens"; readonly id: number; readonly tokens: string[] }
  | { readonly type: "ok"; readonly id: number }
  | { readonly type: "error"; readonly id?: number; readonly message: string };
