/**
 * One CloudWatch Embedded Metric Format line per invocation (no PutMetricData call on the hot
 * path; CloudWatch extracts the metrics from the log line). Specification:
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
 * A line names only the metrics the function has something to say about: those this invocation
 * counted (non-zero), and only among those its route can emit (handlers/metrics.ts canEmit), as
 * Powertools Metrics emits only the metrics added. A series that receives no data point is not
 * billed, so a rare metric (FailedDeliveries) costs nothing in the hours it does not happen.
 * Dimensions: the [Stage] roll-up, plus [Stage, Function] when detailed monitoring is on
 * (METRICS_PER_FUNCTION; handlers/metrics.ts metricDimensionSets). Whatever is not a metric stays in
 * the line as a plain field (Function, the zero counters are absent), free to query in Logs Insights.
 *
 * In-process observers (the local runtime, tests, benchmarks) can also subscribe with
 * `onInvocationUsage`. The listener list lives on globalThis under a registered symbol, not in
 * module state, so it survives CallbackFunction serialization and module duplication.
 */
import { canEmit, METRIC_NAMES, METRICS, metricDimensionSets, type MetricName } from "../metrics";
import { FUNCTIONS } from "../routes";
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

function unitOf(name: MetricName): "Count" | "None" | "Milliseconds" {
  if (name === METRICS.deliveryJobAge) return "Milliseconds";
  return name === METRICS.dynamoReadUnits || name === METRICS.dynamoWriteUnits ? "None" : "Count";
}

/** How the stack wants its metrics emitted (handlers/lib/config.ts reads it from the environment). */
export interface EmfOptions {
  /** Add the [Stage, Function] dimension set (detailed monitoring); default false: [Stage] only. */
  readonly perFunction?: boolean;
}

/**
 * The metrics one invocation's line carries: non-zero, and declared for its function. A function
 * not in the route table (a test fixture) declares nothing and emits no metric.
 */
export function emittedMetrics(report: Pick<InvocationReport, "function" | "metrics">): MetricName[] {
  const spec = FUNCTIONS.find((f) => f.name === report.function);
  return METRIC_NAMES.filter((n) => report.metrics[n] !== 0 && spec !== undefined && canEmit(spec, n));
}

/** The EMF document for one invocation. */
export function emfDocument(
  namespace: string,
  report: InvocationReport,
  timestamp: number,
  options: EmfOptions = {},
): Record<string, unknown> {
  const names = emittedMetrics(report);
  const doc: Record<string, unknown> = {
    _aws: {
      Timestamp: timestamp,
      // An empty Metrics array is valid EMF (nothing is extracted); the line still logs the invocation.
      CloudWatchMetrics: [
        {
          Namespace: namespace,
          Dimensions: metricDimensionSets(options.perFunction === true).map((set) => [...set]),
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
  options: EmfOptions = {},
): InvocationReport {
  // The in-process report keeps every counter (zeros included): benchmarks and tests read it whole.
  const report: InvocationReport = { ...base, metrics: { ...usage.metrics }, dynamoCalls: [...usage.dynamoCalls] };
  const line = JSON.stringify(emfDocument(namespace, report, Date.now(), options));
  if (write) write(line);
  else process.stdout.write(`${line}\n`);
  for (const l of listeners()) {
    try {
      l(report);
    } catch {
      // An observer's bug must never fail the invocation.
    }
  }
  return report;
}
