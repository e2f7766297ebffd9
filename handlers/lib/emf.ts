/**
 * One CloudWatch Embedded Metric Format line per invocation (no PutMetricData call on the hot
 * path; CloudWatch extracts the metrics from the log line). Specification:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 * Dimensions: [Stage, Function] and the [Stage] roll-up (handlers/metrics.ts).
 *
 * In-process observers (the local runtime, tests, benchmarks) can also subscribe with
 * `onInvocationUsage`. The listener list lives on globalThis under a registered symbol, not in
 * module state, so it survives CallbackFunction serialization and module duplication.
 */
import { METRICS, type MetricName } from "../metrics";
import type { DynamoCall, InvocationUsage } from "./usage";

export interface InvocationReport {
  readonly function: string;
  readonly stage: string;
  readonly requestId: string;
  readonly routeKey?: string;
  readonly connectionId?: string;
  readonly metrics: Readonly<Record<MetricName, number>>;
  readonly dynamoCalls: readonly DynamoCall[];
}

export type UsageListener = (report: InvocationReport) => void;

function listeners(): Set<UsageListener> {
  const key = Symbol.for("pulumi-websocket-chat.usageListeners");
  const g = globalThis as unknown as Record<symbol, Set<UsageListener> | undefined>;
  let set = g[key];
  if (!set) {
    set = new Set();
    g[key] = set;
  }
  return set;
}

/** Subscribes to every invocation's report in this process (thread); returns the unsubscribe function. */
export function onInvocationUsage(listener: UsageListener): () => void {
  listeners().add(listener);
  return () => void listeners().delete(listener);
}

function unitOf(name: MetricName): "Count" | "None" {
  return name === METRICS.dynamoReadUnits || name === METRICS.dynamoWriteUnits ? "None" : "Count";
}

/** The EMF document for one invocation. */
export function emfDocument(namespace: string, report: InvocationReport, timestamp: number): Record<string, unknown> {
  const names = Object.values(METRICS) as MetricName[];
  const doc: Record<string, unknown> = {
    _aws: {
      Timestamp: timestamp,
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: [["Stage", "Function"], ["Stage"]],
          Metrics: names.map((n) => ({ Name: n, Unit: unitOf(n) })),
        },
      ],
    },
    Stage: report.stage,
    Function: report.function,
    requestId: report.requestId,
    ...(report.routeKey ? { routeKey: report.routeKey } : {}),
    ...(report.connectionId ? { connectionId: report.connectionId } : {}),
    // Not a metric (no directive names it): kept in the log line for cost analysis.
    dynamoCalls: report.dynamoCalls.map((c) => `${c.table}:${c.action.replace("dynamodb:", "")}${c.index ? `@${c.index}` : ""}`),
  };
  for (const n of names) doc[n] = Math.round(report.metrics[n] * 1000) / 1000;
  return doc;
}

/** Writes the invocation's EMF line to stdout and notifies in-process listeners. */
export function publishUsage(
  namespace: string,
  base: Omit<InvocationReport, "metrics" | "dynamoCalls">,
  usage: InvocationUsage,
  write?: (line: string) => void,
): InvocationReport {
  const report: InvocationReport = { ...base, metrics: { ...usage.metrics }, dynamoCalls: [...usage.dynamoCalls] };
  const line = JSON.stringify(emfDocument(namespace, report, Date.now()));
  if (write) write(line);
  else process.stdout.write(line + "\n");
  for (const l of listeners()) {
    try {
      l(report);
    } catch {
      // An observer's bug must never fail the invocation.
    }
  }
  return report;
}
