/**
 * Monitoring: a CloudWatch dashboard built with @pulumi/awsx's classic CloudWatch helpers, alarms
 * with thresholds from config, and a KMS-encrypted SNS topic that receives them.
 *
 * API Gateway WebSocket metrics (namespace AWS/ApiGateway; dimensions ApiId, Stage, Route):
 * ConnectCount, MessageCount, IntegrationError, ClientError, ExecutionError, IntegrationLatency
 * (API Gateway developer guide: apigateway-websocket-api-logging). Chat metrics come from the
 * handlers' EMF lines (handlers/metrics.ts): the [Stage] roll-up, which every alarm and graph reads,
 * and [Stage, Function] only with detailed monitoring (each series is billed monthly: docs/cost.md).
 * Without it the chat row's per-function breakdown is a Logs Insights query over the same EMF lines
 * (their `Function` field), which costs no metric series. infra/alarmPlan.ts lists the alarms below
 * with the metrics each reads, for the cost model; tests/infra/monitoring.test.ts keeps them in step.
 */
import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import * as cloudwatch from "@pulumi/awsx/classic/cloudwatch";
import { metrics as dynamoMetrics } from "@pulumi/awsx/classic/dynamodb";
import { metrics as lambdaMetrics } from "@pulumi/awsx/classic/lambda";
import { METRICS } from "../handlers/metrics";
import type { AlarmThresholds } from "./config";

export interface MonitoredFunction {
  /** Logical name (the route table's). */
  readonly name: string;
  /** The function resource (its physical name is the metrics' FunctionName dimension). */
  readonly lambda: aws.lambda.Function;
  /** Its log group (dashboard log query). */
  readonly logGroupName: pulumi.Input<string>;
}

export interface MonitoredTable {
  /** Logical name (handlers/tables.ts). */
  readonly name: string;
  /** The table resource (its physical name is the metrics' TableName dimension). */
  readonly table: aws.dynamodb.Table;
}

/** The delivery queue of large rooms and its worker (infra/deliveryQueue.ts, the `deliver` function). */
export interface MonitoredDeliveryQueue {
  /** QueueName dimension of the queue's AWS/SQS metrics. */
  readonly queueName: pulumi.Input<string>;
  /** QueueName dimension of the dead-letter queue's metrics. */
  readonly dlqName: pulumi.Input<string>;
  /** Logical name of the worker among `functions` (its duration, throttles and concurrency are graphed with the queue). */
  readonly workerName?: string;
}

export interface MonitoringArgs {
  /** Prefix of the dashboard, alarm and topic names. */
  readonly namePrefix: string;
  /** Region shown by the dashboard widgets and in its URL. */
  readonly region: pulumi.Input<string>;
  /** The WebSocket API's id (ApiId dimension). */
  readonly apiId: pulumi.Input<string>;
  /** Stage name (Stage dimension of API Gateway and chat metrics). */
  readonly stage: string;
  /** Route keys of the API (per-route widgets when detailed monitoring is on). */
  readonly routeKeys: readonly string[];
  /** Every function: one error-rate alarm and one dashboard line each. */
  readonly functions: readonly MonitoredFunction[];
  /** Every table: one throttling alarm and one dashboard line each. */
  readonly tables: readonly MonitoredTable[];
  /** The delivery queue: its age and dead-letter alarms and its dashboard row. */
  readonly deliveryQueue: MonitoredDeliveryQueue;
  /** Access-log group of the stage (dashboard log query). */
  readonly accessLogGroupName: pulumi.Input<string>;
  /** EMF namespace of the chat metrics. */
  readonly metricsNamespace: string;
  /** Per-route widgets (default false). */
  readonly detailedMonitoring?: boolean;
  /** Alarm thresholds, period and evaluation periods (infra/config.ts). */
  readonly thresholds: AlarmThresholds;
  /** Email subscribed to the alarm topic (default none). */
  readonly alarmEmail?: string;
  /** KMS key encrypting the alarm topic (its policy must let cloudwatch.amazonaws.com use it). */
  readonly kmsKeyArn: pulumi.Input<string>;
  /** Tags on the topic and alarms (default none). */
  readonly tags?: Record<string, string>;
}

/** Alarm names are limited to 255 characters; ours are short but stay unique per stack via the prefix. */
function alarmName(prefix: string, suffix: string): string {
  return `${prefix}-${suffix}`.slice(0, 255);
}

export class Monitoring extends pulumi.ComponentResource {
  public readonly dashboardUrl: pulumi.Output<string>;
  public readonly dashboardName: pulumi.Output<string>;
  public readonly alarmTopicArn: pulumi.Output<string>;
  /** Every alarm, by a stable key (`lambda-error-rate-chat`, `client-errors`, ...). */
  public readonly alarms: Readonly<Record<string, aws.cloudwatch.MetricAlarm>>;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("websocket-chat:infra:Monitoring", name, {}, opts);
    const t = args.thresholds;
    const period = t.periodSeconds;
    const stage = args.stage;
    const apiDims = { ApiId: args.apiId, Stage: stage };

    const topic = new aws.sns.Topic(
      `${name}-alarms`,
      { name: `${args.namePrefix}-alarms`, kmsMasterKeyId: args.kmsKeyArn, tags: args.tags },
      { parent: this },
    );
    if (args.alarmEmail) {
      // Email subscriptions stay pending until the recipient confirms the message SNS sends.
      new aws.sns.TopicSubscription(
        `${name}-alarm-email`,
        { topic: topic.arn, protocol: "email", endpoint: args.alarmEmail },
        { parent: this },
      );
    }

    const alarms: Record<string, aws.cloudwatch.MetricAlarm> = {};
    const common: Pick<
      aws.cloudwatch.MetricAlarmArgs,
      "comparisonOperator" | "evaluationPeriods" | "datapointsToAlarm" | "treatMissingData" | "alarmActions" | "okActions" | "tags"
    > = {
      comparisonOperator: "GreaterThanOrEqualToThreshold",
      evaluationPeriods: t.evaluationPeriods,
      datapointsToAlarm: t.evaluationPeriods,
      // No traffic is not an incident: a quiet chat must not page anyone.
      treatMissingData: "notBreaching",
      alarmActions: [topic.arn],
      okActions: [topic.arn],
      tags: args.tags,
    };

    for (const fn of args.functions) {
      const key = `lambda-error-rate-${fn.name}`;
      alarms[key] = new aws.cloudwatch.MetricAlarm(
        `${name}-${key}`,
        {
          ...common,
          name: alarmName(args.namePrefix, key),
          alarmDescription: `Function ${fn.name}: errors are at least ${t.lambdaErrorRatePercent}% of invocations`,
          threshold: t.lambdaErrorRatePercent,
          metricQueries: [
            {
              id: "errors",
              metric: { namespace: "AWS/Lambda", metricName: "Errors", dimensions: { FunctionName: fn.lambda.name }, period, stat: "Sum" },
            },
            {
              id: "invocations",
              metric: {
                namespace: "AWS/Lambda",
                metricName: "Invocations",
                dimensions: { FunctionName: fn.lambda.name },
                period,
                stat: "Sum",
              },
            },
            {
              id: "errorRate",
              expression: "IF(invocations > 0, 100 * errors / invocations, 0)",
              label: "Error rate (%)",
              returnData: true,
            },
          ],
        },
        { parent: this },
      );
    }

    for (const table of args.tables) {
      const key = `dynamodb-throttles-${table.name}`;
      alarms[key] = new aws.cloudwatch.MetricAlarm(
        `${name}-${key}`,
        {
          ...common,
          name: alarmName(args.namePrefix, key),
          alarmDescription: `Table ${table.name}: read + write throttle events reached ${t.dynamoThrottleEvents} in ${period}s`,
          threshold: t.dynamoThrottleEvents,
          metricQueries: [
            {
              id: "reads",
              metric: {
                namespace: "AWS/DynamoDB",
                metricName: "ReadThrottleEvents",
                dimensions: { TableName: table.table.name },
                period,
                stat: "Sum",
              },
            },
            {
              id: "writes",
              metric: {
                namespace: "AWS/DynamoDB",
                metricName: "WriteThrottleEvents",
                dimensions: { TableName: table.table.name },
                period,
                stat: "Sum",
              },
            },
            { id: "throttles", expression: "FILL(reads, 0) + FILL(writes, 0)", label: "Throttle events", returnData: true },
          ],
        },
        { parent: this },
      );
    }

    alarms["client-errors"] = new aws.cloudwatch.MetricAlarm(
      `${name}-client-errors`,
      {
        ...common,
        name: alarmName(args.namePrefix, "client-errors"),
        alarmDescription: `API 4XX (ClientError: rejected by API Gateway before the integration) reached ${t.clientErrors} in ${period}s`,
        namespace: "AWS/ApiGateway",
        metricName: "ClientError",
        dimensions: apiDims,
        statistic: "Sum",
        period,
        threshold: t.clientErrors,
      },
      { parent: this },
    );

    alarms["server-errors"] = new aws.cloudwatch.MetricAlarm(
      `${name}-server-errors`,
      {
        ...common,
        name: alarmName(args.namePrefix, "server-errors"),
        alarmDescription: `API 5XX (ExecutionError + IntegrationError) reached ${t.serverErrors} in ${period}s`,
        threshold: t.serverErrors,
        metricQueries: [
          {
            id: "execution",
            metric: { namespace: "AWS/ApiGateway", metricName: "ExecutionError", dimensions: apiDims, period, stat: "Sum" },
          },
          {
            id: "integration",
            metric: { namespace: "AWS/ApiGateway", metricName: "IntegrationError", dimensions: apiDims, period, stat: "Sum" },
          },
          { id: "serverErrors", expression: "FILL(execution, 0) + FILL(integration, 0)", label: "5XX errors", returnData: true },
        ],
      },
      { parent: this },
    );

    alarms["rejected-connects"] = new aws.cloudwatch.MetricAlarm(
      `${name}-rejected-connects`,
      {
        ...common,
        name: alarmName(args.namePrefix, "rejected-connects"),
        // Counts what the authorizer denies. A handshake without a token never reaches it: API Gateway
        // answers 401 itself (identity source missing), which shows in ClientError, not here.
        alarmDescription: `The authorizer denied ${t.rejectedConnects} handshakes in ${period}s (bad signature, expired or wrong-audience tokens, origin not allowed)`,
        namespace: args.metricsNamespace,
        metricName: METRICS.rejectedConnects,
        dimensions: { Stage: stage },
        statistic: "Sum",
        period,
        threshold: t.rejectedConnects,
      },
      { parent: this },
    );

    alarms["failed-deliveries"] = new aws.cloudwatch.MetricAlarm(
      `${name}-failed-deliveries`,
      {
        ...common,
        name: alarmName(args.namePrefix, "failed-deliveries"),
        alarmDescription: `${t.failedDeliveries} @connections deliveries failed (not Gone) in ${period}s`,
        namespace: args.metricsNamespace,
        metricName: METRICS.failedDeliveries,
        dimensions: { Stage: stage },
        statistic: "Sum",
        period,
        threshold: t.failedDeliveries,
      },
      { parent: this },
    );

    // SQS publishes its metrics every minute at no charge (AWS/SQS, QueueName); an alarm costs its one metric.
    alarms["delivery-queue-age"] = new aws.cloudwatch.MetricAlarm(
      `${name}-delivery-queue-age`,
      {
        ...common,
        name: alarmName(args.namePrefix, "delivery-queue-age"),
        alarmDescription: `The delivery queue's oldest job waited ${t.deliveryAgeSeconds}s: large rooms' messages arrive late (workers too few or too slow, or failing)`,
        namespace: "AWS/SQS",
        metricName: "ApproximateAgeOfOldestMessage",
        dimensions: { QueueName: args.deliveryQueue.queueName },
        statistic: "Maximum",
        period,
        threshold: t.deliveryAgeSeconds,
      },
      { parent: this },
    );

    // Any job in the dead-letter queue is a broadcast some members of a large room never got.
    alarms["delivery-dlq-depth"] = new aws.cloudwatch.MetricAlarm(
      `${name}-delivery-dlq-depth`,
      {
        ...common,
        comparisonOperator: "GreaterThanThreshold",
        name: alarmName(args.namePrefix, "delivery-dlq-depth"),
        alarmDescription:
          "Jobs are in the delivery dead-letter queue (failed 5 receives): read them and redrive (docs/deploy.md, The delivery queue)",
        namespace: "AWS/SQS",
        metricName: "ApproximateNumberOfMessagesVisible",
        dimensions: { QueueName: args.deliveryQueue.dlqName },
        statistic: "Maximum",
        period,
        threshold: 0,
      },
      { parent: this },
    );

    const dashboard = new cloudwatch.Dashboard(
      `${name}-dashboard`,
      {
        // Dashboard names are account-wide (not per region): the region keeps two regions' stacks apart.
        name: pulumi.interpolate`${args.namePrefix}-${args.region}`,
        region: args.region as pulumi.Input<aws.Region>,
        start: "-PT3H",
        periodOverride: "inherit",
        widgets: dashboardRows(args, Object.values(alarms)),
      },
      { parent: this },
    );

    this.alarms = alarms;
    this.alarmTopicArn = topic.arn;
    this.dashboardName = dashboard.dashboardName;
    this.dashboardUrl = dashboard.url;
    this.registerOutputs({ dashboardUrl: this.dashboardUrl, alarmTopicArn: this.alarmTopicArn });
  }
}

const GRAPH = { width: 6, height: 6 } as const;

/**
 * A Logs Insights widget shown as a table. awsx's LogWidget always asks for the `timeSeries` view,
 * which shows a query without `stats` as an empty chart (AWS-FACTS: a Logs Insights widget without
 * `stats` shows rows only in the `table` view).
 */
export class LogTableWidget extends cloudwatch.LogWidget {
  protected computeProperties(region: pulumi.Output<aws.Region>): ReturnType<cloudwatch.LogWidget["computeProperties"]> {
    return { ...super.computeProperties(region), view: "table" } as unknown as ReturnType<cloudwatch.LogWidget["computeProperties"]>;
  }
}

function header(markdown: string): cloudwatch.TextWidget {
  return new cloudwatch.TextWidget({ markdown, width: 24, height: 1 });
}

/** A SEARCH over the chat metric per function (detailed monitoring only): robust to functions added later. */
function chatSearch(namespace: string, metric: string, stage: string, period: number): cloudwatch.ExpressionWidgetMetric {
  return new cloudwatch.ExpressionWidgetMetric(
    `SEARCH('{${namespace},Stage,Function} MetricName="${metric}" Stage="${stage}"', 'Sum', ${period})`,
    "",
  );
}

/** The delivery queue's row: how long jobs wait, how many, the dead-letter queue, and the worker. */
export function deliveryQueueRow(args: MonitoringArgs): cloudwatch.RowWidget {
  const q = args.deliveryQueue;
  const sqs = (queueName: pulumi.Input<string>, metricName: string, statistic: "Maximum" | "Sum", label: string) =>
    new cloudwatch.Metric({ namespace: "AWS/SQS", name: metricName, dimensions: { QueueName: queueName }, statistic, period: 60, label });
  const worker = args.functions.find((f) => f.name === q.workerName);
  const widgets: cloudwatch.Widget[] = [
    header("## Delivery queue (large rooms)"),
    new cloudwatch.LineGraphMetricWidget({
      ...GRAPH,
      title: "Age of the oldest job (s)",
      period: 60,
      metrics: [sqs(q.queueName, "ApproximateAgeOfOldestMessage", "Maximum", "oldest job")],
    }),
    new cloudwatch.LineGraphMetricWidget({
      ...GRAPH,
      title: "Jobs waiting and in flight",
      period: 60,
      metrics: [
        sqs(q.queueName, "ApproximateNumberOfMessagesVisible", "Maximum", "waiting"),
        sqs(q.queueName, "ApproximateNumberOfMessagesNotVisible", "Maximum", "in flight"),
        sqs(q.queueName, "NumberOfMessagesSent", "Sum", "sent per minute"),
      ],
    }),
    new cloudwatch.LineGraphMetricWidget({
      ...GRAPH,
      title: "Dead-letter queue (jobs)",
      period: 60,
      metrics: [sqs(q.dlqName, "ApproximateNumberOfMessagesVisible", "Maximum", "dead letters")],
    }),
  ];
  if (worker) {
    widgets.push(
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Worker duration (ms)",
        period: 60,
        metrics: [
          lambdaMetrics.duration({ function: worker.lambda, extendedStatistic: 50, period: 60, label: "p50" }),
          lambdaMetrics.duration({ function: worker.lambda, statistic: "Maximum", period: 60, label: "max" }),
        ],
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Workers: concurrency, throttles, errors",
        period: 60,
        metrics: [
          lambdaMetrics.concurrentExecutions({ function: worker.lambda, statistic: "Maximum", period: 60, label: "concurrent (max)" }),
          lambdaMetrics.throttles({ function: worker.lambda, statistic: "Sum", period: 60, label: "throttles" }),
          lambdaMetrics.errors({ function: worker.lambda, statistic: "Sum", period: 60, label: "errors" }),
        ],
      }),
    );
  }
  return new cloudwatch.RowWidget(...widgets);
}

/** The dashboard's rows, one per section of issue 5 (connections, messages, Lambda, DynamoDB, chat). */
export function dashboardRows(args: MonitoringArgs, alarms: readonly aws.cloudwatch.MetricAlarm[]): cloudwatch.RowWidget[] {
  const api = (metricName: string, extra: Record<string, pulumi.Input<string>> = {}) =>
    new cloudwatch.Metric({
      namespace: "AWS/ApiGateway",
      name: metricName,
      dimensions: { ApiId: args.apiId, Stage: args.stage, ...extra },
      statistic: "Sum",
      period: 60,
    });
  const chat = (metricName: string) =>
    new cloudwatch.Metric({
      namespace: args.metricsNamespace,
      name: metricName,
      dimensions: { Stage: args.stage },
      statistic: "Sum",
      period: 60,
      label: `${metricName} (all functions)`,
    });
  const disconnect = args.functions.find((f) => f.name === "disconnect");
  const perFunction = (make: (fn: MonitoredFunction) => cloudwatch.Metric) => args.functions.map(make);

  const rows: cloudwatch.RowWidget[] = [];

  const connects = api("ConnectCount").withId("connects").withLabel("Connects");
  const disconnects = disconnect
    ? lambdaMetrics
        .invocations({ function: disconnect.lambda, statistic: "Sum", period: 60 })
        .withId("disconnects")
        .withLabel("Disconnects ($disconnect invocations)")
    : undefined;
  rows.push(
    new cloudwatch.RowWidget(
      header("## Connections"),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Connects and disconnects per minute",
        period: 60,
        metrics: disconnects ? [connects, disconnects] : [connects],
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Rejected connects (authorizer)",
        period: 60,
        metrics: [chat(METRICS.rejectedConnects)],
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        // API Gateway publishes no gauge of open WebSocket connections: the running difference of
        // connects and disconnects is the closest signal ($disconnect is best effort).
        title: "Active connections trend (connects − disconnects per minute)",
        period: 60,
        metrics: disconnects
          ? [
              connects.withVisible(false),
              disconnects.withVisible(false),
              new cloudwatch.ExpressionWidgetMetric("FILL(connects, 0) - FILL(disconnects, 0)", "Net new connections", "net"),
            ]
          : [connects],
      }),
      new cloudwatch.SingleNumberMetricWidget({
        ...GRAPH,
        title: "Connects (last period)",
        period: 300,
        metrics: [api("ConnectCount").withPeriod(300)],
      }),
    ),
  );

  const messageWidgets: cloudwatch.Widget[] = [
    header("## Messages"),
    new cloudwatch.LineGraphMetricWidget({ ...GRAPH, title: "Messages (in and out)", period: 60, metrics: [api("MessageCount")] }),
    new cloudwatch.LineGraphMetricWidget({ ...GRAPH, title: "Client errors (4XX)", period: 60, metrics: [api("ClientError")] }),
    new cloudwatch.LineGraphMetricWidget({
      ...GRAPH,
      title: "Execution and integration errors (5XX)",
      period: 60,
      metrics: [api("ExecutionError"), api("IntegrationError")],
    }),
    new cloudwatch.LineGraphMetricWidget({
      ...GRAPH,
      title: "Integration latency p99 (ms)",
      period: 60,
      metrics: [api("IntegrationLatency").withStatistic(undefined).withExtendedStatistic(99)],
    }),
  ];
  if (args.detailedMonitoring) {
    // Route-level metrics exist only with detailedMetricsEnabled on the stage.
    messageWidgets.push(
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        width: 12,
        title: "Messages per route",
        period: 60,
        metrics: args.routeKeys.map((r) => api("MessageCount", { Route: r }).withLabel(r)),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        width: 12,
        title: "Integration errors per route",
        period: 60,
        metrics: args.routeKeys.map((r) => api("IntegrationError", { Route: r }).withLabel(r)),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        width: 12,
        title: "Client errors (4XX) per route",
        period: 60,
        metrics: args.routeKeys.map((r) => api("ClientError", { Route: r }).withLabel(r)),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        width: 12,
        title: "Execution errors per route",
        period: 60,
        metrics: args.routeKeys.map((r) => api("ExecutionError", { Route: r }).withLabel(r)),
      }),
    );
  }
  rows.push(new cloudwatch.RowWidget(...messageWidgets));

  rows.push(
    new cloudwatch.RowWidget(
      header("## Lambda (per function)"),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Duration p50 (ms)",
        period: 60,
        metrics: perFunction((f) => lambdaMetrics.duration({ function: f.lambda, extendedStatistic: 50, period: 60, label: f.name })),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Duration p99 (ms)",
        period: 60,
        metrics: perFunction((f) => lambdaMetrics.duration({ function: f.lambda, extendedStatistic: 99, period: 60, label: f.name })),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Errors",
        period: 60,
        metrics: perFunction((f) => lambdaMetrics.errors({ function: f.lambda, statistic: "Sum", period: 60, label: f.name })),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Throttles",
        period: 60,
        metrics: perFunction((f) => lambdaMetrics.throttles({ function: f.lambda, statistic: "Sum", period: 60, label: f.name })),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Concurrent executions (max)",
        period: 60,
        metrics: perFunction((f) =>
          lambdaMetrics.concurrentExecutions({ function: f.lambda, statistic: "Maximum", period: 60, label: f.name }),
        ),
      }),
    ),
  );

  rows.push(
    new cloudwatch.RowWidget(
      header("## DynamoDB (per table)"),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Consumed read units",
        period: 60,
        metrics: args.tables.map((tb) =>
          dynamoMetrics.consumedReadCapacityUnits({ table: tb.table, statistic: "Sum", period: 60, label: tb.name }),
        ),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Consumed write units",
        period: 60,
        metrics: args.tables.map((tb) =>
          dynamoMetrics.consumedWriteCapacityUnits({ table: tb.table, statistic: "Sum", period: 60, label: tb.name }),
        ),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "Throttled requests (read + write events)",
        period: 60,
        metrics: args.tables.flatMap((tb) => [
          dynamoMetrics.readThrottleEvents({ table: tb.table, statistic: "Sum", period: 60, label: `${tb.name} reads` }),
          dynamoMetrics.writeThrottleEvents({ table: tb.table, statistic: "Sum", period: 60, label: `${tb.name} writes` }),
        ]),
      }),
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        title: "System errors (5XX from DynamoDB)",
        period: 60,
        // SystemErrors is published per TableName and Operation: a SEARCH sums whatever operations occur.
        metrics: args.tables.map(
          (tb) =>
            new cloudwatch.ExpressionWidgetMetric(
              pulumi.interpolate`SEARCH('{AWS/DynamoDB,Operation,TableName} MetricName="SystemErrors" TableName="${tb.table.name}"', 'Sum', 60)`,
              `${tb.name}`,
            ),
        ),
      }),
    ),
  );

  rows.push(deliveryQueueRow(args));

  const chatMetrics = [
    METRICS.messagesSent,
    METRICS.deliveries,
    METRICS.failedDeliveries,
    METRICS.staleConnectionsCleaned,
    METRICS.rateLimited,
  ] as const;
  const functionSources = pulumi
    .all(args.functions.map((f) => f.logGroupName))
    .apply((names) => names.map((n) => `SOURCE '${n}'`).join(" | "));
  const chatWidgets: cloudwatch.Widget[] = chatMetrics.map(
    (m) =>
      new cloudwatch.LineGraphMetricWidget({
        ...GRAPH,
        width: m === METRICS.messagesSent ? 8 : 4,
        title: m,
        period: 60,
        // The [Stage] total always; one line per function only when the functions emit [Stage, Function].
        metrics: args.detailedMonitoring ? [chat(m), chatSearch(args.metricsNamespace, m, args.stage, 60)] : [chat(m)],
      }),
  );
  if (!args.detailedMonitoring) {
    // The same breakdown per function, read from the EMF lines' fields instead of per-function
    // metric series (a line carries only the metrics that were non-zero: sum() skips the others).
    chatWidgets.push(
      new LogTableWidget({
        width: 24,
        height: 4,
        title: "Chat metrics per function (EMF log lines, dashboard period)",
        query: pulumi.interpolate`${functionSources} | filter @message like /"_aws":/ | stats ${chatMetrics.map((m) => `sum(${m}) as ${m}`).join(", ")}, count(*) as Invocations by Function | sort Function asc`,
      }),
    );
  }
  rows.push(new cloudwatch.RowWidget(header("## Chat (handler metrics, EMF)"), ...chatWidgets));

  // Log Insights: which requests failed and why (the access log format has `status` and `error`).
  rows.push(
    new cloudwatch.RowWidget(
      header("## Alarms and logs"),
      new cloudwatch.AlarmWidget({
        width: 24,
        height: 4,
        title: "Alarms",
        alarms: alarms.map((a) => a.arn),
        sortBy: "stateUpdatedTimestamp",
      }),
      new LogTableWidget({
        width: 12,
        height: 6,
        title: "Failed API requests (access log)",
        query: pulumi.interpolate`SOURCE '${args.accessLogGroupName}' | fields @timestamp, routeKey, eventType, status, error, integrationError, authorizerError, connectionId | filter status >= 400 or ispresent(integrationError) | sort @timestamp desc | limit 50`,
      }),
      new LogTableWidget({
        width: 12,
        height: 6,
        title: "Function errors and warnings",
        query: pulumi.interpolate`${functionSources} | fields @timestamp, @log, level, msg, errorName, errorMessage, connectionId, routeKey | filter level = "error" or level = "warn" or @message like /Task timed out/ | sort @timestamp desc | limit 50`,
      }),
    ),
  );
  return rows;
}
