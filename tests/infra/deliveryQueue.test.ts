/**
 * The large rooms' delivery queue (issue 17) under Pulumi mocks, for dev and prod: the FIFO queue and
 * its FIFO dead-letter queue, the `deliver` worker's event source mapping and role, the producers'
 * SendMessage and DELIVERY_QUEUE_URL, the push policy's, the outputs, the alarms and the dashboard
 * row; and the config validation of the delivery settings.
 */
import { strict as assert } from "node:assert";
import { DELIVERY_MAX_RECEIVE_COUNT, DELIVERY_QUEUE_URL_ENV, deliveryVisibilityTimeoutSeconds } from "../../handlers/lib/deliveries";
import { FUNCTIONS, type FunctionSpec } from "../../handlers/routes";
import { TABLE_NAMES, type TableName } from "../../handlers/tables";
import { ACCOUNT_POSTS_PER_SECOND, deliveryWorkerTimeoutSeconds, validateConfig, type StackConfig } from "../../infra/config";
import { DLQ_RETENTION_SECONDS, MAX_QUEUE_NAME, QUEUE_RETENTION_SECONDS, deliveryQueueNames } from "../../infra/deliveryQueue";
import { CONSUME_ACTIONS, ENQUEUE_ACTIONS, functionPolicy } from "../../infra/policies";
import { isAuthorizer, isConnectPath, isMessageHandler } from "../../infra/websocketApi";
import { pushPolicyDocument } from "../../infra/pushPolicy";
import { rejects } from "./support/config";
import { ACCOUNT, PROJECT, json, stackRun, type RecordedResource, type StackName, type StackRun } from "./support/stack";

const QUEUE = "aws:sqs/queue:Queue";
const ESM = "aws:lambda/eventSourceMapping:EventSourceMapping";
const ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm";

const WORKERS = FUNCTIONS.filter((f) => f.trigger === "deliveryQueue");
const PRODUCERS = FUNCTIONS.filter((f) => f.enqueuesDeliveries);

function configOf(run: StackRun): StackConfig {
  const raw: Record<string, string> = {};
  for (const [k, v] of Object.entries(run.config)) if (k.startsWith(`${PROJECT}:`)) raw[k.slice(PROJECT.length + 1)] = v;
  return validateConfig(raw, run.stack);
}

const REGION = "eu-west-1";
const ACCT = "123456789012";
const EXEC = `arn:aws:execute-api:${REGION}:${ACCT}:a1b2c3d4e5`;
const TABLE_ARNS = Object.fromEntries(TABLE_NAMES.map((t) => [t, `arn:aws:dynamodb:${REGION}:${ACCT}:table/chat-dev-${t}`])) as Record<
  TableName,
  string
>;
const QUEUE_ARN = `arn:aws:sqs:${REGION}:${ACCT}:chat-dev-deliveries.fifo`;

/** A function's policy; `null`: rendered without the queue's ARN. */
function policyOf(spec: FunctionSpec, deliveryQueueArn: string | null = QUEUE_ARN) {
  return functionPolicy(spec, {
    tableArns: TABLE_ARNS,
    executionArn: EXEC,
    stage: "dev",
    logGroupArn: `arn:aws:logs:${REGION}:${ACCT}:log-group:/aws/lambda/chat-dev-${spec.name}`,
    tracing: false,
    ...(deliveryQueueArn ? { deliveryQueueArn } : {}),
  });
}

describe("infra: delivery queue, pure parts", () => {
  it("names the queues per stack prefix, FIFO (.fifo) and within SQS's 80 characters for the longest prefix", () => {
    assert.deepEqual(deliveryQueueNames("chat-dev"), { queue: "chat-dev-deliveries.fifo", dlq: "chat-dev-deliveries-dlq.fifo" });
    const longest = deliveryQueueNames(`a${"b".repeat(36)}`);
    for (const n of Object.values(longest)) {
      assert.ok(n.endsWith(".fifo"), n);
      assert.ok(n.length <= MAX_QUEUE_NAME, n);
    }
    assert.throws(() => deliveryQueueNames("x".repeat(70)), /longer than SQS's 80 characters/);
  });

  it("sets the visibility timeout to six times the worker's timeout, within SQS's 12 hours", () => {
    assert.equal(deliveryVisibilityTimeoutSeconds(10), 60);
    assert.equal(deliveryVisibilityTimeoutSeconds(900), 5400);
    assert.equal(deliveryVisibilityTimeoutSeconds(100_000), 43_200);
  });

  it("gives the worker the time a shard takes at its share of the post budget, never less than lambdaTimeoutSeconds", () => {
    const base = { roomShardSize: 1000, deliveryWorkerConcurrency: 5, deliveryPostsPerSecond: 5000, lambdaTimeoutSeconds: 10 };
    // 2 x 1000 members at 1000 posts/s per worker = 2 s; x3 = 6 s < 10 s.
    assert.equal(deliveryWorkerTimeoutSeconds(base), 10);
    // 2 x 10,000 at 1000/s = 20 s; x3 = 60 s.
    assert.equal(deliveryWorkerTimeoutSeconds({ ...base, roomShardSize: 10_000 }), 60);
    // 2 x 10,000 at 10/s = 2000 s; x3 exceeds Lambda's 900 s.
    assert.equal(deliveryWorkerTimeoutSeconds({ ...base, roomShardSize: 10_000, deliveryWorkerConcurrency: 500 }), undefined);
  });

  it("a function without a route is the authorizer only when no queue triggers it: the worker is neither on the $connect path nor a message route", () => {
    assert.deepEqual(
      FUNCTIONS.filter(isAuthorizer).map((f) => f.name),
      ["authorizer"],
    );
    for (const w of WORKERS) {
      assert.equal(isConnectPath(w), false, "no provisioned concurrency for the worker");
      assert.equal(isMessageHandler(w), false, "reservedConcurrency is the routes'");
    }
  });

  it("grants a producer sqs:SendMessage on the delivery queue only, and the worker exactly what its event source mapping needs", () => {
    assert.ok(PRODUCERS.length > 0 && WORKERS.length === 1, "the route table has producers and one worker");
    assert.deepEqual(ENQUEUE_ACTIONS, ["sqs:SendMessage"]);
    assert.deepEqual(CONSUME_ACTIONS, ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]);
    for (const spec of FUNCTIONS) {
      const sqs = policyOf(spec).Statement.filter((s) => s.Action.some((a) => a.startsWith("sqs:")));
      const expected: object[] = [
        ...(spec.enqueuesDeliveries
          ? [{ Sid: "EnqueueDeliveries", Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [QUEUE_ARN] }]
          : []),
        ...(spec.trigger === "deliveryQueue"
          ? [{ Sid: "ConsumeDeliveries", Effect: "Allow", Action: [...CONSUME_ACTIONS], Resource: [QUEUE_ARN] }]
          : []),
      ];
      assert.deepEqual(sqs, expected, spec.name);
    }
  });

  it("refuses to render a producer's or the worker's policy without the queue's ARN", () => {
    for (const spec of [...PRODUCERS, ...WORKERS])
      assert.throws(() => policyOf(spec, null), new RegExp(`function ${spec.name} uses the delivery queue`));
  });

  it("the worker's role holds exactly: its log group, the tables of its spec, POST and DELETE @connections, the consumer's SQS actions", () => {
    const [worker] = WORKERS;
    assert.deepEqual(worker.manageConnections, ["POST", "DELETE"]);
    assert.equal(worker.routeKey, undefined);
    assert.equal(worker.enqueuesDeliveries, false, "the worker posts; it never enqueues");
    const doc = policyOf(worker);
    assert.deepEqual(
      doc.Statement.map((s) => s.Sid),
      [
        "WriteOwnLogs",
        ...worker.tables.map((t) => `Table${t.table[0].toUpperCase()}${t.table.slice(1)}`),
        "ManageConnections",
        "ConsumeDeliveries",
      ].filter((sid, i, all) => all.indexOf(sid) === i),
    );
    assert.deepEqual(doc.Statement.find((s) => s.Sid === "ManageConnections")?.Resource, [
      `${EXEC}/dev/DELETE/@connections/*`,
      `${EXEC}/dev/POST/@connections/*`,
    ]);
    for (const s of doc.Statement.filter((x) => x.Sid.startsWith("Table"))) {
      const access = worker.tables.find((t) => TABLE_ARNS[t.table] === s.Resource[0]);
      assert.ok(access, s.Sid);
      assert.deepEqual(s.Action, [...new Set(access.actions)].sort(), s.Sid);
    }
    assert.equal(JSON.stringify(doc).includes("sqs:SendMessage"), false);
    assert.equal(JSON.stringify(doc).includes("secretsmanager"), false);
  });

  it("adds sqs:SendMessage on the queue to the push policy when the stack passes the queue", () => {
    const without = pushPolicyDocument({ tableArns: TABLE_ARNS, executionArn: EXEC, stage: "dev" });
    const withQueue = pushPolicyDocument({ tableArns: TABLE_ARNS, executionArn: EXEC, stage: "dev", deliveryQueueArn: QUEUE_ARN });
    assert.deepEqual(withQueue.Statement.slice(0, without.Statement.length), without.Statement);
    assert.deepEqual(withQueue.Statement.slice(without.Statement.length), [
      { Sid: "PushEnqueueDeliveries", Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [QUEUE_ARN] },
    ]);
  });
});

describe("infra: delivery settings' validation", () => {
  it("accepts the defaults: 5 workers, 5,000 posts a second, worker timeout 10 s", () => {
    const c = validateConfig({});
    assert.equal(c.deliveryWorkerConcurrency, 8);
    assert.equal(c.deliveryPostsPerSecond, 5000);
    assert.equal(c.deliveryWorkerTimeoutSeconds, 10);
    assert.equal(c.alarms.deliveryAgeSeconds, 300);
  });

  it("refuses a post budget above the account's API Gateway 10,000 requests a second", () => {
    assert.equal(ACCOUNT_POSTS_PER_SECOND, 10_000);
    assert.equal(validateConfig({ deliveryPostsPerSecond: "10000" }).deliveryPostsPerSecond, 10_000);
    rejects({ deliveryPostsPerSecond: "10001" }, "deliveryPostsPerSecond", /from 10 to 10000/);
  });

  it("refuses a post budget below one post a second per worker", () => {
    rejects(
      { deliveryWorkerConcurrency: "20", deliveryPostsPerSecond: "10" },
      "deliveryPostsPerSecond",
      /"10" is not allowed; allowed values: at least deliveryWorkerConcurrency \(20\)/,
    );
  });

  it("keeps the event source mapping's maximumConcurrency within Lambda's 2-1000", () => {
    rejects({ deliveryWorkerConcurrency: "1" }, "deliveryWorkerConcurrency", /an integer from 2 to 1000/);
    rejects({ deliveryWorkerConcurrency: "1001" }, "deliveryWorkerConcurrency", /an integer from 2 to 1000/);
    assert.equal(validateConfig({ deliveryWorkerConcurrency: "1000", deliveryPostsPerSecond: "10000" }).deliveryWorkerConcurrency, 1000);
  });

  it("refuses shards a worker cannot post within Lambda's 900 s", () => {
    rejects(
      { roomShardSize: "10000", deliveryWorkerConcurrency: "500", deliveryPostsPerSecond: "1000" },
      "roomShardSize",
      /"10000" is not allowed with deliveryWorkerConcurrency 500 and deliveryPostsPerSecond 1000/,
    );
  });

  it("takes alarmDeliveryAgeSeconds from 60 to 86400", () => {
    rejects({ alarmDeliveryAgeSeconds: "59" }, "alarmDeliveryAgeSeconds", /an integer from 60 to 86400/);
    rejects({ alarmDeliveryAgeSeconds: "86401" }, "alarmDeliveryAgeSeconds", /an integer from 60 to 86400/);
    assert.equal(validateConfig({ alarmDeliveryAgeSeconds: "60" }).alarms.deliveryAgeSeconds, 60);
  });
});

for (const stack of ["dev", "prod"] as StackName[]) {
  describe(`infra: ${stack} delivery queue under mocks`, function () {
    this.timeout(300_000);
    let run: StackRun;
    let c: StackConfig;
    const queueArn = () => `arn:aws:sqs:${run.region}:${ACCOUNT}:${c.resourcePrefix}-deliveries.fifo`;
    const fn = (name: string): RecordedResource => {
      const found = run.ofType("aws:lambda/function:Function").filter((f) => f.inputs.name === `${c.resourcePrefix}-${name}`);
      assert.equal(found.length, 1, name);
      return found[0];
    };
    const rolePolicyOf = (name: string) => {
      const role = run.ofType("aws:iam/role:Role").find((r) => r.state.arn === fn(name).inputs.role)!;
      const [policy] = run.ofType("aws:iam/rolePolicy:RolePolicy").filter((p) => p.inputs.role === role.id);
      return json<{ Statement: { Sid: string; Action: string[]; Resource: string[] }[] }>(policy.inputs.policy);
    };
    before(async () => {
      run = await stackRun(stack);
      c = configOf(run);
    });

    it("creates a FIFO queue and a FIFO dead-letter queue: SSE-SQS, 5 receives, visibility 6 x the worker's timeout, retention", () => {
      const queues = run.ofType(QUEUE);
      assert.equal(queues.length, 2);
      const queue = queues.find((q) => q.inputs.name === `${c.resourcePrefix}-deliveries.fifo`);
      const dlq = queues.find((q) => q.inputs.name === `${c.resourcePrefix}-deliveries-dlq.fifo`);
      assert.ok(queue && dlq);
      assert.deepEqual(
        { ...queue.inputs, redrivePolicy: json(queue.inputs.redrivePolicy) },
        {
          name: `${c.resourcePrefix}-deliveries.fifo`,
          fifoQueue: true,
          contentBasedDeduplication: false,
          deduplicationScope: "messageGroup",
          fifoThroughputLimit: "perMessageGroupId",
          visibilityTimeoutSeconds: 6 * c.deliveryWorkerTimeoutSeconds,
          messageRetentionSeconds: QUEUE_RETENTION_SECONDS,
          receiveWaitTimeSeconds: 0,
          sqsManagedSseEnabled: true,
          redrivePolicy: { deadLetterTargetArn: dlq.state.arn, maxReceiveCount: DELIVERY_MAX_RECEIVE_COUNT },
          tags: queue.inputs.tags,
        },
      );
      assert.equal(DELIVERY_MAX_RECEIVE_COUNT, 5);
      assert.deepEqual(dlq.inputs, {
        name: `${c.resourcePrefix}-deliveries-dlq.fifo`,
        fifoQueue: true,
        messageRetentionSeconds: DLQ_RETENTION_SECONDS,
        sqsManagedSseEnabled: true,
        tags: dlq.inputs.tags,
      });
      assert.equal((queue.inputs.tags as Record<string, string>).Stack, stack);
      assert.equal(queue.inputs.kmsMasterKeyId, undefined, "SSE-SQS: no KMS key, so no KMS grant anywhere");
    });

    it("triggers the worker from the queue: batch size 1, ReportBatchItemFailures, maximumConcurrency = deliveryWorkerConcurrency", () => {
      const mappings = run.ofType(ESM);
      assert.equal(mappings.length, WORKERS.length);
      const [worker] = WORKERS;
      const [m] = mappings;
      assert.deepEqual(m.inputs, {
        eventSourceArn: queueArn(),
        functionName: fn(worker.name).state.arn,
        enabled: true,
        batchSize: 1,
        functionResponseTypes: ["ReportBatchItemFailures"],
        scalingConfig: { maximumConcurrency: c.deliveryWorkerConcurrency },
        tags: m.inputs.tags,
      });
      // The mapping waits for the function, which waits for its role policy (Lambda checks the SQS permissions).
      const fnUrn = run.resources.find((r) => r === fn(worker.name))!.options.urn;
      assert.ok((m.options.propertyDependencies.functionName ?? []).includes(fnUrn));
    });

    it("gives the worker its own role (exactly policies.ts' document), its encrypted log group, its timeout, no route, no invoke permission, no reserved concurrency", () => {
      const [worker] = WORKERS;
      const f = fn(worker.name);
      assert.equal(f.inputs.timeout, c.deliveryWorkerTimeoutSeconds);
      assert.equal(f.inputs.reservedConcurrentExecutions, -1, "the mapping's maximumConcurrency is the cap");
      assert.equal(f.inputs.publish, false);
      const group = run
        .ofType("aws:cloudwatch/logGroup:LogGroup")
        .find((g) => g.inputs.name === `/aws/lambda/${c.resourcePrefix}-${worker.name}`);
      assert.ok(group);
      assert.equal(group.inputs.kmsKeyId, run.ofType("aws:kms/key:Key")[0].state.arn);
      assert.equal(run.ofType("aws:lambda/permission:Permission").filter((p) => p.inputs.function === f.state.name).length, 0);
      const doc = rolePolicyOf(worker.name);
      assert.deepEqual(
        doc.Statement.find((s) => s.Sid === "ConsumeDeliveries"),
        {
          Sid: "ConsumeDeliveries",
          Effect: "Allow",
          Action: [...CONSUME_ACTIONS],
          Resource: [queueArn()],
        },
      );
      assert.equal(
        doc.Statement.some((s) => s.Action.includes("sqs:SendMessage")),
        false,
      );
      const env = (f.inputs.environment as { variables: Record<string, string> }).variables;
      // The worker enqueues nothing (no sqs:SendMessage above) but is given the queue it consumes: it makes
      // a job it stopped at its time margin visible again at once (ChangeMessageVisibility, CONSUME_ACTIONS).
      assert.equal(env[DELIVERY_QUEUE_URL_ENV], `https://sqs.${run.region}.amazonaws.com/${ACCOUNT}/${c.resourcePrefix}-deliveries.fifo`);
      assert.ok(CONSUME_ACTIONS.includes("sqs:ChangeMessageVisibility"));
      assert.equal(env.DELIVERY_POSTS_PER_SECOND ?? String(c.deliveryPostsPerSecond), String(c.deliveryPostsPerSecond));
    });

    it("gives exactly the producers sqs:SendMessage on this stack's queue, and them and the worker DELIVERY_QUEUE_URL", () => {
      const url = `https://sqs.${run.region}.amazonaws.com/${ACCOUNT}/${c.resourcePrefix}-deliveries.fifo`;
      for (const spec of FUNCTIONS) {
        const doc = rolePolicyOf(spec.name);
        const send = doc.Statement.filter((s) => s.Action.some((a) => a.startsWith("sqs:SendMessage")));
        const env = (fn(spec.name).inputs.environment as { variables: Record<string, string> }).variables;
        if (spec.enqueuesDeliveries) {
          assert.deepEqual(
            send,
            [{ Sid: "EnqueueDeliveries", Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [queueArn()] }],
            spec.name,
          );
          assert.equal(env[DELIVERY_QUEUE_URL_ENV], url, spec.name);
        } else {
          assert.deepEqual(send, [], spec.name);
          assert.equal(env[DELIVERY_QUEUE_URL_ENV], spec.trigger === "deliveryQueue" ? url : undefined, spec.name);
        }
      }
    });

    it("lets push backends enqueue too (the push policy's PushEnqueueDeliveries)", () => {
      const [policy] = run.ofType("aws:iam/policy:Policy");
      const doc = json<{ Statement: { Sid: string; Action: string[]; Resource: string[] }[] }>(policy.inputs.policy);
      assert.deepEqual(
        doc.Statement.find((s) => s.Sid === "PushEnqueueDeliveries"),
        {
          Sid: "PushEnqueueDeliveries",
          Effect: "Allow",
          Action: ["sqs:SendMessage"],
          Resource: [queueArn()],
        },
      );
    });

    it("exports deliveryQueueUrl and deliveryDlqUrl", () => {
      assert.equal(run.outputs.deliveryQueueUrl, `https://sqs.${run.region}.amazonaws.com/${ACCOUNT}/${c.resourcePrefix}-deliveries.fifo`);
      assert.equal(
        run.outputs.deliveryDlqUrl,
        `https://sqs.${run.region}.amazonaws.com/${ACCOUNT}/${c.resourcePrefix}-deliveries-dlq.fifo`,
      );
    });

    it("alarms on the oldest job's age (alarmDeliveryAgeSeconds) and on any dead letter, and on the worker's error rate", () => {
      const alarms = run.ofType(ALARM);
      const named = (suffix: string) => {
        const found = alarms.filter((a) => a.inputs.name === `${c.resourcePrefix}-${suffix}`);
        assert.equal(found.length, 1, suffix);
        return found[0].inputs;
      };
      const age = named("delivery-queue-age");
      assert.equal(age.namespace, "AWS/SQS");
      assert.equal(age.metricName, "ApproximateAgeOfOldestMessage");
      assert.deepEqual(age.dimensions, { QueueName: `${c.resourcePrefix}-deliveries.fifo` });
      assert.equal(age.statistic, "Maximum");
      assert.equal(age.threshold, c.alarms.deliveryAgeSeconds);
      assert.equal(age.comparisonOperator, "GreaterThanOrEqualToThreshold");
      assert.equal(age.period, c.alarms.periodSeconds);
      assert.deepEqual(age.alarmActions, [run.outputs.alarmTopicArn]);
      const dlq = named("delivery-dlq-depth");
      assert.equal(dlq.metricName, "ApproximateNumberOfMessagesVisible");
      assert.deepEqual(dlq.dimensions, { QueueName: `${c.resourcePrefix}-deliveries-dlq.fifo` });
      assert.equal(dlq.comparisonOperator, "GreaterThanThreshold");
      assert.equal(dlq.threshold, 0);
      assert.deepEqual(dlq.alarmActions, [run.outputs.alarmTopicArn]);
      for (const w of WORKERS) named(`lambda-error-rate-${w.name}`);
    });

    it("shows the queue's age, depth, dead letters and the worker's duration, concurrency, throttles and errors on the dashboard", () => {
      const [dashboard] = run.ofType("aws:cloudwatch/dashboard:Dashboard");
      const body = JSON.parse(String(dashboard.inputs.dashboardBody)) as {
        widgets: { type: string; properties: { title?: string; markdown?: string; metrics?: unknown[][] } }[];
      };
      const at = body.widgets.findIndex((w) => w.properties.markdown === "## Delivery queue (large rooms)");
      assert.ok(at >= 0);
      const row = body.widgets.slice(at + 1, at + 6);
      const q = `${c.resourcePrefix}-deliveries.fifo`;
      const dlq = `${c.resourcePrefix}-deliveries-dlq.fifo`;
      const worker = `${c.resourcePrefix}-${WORKERS[0].name}`;
      const has = (title: string, ...needles: string[]) => {
        const w = row.find((x) => x.properties.title === title);
        assert.ok(w, title);
        const text = JSON.stringify(w.properties.metrics);
        for (const n of needles) assert.ok(text.includes(n), `${title}: ${n}`);
      };
      has("Age of the oldest job (s)", "ApproximateAgeOfOldestMessage", q);
      has("Jobs waiting and in flight", "ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", q);
      has("Dead-letter queue (jobs)", "ApproximateNumberOfMessagesVisible", dlq);
      has("Worker duration (ms)", "Duration", worker);
      has("Workers: concurrency, throttles, errors", "ConcurrentExecutions", "Throttles", "Errors", worker);
    });
  });
}
