/**
 * Names of the custom metrics the handlers emit as CloudWatch Embedded Metric Format (one JSON log
 * line per invocation, no API call on the hot path), which functions can emit each of them, and the
 * dimension sets they are emitted under. `infra/monitoring.ts` builds its dashboard and alarms from
 * the same names, and `scripts/cost.ts` counts the billed series from the same declarations
 * (`customMetricSeries`); the benchmarks read the DynamoDB and `@connections` counters locally.
 *
 * Every metric series (namespace x name x dimension values) is billed each month it receives a data
 * point (CloudWatch pricing: custom metrics, prorated by the hour), so a function emits only the
 * metrics it has something to say about, and the per-function dimension exists only when detailed
 * monitoring asks for it (the dashboard's per-function metric widgets read it only then).
 *
 * Module scope holds only plain constants and function declarations (closure serialization).
 */
import type { DynamoAction, FunctionSpec } from "./routes";

export const DEFAULT_METRICS_NAMESPACE = "ChatApi";

export const METRICS = {
  /** Messages accepted and stored (chat and private). */
  messagesSent: "MessagesSent",
  /** Successful `@connections` POSTs. */
  deliveries: "Deliveries",
  /** POSTs that failed for any reason other than GoneException, after retries. */
  failedDeliveries: "FailedDeliveries",
  /** Connections removed because a POST returned GoneException or their TTL had passed. */
  staleConnectionsCleaned: "StaleConnectionsCleaned",
  /** Frames answered with RATE_LIMITED. */
  rateLimited: "RateLimited",
  /** Handshakes the authorizer denied (bad token, wrong origin, userId mismatch). */
  rejectedConnects: "RejectedConnects",
  /** Frames answered with a client error (BAD_REQUEST, FORBIDDEN, NOT_FOUND, NOT_A_MEMBER, TOO_LARGE, UNKNOWN_TYPE, BAD_JSON). */
  clientErrors: "ClientErrors",
  /** DynamoDB read capacity units consumed (as reported by DynamoDB). */
  dynamoReadUnits: "DynamoReadUnits",
  /** DynamoDB write capacity units consumed. */
  dynamoWriteUnits: "DynamoWriteUnits",
  /** Items DynamoDB evaluated for reads (ScannedCount for Query/Scan, one per item returned by Get/BatchGet). */
  dynamoItemsRead: "DynamoItemsRead",
  /** `@connections` calls made (including retries). */
  managementCalls: "ManagementCalls",
  /**
   * Issue 17: how long a delivery job waited between its producer's send and the worker that
   * delivers it (ms, the job's enqueuedAtMs to the worker's start; one job per invocation).
   */
  deliveryJobAge: "DeliveryJobAge",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** Every metric name, in declaration order. */
export const METRIC_NAMES: readonly MetricName[] = Object.values(METRICS);

/** A dimension set of the EMF directive (EMF specification: `Dimensions` is an array of dimension sets). */
export type DimensionSet = readonly ("Stage" | "Function")[];

/**
 * The dimension sets every metric is emitted under: the [Stage] roll-up that alarms and the
 * dashboard read, plus [Stage, Function] when the stack has detailed monitoring on
 * (enableDetailedMonitoring: the dashboard then graphs each metric per function). Without it the
 * per-function breakdown stays available, for free, in the log line's `Function` field (the
 * dashboard's Logs Insights widget sums the EMF lines by function).
 */
export function metricDimensionSets(perFunction: boolean): readonly DimensionSet[] {
  return perFunction ? [["Stage", "Function"], ["Stage"]] : [["Stage"]];
}

/** Actions whose responses add read units and items read (handlers/lib/usage.ts recordResponse). */
const READ_ACTIONS: readonly DynamoAction[] = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"];
/** Actions whose responses add write units (transactions are authorized, and declared, as their parts). */
const WRITE_ACTIONS: readonly DynamoAction[] = [
  "dynamodb:PutItem",
  "dynamodb:UpdateItem",
  "dynamodb:DeleteItem",
  "dynamodb:BatchWriteItem",
  "dynamodb:ConditionCheckItem",
];

function usesAction(spec: FunctionSpec, actions: readonly DynamoAction[]): boolean {
  return spec.tables.some(
    (t) =>
      t.actions.some((a) => actions.includes(a)) || Object.values(t.indexes ?? {}).some((list) => list.some((a) => actions.includes(a))),
  );
}

/**
 * Whether a function can ever emit a metric, derived from what the route table says it does:
 * the `@connections` counters come from the fan-out (functions that POST), RateLimited and
 * ClientErrors from the two-way message wrapper (handlers/lib/runtime.ts messageRoute) and from
 * `$connect`'s handshake budget, the DynamoDB counters from the tables and actions it is granted.
 * tests/handlers/metricDeclarations.test.ts checks every `usage.count` in the handlers against it.
 */
export function canEmit(spec: FunctionSpec, metric: MetricName): boolean {
  switch (metric) {
    case "MessagesSent":
      return spec.name === "chat" || spec.name === "private";
    case "RejectedConnects":
      return spec.name === "authorizer";
    case "Deliveries":
    case "FailedDeliveries":
    case "StaleConnectionsCleaned":
      return spec.fansOut;
    case "ManagementCalls":
      // Also a route function that only closes a connection past its token's expiry.
      return spec.manageConnections.length > 0;
    case "RateLimited":
    case "ClientErrors":
      return spec.twoWay || spec.name === "connect";
    case "DynamoReadUnits":
    case "DynamoItemsRead":
      return usesAction(spec, READ_ACTIONS);
    case "DynamoWriteUnits":
      return usesAction(spec, WRITE_ACTIONS);
    case "DeliveryJobAge":
      return spec.trigger === "deliveryQueue";
  }
}

/** The metrics a function can emit, in declaration order. */
export function metricsOf(spec: FunctionSpec): MetricName[] {
  return METRIC_NAMES.filter((m) => canEmit(spec, m));
}

/**
 * Distinct custom-metric series a stage can produce: for each dimension set, one series per metric
 * (the [Stage] roll-up: the union over the functions) or one per function and metric it can emit
 * ([Stage, Function]). The upper bound of the monthly bill: a series that receives no data point in
 * an hour is not billed for it.
 */
export function customMetricSeries(functions: readonly FunctionSpec[], perFunction: boolean): number {
  let series = 0;
  for (const set of metricDimensionSets(perFunction)) {
    if (set.includes("Function")) series += functions.reduce((n, f) => n + metricsOf(f).length, 0);
    else series += METRIC_NAMES.filter((m) => functions.some((f) => canEmit(f, m))).length;
  }
  return series;
}
