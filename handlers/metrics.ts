/**
 * Names of the custom metrics the handlers emit as CloudWatch Embedded Metric Format (one JSON log
 * line per invocation, no API call on the hot path). `infra/monitoring.ts` builds its dashboard and
 * alarms from the same names; the benchmarks read the DynamoDB and `@connections` counters locally.
 */
export const DEFAULT_METRICS_NAMESPACE = "ChatApi";
/** Every metric is emitted with these dimensions (one dimension set: [Stage, Function]) and also rolled up by [Stage]. */
export const METRIC_DIMENSIONS = ["Stage", "Function"] as const;

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
  /** Frames answered with a client error (BAD_REQUEST, NOT_A_MEMBER, TOO_LARGE, UNKNOWN_TYPE, BAD_JSON). */
  clientErrors: "ClientErrors",
  /** DynamoDB read capacity units consumed (as reported by DynamoDB). */
  dynamoReadUnits: "DynamoReadUnits",
  /** DynamoDB write capacity units consumed. */
  dynamoWriteUnits: "DynamoWriteUnits",
  /** Items DynamoDB evaluated for reads (ScannedCount for Query/Scan, one per item returned by Get/BatchGet). */
  dynamoItemsRead: "DynamoItemsRead",
  /** `@connections` calls made (including retries). */
  managementCalls: "ManagementCalls",
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];
