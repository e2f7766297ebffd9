/**
 * Monthly cost model of the chat API on AWS (issue 9, "Cost model").
 *
 *   npm run cost -- --connections <n> --rooms <n> --messages-per-minute <n> [--hours <n>]
 *
 * Every per-operation figure (read and write units, items read, `@connections` calls, invocation
 * duration, log bytes) comes from bench/results.json, written by `npm run bench` (case 1, broadcast
 * cost, measures them through the handlers' usage middleware); nothing is guessed unless that file
 * is missing, in which case the documented FALLBACK_INPUTS below are used and the output says so.
 * Unit prices live in one table, PRICES, with their source and the date they were read.
 * The monitoring the stack deploys is priced from the code too: the custom-metric series the
 * functions can emit with the configured dimensions (handlers/metrics.ts customMetricSeries), the
 * alarms' metrics (infra/alarmPlan.ts) and the dashboard.
 * The same workload is priced under the Scan-per-message design beside this project's.
 * Typing, reactions and read receipts (issue 18) are priced per frame from the same measurements
 * (`--typing-per-minute`, `--reactions-per-minute`, `--reads-per-minute`; 0 by default).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { parseCommandLine } from "./commandLine";
import type { BenchResults, CostInputs, LinearUsage, OperationUsage } from "../bench/lib/results";
import { customMetricSeries } from "../handlers/metrics";
import { FUNCTIONS } from "../handlers/routes";
import { HANDLER_SETTINGS } from "../handlers/settings";
import { TABLE_NAMES } from "../handlers/tables";
import { alarmMetricCount, alarmPlan, DASHBOARDS_PER_STACK } from "../infra/alarmPlan";
import { LARGE_ROOM_DESIGN, type LargeRoomDesign } from "../bench/lib/costInputs";
import { shardCount, shardSizes } from "../bench/model/simulate";
import { SQS_BATCH_ENTRIES } from "../handlers/lib/deliveries";

export interface UnitPrice {
  readonly service: "API Gateway" | "Lambda" | "DynamoDB" | "CloudWatch" | "SQS";
  readonly item: string;
  readonly unit: string;
  readonly usd: number;
  readonly source: string;
}

/**
 * Unit prices, US East (N. Virginia), on-demand, without free tiers. Read on 2026-11-25 through the
 * project's documentation search (the AWS pages render their rate tables client-side, so the
 * figures were taken from the pages' worked examples and from pages quoting them); they MUST be
 * checked on the AWS pricing pages before being relied on.
 */
export const PRICES = {
  region: "us-east-1",
  readOn: "2026-11-25",
  apiGatewayMessage: {
    service: "API Gateway",
    item: "WebSocket messages (first 1 billion a month)",
    unit: "message of up to 32 KB",
    usd: 1.0 / 1e6,
    source: "https://aws.amazon.com/api-gateway/pricing/",
  },
  apiGatewayConnectionMinute: {
    service: "API Gateway",
    item: "WebSocket connection minutes",
    unit: "connection minute",
    usd: 0.25 / 1e6,
    source: "https://aws.amazon.com/api-gateway/pricing/",
  },
  lambdaRequest: { service: "Lambda", item: "Requests", unit: "request", usd: 0.2 / 1e6, source: "https://aws.amazon.com/lambda/pricing/" },
  lambdaGbSecondArm: {
    service: "Lambda",
    item: "Duration, arm64 (first 7.5 billion GB-s a month)",
    unit: "GB-second",
    usd: 0.0000133334,
    source: "https://aws.amazon.com/lambda/pricing/",
  },
  dynamoReadUnit: {
    service: "DynamoDB",
    item: "On-demand read request units (price cut of 2024-11-01)",
    unit: "read request unit",
    usd: 0.125 / 1e6,
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
  },
  dynamoWriteUnit: {
    service: "DynamoDB",
    item: "On-demand write request units (price cut of 2024-11-01)",
    unit: "write request unit",
    usd: 0.625 / 1e6,
    source: "https://aws.amazon.com/dynamodb/pricing/on-demand/",
  },
  logsIngestedGb: {
    service: "CloudWatch",
    item: "Logs ingested (standard)",
    unit: "GB",
    usd: 0.5,
    source: "https://aws.amazon.com/cloudwatch/pricing/",
  },
  customMetricMonth: {
    service: "CloudWatch",
    item: "Custom metrics (first 10,000; EMF metrics count as custom metrics), prorated hourly",
    unit: "metric-month",
    usd: 0.3,
    source: "https://aws.amazon.com/cloudwatch/pricing/",
  },
  alarmMetricMonth: {
    service: "CloudWatch",
    item: "Standard-resolution alarms (a metric-math alarm counts each metric it reads)",
    unit: "alarm metric-month",
    usd: 0.1,
    source: "https://aws.amazon.com/cloudwatch/pricing/",
  },
  dashboardMonth: {
    service: "CloudWatch",
    item: "Dashboards (beyond the free tier's 3 of up to 50 metrics)",
    unit: "dashboard-month",
    usd: 3.0,
    source: "https://aws.amazon.com/cloudwatch/pricing/",
  },
  // Issue 17's delivery queue. Read on 2026-12-06: the AWS page renders its table client-side; the
  // figure and the 64 KB rule are quoted by cloudburn.io/blog/amazon-sqs-pricing (March 2026) and
  // factualminds.com/blog/amazon-sqs-pricing-64kb-rule-fifo-vs-standard (June 2026).
  sqsFifoRequest: {
    service: "SQS",
    item: "FIFO queue requests (each 64 KB chunk of a payload is one request)",
    unit: "request",
    usd: 0.5 / 1e6,
    source: "https://aws.amazon.com/sqs/pricing/",
  },
} as const satisfies Record<string, UnitPrice | string>;

export type PriceKey = Exclude<keyof typeof PRICES, "region" | "readOn">;

const zero: OperationUsage = { readUnits: 0, writeUnits: 0, itemsRead: 0, managementCalls: 0, durationMs: 0, logBytes: 0 };

/**
 * Used only when bench/results.json is absent or has no costInputs. Derived from the data model
 * (docs/architecture.md), not measured: a broadcast Queries the room partition strongly
 * consistently (members + 1 items of ~150 bytes: 1 unit per 4 KB), writes the message and the
 * rate-limit counter (1 unit each, items under 1 KB), posts once per member; `$connect` and
 * `$disconnect` write the connection and membership items and announce presence to the room; a
 * connection item is ~250 bytes, so an eventually consistent Scan pays 0.5 / 4096 * 250 units per
 * connection. Durations assume 20 ms per `@connections` call in waves of 50, plus 15 ms.
 */
export const FALLBACK_INPUTS: CostInputs = {
  source: "FALLBACK_INPUTS in scripts/cost.ts (design formulas, not measured: run npm run bench)",
  chat: {
    fixed: { readUnits: 1, writeUnits: 2, itemsRead: 1, managementCalls: 0, durationMs: 15, logBytes: 1500 },
    perMember: { readUnits: 150 / 4096, writeUnits: 0, itemsRead: 1, managementCalls: 1, durationMs: 20 / 50, logBytes: 0 },
  },
  connect: {
    fixed: { readUnits: 1, writeUnits: 3, itemsRead: 1, managementCalls: 0, durationMs: 20, logBytes: 1500 },
    perMember: { readUnits: 150 / 4096, writeUnits: 0, itemsRead: 1, managementCalls: 1, durationMs: 20 / 50, logBytes: 0 },
  },
  disconnect: {
    fixed: { readUnits: 1, writeUnits: 2, itemsRead: 1, managementCalls: 0, durationMs: 20, logBytes: 1500 },
    perMember: { readUnits: 150 / 4096, writeUnits: 0, itemsRead: 1, managementCalls: 1, durationMs: 20 / 50, logBytes: 0 },
  },
  authorizer: { ...zero, durationMs: 5, logBytes: 1200 },
  ping: { ...zero, writeUnits: 1, durationMs: 8, logBytes: 1200 },
  // Issue 18 (docs/architecture.md cost table): every frame spends the rate-limit and user-budget
  // writes (2); typing adds its throttle write (1) and the summary read (0.5), then reads the room and
  // posts to each other member; a reaction is a two-item transaction (4) and a consistent read of the
  // message's counts, then the room read and a post to each member; a read is one conditional write.
  typing: {
    fixed: { readUnits: 1.5, writeUnits: 3, itemsRead: 2, managementCalls: -1, durationMs: 15, logBytes: 1200 },
    perMember: { readUnits: 150 / 4096, writeUnits: 0, itemsRead: 1, managementCalls: 1, durationMs: 20 / 50, logBytes: 0 },
  },
  react: {
    fixed: { readUnits: 2, writeUnits: 6, itemsRead: 2, managementCalls: 0, durationMs: 20, logBytes: 1500 },
    perMember: { readUnits: 150 / 4096, writeUnits: 0, itemsRead: 1, managementCalls: 1, durationMs: 20 / 50, logBytes: 0 },
  },
  read: {
    fixed: { readUnits: 0.5, writeUnits: 3, itemsRead: 1, managementCalls: 0, durationMs: 12, logBytes: 1200 },
    perMember: { ...zero },
  },
  scanReadUnitsPerConnection: (0.5 * 250) / 4096,
  fanoutConcurrency: 50,
  managementLatencyMs: 20,
};

/** What Lambda writes per invocation besides the function's own output (START, END, REPORT lines). */
export const LAMBDA_PLATFORM_LOG_BYTES = 300;
const HOURS_PER_MONTH = 730;
const GIB = 2 ** 30;

export interface Workload {
  readonly connections: number;
  readonly rooms: number;
  /** Chat messages sent per minute across all rooms. */
  readonly messagesPerMinute: number;
  /** Hours a month the connections are open and the message rate applies (730 = the whole month). */
  readonly hours: number;
  /** Lambda memory (infra config lambdaMemoryMb, default 256). */
  readonly memoryMb: number;
  /** Average session length: API Gateway closes every connection after 2 hours at most, and clients reconnect. */
  readonly sessionHours: number;
  /** Client keep-alive pings (the idle timeout is 10 minutes); 0 = none. */
  readonly pingIntervalMinutes: number;
  /** The stack's enableDetailedMonitoring (default false; prod: true): per-function metric series. */
  readonly detailedMonitoring: boolean;
  /**
   * Issue 18, across all rooms, per minute: typing indicators fanned out (frames that pass the
   * throttle: the clients send at most one per typingIntervalSeconds while a user types), reactions
   * added or removed, and read positions moved. 0 by default.
   */
  readonly typingPerMinute: number;
  readonly reactionsPerMinute: number;
  readonly readsPerMinute: number;
}

export const DEFAULT_WORKLOAD: Omit<Workload, "connections" | "rooms" | "messagesPerMinute"> = {
  hours: HOURS_PER_MONTH,
  memoryMb: 256,
  sessionHours: 2,
  pingIntervalMinutes: 9,
  detailedMonitoring: false,
  typingPerMinute: 0,
  reactionsPerMinute: 0,
  readsPerMinute: 0,
};

/** What the stack's monitoring bills each month, independent of traffic except the series' hours. */
export interface MonitoringFootprint {
  /** Distinct custom-metric series the functions can emit per stage (an upper bound: idle series are not billed). */
  readonly customMetricSeries: number;
  /** Metrics read by the stack's alarms (a metric-math alarm counts each). */
  readonly alarmMetrics: number;
  readonly alarms: number;
  readonly dashboards: number;
}

/** The monitoring of one stack, computed from the code: route table, metric declarations, alarm plan. */
export function monitoringFootprint(detailedMonitoring: boolean): MonitoringFootprint {
  const functions = FUNCTIONS.map((f) => f.name);
  return {
    customMetricSeries: customMetricSeries(FUNCTIONS, detailedMonitoring),
    alarmMetrics: alarmMetricCount(functions, TABLE_NAMES),
    alarms: alarmPlan(functions, TABLE_NAMES).length,
    dashboards: DASHBOARDS_PER_STACK,
  };
}

export class CostInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CostInputError";
  }
}

export interface ServiceCost {
  readonly service: "API Gateway" | "Lambda" | "DynamoDB" | "CloudWatch" | "SQS";
  readonly usd: number;
  readonly lines: ReadonlyArray<{ readonly item: PriceKey; readonly quantity: number; readonly usd: number }>;
}

export interface DesignCost {
  readonly design: "room-query" | "scan-per-message";
  readonly services: readonly ServiceCost[];
  readonly totalUsd: number;
  /** Monthly counts behind the lines, for the worked example. */
  readonly counts: Readonly<Record<string, number>>;
}

export interface CostEstimate {
  readonly workload: Workload;
  readonly membersPerRoom: number;
  readonly inputsSource: string;
  /** Issue 18's frames priced from FALLBACK_INPUTS' design formulas (results written before the bench measured them). */
  readonly signalsFromFallback: readonly string[];
  readonly monitoring: MonitoringFootprint;
  readonly ours: DesignCost;
  readonly scan: DesignCost;
}

export function validateWorkload(w: Workload): void {
  const positiveInt = (name: string, v: number) => {
    if (!Number.isInteger(v) || v < 1) throw new CostInputError(`${name} must be a positive integer, got ${v}`);
  };
  positiveInt("--connections", w.connections);
  positiveInt("--rooms", w.rooms);
  if (w.rooms > w.connections)
    throw new CostInputError(`--rooms (${w.rooms}) cannot exceed --connections (${w.connections}): every room needs a member`);
  if (!(Number.isFinite(w.messagesPerMinute) && w.messagesPerMinute >= 0))
    throw new CostInputError(`--messages-per-minute must be a number >= 0, got ${w.messagesPerMinute}`);
  if (!(Number.isFinite(w.hours) && w.hours > 0 && w.hours <= 744))
    throw new CostInputError(`--hours must be within (0, 744] (hours in a month), got ${w.hours}`);
  if (!(Number.isInteger(w.memoryMb) && w.memoryMb >= 128 && w.memoryMb <= 10240))
    throw new CostInputError(`--memory-mb must be an integer from 128 to 10240, got ${w.memoryMb}`);
  if (!(Number.isFinite(w.sessionHours) && w.sessionHours > 0 && w.sessionHours <= 2))
    throw new CostInputError(
      `--session-hours must be within (0, 2] (API Gateway's maximum connection duration is 2 hours), got ${w.sessionHours}`,
    );
  if (!(Number.isFinite(w.pingIntervalMinutes) && w.pingIntervalMinutes >= 0))
    throw new CostInputError(`--ping-interval-minutes must be >= 0, got ${w.pingIntervalMinutes}`);
  for (const [flag, v] of [
    ["--typing-per-minute", w.typingPerMinute],
    ["--reactions-per-minute", w.reactionsPerMinute],
    ["--reads-per-minute", w.readsPerMinute],
  ] as const) {
    if (!(Number.isFinite(v) && v >= 0)) throw new CostInputError(`${flag} must be a number >= 0, got ${v}`);
  }
}

/**
 * One typing frame that passed the throttle, in a room of `members`: the fitted usage while the room
 * is within typingMaxRoomUsers (the stack's default), else only what the route spends before it
 * refuses the room (its fixed part, no room read, no post).
 */
export function typingUsage(
  u: LinearUsage,
  members: number,
  maxRoomUsers: number = HANDLER_SETTINGS.typingMaxRoomUsers.defaultValue,
): OperationUsage {
  if (members <= maxRoomUsers) return atMembers(u, members);
  const fixed = atMembers(u, 0);
  return { ...fixed, managementCalls: 0 };
}

/** usage at a room size, from the linear fit (never negative). */
export function atMembers(u: LinearUsage, members: number): OperationUsage {
  const f = (k: keyof OperationUsage) => Math.max(0, u.fixed[k] + u.perMember[k] * members);
  return {
    readUnits: f("readUnits"),
    writeUnits: f("writeUnits"),
    itemsRead: f("itemsRead"),
    managementCalls: f("managementCalls"),
    durationMs: f("durationMs"),
    logBytes: f("logBytes"),
  };
}

function price(key: PriceKey): number {
  return PRICES[key].usd;
}

function line(item: PriceKey, quantity: number) {
  return { item, quantity, usd: quantity * price(item) };
}

function service(name: ServiceCost["service"], lines: ServiceCost["lines"]): ServiceCost {
  return { service: name, lines, usd: lines.reduce((s, l) => s + l.usd, 0) };
}

/** Lambda bills duration in 1 ms increments (rounded up per invocation). */
function gbSeconds(invocations: number, durationMs: number, memoryMb: number): number {
  return invocations * (Math.ceil(durationMs) / 1000) * (memoryMb / 1024);
}

function design(kind: DesignCost["design"], w: Workload, inputs: CostInputs, monitoring: MonitoringFootprint, members: number): DesignCost {
  const minutes = w.hours * 60;
  const messages = w.messagesPerMinute * minutes;
  const sessions = (w.connections * w.hours) / w.sessionHours;
  const pings = w.pingIntervalMinutes > 0 ? (w.connections * minutes) / w.pingIntervalMinutes : 0;
  const chat = atMembers(inputs.chat, members);
  const connect = atMembers(inputs.connect, members);
  const disconnect = atMembers(inputs.disconnect, members);
  // Issue 18's frames: measured when bench/results.json has them, else the design formulas.
  const typing = typingUsage(inputs.typing ?? FALLBACK_INPUTS.typing!, members);
  const react = atMembers(inputs.react ?? FALLBACK_INPUTS.react!, members);
  const read = atMembers(inputs.read ?? FALLBACK_INPUTS.read!, members);
  const typings = w.typingPerMinute * minutes;
  const reactions = w.reactionsPerMinute * minutes;
  const reads = w.readsPerMinute * minutes;
  const signals = [
    { n: typings, u: typing },
    { n: reactions, u: react },
    { n: reads, u: read },
  ];
  const signalSum = (f: (u: OperationUsage) => number) => signals.reduce((s, x) => s + x.n * f(x.u), 0);
  // The Scan design replaces the room Query's reads with a Scan of every connection item; the rest
  // of the chat route (stored message, rate limit, same recipients) is unchanged.
  const chatReadUnits =
    kind === "room-query" ? chat.readUnits : inputs.chat.fixed.readUnits + inputs.scanReadUnitsPerConnection * w.connections;
  const chatItemsRead = kind === "room-query" ? chat.itemsRead : w.connections;

  const inbound = messages + pings + typings + reactions + reads;
  const outbound =
    messages * chat.managementCalls +
    sessions * (connect.managementCalls + disconnect.managementCalls) +
    pings +
    signalSum((u) => u.managementCalls);
  const apiGateway = service("API Gateway", [
    line("apiGatewayMessage", inbound + outbound),
    line("apiGatewayConnectionMinute", w.connections * minutes),
  ]);

  const invocations = messages + sessions * 3 + pings + typings + reactions + reads;
  const gbs =
    signals.reduce((s, x) => s + gbSeconds(x.n, x.u.durationMs, w.memoryMb), 0) +
    gbSeconds(messages, chat.durationMs, w.memoryMb) +
    gbSeconds(sessions, inputs.authorizer.durationMs, w.memoryMb) +
    gbSeconds(sessions, connect.durationMs, w.memoryMb) +
    gbSeconds(sessions, disconnect.durationMs, w.memoryMb) +
    gbSeconds(pings, inputs.ping.durationMs, w.memoryMb);
  const lambda = service("Lambda", [line("lambdaRequest", invocations), line("lambdaGbSecondArm", gbs)]);

  const readUnits =
    messages * chatReadUnits +
    sessions * (connect.readUnits + disconnect.readUnits + inputs.authorizer.readUnits) +
    pings * inputs.ping.readUnits +
    signalSum((u) => u.readUnits);
  const writeUnits =
    messages * chat.writeUnits +
    sessions * (connect.writeUnits + disconnect.writeUnits + inputs.authorizer.writeUnits) +
    pings * inputs.ping.writeUnits +
    signalSum((u) => u.writeUnits);
  const dynamo = service("DynamoDB", [line("dynamoReadUnit", readUnits), line("dynamoWriteUnit", writeUnits)]);

  const logBytes =
    messages * chat.logBytes +
    sessions * (connect.logBytes + disconnect.logBytes + inputs.authorizer.logBytes) +
    pings * inputs.ping.logBytes +
    signalSum((u) => u.logBytes) +
    invocations * LAMBDA_PLATFORM_LOG_BYTES;
  // Series are billed by the hour they receive data (here: the workload's hours); the alarms and the
  // dashboard exist all month whatever the traffic.
  const cloudwatch = service("CloudWatch", [
    line("logsIngestedGb", logBytes / GIB),
    line("customMetricMonth", monitoring.customMetricSeries * (w.hours / HOURS_PER_MONTH)),
    line("alarmMetricMonth", monitoring.alarmMetrics),
    line("dashboardMonth", monitoring.dashboards),
  ]);
  const services = [apiGateway, lambda, dynamo, cloudwatch];
  return {
    design: kind,
    services,
    totalUsd: services.reduce((s, x) => s + x.usd, 0),
    counts: {
      chatMessages: messages,
      typingFrames: typings,
      reactions,
      reads,
      sessions,
      pings,
      apiGatewayMessagesInbound: inbound,
      apiGatewayMessagesOutbound: outbound,
      lambdaInvocations: invocations,
      lambdaGbSeconds: gbs,
      dynamoItemsReadPerChatMessage: chatItemsRead,
      dynamoReadUnits: readUnits,
      dynamoWriteUnits: writeUnits,
      logGiB: logBytes / GIB,
    },
  };
}

export function estimateCost(
  workload: Workload,
  inputs: CostInputs,
  monitoring: MonitoringFootprint = monitoringFootprint(workload.detailedMonitoring),
): CostEstimate {
  validateWorkload(workload);
  const members = workload.connections / workload.rooms;
  return {
    workload,
    membersPerRoom: members,
    inputsSource: inputs.source,
    signalsFromFallback: (["typing", "react", "read"] as const).filter((k) => inputs[k] === undefined),
    monitoring,
    ours: design("room-query", workload, inputs, monitoring, members),
    scan: design("scan-per-message", workload, inputs, monitoring, members),
  };
}

/**
 * Issue 17: one room of `members` users receiving `messagesPerMinute` chat messages, delivered today's
 * way (the chat route Queries the room partition and posts to every member) and by the delivery
 * workers (the route stores the message and sends one job per shard to the FIFO queue; each worker
 * reads the summary and its shard and posts at deliveryPostsPerSecond / deliveryWorkerConcurrency).
 */
export interface LargeRoomWorkload {
  readonly members: number;
  readonly messagesPerMinute: number;
  readonly hours: number;
  readonly memoryMb: number;
  readonly roomShardSize: number;
  readonly deliveryWorkerConcurrency: number;
  readonly deliveryPostsPerSecond: number;
}

/** What one broadcast to the room consumes under one design. */
export interface BroadcastUsage {
  readonly apiGatewayMessages: number;
  readonly lambdaRequests: number;
  readonly lambdaGbSeconds: number;
  readonly readUnits: number;
  readonly writeUnits: number;
  readonly sqsRequests: number;
  readonly logBytes: number;
  /** The longest invocation (ms): today's must stay under API Gateway's 29 s integration timeout. */
  readonly longestInvocationMs: number;
}

export interface LargeRoomDesignCost {
  readonly design: "today" | "workers";
  readonly perMessage: BroadcastUsage;
  /** Per month: the lines priced; the workers add the idle polling of the event source mapping. */
  readonly services: readonly ServiceCost[];
  readonly totalUsd: number;
  /** totalUsd / (messages x members) */
  readonly usdPerDelivery: number;
  /** Read units per member reached (the broadcast's reads / members). */
  readonly readUnitsPerDelivery: number;
}

export interface LargeRoomCost {
  readonly workload: LargeRoomWorkload;
  readonly shards: number;
  readonly today: LargeRoomDesignCost;
  readonly workers: LargeRoomDesignCost;
  /** workers.usdPerDelivery / today.usdPerDelivery */
  readonly ratio: number;
  /** The issue's target: total cost per delivery within 10% of today's. */
  readonly withinTenPercent: boolean;
  /** Members above which today's route would exceed the 29 s integration timeout (by the measured fit). */
  readonly todayTimeoutMembers: number;
}

/** API Gateway's integration timeout (AWS-FACTS, Limits). */
export const INTEGRATION_TIMEOUT_MS = 29_000;

export const DEFAULT_LARGE_ROOM: Omit<LargeRoomWorkload, "members"> = {
  messagesPerMinute: 1,
  hours: HOURS_PER_MONTH,
  memoryMb: DEFAULT_WORKLOAD.memoryMb,
  roomShardSize: HANDLER_SETTINGS.roomShardSize.defaultValue,
  deliveryWorkerConcurrency: HANDLER_SETTINGS.deliveryWorkerConcurrency.defaultValue,
  deliveryPostsPerSecond: HANDLER_SETTINGS.deliveryPostsPerSecond.defaultValue,
};

export function validateLargeRoom(w: LargeRoomWorkload): void {
  const int = (flag: string, v: number, min: number, max: number) => {
    if (!(Number.isInteger(v) && v >= min && v <= max))
      throw new CostInputError(`${flag} must be an integer from ${min} to ${max}, got ${v}`);
  };
  int("--large-room-members", w.members, 1, 10_000_000);
  int("--room-shard-size", w.roomShardSize, HANDLER_SETTINGS.roomShardSize.min, HANDLER_SETTINGS.roomShardSize.max);
  int(
    "--worker-concurrency",
    w.deliveryWorkerConcurrency,
    HANDLER_SETTINGS.deliveryWorkerConcurrency.min,
    HANDLER_SETTINGS.deliveryWorkerConcurrency.max,
  );
  int(
    "--posts-per-second",
    w.deliveryPostsPerSecond,
    HANDLER_SETTINGS.deliveryPostsPerSecond.min,
    HANDLER_SETTINGS.deliveryPostsPerSecond.max,
  );
  int("--memory-mb", w.memoryMb, 128, 10240);
  if (!(Number.isFinite(w.messagesPerMinute) && w.messagesPerMinute > 0))
    throw new CostInputError(`--large-room-messages-per-minute must be a number > 0, got ${w.messagesPerMinute}`);
  if (!(Number.isFinite(w.hours) && w.hours > 0 && w.hours <= 744))
    throw new CostInputError(`--hours must be within (0, 744] (hours in a month), got ${w.hours}`);
}

function largeRoomServices(u: BroadcastUsage, messages: number, idlePolls: number): ServiceCost[] {
  const services = [
    service("API Gateway", [line("apiGatewayMessage", messages * u.apiGatewayMessages)]),
    service("Lambda", [line("lambdaRequest", messages * u.lambdaRequests), line("lambdaGbSecondArm", messages * u.lambdaGbSeconds)]),
    service("DynamoDB", [line("dynamoReadUnit", messages * u.readUnits), line("dynamoWriteUnit", messages * u.writeUnits)]),
    service("CloudWatch", [line("logsIngestedGb", (messages * u.logBytes) / GIB)]),
  ];
  if (u.sqsRequests > 0 || idlePolls > 0) services.push(service("SQS", [line("sqsFifoRequest", messages * u.sqsRequests + idlePolls)]));
  return services;
}

/**
 * The large-room case of the cost model: the chat route's measured fit (inputs.chat) for today's
 * broadcast; for the workers, the route's fixed part plus its first page (the summary and up to 127
 * members) and the SendMessageBatch calls, and per shard one invocation that reads its shard (the
 * measured read units per member, rounded up to a whole unit per Query) and posts at its paced rate
 * (or as fast as today, if faster).
 */
export function largeRoomCost(inputs: CostInputs, w: LargeRoomWorkload, d: LargeRoomDesign = LARGE_ROOM_DESIGN): LargeRoomCost {
  validateLargeRoom(w);
  const messages = w.messagesPerMinute * 60 * w.hours;
  const chat = atMembers(inputs.chat, w.members);
  const fixed = atMembers(inputs.chat, 0);
  const gbs = (ms: number) => (Math.ceil(ms) / 1000) * (w.memoryMb / 1024);
  const today: BroadcastUsage = {
    apiGatewayMessages: 1 + chat.managementCalls,
    lambdaRequests: 1,
    lambdaGbSeconds: gbs(chat.durationMs),
    readUnits: chat.readUnits,
    writeUnits: chat.writeUnits,
    sqsRequests: 0,
    logBytes: chat.logBytes + LAMBDA_PLATFORM_LOG_BYTES,
    longestInvocationMs: chat.durationMs,
  };
  const shards = shardCount(w.members, w.roomShardSize);
  const sizes = shardSizes(w.members, shards, 1);
  const jobBytes = d.jobEnvelopeBytes + d.frameBytes;
  let sendRequests = 0;
  for (let b = 0; b * SQS_BATCH_ENTRIES < shards; b++) {
    const entries = Math.min(SQS_BATCH_ENTRIES, shards - b * SQS_BATCH_ENTRIES);
    sendRequests += Math.ceil((entries * jobBytes) / d.sqsChunkBytes);
  }
  const batches = Math.ceil(shards / SQS_BATCH_ENTRIES);
  // ReceiveMessage (batch size 1: one job, its chunks) and DeleteMessage per job.
  const jobRequests = shards * (Math.ceil(jobBytes / d.sqsChunkBytes) + 1);
  const perWorker = w.deliveryPostsPerSecond / w.deliveryWorkerConcurrency;
  const msPerMember = Math.max(inputs.chat.perMember.durationMs, 1000 / perWorker);
  const routeMs = fixed.durationMs + batches * d.sendBatchMs;
  let workerGbs = 0;
  let workerReads = 0;
  let longestWorker = 0;
  let workerLogs = 0;
  for (const n of sizes) {
    const ms = fixed.durationMs + n * msPerMember;
    workerGbs += gbs(ms);
    longestWorker = Math.max(longestWorker, ms);
    workerReads += d.workerSummaryReadUnits + Math.max(1, Math.ceil(n * inputs.chat.perMember.readUnits));
    workerLogs += fixed.logBytes + n * inputs.chat.perMember.logBytes + LAMBDA_PLATFORM_LOG_BYTES;
  }
  const workers: BroadcastUsage = {
    apiGatewayMessages: 1 + w.members,
    lambdaRequests: 1 + shards,
    lambdaGbSeconds: gbs(routeMs) + workerGbs,
    readUnits:
      fixed.readUnits +
      Math.max(1, Math.ceil(Math.min(d.routeFirstPageItems, w.members + 1) * inputs.chat.perMember.readUnits)) +
      workerReads,
    writeUnits: fixed.writeUnits,
    sqsRequests: sendRequests + jobRequests,
    logBytes: fixed.logBytes + LAMBDA_PLATFORM_LOG_BYTES + workerLogs,
    longestInvocationMs: Math.max(routeMs, longestWorker),
  };
  const idlePolls = d.idlePollers * (60 / d.longPollSeconds) * 60 * w.hours;
  const priced = (design: LargeRoomDesignCost["design"], u: BroadcastUsage, polls: number): LargeRoomDesignCost => {
    const services = largeRoomServices(u, messages, polls);
    const totalUsd = services.reduce((s, x) => s + x.usd, 0);
    return {
      design,
      perMessage: u,
      services,
      totalUsd,
      usdPerDelivery: totalUsd / (messages * w.members),
      readUnitsPerDelivery: u.readUnits / w.members,
    };
  };
  const t = priced("today", today, 0);
  const k = priced("workers", workers, idlePolls);
  const ratio = k.usdPerDelivery / t.usdPerDelivery;
  return {
    workload: w,
    shards,
    today: t,
    workers: k,
    ratio,
    withinTenPercent: Math.abs(ratio - 1) <= 0.1,
    todayTimeoutMembers: Math.floor((INTEGRATION_TIMEOUT_MS - inputs.chat.fixed.durationMs) / inputs.chat.perMember.durationMs),
  };
}

export function formatLargeRoom(c: LargeRoomCost): string {
  const w = c.workload;
  const out: string[] = [];
  out.push(
    `Large room: ${w.members} members, ${w.messagesPerMinute} chat messages/minute, ${w.hours} h/month, ${w.memoryMb} MB arm64; ` +
      `${c.shards} shards of about ${Math.ceil(w.members / c.shards)}, ${w.deliveryWorkerConcurrency} workers at ${(w.deliveryPostsPerSecond / w.deliveryWorkerConcurrency).toFixed(0)} posts/s each`,
  );
  const rows: string[][] = [["Per broadcast", "Today (one invocation)", "Workers (queue)"]];
  const num = (v: number) => (v >= 1000 ? v.toFixed(0) : v.toFixed(v < 10 ? 3 : 1));
  const pairs: Array<[string, (u: BroadcastUsage) => number]> = [
    ["API Gateway messages", (u) => u.apiGatewayMessages],
    ["Lambda invocations", (u) => u.lambdaRequests],
    ["Lambda GB-seconds", (u) => u.lambdaGbSeconds],
    ["DynamoDB read units", (u) => u.readUnits],
    ["DynamoDB write units", (u) => u.writeUnits],
    ["SQS requests (64 KB chunks)", (u) => u.sqsRequests],
    ["Longest invocation (ms)", (u) => u.longestInvocationMs],
  ];
  for (const [label, f] of pairs) rows.push([label, num(f(c.today.perMessage)), num(f(c.workers.perMessage))]);
  rows.push(["Read units per delivery", c.today.readUnitsPerDelivery.toFixed(5), c.workers.readUnitsPerDelivery.toFixed(5)]);
  c.today.services.forEach((s) => {
    const other = c.workers.services.find((x) => x.service === s.service)!;
    rows.push([`${s.service} per month`, usd(s.usd), usd(other.usd)]);
  });
  const sqs = c.workers.services.find((x) => x.service === "SQS");
  if (sqs) rows.push(["SQS per month (with idle polling)", usd(0), usd(sqs.usd)]);
  rows.push(["Total per month", usd(c.today.totalUsd), usd(c.workers.totalUsd)]);
  rows.push(["Cost per delivery", `$${c.today.usdPerDelivery.toExponential(3)}`, `$${c.workers.usdPerDelivery.toExponential(3)}`]);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) out.push(r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join("  "));
  out.push(
    `Cost per delivery: workers / today = ${c.ratio.toFixed(4)} (${((c.ratio - 1) * 100).toFixed(2)}%): ` +
      `${c.withinTenPercent ? "within" : "NOT within"} the issue's 10%.`,
  );
  if (c.today.perMessage.longestInvocationMs > INTEGRATION_TIMEOUT_MS)
    out.push(
      `Today's single invocation would run ${(c.today.perMessage.longestInvocationMs / 1000).toFixed(1)} s, past API Gateway's 29 s integration ` +
        `timeout (above about ${c.todayTimeoutMembers} members by the measured fit): its figures are what it would cost if it could finish.`,
    );
  return out.join("\n");
}

/** bench/results.json's costInputs, or the fallback (and why). */
export function loadCostInputs(resultsPath: string): { inputs: CostInputs; warning?: string } {
  if (!fs.existsSync(resultsPath))
    return { inputs: FALLBACK_INPUTS, warning: `${resultsPath} not found: using FALLBACK_INPUTS (design formulas, not measured)` };
  let parsed: BenchResults;
  try {
    parsed = JSON.parse(fs.readFileSync(resultsPath, "utf8")) as BenchResults;
  } catch (err) {
    throw new CostInputError(`${resultsPath} is not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed.costInputs)
    return { inputs: FALLBACK_INPUTS, warning: `${resultsPath} has no costInputs (run the broadcast case): using FALLBACK_INPUTS` };
  return { inputs: parsed.costInputs };
}

export interface CliOptions {
  /** The stack's workload (absent when only the large-room case was asked for). */
  readonly workload?: Workload;
  /** Issue 17's large-room case, when `--large-room-members` is given. */
  readonly largeRoom?: LargeRoomWorkload;
  readonly resultsPath: string;
  readonly json: boolean;
}

const USAGE = `usage: npm run cost -- --connections <n> --rooms <n> --messages-per-minute <n> [--hours <n>]
       [--memory-mb <n>] [--session-hours <n>] [--ping-interval-minutes <n>] [--detailed-monitoring]
       [--typing-per-minute <n>] [--reactions-per-minute <n>] [--reads-per-minute <n>]
       [--large-room-members <n> [--large-room-messages-per-minute <n>] [--room-shard-size <n>]
        [--worker-concurrency <n>] [--posts-per-second <n>]]
       [--results <path>] [--json]
       npm run cost -- --large-room-members <n> [...]: the large-room case alone (issue 17)
prod's config: --memory-mb 512 --detailed-monitoring (Pulumi.prod.yaml: lambdaMemoryMb, enableDetailedMonitoring)`;

const COST_OPTIONS = {
  connections: { type: "string" },
  rooms: { type: "string" },
  "messages-per-minute": { type: "string" },
  hours: { type: "string" },
  "memory-mb": { type: "string" },
  "session-hours": { type: "string" },
  "ping-interval-minutes": { type: "string" },
  "typing-per-minute": { type: "string" },
  "reactions-per-minute": { type: "string" },
  "reads-per-minute": { type: "string" },
  "large-room-members": { type: "string" },
  "large-room-messages-per-minute": { type: "string" },
  "room-shard-size": { type: "string" },
  "worker-concurrency": { type: "string" },
  "posts-per-second": { type: "string" },
  results: { type: "string" },
  "detailed-monitoring": { type: "boolean" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Parses the command line with util.parseArgs (scripts/commandLine.ts); throws CostInputError (exit 2). */
export function parseArgs(argv: readonly string[]): CliOptions {
  const parsed = parseCommandLine({ args: [...argv], options: COST_OPTIONS }, (m) => new CostInputError(m), `\n${USAGE}`).values;
  if (parsed.help) throw new CostInputError(USAGE);
  const json = parsed.json ?? false;
  const detailedMonitoring = parsed["detailed-monitoring"] ?? DEFAULT_WORKLOAD.detailedMonitoring;
  const values = new Map<string, string>();
  for (const [name, v] of Object.entries(parsed)) if (typeof v === "string") values.set(`--${name}`, v);
  const num = (flag: string, fallback?: number): number => {
    const raw = values.get(flag);
    if (raw === undefined) {
      if (fallback === undefined) throw new CostInputError(`${flag} is required\n${USAGE}`);
      return fallback;
    }
    const v = Number(raw);
    if (raw.trim() === "" || !Number.isFinite(v)) throw new CostInputError(`${flag} must be a number, got "${raw}"`);
    return v;
  };
  const largeRoomAlone =
    values.has("--large-room-members") && !["--connections", "--rooms", "--messages-per-minute"].some((f) => values.has(f));
  let workload: Workload | undefined;
  if (!largeRoomAlone) {
    workload = {
      connections: num("--connections"),
      rooms: num("--rooms"),
      messagesPerMinute: num("--messages-per-minute"),
      hours: num("--hours", DEFAULT_WORKLOAD.hours),
      memoryMb: num("--memory-mb", DEFAULT_WORKLOAD.memoryMb),
      sessionHours: num("--session-hours", DEFAULT_WORKLOAD.sessionHours),
      pingIntervalMinutes: num("--ping-interval-minutes", DEFAULT_WORKLOAD.pingIntervalMinutes),
      detailedMonitoring,
      typingPerMinute: num("--typing-per-minute", DEFAULT_WORKLOAD.typingPerMinute),
      reactionsPerMinute: num("--reactions-per-minute", DEFAULT_WORKLOAD.reactionsPerMinute),
      readsPerMinute: num("--reads-per-minute", DEFAULT_WORKLOAD.readsPerMinute),
    };
    validateWorkload(workload);
  }
  let largeRoom: LargeRoomWorkload | undefined;
  if (values.has("--large-room-members")) {
    largeRoom = {
      members: num("--large-room-members"),
      messagesPerMinute: num("--large-room-messages-per-minute", DEFAULT_LARGE_ROOM.messagesPerMinute),
      hours: num("--hours", DEFAULT_LARGE_ROOM.hours),
      memoryMb: num("--memory-mb", DEFAULT_LARGE_ROOM.memoryMb),
      roomShardSize: num("--room-shard-size", DEFAULT_LARGE_ROOM.roomShardSize),
      deliveryWorkerConcurrency: num("--worker-concurrency", DEFAULT_LARGE_ROOM.deliveryWorkerConcurrency),
      deliveryPostsPerSecond: num("--posts-per-second", DEFAULT_LARGE_ROOM.deliveryPostsPerSecond),
    };
    validateLargeRoom(largeRoom);
  } else {
    for (const f of ["--large-room-messages-per-minute", "--room-shard-size", "--worker-concurrency", "--posts-per-second"])
      if (values.has(f)) throw new CostInputError(`${f} needs --large-room-members`);
  }
  return {
    ...(workload ? { workload } : {}),
    ...(largeRoom ? { largeRoom } : {}),
    resultsPath: values.get("--results") ?? path.join(__dirname, "..", "bench", "results.json"),
    json,
  };
}

function usd(v: number): string {
  return v >= 100 ? `$${v.toFixed(0)}` : v >= 1 ? `$${v.toFixed(2)}` : `$${v.toFixed(4)}`;
}

function qty(v: number): string {
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)} billion`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} million`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)} thousand`;
  return v.toFixed(v < 10 ? 3 : 1);
}

export function formatEstimate(e: CostEstimate, warning?: string): string {
  const w = e.workload;
  const out: string[] = [];
  out.push(
    `Workload: ${w.connections} connections in ${w.rooms} rooms (${e.membersPerRoom.toFixed(1)} members each), ${w.messagesPerMinute} chat messages/minute, ${w.hours} h/month, ` +
      `${w.memoryMb} MB arm64 functions, reconnect every ${w.sessionHours} h, ping every ${w.pingIntervalMinutes || "-"} min` +
      (w.typingPerMinute || w.reactionsPerMinute || w.readsPerMinute
        ? `; per minute ${w.typingPerMinute} typing fan-outs, ${w.reactionsPerMinute} reactions, ${w.readsPerMinute} reads`
        : ""),
  );
  const m = e.monitoring;
  out.push(
    `Monitoring (from the code): ${m.customMetricSeries} custom metric series (${w.detailedMonitoring ? "[Stage] and [Stage, Function]: detailed monitoring on" : "[Stage] only: detailed monitoring off"}), ` +
      `${m.alarms} alarms reading ${m.alarmMetrics} metrics, ${m.dashboards} dashboard`,
  );
  out.push(`Per-operation figures: ${e.inputsSource}`);
  if ((w.typingPerMinute || w.reactionsPerMinute || w.readsPerMinute) && e.signalsFromFallback.length > 0)
    out.push(
      `  ${e.signalsFromFallback.join(", ")}: FALLBACK_INPUTS' design formulas (these results predate their measurement: run npm run bench)`,
    );
  if (warning) out.push(`WARNING: ${warning}`);
  out.push(`Prices: ${PRICES.region}, read ${PRICES.readOn} (check them: see the PRICES table in scripts/cost.ts)`);
  out.push("");
  const rows: string[][] = [["Service", "Item", "Quantity", "This project", "Scan-per-message"]];
  e.ours.services.forEach((s, i) => {
    const other = e.scan.services[i];
    s.lines.forEach((l, j) => {
      rows.push([
        j === 0 ? s.service : "",
        PRICES[l.item].item,
        qty(l.quantity) + (other.lines[j].quantity !== l.quantity ? ` (scan: ${qty(other.lines[j].quantity)})` : ""),
        usd(l.usd),
        usd(other.lines[j].usd),
      ]);
    });
    rows.push(["", `${s.service} total`, "", usd(s.usd), usd(other.usd)]);
  });
  rows.push(["Total", "per month", "", usd(e.ours.totalUsd), usd(e.scan.totalUsd)]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) out.push(r.map((cell, c) => (c >= 3 ? cell.padStart(widths[c]) : cell.padEnd(widths[c]))).join("  "));
  out.push("");
  out.push(
    `DynamoDB items read per chat message: ${e.ours.counts.dynamoItemsReadPerChatMessage.toFixed(1)} (room Query) vs ${e.scan.counts.dynamoItemsReadPerChatMessage} (Scan); ` +
      `the Scan design costs ${(e.scan.totalUsd / e.ours.totalUsd).toFixed(2)}x as much in total.`,
  );
  out.push("Not included: data transfer out, DynamoDB storage and backups, free tiers, X-Ray, Logs Insights queries and metric API calls.");
  return out.join("\n");
}

export function main(argv: readonly string[]): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  try {
    const options = parseArgs(argv);
    const { inputs, warning } = loadCostInputs(options.resultsPath);
    const estimate = options.workload ? estimateCost(options.workload, inputs) : undefined;
    const largeRoom = options.largeRoom ? largeRoomCost(inputs, options.largeRoom) : undefined;
    if (options.json) {
      process.stdout.write(`${JSON.stringify({ ...estimate, ...(largeRoom ? { largeRoom } : {}), warning, prices: PRICES }, null, 2)}\n`);
      return 0;
    }
    const parts: string[] = [];
    if (estimate) parts.push(formatEstimate(estimate, warning));
    if (largeRoom) {
      if (!estimate) parts.push(`Per-operation figures: ${inputs.source}${warning ? `\nWARNING: ${warning}` : ""}`);
      parts.push(formatLargeRoom(largeRoom));
    }
    process.stdout.write(`${parts.join("\n\n")}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CostInputError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
