import { strict as assert } from "node:assert";
import { FUNCTIONS, ROUTE_FUNCTIONS } from "../../handlers/routes";
import { DEFAULT_METRICS_NAMESPACE, METRICS } from "../../handlers/metrics";
import { TABLE_NAMES } from "../../handlers/tables";
import { alarmMetricCount, alarmPlan } from "../../infra/alarmPlan";
import { validateConfig, type StackConfig } from "../../infra/config";
import { ACCOUNT, PROJECT, json, stackRun, type RecordedResource, type StackName, type StackRun } from "./support/stack";

const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";

function configOf(run: StackRun): StackConfig {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(run.config)) if (k.startsWith(`${PROJECT}:`)) raw[k.slice(PROJECT.length + 1)] = v;
  return validateConfig(raw, run.stack);
}

interface MetricQuery {
  id: string;
  expression?: string;
  returnData?: boolean;
  metric?: { namespace: string; metricName: string; dimensions: Record<string, string>; period: number; stat: string };
}

function alarm(run: StackRun, suffix: string): RecordedResource {
  const name = `${configOf(run).resourcePrefix}-${suffix}`;
  const found = run.ofType(ALARM).filter((a) => a.inputs.name === name);
  assert.equal(found.length, 1, `alarm ${name}`);
  return found[0];
}

function assertCommon(run: StackRun, a: RecordedResource, threshold: number): void {
  const c = configOf(run);
  assert.equal(a.inputs.threshold, threshold, String(a.inputs.name));
  assert.equal(a.inputs.comparisonOperator, "GreaterThanOrEqualToThreshold");
  assert.equal(a.inputs.evaluationPeriods, c.alarms.evaluationPeriods);
  assert.equal(a.inputs.treatMissingData, "notBreaching");
  assert.deepEqual(a.inputs.alarmActions, [run.outputs.alarmTopicArn]);
  assert.deepEqual(a.inputs.okActions, [run.outputs.alarmTopicArn]);
}

function query(a: RecordedResource, id: string): MetricQuery {
  const q = (a.inputs.metricQueries as MetricQuery[]).find((x) => x.id === id);
  assert.ok(q, `${String(a.inputs.name)} query ${id}`);
  return q;
}

for (const stack of ["dev", "prod"] as StackName[]) {
  describe(`infra: ${stack} monitoring under mocks`, function () {
    this.timeout(300_000);
    let run: StackRun;
    let c: StackConfig;
    before(async () => {
      run = await stackRun(stack);
      c = configOf(run);
    });

    it("alarms on each function's error rate (Errors / Invocations metric math) at the configured percentage", () => {
      for (const spec of FUNCTIONS) {
        const a = alarm(run, `lambda-error-rate-${spec.name}`);
        assertCommon(run, a, c.alarms.lambdaErrorRatePercent);
        const dims = { FunctionName: `${c.resourcePrefix}-${spec.name}` };
        assert.deepEqual(query(a, "errors").metric, {
          namespace: "AWS/Lambda",
          metricName: "Errors",
          dimensions: dims,
          period: c.alarms.periodSeconds,
          stat: "Sum",
        });
        assert.deepEqual(query(a, "invocations").metric, {
          namespace: "AWS/Lambda",
          metricName: "Invocations",
          dimensions: dims,
          period: c.alarms.periodSeconds,
          stat: "Sum",
        });
        assert.equal(query(a, "errorRate").expression, "IF(invocations > 0, 100 * errors / invocations, 0)");
        assert.equal(query(a, "errorRate").returnData, true);
      }
    });

    it("alarms on each table's read + write throttle events", () => {
      for (const table of TABLE_NAMES) {
        const a = alarm(run, `dynamodb-throttles-${table}`);
        assertCommon(run, a, c.alarms.dynamoThrottleEvents);
        const dims = { TableName: `${c.resourcePrefix}-${table}` };
        assert.deepEqual(query(a, "reads").metric, {
          namespace: "AWS/DynamoDB",
          metricName: "ReadThrottleEvents",
          dimensions: dims,
          period: c.alarms.periodSeconds,
          stat: "Sum",
        });
        assert.deepEqual(query(a, "writes").metric, {
          namespace: "AWS/DynamoDB",
          metricName: "WriteThrottleEvents",
          dimensions: dims,
          period: c.alarms.periodSeconds,
          stat: "Sum",
        });
        assert.equal(query(a, "throttles").expression, "FILL(reads, 0) + FILL(writes, 0)");
      }
    });

    it("alarms on API 4XX (ClientError) and 5XX (ExecutionError + IntegrationError) for this API and stage", () => {
      const dims = { ApiId: "a1b2c3d4e5", Stage: c.stageName };
      const client = alarm(run, "client-errors");
      assertCommon(run, client, c.alarms.clientErrors);
      assert.equal(client.inputs.namespace, "AWS/ApiGateway");
      assert.equal(client.inputs.metricName, "ClientError");
      assert.deepEqual(client.inputs.dimensions, dims);
      assert.equal(client.inputs.statistic, "Sum");
      assert.equal(client.inputs.period, c.alarms.periodSeconds);
      const server = alarm(run, "server-errors");
      assertCommon(run, server, c.alarms.serverErrors);
      assert.deepEqual(query(server, "execution").metric, {
        namespace: "AWS/ApiGateway",
        metricName: "ExecutionError",
        dimensions: dims,
        period: c.alarms.periodSeconds,
        stat: "Sum",
      });
      assert.deepEqual(query(server, "integration").metric, {
        namespace: "AWS/ApiGateway",
        metricName: "IntegrationError",
        dimensions: dims,
        period: c.alarms.periodSeconds,
        stat: "Sum",
      });
    });

    it("alarms on rejected connects and failed deliveries from the handlers' EMF metrics ([Stage] roll-up)", () => {
      for (const [suffix, metric, threshold] of [
        ["rejected-connects", METRICS.rejectedConnects, c.alarms.rejectedConnects],
        ["failed-deliveries", METRICS.failedDeliveries, c.alarms.failedDeliveries],
      ] as const) {
        const a = alarm(run, suffix);
        assertCommon(run, a, threshold);
        assert.equal(a.inputs.namespace, DEFAULT_METRICS_NAMESPACE);
        assert.equal(a.inputs.metricName, metric);
        assert.deepEqual(a.inputs.dimensions, { Stage: c.stageName });
        assert.equal(a.inputs.statistic, "Sum");
        assert.equal(a.inputs.period, c.alarms.periodSeconds);
      }
    });

    it("describes the rejected-connects alarm as what the authorizer denies (a handshake without a token never reaches it)", () => {
      const a = alarm(run, "rejected-connects");
      const description = String(a.inputs.alarmDescription);
      assert.match(description, /authorizer denied/);
      assert.doesNotMatch(description, /without (a )?token|missing token|no token/i);
    });

    it("alarms only on periods of whole minutes: every metric alarmed on has 1-minute resolution", () => {
      for (const a of run.ofType(ALARM)) {
        const periods = [
          a.inputs.period,
          ...((a.inputs.metricQueries as MetricQuery[] | undefined) ?? []).map((q) => q.metric?.period),
        ].filter((p) => p !== undefined);
        assert.ok(periods.length > 0, String(a.inputs.name));
        for (const p of periods) assert.ok(Number(p) >= 60 && Number(p) % 60 === 0, `${String(a.inputs.name)}: ${String(p)}`);
      }
    });

    it("sends alarms to an SNS topic encrypted with the stack's KMS key", () => {
      const [topic] = run.ofType("aws:sns/topic:Topic");
      const [key] = run.ofType("aws:kms/key:Key");
      assert.equal(topic.inputs.kmsMasterKeyId, key.state.arn);
      assert.equal(topic.inputs.name, `${c.resourcePrefix}-alarms`);
    });

    it("builds a dashboard whose body parses as JSON and references every function, table and the API", () => {
      const [dashboard] = run.ofType("aws:cloudwatch/dashboard:Dashboard");
      // Dashboard names are account-wide: the region keeps one stack deployed in two regions apart.
      assert.equal(dashboard.inputs.dashboardName, `${c.resourcePrefix}-${run.region}`);
      const body = json<{ widgets: { type: string; width: number; properties: Record<string, unknown> }[] }>(
        dashboard.inputs.dashboardBody,
      );
      const text = JSON.stringify(body);
      assert.ok(body.widgets.length > 0 && body.widgets.length <= 100, "CloudWatch allows up to 100 widgets");
      for (const spec of FUNCTIONS) assert.ok(text.includes(`"${c.resourcePrefix}-${spec.name}"`), `function ${spec.name}`);
      for (const table of TABLE_NAMES) assert.ok(text.includes(`${c.resourcePrefix}-${table}`), `table ${table}`);
      assert.ok(text.includes('"ApiId","a1b2c3d4e5"'), "API metrics");
      for (const section of ["## Connections", "## Messages", "## Lambda", "## DynamoDB", "## Chat"]) {
        assert.ok(
          body.widgets.some((w) => w.type === "text" && String(w.properties.markdown).startsWith(section)),
          section,
        );
      }
      for (const m of [
        METRICS.messagesSent,
        METRICS.deliveries,
        METRICS.failedDeliveries,
        METRICS.staleConnectionsCleaned,
        METRICS.rateLimited,
        METRICS.rejectedConnects,
      ]) {
        assert.ok(text.includes(`"${m}"`), m);
      }
      // Per-function chat metrics: metric SEARCHes over [Stage, Function] exactly when the functions emit
      // that dimension set (detailed monitoring); otherwise a Logs Insights sum of the EMF lines by Function.
      assert.equal(
        text.includes(`{${DEFAULT_METRICS_NAMESPACE},Stage,Function}`),
        c.enableDetailedMonitoring,
        "per-function chat metric series",
      );
      for (const w of body.widgets) {
        assert.ok(w.width >= 1 && w.width <= 24);
        if (w.type === "metric") {
          assert.equal(Number(w.properties.period) % 60, 0);
          assert.equal(w.properties.region, run.region);
        }
      }
      const alarmWidget = body.widgets.find((w) => w.type === "alarm");
      assert.ok(alarmWidget);
      assert.deepEqual(
        [...(alarmWidget.properties.alarms as string[])].sort(),
        run
          .ofType(ALARM)
          .map((a) => String(a.state.arn))
          .sort(),
      );
      const logWidgets = body.widgets.filter((w) => w.type === "log");
      assert.ok(logWidgets.some((w) => String(w.properties.query).includes(`SOURCE '/aws/apigateway/${c.resourcePrefix}-access'`)));
      // Queries without `stats` show rows only in the table view (a time series would stay empty).
      const rowQueries = logWidgets.filter((w) => !/\|\s*stats\b/.test(String(w.properties.query)));
      assert.equal(rowQueries.length, 2);
      // The per-function chat breakdown (detailed monitoring off): a `stats ... by Function` over the functions' logs, no time bins.
      const perFunction = logWidgets.filter((w) => /\|\s*stats\b/.test(String(w.properties.query)));
      assert.equal(perFunction.length, c.enableDetailedMonitoring ? 0 : 1);
      for (const w of perFunction) {
        const q = String(w.properties.query);
        for (const spec of FUNCTIONS) assert.ok(q.includes(`SOURCE '/aws/lambda/${c.resourcePrefix}-${spec.name}'`), spec.name);
        for (const m of [
          METRICS.messagesSent,
          METRICS.deliveries,
          METRICS.failedDeliveries,
          METRICS.staleConnectionsCleaned,
          METRICS.rateLimited,
        ])
          assert.ok(q.includes(`sum(${m})`), m);
        assert.match(q, /by Function\b/);
        assert.doesNotMatch(q, /bin\(/);
      }
      for (const w of logWidgets) assert.equal(w.properties.view, "table", String(w.properties.title));
    });

    it("creates exactly the alarms of infra/alarmPlan.ts, reading exactly its metrics (what npm run cost prices)", () => {
      const plan = alarmPlan(
        FUNCTIONS.map((f) => f.name),
        TABLE_NAMES,
      );
      const alarms = run.ofType(ALARM);
      assert.deepEqual(alarms.map((a) => String(a.inputs.name)).sort(), plan.map((p) => `${c.resourcePrefix}-${p.key}`).sort());
      let metrics = 0;
      for (const p of plan) {
        const a = alarm(run, p.key);
        const queries = (a.inputs.metricQueries as MetricQuery[] | undefined) ?? [];
        const read =
          a.inputs.metricName !== undefined
            ? [`${String(a.inputs.namespace)}/${String(a.inputs.metricName)}`]
            : queries.filter((q) => q.metric).map((q) => `${q.metric!.namespace}/${q.metric!.metricName}`);
        assert.deepEqual(read.sort(), [...p.metrics].sort(), p.key);
        metrics += read.length;
      }
      assert.equal(
        metrics,
        alarmMetricCount(
          FUNCTIONS.map((f) => f.name),
          TABLE_NAMES,
        ),
      );
      assert.equal(run.ofType("aws:cloudwatch/dashboard:Dashboard").length, 1);
    });

    it("tells the functions to emit the per-function dimension exactly when detailed monitoring is on", () => {
      const fns = run.ofType("aws:lambda/function:Function");
      assert.equal(fns.length, FUNCTIONS.length);
      for (const fn of fns) {
        const vars = (fn.inputs.environment as { variables: Record<string, string> }).variables;
        assert.equal(vars.METRICS_PER_FUNCTION, c.enableDetailedMonitoring ? "true" : undefined, String(fn.inputs.name));
      }
    });

    it("shows per-route widgets exactly when detailed monitoring is on", () => {
      const [dashboard] = run.ofType("aws:cloudwatch/dashboard:Dashboard");
      const text = String(dashboard.inputs.dashboardBody);
      const perRoute = ROUTE_FUNCTIONS.map((f) => `"Route","${f.routeKey}"`);
      for (const r of perRoute) assert.equal(text.includes(r), c.enableDetailedMonitoring, r);
      assert.equal(c.enableDetailedMonitoring, stack === "prod");
      // Messages, client errors, execution and integration errors, each per route.
      for (const metric of ["MessageCount", "ClientError", "ExecutionError", "IntegrationError"]) {
        for (const f of ROUTE_FUNCTIONS) {
          assert.equal(
            text.includes(`"${metric}","ApiId"`) &&
              new RegExp(`"${metric}"[^\\]]*"Route","${String(f.routeKey).replace("$", "\\$")}"`).test(text),
            c.enableDetailedMonitoring,
            `${metric} per route ${f.routeKey}`,
          );
        }
      }
    });

    it("encrypts every log group with the KMS key and gives it the configured retention", () => {
      const [key] = run.ofType("aws:kms/key:Key");
      const groups = run.ofType("aws:cloudwatch/logGroup:LogGroup");
      assert.equal(groups.length, FUNCTIONS.length + 1);
      for (const g of groups) {
        assert.equal(g.inputs.kmsKeyId, key.state.arn, String(g.inputs.name));
        assert.equal(g.inputs.retentionInDays, c.logRetentionDays, String(g.inputs.name));
        assert.match(String(g.inputs.name), new RegExp(`^/aws/(lambda|apigateway)/${c.resourcePrefix}-`));
      }
    });

    it("has a key policy letting CloudWatch Logs (for these log groups only) and CloudWatch alarms use the key", () => {
      const [key] = run.ofType("aws:kms/key:Key");
      assert.equal(key.inputs.enableKeyRotation, true);
      const policy = json<{
        Statement: {
          Sid: string;
          Principal: Record<string, string>;
          Action: string | string[];
          Condition?: Record<string, Record<string, unknown>>;
        }[];
      }>(key.inputs.policy);
      const logs = policy.Statement.find((s) => s.Sid === "AllowCloudWatchLogs");
      assert.ok(logs);
      assert.deepEqual(logs.Principal, { Service: `logs.${run.region}.amazonaws.com` });
      assert.deepEqual(logs.Condition, {
        ArnLike: {
          "kms:EncryptionContext:aws:logs:arn": [
            `arn:aws:logs:${run.region}:${ACCOUNT}:log-group:/aws/lambda/${c.resourcePrefix}-*`,
            `arn:aws:logs:${run.region}:${ACCOUNT}:log-group:/aws/apigateway/${c.resourcePrefix}-*`,
          ],
        },
      });
      const alarms = policy.Statement.find((s) => s.Sid === "AllowCloudWatchAlarmsToPublish");
      assert.ok(alarms);
      assert.deepEqual(alarms.Principal, { Service: "cloudwatch.amazonaws.com" });
      assert.deepEqual(policy.Statement.find((s) => s.Sid === "EnableAccountIamPolicies")?.Principal, {
        AWS: `arn:aws:iam::${ACCOUNT}:root`,
      });
    });

    it("traces exactly when enableXrayTracing is on: Active mode, X-Ray IAM on every role, nothing otherwise", () => {
      for (const fn of run.ofType("aws:lambda/function:Function")) {
        assert.deepEqual(fn.inputs.tracingConfig, { mode: c.enableXrayTracing ? "Active" : "PassThrough" });
        assert.equal(
          (fn.inputs.environment as { variables: Record<string, string> }).variables.TRACING_ENABLED,
          String(c.enableXrayTracing),
        );
      }
      const functionPolicies = run.ofType("aws:iam/rolePolicy:RolePolicy").filter((p) => String(p.inputs.policy).includes("WriteOwnLogs"));
      assert.equal(functionPolicies.length, FUNCTIONS.length);
      for (const p of functionPolicies)
        assert.equal(String(p.inputs.policy).includes("xray:PutTraceSegments"), c.enableXrayTracing, p.name);
      for (const p of run.ofType("aws:iam/rolePolicy:RolePolicy"))
        if (!functionPolicies.includes(p)) assert.doesNotMatch(String(p.inputs.policy), /xray/);
      assert.equal(c.enableXrayTracing, stack === "prod");
    });
  });
}
