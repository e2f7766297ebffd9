/**
 * The alarms infra/monitoring.ts creates, each with the metrics it reads, as plain data for the cost
 * model (scripts/cost.ts): a standard-resolution alarm is billed per metric it reads, so a metric-math
 * alarm over two metrics costs two alarm metrics (CloudWatch pricing, "Alarms"). No @pulumi import:
 * the cost tool loads this without the Pulumi SDK. tests/infra/monitoring.test.ts checks that the
 * stack's alarms are exactly these, with exactly these metrics.
 */
import { DEFAULT_METRICS_NAMESPACE, METRICS } from "../handlers/metrics";

export interface PlannedAlarm {
  /** The key in Monitoring.alarms (and the alarm name's suffix). */
  readonly key: string;
  /** `namespace/metricName` of every metric the alarm reads. */
  readonly metrics: readonly string[];
}

export function alarmPlan(
  functionNames: readonly string[],
  tableNames: readonly string[],
  metricsNamespace: string = DEFAULT_METRICS_NAMESPACE,
): PlannedAlarm[] {
  return [
    ...functionNames.map((f) => ({ key: `lambda-error-rate-${f}`, metrics: ["AWS/Lambda/Errors", "AWS/Lambda/Invocations"] })),
    ...tableNames.map((t) => ({
      key: `dynamodb-throttles-${t}`,
      metrics: ["AWS/DynamoDB/ReadThrottleEvents", "AWS/DynamoDB/WriteThrottleEvents"],
    })),
    { key: "client-errors", metrics: ["AWS/ApiGateway/ClientError"] },
    { key: "server-errors", metrics: ["AWS/ApiGateway/ExecutionError", "AWS/ApiGateway/IntegrationError"] },
    { key: "rejected-connects", metrics: [`${metricsNamespace}/${METRICS.rejectedConnects}`] },
    { key: "failed-deliveries", metrics: [`${metricsNamespace}/${METRICS.failedDeliveries}`] },
    // The delivery queue of large rooms (infra/deliveryQueue.ts): its oldest job's age, its dead letters.
    { key: "delivery-queue-age", metrics: ["AWS/SQS/ApproximateAgeOfOldestMessage"] },
    { key: "delivery-dlq-depth", metrics: ["AWS/SQS/ApproximateNumberOfMessagesVisible"] },
  ];
}

/** Alarm metrics billed per month: the sum over the alarms of the metrics each reads. */
export function alarmMetricCount(functionNames: readonly string[], tableNames: readonly string[]): number {
  return alarmPlan(functionNames, tableNames).reduce((n, a) => n + a.metrics.length, 0);
}

/** Dashboards a stack creates (Monitoring: one). */
export const DASHBOARDS_PER_STACK = 1;
